#!/usr/bin/env bash
# Trains the next default model (issue 15) in sessions: one recipe of models/recipes/, 30 000
# steps of 16 x 2 s (960 000 s of audio examples, 10 x the shipped model's), on every speech and
# noise folder of ../shared/data but the held-out ones (scripts/training_data.sh), mixed on the fly
# with rooms, band-limiting, rumble and babble.
#
#   scripts/train_next.sh                 start, or continue from models/next/next.resume.pt
#   STOP_AT=12000 scripts/train_next.sh   end this sitting at step 12000 (resume state saved)
#   Ctrl-C (or SIGTERM)                   ends after the current step, resume state saved
#   RANKS=2 (default: two one-thread processes, c10d on localhost; RANKS=1: one process of
#   THREADS=2 threads) DEVICE=cpu|cuda RECIPE=banded_gru SHARED_DIR=../shared BUILD_DIR=build
#
# Files in models/next/ (committed whenever a sitting ends, so that the next one continues):
#   next.dnz          best model so far (by validation loss)     next.log.jsonl  validations
#   next.resume.pt    weights, optimizer and step of the latest    next.curves.png
#   STAGE             the data stage (below), the recipe and the step reached
# When the schedule is complete the model is scored on the development pairs and the held-out
# mixtures (next.dev.json, next.heldout.json) as train_default.sh scores the shipped one, and
# next.card.json says whether it meets issue 15's bar.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
recipe="${RECIPE:-banded_gru}"
out="${OUT_DIR:-models/next}"
shared="${SHARED_DIR:-$repo/../shared}/data"
device="${DEVICE:-cpu}"
threads="${THREADS:-2}"
build="${BUILD_DIR:-build}"
ranks="${RANKS:-2}"
port="${MASTER_PORT:-29517}"
[[ "$ranks" =~ ^(1|2|4|8|16)$ ]] || { echo "train_next: RANKS must be 1, 2, 4, 8 or 16 (got '$ranks')" >&2; exit 2; }
[ -d "$shared/speech" ] && [ -d "$shared/noise" ] || { echo "train_next: $shared not found (set SHARED_DIR)" >&2; exit 1; }
[ -f "models/recipes/$recipe.json" ] || { echo "train_next: no recipe models/recipes/$recipe.json" >&2; exit 2; }

scripts/install-deps.sh
if [ ! -x "$build/bin/train" ] || [ ! -x "$build/bin/evaluate" ] || [ ! -x "$build/bin/make_mixtures" ]; then
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$build" -j"$(nproc)" --target train evaluate make_mixtures infer
fi
mkdir -p "$out"
source scripts/training_data.sh

# Runs train for one stage: $1 the data stage (training_data.sh), then train's own options.
status=0
run_stage() {
  speech_folders "$1"; shift
  local resume=()
  [ -f "$out/next.resume.pt" ] && resume=(--resume)
  local cmd=("$build/bin/train" --clean "${speech[@]}" --noise "${noise[@]}" --seed 1
             --device "$device" --config "models/recipes/$recipe.json" -o "$out/next.dnz"
             "${resume[@]}" "$@")
  if [ "$ranks" -le 1 ]; then
    nice "${cmd[@]}" --threads "$threads" || status=$?
    return
  fi
  # A data-parallel job on this machine (c10d, Gloo on localhost): RANKS processes of one
  # thread each, batch 16 / RANKS per process, so that a step still trains on 16 examples.
  # On the 2-core development machine two one-thread processes trained 110 s of audio per
  # second with this recipe; one two-thread process had trained 48 (an earlier, busier hour).
  local per_rank=$((16 / ranks)) r log
  pids=()
  for ((r = ranks - 1; r >= 0; r--)); do
    log=/dev/stdout
    [ "$r" -gt 0 ] && log="$work_dir/rank$r.txt"
    MASTER_ADDR=127.0.0.1 MASTER_PORT="$port" WORLD_SIZE="$ranks" RANK="$r" LOCAL_RANK="$r" \
      nice "${cmd[@]}" --threads 1 --batch "$per_rank" > "$log" 2>&1 &
    pids+=($!)
  done
  trap 'kill -TERM "${pids[@]}" 2>/dev/null; wait; rm -rf "$work_dir"' INT TERM
  for r in "${pids[@]}"; do wait "$r" || status=$?; done
  trap - INT TERM
  [ "$status" -eq 0 ] || tail -n 5 "$work_dir"/rank*.txt >&2
}

# Stage 1, steps 0-13411: every speech folder but arctic. Stage 2, steps 13411-24558: without
# precise_community, whose "clean" recordings carry strong rumble and hum (their median share of
# energy in 20-45 Hz is -6 dB, -10 dB in 45-65 Hz, against -30 to -65 dB elsewhere). A model
# that learns those as speech keeps mains hum: at step 9000 the demo's 100 Hz hum passed
# untouched. Stage 3, from step 24558 to the end: stage 2's data plus steady tones on 30 % of
# the noises (models/recipes/tones.json), because without precise_community the hum still
# passed (at step 22000): training had shown hum only alone, never over broadband noise. (13411
# and 24558 are where the run was stopped to make each change.)
stage1_end=13411
stage2_end=24558
stop=()
[ -n "${STOP_AT:-}" ] && stop=(--stop-at "$STOP_AT")
stage_now() { sed -n 's/^data stage \([0-9]\).*/\1/p' "$out/STAGE" 2>/dev/null | head -n 1; }
set_stage() { echo "data stage $1" > "$out/STAGE.next" && mv "$out/STAGE.next" "$out/STAGE"; }
# Runs data stage $1 up to step $2 (the end of the schedule when empty), or to STOP_AT when
# that comes first, and moves STAGE on when the stage is complete.
stage_to() {
  local stage="$1" end="$2" extra=()
  [ "$stage" = 3 ] && extra=(--config models/recipes/tones.json)
  if [ -n "${STOP_AT:-}" ] && { [ -z "$end" ] || [ "$STOP_AT" -le "$end" ]; }; then
    run_stage "$stage" "${extra[@]}" "${stop[@]}"
  elif [ -n "$end" ]; then
    run_stage "$stage" "${extra[@]}" --stop-at "$end"
    [ "$status" -eq 0 ] && set_stage $((stage + 1))
  else
    run_stage "$stage" "${extra[@]}"
  fi
}
stage="$(stage_now)"
[ -n "$stage" ] || stage=1
[ "$stage" -le 1 ] && stage_to 1 "$stage1_end"
[ "$status" -eq 0 ] && [ "$(stage_now)" = 2 ] && stage_to 2 "$stage2_end"
[ "$status" -eq 0 ] && [ "$(stage_now)" = 3 ] && stage_to 3 ""
last="$(tail -n 1 "$out/next.log.jsonl" | sed -n 's/.*"step":\([0-9]*\).*/\1/p')"
total="$(sed -n 's/.*"steps": *\([0-9]*\).*/\1/p' "models/recipes/$recipe.json" | head -n 1)"
stage="$(stage_now)"
printf 'data stage %s\nrecipe %s\nlast validation at step %s of %s\nupdated %s\n' "$stage" \
  "$recipe" "$last" "$total" "$(date -u +%Y-%m-%dT%H:%MZ)" > "$out/STAGE"
[ "$status" -eq 0 ] || exit "$status"
[ "$last" = "$total" ] || { echo "train_next: stopped at step $last of $total; run again to continue"; exit 0; }

"$build/bin/make_mixtures" --clean "$shared/speech/arctic" --noise "$heldout_noise_dir" \
  -o "$work_dir/heldout" --count 40 --seconds 4 --snr-min 0 --snr-max 15 --seed 1 >/dev/null
methods=noisy,subtract,gate,gate-nonstationary,unet,oracle
"$build/bin/evaluate" --data "$shared/pairs/valentini_train_sample" --methods "$methods" \
  --model "$out/next.dnz" --threads 1 --json "$out/next.dev.json"
"$build/bin/evaluate" --data "$work_dir/heldout" --methods "$methods" \
  --model "$out/next.dnz" --threads 1 --json "$out/next.heldout.json"
python3 scripts/model_card.py "$out/next.dnz" "$out/next.dev.json" "$out/next.heldout.json" \
  "$out/next.card.json" scripts/train_next.sh
