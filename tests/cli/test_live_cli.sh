#!/usr/bin/env bash
# End-to-end tests of `infer --live` through real PortAudio streams on a virtual sound card made
# here, so they run on machines without audio hardware (CI containers, as root or not).
#   bash tests/cli/test_live_cli.sh /path/to/build/bin/infer [model.dnz]
# With a trained causal model that exists (and infer built with LibTorch) it also runs the U-Net at
# 48 kHz, resampled to the model's 16 kHz and back; otherwise that case is left out with a note.
# Each check prints "ok - name" or "FAIL - name: details"; the last line is "N passed, M failed"
# and the exit status is non-zero if any check failed. Exit status 77 (ctest: skipped) when the
# virtual sound card cannot be set up (pulseaudio or the ALSA pulse plugin missing).
#
# The virtual sound card. PortAudio's ALSA back end opens two PCMs defined in $HOME/.asoundrc:
#   denoise_test_mic      ALSA `file` plugin with `infile`: every frame the application reads is
#                         taken from a raw file (the test signal), in place of what its slave
#                         captured. Its slave is a PulseAudio null source (module-null-source),
#                         which delivers frames in real time: the pacing of a real microphone.
#   denoise_test_speaker  ALSA `file` plugin: every frame written is also appended to a raw file
#                         (what was played), then goes to a PulseAudio null sink, consumed in
#                         real time.
# A private pulseaudio daemon (its own socket in the test folder, no D-Bus, no hardware) provides
# both; a loopback from the null source to the null sink keeps the sink's clock running at low
# latency, so streams start at once (an idle null sink wakes only every 2 s). alsa-lib's own `null`
# PCM would need no daemon but does not pace (a 2 s capture returns in 30 ms). `file` writes and
# reads raw frames in the format and channel count the application opened: float32, 2 channels
# (infer opens min(device channels, 2) and mixes them to mono; the start-up line says so).
#
# Nothing here depends on machine speed: a busy machine's device xruns (frames the virtual
# microphone loses), underflows (silence played) and trims (playback skipped) are allowed for in
# the checks, which then ask that every sample still be the input or the denoised output, in
# order (live_compare.py, with its tolerances). A machine too busy to run the U-Net live makes
# infer switch methods; that case runs twice before its file-pipeline checks are skipped.
set -u
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

[ $# -eq 1 ] || [ $# -eq 2 ] || { echo "usage: $0 /path/to/infer [model.dnz]" >&2; exit 2; }
MODEL=${2:-}
# Absolute, since the test works in its own folder.
[ -n "$MODEL" ] && [ -f "$MODEL" ] && MODEL=$(cd "$(dirname "$MODEL")" && pwd)/$(basename "$MODEL")
INFER=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
[ -x "$INFER" ] || { echo "not an executable: $1" >&2; exit 2; }
for tool in sox soxi awk; do
  command -v "$tool" >/dev/null || { echo "missing tool: $tool" >&2; exit 2; }
done
PY=/usr/bin/python3
"$PY" -c 'import numpy, soundfile' 2>/dev/null || { echo "missing: python3 with numpy and soundfile" >&2; exit 2; }
skip() { echo "skipped: $1 (scripts/install-deps.sh installs it)"; exit 77; }
command -v pulseaudio >/dev/null && command -v pactl >/dev/null ||
  skip "pulseaudio (with pulseaudio-utils) not installed"
ls /usr/lib/*/alsa-lib/libasound_module_pcm_pulse.so >/dev/null 2>&1 ||
  skip "the ALSA pulse plugin (libasound2-plugins) not installed"

T=$(mktemp -d)
PULSE_PID=""
# gone PID: waits (5 s at most) until a process has ended.
gone() {
  local i
  for i in $(seq 50); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
  return 1
}
cleanup() {
  [ -n "$PULSE_PID" ] && kill "$PULSE_PID" 2>/dev/null && gone "$PULSE_PID"
  rm -rf "$T"
}
trap cleanup EXIT
LOG=$T/log                 # infer's stdout/stderr of the last run
W=$T/work                  # test files
mkdir -p "$LOG" "$W" "$T/home" "$T/pulse"
cd "$W" || exit 2
PASSED=0 FAILED=0
. "$HERE/lib.sh"

# ---------------------------------------------------------------- helpers

ok()   { echo "ok - $1"; PASSED=$((PASSED + 1)); }
fail() { echo "FAIL - $1: $2"; FAILED=$((FAILED + 1)); }
stderr_text() { tr '\n' '|' <"$LOG/err"; }

check_rc() {  # name expected-codes (e.g. "0" or "1 2")
  local c
  for c in $2; do [ "$RC" -eq "$c" ] && { ok "$1"; return; }; done
  fail "$1" "exit code $RC, wanted $2; stderr: $(stderr_text)"
}
check_awk() {  # name awk-condition-on-a-and-b a b
  if awk -v a="$3" -v b="$4" "BEGIN { exit !($2) }"; then ok "$1"; else fail "$1" "a=$3 b=$4, wanted $2"; fi
}
check_no_file() {  # name path
  if [ ! -e "$2" ]; then ok "$1"; else fail "$1" "$2 exists"; fi
}
# wav_seconds FILE: duration of a WAV as python-soundfile reads it, or "unreadable".
wav_seconds() {
  "$PY" -c 'import soundfile as sf, sys; i = sf.info(sys.argv[1]); print("%.3f" % (i.frames / i.samplerate))' \
    "$1" 2>/dev/null || echo unreadable
}

# The private PulseAudio daemon: a null source (the microphone's clock) and a null sink (the
# speaker's), kept running by a loopback.
cat >"$T/pulse/default.pa" <<EOF
load-module module-native-protocol-unix auth-anonymous=1 socket=$T/pulse/native
load-module module-null-source source_name=denoise_mic channels=1 rate=48000
load-module module-null-sink sink_name=denoise_speaker channels=1 rate=48000
load-module module-loopback source=denoise_mic sink=denoise_speaker latency_msec=5
EOF
export HOME=$T/home XDG_RUNTIME_DIR=$T/pulse PULSE_RUNTIME_PATH=$T/pulse/runtime
export PULSE_STATE_PATH=$T/pulse/state PULSE_SERVER=unix:$T/pulse/native
start_pulse() {
  rm -f "$T/pulse/native"
  pulseaudio -n -F "$T/pulse/default.pa" --daemonize=no --exit-idle-time=-1 --use-pid-file=no \
    --system=false --log-target=file:"$T/pulse/log" </dev/null >/dev/null 2>&1 &
  PULSE_PID=$!
  disown "$PULSE_PID"  # no "Killed" notice when the vanishing-device check kills it
  local i
  for i in $(seq 100); do
    pactl list short modules 2>/dev/null | grep -q module-loopback && return 0
    kill -0 "$PULSE_PID" 2>/dev/null || break
    sleep 0.1
  done
  return 1
}
start_pulse || skip "pulseaudio did not start: $(tail -3 "$T/pulse/log" 2>/dev/null | tr '\n' ' ')"

# devices MIC-RAW PLAYED-RAW: points the two virtual PCMs at these files.
devices() {
  cat >"$HOME/.asoundrc" <<EOF
pcm.denoise_test_mic {
  type file
  slave.pcm { type pulse server "unix:$T/pulse/native" device "denoise_mic" }
  file "/dev/null"
  infile "$1"
  format "raw"
}
pcm.denoise_test_speaker {
  type file
  slave.pcm { type pulse server "unix:$T/pulse/native" device "denoise_speaker" }
  file "$2"
  format "raw"
}
EOF
}

# signal OUT RATE: 8 s of speech (the alsa-utils voices; a tone sweep where they are missing) with
# white noise at about -30 dBFS, mono float; OUT.raw beside it holds it as the microphone's frames
# (float32, the same sample on both channels).
signal() {
  local out=$1 rate=$2 voices=() v
  for v in Front_Center Front_Left Front_Right Rear_Center Rear_Left Side_Right; do
    [ -f "/usr/share/sounds/alsa/$v.wav" ] && voices+=("/usr/share/sounds/alsa/$v.wav")
  done
  if [ ${#voices[@]} -gt 0 ]; then
    sox -R "${voices[@]}" -r "$rate" -c 1 -b 32 -e float "$out.speech.wav" vol 0.7 pad 0 0.3 \
      repeat 2 trim 0 8 pad 0 8 trim 0 8 2>/dev/null
  else
    sox -R -n -r "$rate" -c 1 -b 32 -e float "$out.speech.wav" synth 8 sine 220-340 vol 0.25 2>/dev/null
  fi
  sox -R -n -r "$rate" -c 1 -b 32 -e float "$out.noise.wav" synth 8 whitenoise vol 0.055 2>/dev/null
  sox -R -m "$out.speech.wav" "$out.noise.wav" -b 32 -e float "$out" 2>/dev/null
  rm -f "$out.speech.wav" "$out.noise.wav"
  "$PY" - "$out" <<'EOF'
import numpy as np, soundfile as sf, sys
x, _ = sf.read(sys.argv[1], dtype="float32")
np.repeat(x[:, None], 2, axis=1).astype("<f4").tofile(sys.argv[1] + ".raw")
EOF
}

# Runs infer live on the virtual devices with a fresh played-audio file; sets RC.
live() {
  devices "$MIC" "$W/played.raw"
  rm -f "$W/played.raw"
  "$INFER" --live --input-device denoise_test_mic "$@" >"$LOG/out" 2>"$LOG/err" </dev/null
  RC=$?
  sed -n 's/^live: .* processed/# &/p' "$LOG/out"   # the run's counts, for the log
}
# wait_started: waits (10 s at most) until an infer started with `: >"$LOG/err"` before it has
# printed its start-up lines, i.e. is about to start the stream.
wait_started() {
  local i
  for i in $(seq 200); do grep -q 'latency:' "$LOG/err" 2>/dev/null && return; sleep 0.05; done
}
# start_live ARGS...: runs infer live in the background (PID) and waits until it has started.
start_live() {
  : >"$LOG/err"
  "$INFER" --live --input-device denoise_test_mic --rate 16000 --method gate-nonstationary "$@" \
    </dev/null >"$LOG/out" 2>"$LOG/err" &
  PID=$!
  wait_started
}

# ---------------------------------------------------------------- 1. --list-devices
signal "$W/in16000.wav" 16000
MIC=$W/in16000.wav.raw
devices "$MIC" "$W/played.raw"
"$INFER" --list-devices >"$LOG/out" 2>"$LOG/err"
RC=$?
check_rc "list-devices: exit code" 0
for d in denoise_test_mic denoise_test_speaker; do
  line=$(grep -E " $d( |$)" "$LOG/out" | head -1)
  # index, in, out, rate, host API, name
  if [ -n "$line" ] && awk '{ exit !($1 ~ /^[0-9]+$/ && $2 >= 1 && $3 >= 1 && $4 > 0 && $5 == "ALSA") }' <<<"$line"
  then ok "list-devices: lists $d with index, channels, rate, host API"
  else fail "list-devices: lists $d with index, channels, rate, host API" "$(tr '\n' '|' <"$LOG/out")"; fi
done
check_awk "list-devices: nothing on stderr" 'a == 0' "$(wc -c <"$LOG/err")" 0

# ---------------------------------------------------------------- 2. denoising, 16 and 48 kHz
# compare RATE INPUT RAW OUT OFFLINE PLAYED DELAY THRESHOLD MIN-REDUCTION XRUNS: checks the
# recordings and the played audio of the last run against the input and the file pipeline's
# output (XRUNS: the device xruns infer counted); prints "name|ok|details" lines. The checks and
# their tolerances are stated in live_compare.py.
compare() { "$PY" "$HERE/live_compare.py" "$@"; }
# The two recording checks themselves, on made-up recordings: lost frames and underflows pass,
# an altered, foreign or repeated sample fails.
IFS='|' read -r name result details < <(compare --self-test 2>&1)
if [ "$result" = ok ]; then ok "$name ($details)"; else fail "checker: ${name:-self-test}" "$details"; fi

# run_case LABEL RATE INPUT THRESHOLD MIN-REDUCTION OFFLINE-ARGS... -- LIVE-ARGS...: runs infer
# live for 3 s at RATE on INPUT (the virtual microphone's frames), then the file pipeline with
# OFFLINE-ARGS on what it recorded raw (@N_FFT@ and @HOP@ there become the values infer printed at
# start-up), and compares. Sets STARTUP (infer's "method" start-up line).
run_case() {
  local label=$1 rate=$2 inp=$3 threshold=$4 reduction=$5; shift 5
  local offline=() name result details n_fft hop a xruns fell_back
  while [ "$1" != -- ]; do offline+=("$1"); shift; done
  shift
  MIC=$inp.raw
  local attempt
  for attempt in 1 2; do
    live --output-device denoise_test_speaker --rate "$rate" --seconds 3 \
      --record "$W/out.wav" --record-raw "$W/raw.wav" "$@"
    # A machine too busy to run the method in real time makes infer switch to
    # gate-nonstationary (a warning says so; a product feature), and then the recording is no
    # longer the file pipeline's output for the method asked for: once, the case runs again;
    # twice, the checks of the denoised audio against the file pipeline are skipped (said so in
    # the log), since a machine this busy cannot run the method live at all. The recordings and
    # the played audio are checked either way.
    fell_back=$(grep -m1 'cannot keep up' "$LOG/err")
    [ -z "$fell_back" ] && break
    echo "# $label, attempt $attempt: ${fell_back#infer: }"
  done
  check_rc "$label: exit code" 0
  STARTUP=$(grep 'live: method' "$LOG/err")
  DELAY=$(sed -nE 's/.*recording delay ([0-9]+) samples.*/\1/p' <<<"$STARTUP")
  n_fft=$(sed -nE 's/.*n_fft ([0-9]+),.*/\1/p' <<<"$STARTUP")
  hop=$(sed -nE 's/.*, hop ([0-9]+) .*/\1/p' <<<"$STARTUP")
  for a in "${!offline[@]}"; do
    offline[$a]=${offline[$a]//@N_FFT@/$n_fft}
    offline[$a]=${offline[$a]//@HOP@/$hop}
  done
  grep -q 'input .*denoise_test_mic.*, 2 ch' "$LOG/err" ||
    fail "$label: input opened with 2 channels (the virtual microphone's frames are stereo)" "$(stderr_text)"
  check_awk "$label: summary line" 'a == 1' "$(grep -c '^live: 3.00 s processed' "$LOG/out")" 0
  lat=$(sed -nE 's/.*latency: ([0-9.]+) ms algorithmic \(window \+ look-ahead\), \+ ([0-9.]+) ms buffering.*/\1 \2/p' "$LOG/err")
  check_awk "$label: reports 20 ms algorithmic latency and the buffering" \
    'a == 20.0 && b > 0' "${lat% *}" "${lat#* }"
  if [ -z "$DELAY" ]; then fail "$label: start-up line names the recording delay" "$(stderr_text)"; return; fi
  xruns=$(sed -nE 's/.* ([0-9]+) device xruns.*/\1/p' "$LOG/out")
  "$INFER" "$W/raw.wav" -o "$W/offline.wav" "${offline[@]}" -q >"$LOG/offline" 2>&1 ||
    fail "$label: offline run" "$(tr '\n' '|' <"$LOG/offline")"
  while IFS='|' read -r name result details; do
    # A failure carries infer's summary (overflows, underflows, xruns), which tells a lost or
    # repeated sample on a busy machine from a fault in the engine.
    if [ -n "$fell_back" ] && [[ "$name" =~ "file pipeline"|"reported one"|control:|"noise reduced" ]]
    then echo "# skipped - $label: $name (infer switched methods in both attempts)"
    elif [ "$result" = ok ]; then ok "$label: $name ($details)"
    else fail "$label: $name" "$details; $(grep '^live: ' "$LOG/out" | head -1)"; fi
  done < <(compare "$rate" "$inp" "$W/raw.wav" "$W/out.wav" "$W/offline.wav" "$W/played.raw" \
             "$DELAY" "$threshold" "$reduction" "${xruns:-0}" 2>&1)
}

# The classical methods run at the device rate (no resampling), with live_method_options: the even
# n_fft nearest 20 ms, hop n_fft/4, causal, no padding; the start-up line names them and the
# reference is the file pipeline's causal gate with those settings. 25 dB SI-SDR allows for float
# rounding and block boundaries (the engine matches it to 1e-4, about 60 dB; 140 dB measured) and is
# far above what the undenoised input scores (checked as a control).
for rate in 16000 44100 48000; do
  [ -f "$W/in$rate.wav" ] || signal "$W/in$rate.wav" "$rate"
  run_case "$rate Hz gate-nonstationary" "$rate" "$W/in$rate.wav" 25 15 \
    --method gate-nonstationary --causal --n-fft @N_FFT@ --hop @HOP@ --padding 0 -- \
    --method gate-nonstationary
  hop=$(((rate + 100) / 200))  # 5 ms, rounded
  check_awk "$rate Hz gate-nonstationary: live hop is 5 ms, the window four hops" 'a == b' \
    "$(sed -nE 's/.*n_fft ([0-9]+), hop ([0-9]+) .*/\1 \2/p' <<<"$STARTUP")" "$((4 * hop)) $hop"
done

# The U-Net, with a trained causal model as second argument (and infer built with LibTorch): it runs
# at its model's rate (16 kHz), so a 48 kHz device is resampled on the way in and out; the
# reference is the file pipeline, which resamples the whole file. Same 25 dB (118 dB measured with
# a 20-step model). No noise-reduction floor: a briefly trained model may remove little.
if [ -n "$MODEL" ] && [ -f "$MODEL" ] && "$INFER" --help | grep -q 'unet'; then
  [ -f "$W/in48000.wav" ] || signal "$W/in48000.wav" 48000
  run_case "48000 Hz unet" 48000 "$W/in48000.wav" 25 - --method unet --model "$MODEL" -- \
    --method unet --model "$MODEL"
  grep -q 'method unet at 16000 Hz.*resampled from 48000 Hz and back' <<<"$STARTUP" &&
    ok "48000 Hz unet: runs at 16 kHz, resampled" ||
    fail "48000 Hz unet: runs at 16 kHz, resampled" "$STARTUP"
else
  echo "# the U-Net case is left out (no model file given or found, or infer without LibTorch)"
fi

# ---------------------------------------------------------------- 3. killed mid-recording
MIC=$W/in16000.wav.raw
devices "$MIC" "$W/played.raw"
start_live --output-device denoise_test_speaker --record "$W/k.wav" --record-raw "$W/kraw.wav"
sleep 1.5
kill -9 "$PID"
wait "$PID" 2>/dev/null
for f in k kraw; do
  s=$(wav_seconds "$W/$f.wav")
  check_awk "kill -9: $f.wav is a valid WAV with the audio so far (> 0.5 s)" \
    'a != "unreadable" && a + 0 > 0.5 && a + 0 < 3' "$s" 0
  check_awk "kill -9: soxi agrees on $f.wav" 'a == b' "$(soxi -s "$W/$f.wav" 2>/dev/null)" \
    "$("$PY" -c 'import soundfile as sf, sys; print(sf.info(sys.argv[1]).frames)' "$W/$f.wav" 2>/dev/null)"
done

# ---------------------------------------------------------------- 4. stopping, and errors
# Enter, then "q" + Enter, on stdin.
for input in '' 'q'; do
  name="stop with $( [ -z "$input" ] && echo Enter || echo q+Enter )"
  devices "$MIC" "$W/played.raw"
  : >"$LOG/err"
  (wait_started; sleep 1.2; echo "$input") |
    "$INFER" --live --input-device denoise_test_mic --output-device denoise_test_speaker \
      --rate 16000 --method gate-nonstationary --record "$W/enter.wav" >"$LOG/out" 2>"$LOG/err"
  RC=$?
  check_rc "$name: exit code" 0
  s=$(wav_seconds "$W/enter.wav")
  check_awk "$name: recording finalised (about 1.2 s)" 'a != "unreadable" && a + 0 > 0.7 && a + 0 < 3' "$s" 0
  check_awk "$name: summary printed" 'a == 1' "$(grep -c '^live: .* s processed' "$LOG/out")" 0
done
# SIGINT and SIGTERM.
for sig in INT TERM; do
  devices "$MIC" "$W/played.raw"
  start_live --no-playback --record "$W/sig.wav"
  sleep 1.2
  kill -"$sig" "$PID"
  wait "$PID"
  RC=$?
  check_rc "SIG$sig: exit code" 0
  s=$(wav_seconds "$W/sig.wav")
  check_awk "SIG$sig: recording finalised" 'a != "unreadable" && a + 0 > 0.7 && a + 0 < 3' "$s" 0
done

# A device that is not there.
mkdir -p "$W/none"
devices "$MIC" "$W/played.raw"
"$INFER" --live --input-device no_such_microphone --rate 16000 --record "$W/none/x.wav" \
  </dev/null >"$LOG/out" 2>"$LOG/err"
RC=$?
check_rc "bad --input-device: exit code" 1
check_error_line "bad --input-device: one error line naming it" no_such_microphone "not found"
check_no_file "bad --input-device: no recording created" "$W/none/x.wav"
"$INFER" --live --input-device 999 --rate 16000 </dev/null >"$LOG/out" 2>"$LOG/err"
RC=$?
check_rc "bad --input-device index: exit code" 1
check_error_line "bad --input-device index: one error line naming it" 999 "not found"

# Recording into a folder that does not exist, or over the other recording.
"$INFER" --live --input-device denoise_test_mic --rate 16000 --record "$W/missing/x.wav" \
  </dev/null >"$LOG/out" 2>"$LOG/err"
RC=$?
check_rc "--record into a missing folder: exit code" "1 2"
check_error_line "--record into a missing folder: one error line naming it" "$W/missing/x.wav" "does not exist"
check_no_file "--record into a missing folder: nothing created" "$W/missing"
"$INFER" --live --input-device denoise_test_mic --rate 16000 --record "$W/none/same.wav" \
  --record-raw "$W/none/./same.wav" </dev/null >"$LOG/out" 2>"$LOG/err"
RC=$?
check_rc "--record and --record-raw the same file: exit code" "1 2"
check_error_line "--record and --record-raw the same file: one error line naming it" "same.wav" "same file"
check_no_file "--record and --record-raw the same file: nothing created" "$W/none/same.wav"

# The device vanishes mid-stream (the sound server dies): one error line, exit 1, the recording
# finalised with what was heard.
devices "$MIC" "$W/played.raw"
start_live --output-device denoise_test_speaker --record "$W/gone.wav"
pid=$PID
sleep 1.2
kill -9 "$PULSE_PID"
gone "$PULSE_PID"
PULSE_PID=""
if ! gone "$pid"; then
  kill -9 "$pid"
  fail "vanished device: infer stops within 5 s" "still running; stderr: $(stderr_text)"
fi
wait "$pid"
RC=$?
check_rc "vanished device: exit code" 1
check_error_line "vanished device: one error line naming the device" denoise_test_mic "stopped|failed|nothing"
s=$(wav_seconds "$W/gone.wav")
check_awk "vanished device: recording finalised (> 0.8 s)" 'a != "unreadable" && a + 0 > 0.8' "$s" 0

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
