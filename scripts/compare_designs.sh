#!/usr/bin/env bash
# Compares network designs at an equal CPU training budget: each recipe in models/recipes/ named
# on the command line trains for the same number of steps of its own schedule, all at once, one
# thread each (so each gets one core of this machine for the same wall time), on the same data
# and seed; then each model is scored by `evaluate` on both checks (the development pairs and the
# 40 held-out mixtures that train_default.sh makes). Prints one table row per design.
#
#   scripts/compare_designs.sh OUT_DIR RECIPE...          e.g. ... /tmp/cmp unet_2025 banded_gru
#   STEPS=1000 (default) THREADS=1 (each) SHARED_DIR=../shared BUILD_DIR=build
#
# Each run stops at STEPS with its resume state saved (OUT_DIR/RECIPE.resume.pt), so the winner
# can go on with `train ... --config models/recipes/RECIPE.json --resume` (as scripts/train_default.sh does).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
[ $# -ge 2 ] || { echo "usage: compare_designs.sh OUT_DIR RECIPE..." >&2; exit 2; }
out="$1"; shift
steps="${STEPS:-1000}"
threads="${THREADS:-1}"
build="${BUILD_DIR:-build}"
shared="${SHARED_DIR:-$repo/../shared}/data"
[ -d "$shared/speech" ] || { echo "compare_designs: $shared not found (set SHARED_DIR)" >&2; exit 1; }
for r in "$@"; do
  [ -f "models/recipes/$r.json" ] || { echo "compare_designs: no recipe models/recipes/$r.json" >&2; exit 2; }
done
mkdir -p "$out"
source scripts/training_data.sh  # speech_folders, noise=(...), heldout_noise_dir
speech_folders 1

pids=()
for r in "$@"; do
  resume=()
  [ -f "$out/$r.resume.pt" ] && resume=(--resume)
  nice "$build/bin/train" --clean "${speech[@]}" --noise "${noise[@]}" --seed 1 --threads "$threads" \
    --config "models/recipes/$r.json" --stop-at "$steps" -o "$out/$r.dnz" "${resume[@]}" \
    > "$out/$r.train.txt" 2>&1 &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done

[ -d "$out/heldout" ] || "$build/bin/make_mixtures" --clean "$shared/speech/arctic" \
  --noise "$heldout_noise_dir" -o "$out/heldout" --count 40 --seconds 4 --snr-min 0 --snr-max 15 --seed 1 >/dev/null
printf '| design | parameters | steps | dev PESQ / STOI / SI-SDR | held-out PESQ / STOI / SI-SDR | RTF (1 thread) |\n'
printf '|---|---|---|---|---|---|\n'
for r in "$@"; do
  "$build/bin/evaluate" --data "$shared/pairs/valentini_train_sample" --methods unet \
    --model "$out/$r.dnz" --threads 1 -q --json "$out/$r.dev.json"
  "$build/bin/evaluate" --data "$out/heldout" --methods unet \
    --model "$out/$r.dnz" --threads 1 -q --json "$out/$r.heldout.json"
  /usr/bin/env python3 - "$r" "$out" <<'EOF'
import json, re, sys
r, out = sys.argv[1], sys.argv[2]
d, h = (json.load(open(f"{out}/{r}.{name}.json"))["mean"]["unet"] for name in ("dev", "heldout"))
last_step = json.loads(open(f"{out}/{r}.log.jsonl").readlines()[-1])["step"]
params = "?"
for line in open(f"{out}/{r}.train.txt"):
    g = re.match(r"model: (\d+) trainable parameters", line)
    if g: params = g.group(1)
fmt = lambda m: f"{m['pesq_wb']:.2f} / {m['stoi']:.3f} / {m['si_sdr_db']:.2f}"
print(f"| {r} | {params} | {last_step} | {fmt(d)} | {fmt(h)} | {h['rtf']:.4f} |")
EOF
done
