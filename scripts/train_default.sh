#!/usr/bin/env bash
# Reproduces the shipped model, models/pretrained/default.dnz, and its model card.
#
#   scripts/train_default.sh [OUT_DIR]      (default: models/pretrained)
#   DEVICE=cuda scripts/train_default.sh    on a GPU (LibTorch with CUDA)
#   RESUME=3 scripts/train_default.sh       continue an interrupted run in stage 3 (also 1, 2)
#
# Data: the clean speech and noise recordings in ../shared/data (licences in ../shared/README.md),
# mixed on the fly with generated noise, synthetic rooms and band-limiting: 3000 steps of 16 x 2 s
# with cosine learning rates, in three stages --
#   steps 0-991      models/pretrained/default.config.json (a cosine schedule over 1800 steps)
#   steps 991-1800   models/pretrained/default.stage2.json: the same plus low-passed noise
#                    ("rumble"), added when the development check showed the model leaving
#                    low-frequency noise alone;
#   steps 1800-3000  models/pretrained/default.stage3.json: the same plus babble (other
#                    speakers of the training speech), added when the development pairs turned
#                    out to be mostly babble; resumed with the schedule stretched to 3000 steps,
#                    so the learning rate rises again (to 0.8e-3) and decays over the stage.
# Held out of training, for the model card:
#   - speech/arctic (three CMU ARCTIC speakers) and noise/noise_freesound_573577.wav, mixed into
#     40 pairs of 4 s at 0-15 dB SNR (make_mixtures, seed 1);
#   - pairs/valentini_train_sample, the development check (real VoiceBank+DEMAND recordings).
# Takes about 2 h 10 min on 2 otherwise idle CPU threads (2.4 s per step). Writes OUT_DIR/default.dnz, default.log.jsonl,
# default.curves.png and default.card.json (data, steps, validation and evaluation figures).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
out="${1:-models/pretrained}"
shared="${SHARED_DIR:-$repo/../shared}/data"
device="${DEVICE:-cpu}"
threads="${THREADS:-2}"
build="${BUILD_DIR:-build}"
[ -d "$shared/speech" ] && [ -d "$shared/noise" ] || { echo "train_default: $shared not found (set SHARED_DIR)" >&2; exit 1; }

scripts/install-deps.sh
if [ ! -x "$build/bin/train" ] || [ ! -x "$build/bin/evaluate" ] || [ ! -x "$build/bin/make_mixtures" ]; then
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$build" -j"$(nproc)" --target train evaluate make_mixtures infer
fi
mkdir -p "$out"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# Training data: every speech folder but arctic; every noise folder (the loose file at the top of
# noise/ is the held-out one). In the order of the run that made the shipped weights.
speech=()
for d in allison asterisk_fr asterisk_it asterisk_ru librispeech_train ljspeech; do
  speech+=("$shared/speech/$d")
done
noise=()
for d in blanket drunkentoast ambientengine speech_commands; do noise+=("$shared/noise/$d"); done

train=("$build/bin/train" --clean "${speech[@]}" --noise "${noise[@]}" --seed 1
       --threads "$threads" --device "$device" -o "$out/default.dnz")
# RESUME=1, 2 or 3: continue an interrupted run (its resume state is beside OUT_DIR/default.dnz)
# in that stage.
from="${RESUME:-0}"
[[ "$from" =~ ^[0-3]$ ]] || { echo "train_default: RESUME must be 1, 2 or 3 (got '$from')" >&2; exit 2; }
resume=()
[ "$from" -gt 0 ] && resume=(--resume)
[ "$from" -le 1 ] && "${train[@]}" --config models/pretrained/default.config.json --stop-at 991 "${resume[@]}"
[ "$from" -le 2 ] && "${train[@]}" --config models/pretrained/default.stage2.json --resume
"${train[@]}" --config models/pretrained/default.stage3.json --resume

# Held-out mixtures and the development pairs.
mkdir -p "$tmp/noise"
ln -s "$shared/noise/noise_freesound_573577.wav" "$tmp/noise/"
"$build/bin/make_mixtures" --clean "$shared/speech/arctic" --noise "$tmp/noise" \
  -o "$tmp/heldout" --count 40 --seconds 4 --snr-min 0 --snr-max 15 --seed 1
methods=noisy,subtract,gate,gate-nonstationary,unet,oracle
"$build/bin/evaluate" --data "$shared/pairs/valentini_train_sample" --methods "$methods" \
  --model "$out/default.dnz" --threads 1 --json "$tmp/dev.json" | tee "$tmp/dev.md"
"$build/bin/evaluate" --data "$tmp/heldout" --methods "$methods" \
  --model "$out/default.dnz" --threads 1 --json "$tmp/heldout.json" | tee "$tmp/heldout.md"

python3 scripts/model_card.py "$out/default.dnz" "$tmp/dev.json" "$tmp/heldout.json" "$out/default.card.json"
