#!/usr/bin/env python3
"""Writes a model card (JSON) for a trained model: its metadata (front end, model options, training
data and settings, validation figures) and the mean scores of `evaluate --json` runs on the
development pairs and on held-out mixtures.

    scripts/model_card.py MODEL.dnz DEV.json HELDOUT.json CARD.json [REPRODUCE]

REPRODUCE names the script that trains the model (default: scripts/train_default.sh).
"""
import json, os, struct, sys
if len(sys.argv) not in (5, 6):
    sys.exit(__doc__)
model, dev, held, card = sys.argv[1:5]
reproduce = sys.argv[5] if len(sys.argv) == 6 else "scripts/train_default.sh"
with open(model, "rb") as f:
    head = f.read(8 + 4 + 8)
    magic, version, n = head[:8], struct.unpack("<I", head[8:12])[0], struct.unpack("<Q", head[12:20])[0]
    meta = json.loads(f.read(n))
def means(path):
    j = json.load(open(path))
    return {"files": j["files_scored"], "seconds": j["seconds_scored"],
            "mean": {m: {k: j["mean"][m][k] for k in ("pesq_wb", "si_sdr_db", "stoi", "estoi", "snr_db",
                                                      "seg_snr_db") if k in j["mean"][m]}
                     for m in j["methods"]}}
# Issue 15's bar, set by today's small public denoisers (GTCRN, DeepFilterNet3, RNNoise): means of
# the model's output, PESQ-WB / SI-SDR dB / STOI, each at least this.
BAR = {"dev": {"pesq_wb": 1.60, "si_sdr_db": 9.6, "stoi": 0.834},
       "held": {"pesq_wb": 2.45, "si_sdr_db": 12.3, "stoi": 0.957}}
def peer_bar(path, which):
    m = json.load(open(path))["mean"].get("unet")
    if m is None:
        return None
    out = {k: {"model": m.get(k), "bar": v, "met": m.get(k) is not None and m[k] >= v}
           for k, v in BAR[which].items()}
    out["met"] = all(v["met"] for v in out.values())
    return out
out = {
    "model": os.path.basename(model),
    "bytes": os.path.getsize(model),
    "architecture": meta.get("architecture"),
    "front_end": meta.get("front_end"),
    "model_options": meta.get("model"),
    "training": meta.get("training"),
    "validation": meta.get("validation"),
    "evaluation": {
        "development_pairs (valentini_train_sample, never trained on)": means(dev),
        "held_out_mixtures (arctic speakers + noise_freesound_573577, 40 x 4 s, 0-15 dB)": means(held),
    },
    "bar (issue 15: PESQ-WB, SI-SDR and STOI above GTCRN, DeepFilterNet3 and RNNoise)": {
        "development_pairs": peer_bar(dev, "dev"), "held_out_mixtures": peer_bar(held, "held")},
    "reproduce": reproduce,
}
json.dump(out, open(card, "w"), indent=2)
print("model card:", card)
