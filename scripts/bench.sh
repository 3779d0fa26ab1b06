#!/usr/bin/env bash
# Benchmarks the classical methods and the U-Net against the project's targets.
#
#   scripts/bench.sh [BUILD_DIR]        (default: build, relative to the repository root)
#
# Builds infer and bench_denoise (Release) if they are missing, makes a 60 s 16 kHz mono 16-bit
# test file (real speech + real noise at about 5 dB SNR from ../shared/data when it exists, sox
# tones + pink noise otherwise) and a 1-hour file made from it, then prints per method:
#   - infer's whole-process wall time (best of 3) and peak RSS on the 60 s file,
#   - bench_denoise's compute-only time (best of 5) on the same file,
#   - infer's wall time and peak RSS on the 1-hour file;
# then for the U-Net (models/pretrained/default.dnz, $DENOISE_BENCH_MODEL, or else a model of the
# default size trained for one step -- the cost does not depend on the weights):
#   - compute RTF on the 60 s file with one LibTorch thread (bench_denoise), infer's whole process,
#   - infer's peak RSS on the 1-hour file,
#   - training throughput (seconds of audio per second) on 2 CPU threads, and on the GPU when
#     nvidia-smi finds one and LibTorch has CUDA;
# the streaming engine's time per hop (mean, p99; the model and the live gates) and latency;
# and evaluate's wall time per minute of audio (all metrics, STOI included) on the 60 s pair.
# Inference runs pinned to CPU 0 (taskset -c 0): one core.
# Test files live in a temporary folder that is removed on exit; nothing is written to the repo.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
build="${1:-build}"
infer="$build/bin/infer"
train="$build/bin/train"
evaluate="$build/bin/evaluate"
bench="$build/bin/bench_denoise"
methods=(gate gate-nonstationary subtract)
long_methods=(gate gate-nonstationary subtract)

# Targets.
target_gate_ms_per_min=25     # gating compute per minute of 16 kHz audio
nr_compute_ms_per_min=460     # noisereduce reference: compute per minute
nr_process_ms_per_min=1100    # noisereduce reference: whole process per minute
target_rss_mib=300            # peak RSS of infer on a 1-hour file
target_unet_rtf=0.05          # U-Net compute, one thread
target_unet_rss_mib=500       # peak RSS of infer --method unet on a 1-hour file

die() { echo "bench: $*" >&2; exit 1; }

# --- tools ---------------------------------------------------------------------------------------
need_pkgs=()
command -v sox >/dev/null || need_pkgs+=(sox)
command -v taskset >/dev/null || need_pkgs+=(util-linux)
[ -x /usr/bin/time ] || need_pkgs+=(time)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  echo "bench: missing ${need_pkgs[*]} (GNU time is /usr/bin/time, package 'time'); installing"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || die "need root or sudo to install: ${need_pkgs[*]}"
    SUDO="sudo"
  fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}"
fi

# --- build ---------------------------------------------------------------------------------------
if [ ! -x "$infer" ] || [ ! -x "$bench" ] || [ ! -x "$train" ] || [ ! -x "$evaluate" ]; then
  echo "bench: building infer, train, evaluate and bench_denoise (Release) in $build"
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release &&
    cmake --build "$build" -j2 --target infer train evaluate bench_denoise
  [ -x "$infer" ] && [ -x "$bench" ] && [ -x "$train" ] && [ -x "$evaluate" ] ||
    die "$infer or $bench still missing (bench_denoise is built with the tests: DENOISE_BUILD_TESTS=ON)"
fi
build_type="$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$build/CMakeCache.txt" 2>/dev/null || true)"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/denoise-bench.XXXXXX")"
cleanup() { rm -rf "$tmp"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- test files ----------------------------------------------------------------------------------
shared="$repo/../shared/data"
fmt=(-r 16000 -c 1 -b 16)
rms() { sox "$1" -n stat 2>&1 | awk '/^RMS +amplitude/ {print $3}'; }

if [ -d "$shared" ] && compgen -G "$shared/speech/librispeech_train/*.flac" >/dev/null; then
  # Real speech: LibriSpeech utterances in name order until there are 60 s.
  speech_files=()
  total=0
  for f in "$shared"/speech/librispeech_train/*.flac; do
    speech_files+=("$f")
    total="$(awk -v t="$total" -v d="$(soxi -D "$f")" 'BEGIN {print t + d}')"
    awk -v t="$total" 'BEGIN {exit !(t >= 61)}' && break
  done
  noise_file="$shared/noise/speech_commands/running_tap.wav"
  [ -f "$noise_file" ] || noise_file="$(ls "$shared"/noise/speech_commands/*.wav | head -1)"
  source_desc="${#speech_files[@]} LibriSpeech utterances + $(basename "$noise_file") (real)"
  sox "${speech_files[@]}" "${fmt[@]}" "$tmp/speech.wav" trim 0 60
  # Noise looped to at least 60 s, then cut to it.
  sox "$noise_file" "${fmt[@]}" "$tmp/noise.wav" repeat 3 trim 0 60
else
  # No shared data: speech-like tones (two partials, syllable-rate tremolo) and pink noise.
  source_desc="sox tones + pink noise (synthetic; ../shared/data not found)"
  sox -n "${fmt[@]}" "$tmp/t1.wav" synth 60 sine 180-260 tremolo 3.7 90
  sox -n "${fmt[@]}" "$tmp/t2.wav" synth 60 sine 900-1400 tremolo 5.3 80
  sox -m -v 0.5 "$tmp/t1.wav" -v 0.3 "$tmp/t2.wav" "${fmt[@]}" "$tmp/speech.wav"
  sox -n "${fmt[@]}" "$tmp/noise.wav" synth 60 pinknoise vol 0.3
fi

# Mix at 5 dB SNR (RMS over the whole 60 s; both halved so the sum cannot clip), then normalise
# the mix to -1 dBFS.
rs="$(rms "$tmp/speech.wav")"
rn="$(rms "$tmp/noise.wav")"
k="$(awk -v s="$rs" -v n="$rn" 'BEGIN {printf "%.6f", s / (n * 10 ^ (5 / 20))}')"
minute="$tmp/minute.wav"
sox -m -v 0.5 "$tmp/speech.wav" -v "$(awk -v k="$k" 'BEGIN {printf "%.6f", k / 2}')" "$tmp/noise.wav" "${fmt[@]}" "$minute" gain -n -1
snr="$(awk -v s="$rs" -v n="$rn" -v k="$k" 'BEGIN {printf "%.1f", 20 * log(s / (n * k)) / log(10)}')"
minute_s="$(soxi -D "$minute" | awk '{printf "%.1f", $1}')"

hour="$tmp/hour.wav"
sox "$minute" "$hour" repeat 59
hour_s="$(soxi -D "$hour" | awk '{printf "%.1f", $1}')"
hour_mb="$(du -m "$hour" | cut -f1)"

# --- measurements --------------------------------------------------------------------------------
# run_infer FILE METHOD [ARGS...]: one run; sets wall_s (bash clock, ns resolution) and rss_kib
# (GNU time).
run_infer() {
  local t0 t1 file="$1" method="$2"
  shift 2
  t0="$EPOCHREALTIME"
  /usr/bin/time -f '%e %M' -o "$tmp/time.txt" \
    taskset -c 0 "$infer" -q "$file" -o "$tmp/out.wav" --method "$method" "$@"
  t1="$EPOCHREALTIME"
  wall_s="$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.4f", b - a}')"
  rss_kib="$(awk 'END {print $2}' "$tmp/time.txt")"
  rm -f "$tmp/out.wav"
}
mib() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }
verdict() { awk -v v="$1" -v t="$2" 'BEGIN {print (v <= t) ? "ok" : "MISS"}'; }

echo "denoise benchmark  $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "  cpu:    $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1), pinned to CPU 0 (taskset -c 0)"
echo "  build:  $build (${build_type:-unknown type})"
echo "  input:  ${minute_s} s, 16 kHz mono 16-bit WAV: $source_desc, SNR ${snr} dB"
echo

declare -A compute_ms per_min rtf
while read -r m c p r; do
  case "$m" in \#*|method|"") continue ;; esac
  compute_ms[$m]="$c"; per_min[$m]="$p"; rtf[$m]="$r"
done < <(taskset -c 0 "$bench" "$minute" --methods "$(IFS=,; echo "${methods[*]}")" --repeat 5)

echo "60 s file: compute (bench_denoise, best of 5) and whole process (infer, best of 3)"
line="$(printf '%0.s-' {1..104})"
printf '%-20s %11s %11s %9s %9s %13s %11s %10s\n' \
  method "compute_ms" "ms/min" "rtf" "x_nr" "infer_wall_s" "wall_s/min" "peak_MiB"
echo "$line"
for m in "${methods[@]}"; do
  best=""; best_rss=0
  for _ in 1 2 3; do
    run_infer "$minute" "$m"
    if [ -z "$best" ] || awk -v a="$wall_s" -v b="$best" 'BEGIN {exit !(a < b)}'; then best="$wall_s"; fi
    [ "$rss_kib" -gt "$best_rss" ] && best_rss="$rss_kib"
  done
  wall_per_min="$(awk -v w="$best" -v s="$minute_s" 'BEGIN {printf "%.3f", w * 60 / s}')"
  speedup="$(awk -v p="${per_min[$m]}" -v r="$nr_compute_ms_per_min" 'BEGIN {printf "%.1fx", r / p}')"
  printf '%-20s %11s %11s %9s %9s %13s %11s %10s\n' "$m" "${compute_ms[$m]}" "${per_min[$m]}" \
    "${rtf[$m]}" "$speedup" "$best" "$wall_per_min" "$(mib "$best_rss")"
done
echo "$line"
printf '%-20s %11s %11s\n' "target (gating)" "" "<= $target_gate_ms_per_min"
printf '%-20s %11s %11s %9s %9s %13s %11s\n' "noisereduce (ref.)" "" "$nr_compute_ms_per_min" "" "1.0x" "" \
  "$(awk -v v="$nr_process_ms_per_min" 'BEGIN {printf "%.3f", v / 1000}')"
for m in gate gate-nonstationary; do
  [ -n "${per_min[$m]:-}" ] || continue
  printf '  %-18s compute %s ms/min vs target <= %s: %s\n' "$m" "${per_min[$m]}" "$target_gate_ms_per_min" \
    "$(verdict "${per_min[$m]}" "$target_gate_ms_per_min")"
done
echo "  x_nr: compute speed-up over noisereduce's 0.46 s per minute; ms/min: per minute of 16 kHz audio"
echo

echo "1-hour file (${hour_s} s, ${hour_mb} MB 16-bit WAV): infer whole process, one run each"
printf '%-20s %11s %11s %10s %12s\n' method "wall_s" "wall_s/min" "peak_MiB" "<= $target_rss_mib MiB"
echo "$line" | cut -c1-68
for m in "${long_methods[@]}"; do
  run_infer "$hour" "$m"
  printf '%-20s %11s %11s %10s %12s\n' "$m" "$wall_s" \
    "$(awk -v w="$wall_s" -v s="$hour_s" 'BEGIN {printf "%.3f", w * 60 / s}')" "$(mib "$rss_kib")" \
    "$(verdict "$(mib "$rss_kib")" "$target_rss_mib")"
done
echo

# --- U-Net -----------------------------------------------------------------------------------------
mkdir -p "$tmp/clean" "$tmp/noises"
cp "$tmp/speech.wav" "$tmp/clean/"
cp "$tmp/noise.wav" "$tmp/noises/"
model="${DENOISE_BENCH_MODEL:-}"
[ -z "$model" ] && [ -f models/pretrained/default.dnz ] && model=models/pretrained/default.dnz
if [ -n "$model" ]; then
  model_desc="$model"
else
  model="$tmp/bench.dnz"
  "$train" -q --clean "$tmp/clean" --steps 1 --batch 1 --crop-seconds 0.5 --threads 1 -o "$model" >/dev/null
  model_desc="default size, untrained (one step; the cost does not depend on the weights)"
fi
echo "U-Net: $model_desc"
unet_line="$(taskset -c 0 "$bench" "$minute" --methods unet --model "$model" --repeat 3 | awk '$1 == "unet"')"
unet_rtf="$(awk '{print $4}' <<<"$unet_line")"
best=""
for _ in 1 2 3; do
  run_infer "$minute" unet --model "$model" --threads 1
  if [ -z "$best" ] || awk -v a="$wall_s" -v b="$best" 'BEGIN {exit !(a < b)}'; then best="$wall_s"; fi
done
printf '  60 s file, compute (1 thread):  %s ms, RTF %s (target <= %s: %s)\n' \
  "$(awk '{print $2}' <<<"$unet_line")" "$unet_rtf" "$target_unet_rtf" "$(verdict "$unet_rtf" "$target_unet_rtf")"
printf '  60 s file, infer whole process: %s s (includes LibTorch start-up)\n' "$best"
run_infer "$hour" unet --model "$model" --threads 1
printf '  1-hour file, infer:             %s s, peak %s MiB (target <= %s MiB: %s)\n' "$wall_s" \
  "$(mib "$rss_kib")" "$target_unet_rss_mib" "$(verdict "$(mib "$rss_kib")" "$target_unet_rss_mib")"

# Streaming engine (live mode): time per hop on one core, for the model and the live gates.
echo "Streaming engine, one core (target: mean <= 25 % of the hop for the model; p99 shown)"
taskset -c 0 "$bench" "$minute" --stream --methods unet,gate-nonstationary,gate --model "$model" |
  awk 'NR == 1 {printf "  %s\n", $0; next} {printf "  %s\n", $0}'

# --- training engine -------------------------------------------------------------------------------
# The default recipe (scripts/train_default.sh: the speech and noise of ../shared/data, its last
# stage's mixing with rooms, band-limiting, rumble and babble; batch 16 x 2 s, 2 threads).
# Throughput is what train reports: seconds of audio per second of its training steps (start-up
# and validation not counted; this build counts the wait for data, the old one did not), the
# median of $train_rounds runs of $train_steps steps. Side by side, alternating: this build as installed (the system's BLAS, OpenMP waits as train sets
# them) and the engine before issue 13 (commit $baseline_commit) as a fresh install of that
# commit ran it: the reference BLAS and OpenMP's default (spinning) waits. BENCH_BASELINE=0 skips
# the old engine (it is built once into $build/bench-baseline).
baseline_commit=a4657f3
train_steps="${BENCH_TRAIN_STEPS:-20}"
train_rounds="${BENCH_TRAIN_ROUNDS:-3}"
train_data=()
if [ -d "$shared/speech" ] && [ -d "$shared/noise" ]; then
  train_data=(--clean)
  for d in allison asterisk_fr asterisk_it asterisk_ru librispeech_train ljspeech; do
    train_data+=("$shared/speech/$d")
  done
  train_data+=(--noise)
  for d in blanket drunkentoast ambientengine speech_commands; do train_data+=("$shared/noise/$d"); done
  train_desc="the default recipe's data (../shared/data)"
else
  train_data=(--clean "$tmp/clean" --noise "$tmp/noises" --val-fraction 0)
  train_desc="the 60 s test file (../shared/data not found)"
fi
baseline_train=""
if [ "${BENCH_BASELINE:-1}" != 0 ]; then
  baseline_dir="$build/bench-baseline"
  if [ ! -x "$baseline_dir/build/bin/train" ] && git rev-parse -q --verify "$baseline_commit^{commit}" >/dev/null 2>&1; then
    echo "bench: building train of commit $baseline_commit into $baseline_dir (once)"
    rm -rf "$baseline_dir" && mkdir -p "$baseline_dir/src"
    git archive "$baseline_commit" | tar -x -C "$baseline_dir/src"
    cmake -S "$baseline_dir/src" -B "$baseline_dir/build" -DCMAKE_BUILD_TYPE=Release \
      -DDENOISE_BUILD_TESTS=OFF -DDENOISE_WITH_PORTAUDIO=OFF >/dev/null &&
      cmake --build "$baseline_dir/build" -j2 --target train >/dev/null || true
  fi
  [ -x "$baseline_dir/build/bin/train" ] && baseline_train="$baseline_dir/build/bin/train"
fi
reference_blas="/usr/lib/x86_64-linux-gnu/blas:/usr/lib/x86_64-linux-gnu/lapack"
# Issue 13's figure uses the recipe of the U-Net shipped until 2026-12 (models/recipes/
# previous_default/stage3.json), on which the baseline commit's figure was measured; the
# shipped banded_gru recipe (models/recipes/banded_gru.json) follows it.
train_run() {  # LABEL TRAIN CONFIG [ARG...] [-- ENV...]: the reported throughput; summary in $tmp/train-LABEL.txt
  local label="$1" bin="$2" config="$3" args=() envs=()
  shift 3
  while [ $# -gt 0 ] && [ "$1" != -- ]; do args+=("$1"); shift; done
  [ $# -gt 0 ] && shift && envs=("$@")
  env "${envs[@]}" "$bin" -q "${train_data[@]}" --seed 1 --threads 2 --config "$config" "${args[@]}" \
    --steps "$train_steps" --val-every 100000 -o "$tmp/train-$label.dnz" >"$tmp/train-$label.txt"
  sed -n 's/^trained .* at \([0-9.]*\) s of audio per second.*/\1/p' "$tmp/train-$label.txt"
}
median() { tr ',' '\n' | sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
ratio() { awk -v a="$(median <<<"$1")" -v b="$(median <<<"$2")" 'BEGIN { if (a > 0 && b > 0) printf "%.2f", a / b; else print "?" }'; }
val_loss() { python3 -c 'import json,sys; print("%.4f" % json.loads(open(sys.argv[1]).read().splitlines()[-1])["loss"])' "$1"; }
unet_recipe=models/recipes/previous_default/stage3.json
shipped_recipe=models/recipes/banded_gru.json
old_install=(-u OMP_WAIT_POLICY LD_LIBRARY_PATH="$reference_blas")  # how a4657f3's install ran
declare -A train_rates=()
for ((round = 1; round <= train_rounds; ++round)); do
  for label in new old gru gru-whole gru-old-setup; do
    case "$label" in
      new) run=("$train" "$unet_recipe") ;;
      old) [ -n "$baseline_train" ] || continue; run=("$baseline_train" "$unet_recipe" -- "${old_install[@]}") ;;
      gru) run=("$train" "$shipped_recipe") ;;
      gru-whole) run=("$train" "$shipped_recipe" --batch-parts 1) ;;
      gru-old-setup) run=("$train" "$shipped_recipe" --batch-parts 1 -- "${old_install[@]}") ;;
    esac
    rate="$(train_run "$label" "${run[@]}")"
    train_rates[$label]="${train_rates[$label]:-}${train_rates[$label]:+, }$rate"
  done
done
echo "Training engine, $train_desc, batch 16 x 2 s, 2 threads (s of audio per second, $train_rounds alternating runs of $train_steps steps):"
echo " the recipe of the U-Net shipped before ($unet_recipe):"
printf '  this build:                     %s\n' "${train_rates[new]}"
sed -n 's/^BLAS: /    BLAS: /p; s/^step breakdown, /    step breakdown, /p; s/^loader threads, /    loader threads, /p' "$tmp/train-new.txt"
if [ -n "$baseline_train" ]; then
  printf '  commit %s, reference BLAS: %s\n' "$baseline_commit" "${train_rates[old]}"
  printf '  speed-up of the medians:        %s x (target >= 4)\n' "$(ratio "${train_rates[new]}" "${train_rates[old]}")"
  printf '  validation loss after %s steps, same seed: this build %s, commit %s %s\n' "$train_steps" \
    "$(val_loss "$tmp/train-new.log.jsonl")" "$baseline_commit" "$(val_loss "$tmp/train-old.log.jsonl")"
fi
# The shipped model's recipe: a network commit a4657f3 cannot build, so its old engine is stood
# in for by this build set up as that commit's install ran (reference BLAS, spinning OpenMP
# waits, the whole batch on both threads); the engine's other changes since count as nothing.
echo " the shipped model's recipe ($shipped_recipe):"
printf '  this build (batch parts):       %s\n' "${train_rates[gru]}"
sed -n 's/^step breakdown, /    step breakdown, /p' "$tmp/train-gru.txt"
printf '  --batch-parts 1 (whole batch):  %s (batch parts: x%s)\n' "${train_rates[gru-whole]}" \
  "$(ratio "${train_rates[gru]}" "${train_rates[gru-whole]}")"
printf '  --batch-parts 1, reference BLAS, spinning waits: %s (this build: x%s)\n' \
  "${train_rates[gru-old-setup]}" "$(ratio "${train_rates[gru]}" "${train_rates[gru-old-setup]}")"
printf '  validation loss after %s steps, same seed: batch parts %s, whole batch %s\n' "$train_steps" \
  "$(val_loss "$tmp/train-gru.log.jsonl")" "$(val_loss "$tmp/train-gru-whole.log.jsonl")"
if command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; then
  gpu="$("$train" -q "${train_data[@]}" --steps 50 --device cuda --val-every 100000 -o "$tmp/gpu.dnz" 2>&1 |
    sed -n 's/^trained .* at \([0-9.]*\) s of audio per second.*/\1/p' || true)"
  printf '  GPU (%s): %s s of audio per second\n' "$(nvidia-smi -L | head -1)" "${gpu:-failed}"
else
  echo "  GPU: no GPU on this machine"
fi
echo

# --- data-parallel training (c10d) ---------------------------------------------------------------
# train as 1 and as 2 processes (Gloo over loopback, launched through torchrun's variables), one
# LibTorch thread and one loader thread each, each process pinned to its own CPU; the figure is
# rank 0's: seconds of audio per second of the whole job (global batch = 2 x 16).
dist_port() {
  /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' \
    2>/dev/null || echo 29533
}
dist_rate() {  # PROCESSES STEPS
  local n="$1" steps="$2" port r pids=() args
  port="$(dist_port)"
  args=(-q --clean "$tmp/clean" --noise "$tmp/noises" --steps "$steps" --batch 16 --crop-seconds 2
    --val-every 100000 --val-fraction 0 --threads 1 --workers 1 -o "$tmp/dist.dnz")
  if [ "$n" -eq 1 ]; then
    taskset -c 0 "$train" "${args[@]}" >"$tmp/dist0.out"
  else
    for ((r = 1; r < n; r++)); do
      MASTER_ADDR=127.0.0.1 MASTER_PORT="$port" WORLD_SIZE="$n" RANK="$r" \
        taskset -c "$((r % $(nproc)))" "$train" "${args[@]}" >/dev/null &
      pids+=($!)
    done
    MASTER_ADDR=127.0.0.1 MASTER_PORT="$port" WORLD_SIZE="$n" RANK=0 \
      taskset -c 0 "$train" "${args[@]}" >"$tmp/dist0.out"
    wait "${pids[@]}"
  fi
  sed -n 's/^trained .* at \([0-9.]*\) s of audio per second.*/\1/p' "$tmp/dist0.out"
}
echo "Data-parallel training (c10d, Gloo on localhost), 1 thread per process, batch 16 x 2 s per process"
dist1="$(dist_rate 1 6)"
dist2="$(dist_rate 2 6)"
printf '  1 process:                      %s s of audio per second\n' "${dist1:-failed}"
printf '  2 processes (global batch 32):  %s s of audio per second (x%s)\n' "${dist2:-failed}" \
  "$(awk -v a="$dist1" -v b="$dist2" 'BEGIN { if (a > 0 && b > 0) printf "%.2f", b / a; else print "?" }')"
echo

# --- evaluate ----------------------------------------------------------------------------------------
# The 60 s mixture against its clean speech, for timing only (the mix was normalised after mixing, so
# level-dependent scores such as SNR mean little here).
sox -v 0.5 "$tmp/speech.wav" "${fmt[@]}" "$tmp/clean_ref.wav"
eval_s() {  # METHODS [ARGS...]: wall seconds of one evaluate run, pinned to CPU 0
  local t0 t1 methods="$1"
  shift
  t0="$EPOCHREALTIME"
  taskset -c 0 "$evaluate" -q --clean "$tmp/clean_ref.wav" --noisy "$minute" --methods "$methods" "$@" >/dev/null
  t1="$EPOCHREALTIME"
  awk -v a="$t0" -v b="$t1" -v s="$minute_s" 'BEGIN {printf "%.2f", (b - a) * 60 / s}'
}
echo "evaluate, one core, per minute of 16 kHz audio (SI-SDR, SNR, segSNR, STOI, ESTOI, PESQ-WB, alignment):"
printf '  noisy only (metrics alone):        %s s\n' "$(eval_s noisy)"
printf '  noisy + 3 classical methods:       %s s\n' "$(eval_s noisy,subtract,gate,gate-nonstationary)"
printf '  ... + unet (1 thread):             %s s\n' \
  "$(eval_s noisy,subtract,gate,gate-nonstationary,unet --model "$model" --threads 1)"

# --- PESQ in evaluate ------------------------------------------------------------------------------
# evaluate with and without PESQ on the 60 s pair, noisy + 3 classical methods, one core: best of 3
# of the wall time and of the CPU time (user + sys, per minute of audio). The target (with PESQ
# under 1.5 x the time without) is judged on CPU time, which other load on the machine does not
# inflate.
pesq_times() {  # --pesq MODE: prints "WALL CPU", each the best of 3 runs
  local best_wall="" best_cpu="" t0 t1 wall cpu
  for _ in 1 2 3; do
    t0="$EPOCHREALTIME"
    /usr/bin/time -f "%U %S" -o "$tmp/pesq_time" taskset -c 0 "$evaluate" -q \
      --clean "$tmp/clean_ref.wav" --noisy "$minute" \
      --methods noisy,subtract,gate,gate-nonstationary --pesq "$1" >/dev/null
    t1="$EPOCHREALTIME"
    wall="$(awk -v a="$t0" -v b="$t1" -v s="$minute_s" 'BEGIN {printf "%.2f", (b - a) * 60 / s}')"
    cpu="$(awk -v s="$minute_s" 'END {printf "%.2f", ($1 + $2) * 60 / s}' "$tmp/pesq_time")"
    if [ -z "$best_wall" ] || awk -v a="$wall" -v b="$best_wall" 'BEGIN {exit !(a < b)}'; then best_wall="$wall"; fi
    if [ -z "$best_cpu" ] || awk -v a="$cpu" -v b="$best_cpu" 'BEGIN {exit !(a < b)}'; then best_cpu="$cpu"; fi
  done
  echo "$best_wall $best_cpu"
}
read -r pesq_off_wall pesq_off_cpu <<<"$(pesq_times off)"
read -r pesq_on_wall pesq_on_cpu <<<"$(pesq_times auto)"
pesq_ratio="$(awk -v a="$pesq_on_cpu" -v b="$pesq_off_cpu" 'BEGIN {printf "%.2f", a / b}')"
echo "PESQ in evaluate, one core, per minute of 16 kHz audio (noisy + 3 classical methods):"
printf '  --pesq off:             %s s wall, %s s CPU\n' "$pesq_off_wall" "$pesq_off_cpu"
printf '  --pesq auto (PESQ-WB):  %s s wall, %s s CPU: x%s CPU (target < 1.5: %s)\n' \
  "$pesq_on_wall" "$pesq_on_cpu" "$pesq_ratio" \
  "$(awk -v r="$pesq_ratio" 'BEGIN {print (r < 1.5) ? "ok" : "MISS"}')"

# --- embedding: the C API and the LADSPA plugin, per stream (issue 16) --------------------------
# One stream in 10 ms blocks, as a host calls a plugin; the plugin runs the model and the gate
# side by side (the gate is its instant fall-back), so its cost is the two rows added.
[ -x "$build/bin/bench_stream" ] || cmake --build "$build" -j2 --target bench_stream >/dev/null 2>&1 || true
if [ -x "$build/bin/bench_stream" ]; then
  echo
  echo "C API / LADSPA plugin, per stream, one core, 10 ms blocks, 20 s of audio (thread CPU time):"
  taskset -c 0 "$build/bin/bench_stream" 20
fi
