#!/usr/bin/env bash
# End-to-end tests of the `train` program, and of `infer --method unet` with the models it writes,
# on a tiny dataset made here by make_tiny_dataset.
#   bash tests/cli/test_train_cli.sh /path/to/train /path/to/infer /path/to/make_tiny_dataset
# Each check prints "ok - name" or "FAIL - name: details" (or "skip - name: why"); the last line is
# "N passed, M failed" and the exit status is non-zero if any check failed. Training runs are a few
# steps of batch 2 on 0.5 s crops; nothing checks a figure that depends on machine speed, and the
# interrupt cases poll for files rather than sleep for a fixed time.
set -u
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

[ $# -eq 3 ] || { echo "usage: $0 /path/to/train /path/to/infer /path/to/make_tiny_dataset" >&2; exit 2; }
abs() { echo "$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"; }
TRAIN=$(abs "$1") INFER=$(abs "$2") MAKE_DATA=$(abs "$3")
for b in "$TRAIN" "$INFER" "$MAKE_DATA"; do
  [ -x "$b" ] || { echo "not an executable: $b" >&2; exit 2; }
done
for tool in sox soxi python3 awk timeout; do
  command -v "$tool" >/dev/null || { echo "missing tool: $tool" >&2; exit 2; }
done
unset DENOISE_MODEL

T=$(mktemp -d)
BG_PID=""
cleanup() {
  [ -n "$BG_PID" ] && kill -9 "$BG_PID" 2>/dev/null
  rm -rf "$T"
}
trap cleanup EXIT
LOG=$T/log                 # stdout/stderr of the last run
W=$T/work                  # test files, one folder per case
mkdir -p "$LOG" "$W"
cd "$W" || exit 2
PASSED=0 FAILED=0
. "$HERE/lib.sh"

# Small, quick training runs (about 0.1-0.3 s a step on two cores).
FAST=(--batch 2 --crop-seconds 0.5 --threads 2)

# ---------------------------------------------------------------- helpers

ok()   { echo "ok - $1"; PASSED=$((PASSED + 1)); }
fail() { echo "FAIL - $1: $2"; FAILED=$((FAILED + 1)); }
skip() { echo "skip - $1: $2"; }

# Runs a program with a time limit (a hang fails the checks, it does not stall ctest); sets RC.
run_train() { timeout -k 5 300 "$TRAIN" "$@" >"$LOG/out" 2>"$LOG/err"; RC=$?; }
run_infer() { timeout -k 5 120 "$INFER" "$@" >"$LOG/out" 2>"$LOG/err"; RC=$?; }
stderr_text() { tr '\n' '|' <"$LOG/err"; }
lines_of() { if [ -e "$1" ]; then awk 'END { print NR }' "$1"; else echo 0; fi; }
info() { soxi "-$2" "$1" 2>/dev/null; }   # info FILE r|c|s
listing() { (cd "$1" && find . | sort); }

check_eq() {  # name expected actual
  if [ "$2" = "$3" ]; then ok "$1"; else fail "$1" "expected '$2', got '$3'"; fi
}
check_rc() {  # name zero|nonzero|N
  local want=$2 good=0
  case $want in
    zero) [ "$RC" -eq 0 ] && good=1 ;;
    nonzero) [ "$RC" -ne 0 ] && good=1 ;;
    *) [ "$RC" -eq "$want" ] && good=1 ;;
  esac
  if [ $good -eq 1 ]; then ok "$1"; else fail "$1" "exit code $RC, wanted $want; stderr: $(stderr_text)"; fi
}
check_file() {  # name path: exists and is non-empty
  if [ -s "$2" ]; then ok "$1"; else fail "$1" "$2 missing or empty; stderr: $(stderr_text)"; fi
}
check_no_file() {  # name path...
  local name=$1 p; shift
  for p in "$@"; do
    if [ -e "$p" ]; then fail "$name" "$p exists"; return; fi
  done
  ok "$name"
}
check_has() {  # name file fixed-string
  if grep -qF -- "$3" "$2"; then ok "$1"; else fail "$1" "$(basename "$2") lacks '$3': $(tr '\n' '|' <"$2")"; fi
}
check_stderr_has() { check_has "$1" "$LOG/err" "$2"; }
check_stdout_has() { check_has "$1" "$LOG/out" "$2"; }
check_stderr_lacks() {  # name fixed-string
  if grep -qF -- "$2" "$LOG/err"; then fail "$1" "stderr has '$2': $(stderr_text)"; else ok "$1"; fi
}
check_count() {  # name expected-count file fixed-string: lines containing the string
  local n; n=$(grep -cF -- "$4" "$3")
  if [ "$n" -eq "$2" ]; then ok "$1"; else fail "$1" "$n lines with '$4', wanted $2: $(tr '\n' '|' <"$3")"; fi
}
check_awk() {  # name awk-condition-on-a-and-b a b
  if awk -v a="$3" -v b="$4" "BEGIN { exit !($2) }"; then ok "$1"; else fail "$1" "a=$3 b=$4, wanted $2"; fi
}
# The whole of stderr is one line, that names WHAT and matches REASON (extended regex).
check_one_error_line() {  # name what reason-regex
  local n line
  n=$(lines_of "$LOG/err")
  line=$(head -1 "$LOG/err")
  if [ "$n" -ne 1 ]; then fail "$1" "$n stderr lines, wanted 1: $(stderr_text)"
  elif [[ "$line" != *"$2"* ]]; then fail "$1" "error line does not name $2: $line"
  elif ! grep -qE -- "$3" <<<"$line"; then fail "$1" "error line has no reason /$3/: $line"
  else ok "$1"; fi
}
check_model() {  # name path: a model file (DNZMODEL at byte 0)
  local magic; magic=$(head -c 8 "$2" 2>/dev/null)
  if [ "$magic" = DNZMODEL ]; then ok "$1"; else fail "$1" "$2 does not start with DNZMODEL ('$magic')"; fi
}
check_model_has() {  # name model fixed-string (in the JSON metadata, read with grep -a)
  if grep -aqF -- "$3" "$2"; then ok "$1"; else fail "$1" "metadata of $2 lacks '$3'"; fi
}
check_listing() {  # name dir expected-listing: nothing added or removed
  local now; now=$(listing "$2")
  if [ "$now" = "$3" ]; then ok "$1"; else
    fail "$1" "folder changed: $(diff <(echo "$3") <(echo "$now") | grep '^[<>]' | tr '\n' ' ')"; fi
}

# meta MODEL KEY.KEY...: a value from the model's JSON metadata (header: 8-byte magic, u32 version,
# u64 metadata length, then the JSON), printed as JSON; "?" when absent or unreadable.
meta() {
  python3 - "$1" "$2" <<'EOF' 2>/dev/null || echo "?"
import json, struct, sys
b = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", b[12:20])[0]
v = json.loads(b[20:20 + n])
for k in sys.argv[2].split("."):
    v = v[k]
print(json.dumps(v, separators=(",", ":")))
EOF
}

# log_steps LOG: the steps of a training log, space-separated, after checking that every line is a
# JSON object (strictly: no NaN/Infinity) with the documented keys; else "invalid: why".
log_steps() {
  python3 - "$1" <<'EOF' 2>&1
import json, sys
def bad(c): raise ValueError("non-JSON constant " + c)
keys = {"step", "loss", "si_sdr_db", "si_sdr_noisy_db", "si_sdri_db", "train_loss", "best"}
steps = []
try:
    for i, line in enumerate(open(sys.argv[1]), 1):
        d = json.loads(line, parse_constant=bad)
        if not isinstance(d, dict) or not keys <= d.keys():
            raise ValueError("line %d lacks %s" % (i, sorted(keys - set(d))))
        steps.append(str(d["step"]))
    print(" ".join(steps))
except Exception as e:
    print("invalid:", e)
EOF
}

# best_report LOG MODEL: checks that the "best" flags of the log follow the validation losses
# (the first validation after step 0 is best, then each one with a lower loss than all before) and
# that MODEL holds the validation with the lowest loss. Prints "consistent" or what differs.
best_report() {
  python3 - "$1" "$2" <<'EOF' 2>&1
import json, struct, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
problems, low, low_step = [], None, None
for r in rows:
    if r["step"] == 0:
        continue
    should = low is None or r["loss"] < low
    if bool(r["best"]) != should:
        problems.append("step %d loss %.6f best=%s, wanted %s" % (r["step"], r["loss"], r["best"], should))
    if should:
        low, low_step = r["loss"], r["step"]
b = open(sys.argv[2], "rb").read()
n = struct.unpack("<Q", b[12:20])[0]
model_step = json.loads(b[20:20 + n])["validation"]["step"]
if model_step != low_step:
    problems.append("model holds step %s, the lowest validation loss is at step %s" % (model_step, low_step))
print("; ".join(problems) or "consistent")
EOF
}

# check_summary: the "model: ... (validation SI-SDR improvement +A dB, before training +B dB)" line of
# the last run, with both figures finite and plausible (|x| < 100 dB).
check_summary() {  # name model-path
  local line a b
  line=$(grep -F "model: $2 (" "$LOG/out")
  a=$(sed -n 's/.*improvement \([-+][0-9.]*\) dB.*/\1/p' <<<"$line")
  b=$(sed -n 's/.*before training \([-+][0-9.]*\) dB.*/\1/p' <<<"$line")
  if [ -z "$line" ]; then fail "$1" "no 'model: $2 (' line: $(tr '\n' '|' <"$LOG/out")"
  elif awk -v a="$a" -v b="$b" 'BEGIN { exit !(a != "" && b != "" && a*a < 1e4 && b*b < 1e4) }'; then ok "$1"
  else fail "$1" "implausible figures: $line"; fi
}

# wait_for SECONDS CONDITION...: polls every 0.1 s until the command succeeds; 1 on time-out.
wait_for() {
  local tries=$(($1 * 10)); shift
  while [ $tries -gt 0 ]; do
    "$@" && return 0
    [ -n "$BG_PID" ] && ! kill -0 "$BG_PID" 2>/dev/null && { "$@"; return; }   # it exited
    sleep 0.1; tries=$((tries - 1))
  done
  return 1
}
# wait_bg SECONDS: waits for the background train to end; sets RC (137 if it had to be killed).
wait_bg() {
  local tries=$(($1 * 10))
  while kill -0 "$BG_PID" 2>/dev/null && [ $tries -gt 0 ]; do sleep 0.1; tries=$((tries - 1)); done
  kill -0 "$BG_PID" 2>/dev/null && { echo "# train did not exit in $1 s; killing it"; kill -9 "$BG_PID"; }
  wait "$BG_PID"; RC=$?
  BG_PID=""
} 2>/dev/null   # no "Killed" notice from bash
both_exist() { [ -s "$1" ] && [ -s "$2" ]; }
more_lines() { [ "$(lines_of "$1")" -gt "$2" ]; }

# ---------------------------------------------------------------- 1. usage
run_train --help
check_rc "--help: exit code" zero
for opt in --data --resume --device; do check_stdout_has "--help mentions $opt" "$opt"; done

run_train
check_rc "no data arguments: exit code 2" 2
check_stderr_has "no data arguments: says what is missing" "--data"
mkdir c1 && mkdir c1/noise
run_train --noise c1/noise --steps 1
check_rc "--noise without --clean: exit code 2" 2
check_stderr_has "--noise without --clean: names --clean" "--clean"
run_train --data c1/nonexistent --steps 1 -o c1/m.dnz
check_rc "--data on a missing folder: exit code 2 (usage)" 2
check_stderr_has "--data on a missing folder: names it" "c1/nonexistent"
check_no_file "--data on a missing folder: no model" c1/m.dnz

# ---------------------------------------------------------------- 2. Kaggle layout
"$MAKE_DATA" ds --pairs 6 --seconds 1.5 >"$LOG/out" 2>"$LOG/err"; RC=$?
check_rc "make_tiny_dataset: exit code" zero
check_file "make_tiny_dataset: CSV written" ds/audios_meta_data.csv
check_eq "make_tiny_dataset: 6 noisy files" 6 "$(find ds/speaker_audios_new/noisy_audios -name '*.wav' | wc -l)"
NOISY=ds/speaker_audios_new/noisy_audios/p001_001_noisy.wav
check_file "make_tiny_dataset: first noisy file" "$NOISY"

mkdir c2
run_train --data ds --steps 6 "${FAST[@]}" --val-every 3 -o c2/m.dnz
check_rc "kaggle: exit code" zero
check_file "kaggle: model written" c2/m.dnz
check_model "kaggle: model starts with DNZMODEL" c2/m.dnz
check_model_has "kaggle: metadata counts the identity row" c2/m.dnz '"identity_pairs": 1'
check_model_has "kaggle: metadata counts the missing row" c2/m.dnz '"skipped_missing": 1'
check_eq "kaggle: metadata steps" 6 "$(meta c2/m.dnz training.steps)"
check_count "kaggle: missing-file warning printed once" 1 "$LOG/err" "warning: missing files, pairs skipped: 1"
check_stderr_has "kaggle: warning names the missing file" "missing_file.wav"
check_stdout_has "kaggle: summary of steps" "trained 6 steps at"
check_summary "kaggle: summary names the model, plausible figures" c2/m.dnz
check_eq "kaggle: log has 3 lines" 3 "$(lines_of c2/m.log.jsonl)"
check_eq "kaggle: training curves beside the log (1000 x 330 PNG)" 1000x330 "$(png_size c2/m.curves.png)"
check_eq "kaggle: log lines are JSON, steps 0 3 6" "0 3 6" "$(log_steps c2/m.log.jsonl)"
check_eq "kaggle: best flags and model agree with the losses" consistent "$(best_report c2/m.log.jsonl c2/m.dnz)"
check_file "kaggle: resume state written" c2/m.resume.pt
check_eq "kaggle: no temporary files left" "" "$(find c2 -name '.*' -o -name '*.partial' | grep -v '^c2$')"
MODEL=$W/c2/m.dnz   # used by the infer cases below

# ---------------------------------------------------------------- 3. other levels of the Kaggle folder
mkdir c3
run_train --data ds/speaker_audios_new --steps 2 "${FAST[@]}" --val-every 2 -q -o c3/inner.dnz
check_rc "--data DIR/speaker_audios_new: exit code" zero
check_model "--data DIR/speaker_audios_new: model" c3/inner.dnz
check_model_has "--data DIR/speaker_audios_new: same pairs found" c3/inner.dnz '"train_pairs": 6'
"$MAKE_DATA" c3/parent/ds --pairs 6 --seconds 1.5 >/dev/null 2>&1
run_train --data c3/parent --steps 2 "${FAST[@]}" --val-every 2 -q -o c3/outer.dnz
check_rc "--data parent of DIR: exit code" zero
check_model "--data parent of DIR: model" c3/outer.dnz
check_model_has "--data parent of DIR: same pairs found" c3/outer.dnz '"train_pairs": 6'

# ---------------------------------------------------------------- 4. --resume
mkdir c4
run_train --data ds --steps 4 "${FAST[@]}" --val-every 2 -o c4/r.dnz
check_rc "resume, run 1: exit code" zero
check_eq "resume, run 1: log steps" "0 2 4" "$(log_steps c4/r.log.jsonl)"
run_train --data ds --steps 8 "${FAST[@]}" --val-every 2 -o c4/r.dnz --resume
check_rc "resume, run 2: exit code" zero
check_stderr_has "resume, run 2: notice" "resuming at step 4"
check_stderr_lacks "resume, run 2: no step 0 validation" "step 0:"
check_eq "resume, run 2: log continues (0 2 4 6 8)" "0 2 4 6 8" "$(log_steps c4/r.log.jsonl)"
check_stdout_has "resume, run 2: summary counts all steps" "trained 8 steps"
check_summary "resume, run 2: summary figures plausible" c4/r.dnz
check_eq "resume, run 2: best flags and model agree with the losses" consistent \
  "$(best_report c4/r.log.jsonl c4/r.dnz)"
run_train --data ds --steps 2 "${FAST[@]}" --val-every 2 -o c4/fresh.dnz --resume
check_rc "resume without state: exit code" zero
check_stderr_has "resume without state: notice" "no resume state"
check_eq "resume without state: trains from step 0" "0 2" "$(log_steps c4/fresh.log.jsonl)"

# --stop-at ends a run at a step (the schedule still spans --steps); --resume finishes it, and a
# resumed run whose validation data differ (here: other mixing options) picks its best afresh.
run_train --data ds --steps 6 "${FAST[@]}" --val-every 2 --stop-at 4 -o c4/s.dnz
check_rc "--stop-at: exit code" zero
check_stderr_has "--stop-at: says where it stopped" "stopped at step 4"
check_eq "--stop-at: log up to step 4" "0 2 4" "$(log_steps c4/s.log.jsonl)"
echo '{"mix": {"rumble_share": 1}}' >c4/stage2.json
run_train --data ds --steps 6 "${FAST[@]}" --val-every 2 -o c4/s.dnz --resume --config c4/stage2.json
check_rc "--stop-at, then --resume: exit code" zero
check_eq "--stop-at, then --resume: log continues to 6" "0 2 4 6" "$(log_steps c4/s.log.jsonl)"
check_stderr_has "--resume with other mixing: best chosen afresh" "best model is chosen afresh"
check_stderr_has "--resume with other mixing: validates on the new data at step 4" "step 4 on the changed validation data"
check_eq "--resume with other mixing: step 6 is the best of its stage" true \
  "$(tail -1 c4/s.log.jsonl | /usr/bin/python3 -c 'import json,sys; print(str(json.load(sys.stdin)["best"]).lower())')"

# ---------------------------------------------------------------- 5. interrupts
mkdir c5
"$TRAIN" --data ds --steps 100000 "${FAST[@]}" --val-every 2 -o c5/i.dnz >"$LOG/out" 2>"$LOG/err" &
BG_PID=$!
if wait_for 60 both_exist c5/i.resume.pt c5/i.dnz; then ok "SIGINT: resume state and model appear"
else fail "SIGINT: resume state and model appear" "not within 60 s; stderr: $(stderr_text)"; fi
kill -INT "$BG_PID" 2>/dev/null
wait_bg 60
check_rc "SIGINT: exit code 130" 130
check_stderr_has "SIGINT: says how to continue" "continue with --resume"
check_file "SIGINT: resume state kept" c5/i.resume.pt
check_model "SIGINT: model intact" c5/i.dnz
check_eq "SIGINT: no temporary files left" "" "$(find c5 -name '.*' -o -name '*.partial' | grep -v '^c5$')"
case $(log_steps c5/i.log.jsonl) in invalid*|"") fail "SIGINT: log readable" "$(log_steps c5/i.log.jsonl)" ;;
  *) ok "SIGINT: log readable" ;; esac
stopped=$(sed -n 's/.*stopped at step \([0-9]*\);.*/\1/p' "$LOG/err")

n0=$(lines_of c5/i.log.jsonl)
"$TRAIN" --data ds --steps 100000 "${FAST[@]}" --val-every 2 -o c5/i.dnz --resume >"$LOG/out" 2>"$LOG/err" &
BG_PID=$!
if wait_for 60 more_lines c5/i.log.jsonl "$n0"; then ok "kill -9: resumed run logs a validation"
else fail "kill -9: resumed run logs a validation" "no new log line in 60 s; stderr: $(stderr_text)"; fi
check_stderr_has "kill -9: resumed where SIGINT stopped" "resuming at step ${stopped:-?} of 100000"
kill -9 "$BG_PID" 2>/dev/null
wait_bg 10
check_rc "kill -9: killed" 137
check_model "kill -9: model file still a model" c5/i.dnz
run_infer "$NOISY" -o c5/after_kill.wav --model c5/i.dnz --threads 2
check_rc "kill -9: infer with the model: exit code" zero
check_file "kill -9: infer with the model: output" c5/after_kill.wav
# The resume state is intact too: one more run picks it up and stops cleanly on SIGTERM.
n0=$(lines_of c5/i.log.jsonl)
"$TRAIN" --data ds --steps 100000 "${FAST[@]}" --val-every 2 -o c5/i.dnz --resume >"$LOG/out" 2>"$LOG/err" &
BG_PID=$!
wait_for 60 more_lines c5/i.log.jsonl "$n0"
kill -TERM "$BG_PID" 2>/dev/null
wait_bg 60
check_rc "after kill -9: resume, then SIGTERM: exit code 130" 130
check_stderr_has "after kill -9: resume state loads" "resuming at step"
check_model "after kill -9: model intact after SIGTERM" c5/i.dnz

# ---------------------------------------------------------------- 6. --device cuda without CUDA
mkdir c6
if command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; then
  skip "--device cuda" "this machine has an NVIDIA GPU; the no-CUDA error is not testable here"
else
  run_train --data ds --steps 2 "${FAST[@]}" --device cuda -o c6/cuda.dnz
  check_rc "--device cuda without CUDA: exit code 1" 1
  check_one_error_line "--device cuda without CUDA: one error line" "train: " 'cuda|CUDA'
  check_no_file "--device cuda without CUDA: nothing written" c6/cuda.dnz c6/cuda.log.jsonl c6/cuda.resume.pt
fi

# ---------------------------------------------------------------- 7. --config
mkdir c7
echo '{"model": {"channels": [8, 16]}, "train": {"batch_size": 2}}' >c7/small.json
run_train --data ds --steps 2 --crop-seconds 0.5 --threads 2 --val-every 2 -q --config c7/small.json -o c7/small.dnz
check_rc "--config: exit code" zero
check_eq "--config: channels in the model" "[8,16]" "$(meta c7/small.dnz model.channels)"
check_eq "--config: batch size in the model" 2 "$(meta c7/small.dnz training.batch_size)"
run_infer "$NOISY" -o c7/small.wav --model c7/small.dnz --threads 2
check_rc "--config: infer with the smaller model" zero

echo '{"model": {"channels": [8, 16], "chanels_typo": 3}}' >c7/unknown.json
run_train --data ds --steps 2 "${FAST[@]}" --config c7/unknown.json -o c7/unknown.dnz
check_rc "config with an unknown key: exit code 1" 1
check_one_error_line "config with an unknown key: error names file and key" c7/unknown.json 'chanels_typo'
check_no_file "config with an unknown key: no model" c7/unknown.dnz
echo '{"speed": {}}' >c7/section.json
run_train --data ds --steps 2 "${FAST[@]}" --config c7/section.json -o c7/section.dnz
check_rc "config with an unknown section: exit code 1" 1
check_one_error_line "config with an unknown section: error names it" c7/section.json 'speed'
printf '{"model": {"channels": [8, 16]' >c7/broken.json
run_train --data ds --steps 2 "${FAST[@]}" --config c7/broken.json -o c7/broken.dnz
check_rc "invalid JSON config: exit code 1" 1
check_one_error_line "invalid JSON config: one error line naming the file" c7/broken.json 'JSON'
check_no_file "invalid JSON config: no model" c7/broken.dnz

# ---------------------------------------------------------------- 8. no usable audio
mkdir -p c8/kaggle/speaker_audios_new/noisy_audios c8/kaggle/speaker_audios_new/clean_audios
printf 'noisy_audio,clean_audio\nmissing_a.wav,missing_b.wav\nmissing_c.wav,missing_d.wav\n' \
  >c8/kaggle/audios_meta_data.csv
run_train --data c8/kaggle --steps 2 "${FAST[@]}" -o c8/k.dnz
check_rc "CSV naming only missing files: exit code 1" 1
check_one_error_line "CSV naming only missing files: one line naming the folder" c8/kaggle 'no usable|missing'
check_no_file "CSV naming only missing files: nothing written" c8/k.dnz c8/k.log.jsonl c8/k.resume.pt

mkdir -p c8/pairs/noisy c8/pairs/clean
for i in 1 2 3; do echo "not audio" >c8/pairs/noisy/f$i.wav; echo "not audio" >c8/pairs/clean/f$i.wav; done
run_train --data c8/pairs --steps 2 "${FAST[@]}" -o c8/p.dnz
check_rc "text files named .wav: exit code 1" 1
check_one_error_line "text files named .wav: one line naming the folder" c8/pairs 'no usable|unreadable'
check_no_file "text files named .wav: nothing written" c8/p.dnz c8/p.log.jsonl c8/p.resume.pt

mkdir c8/empty
run_train --data c8/empty --steps 2 "${FAST[@]}" -o c8/e.dnz
check_rc "folder without a dataset layout: exit code 1" 1
check_one_error_line "folder without a dataset layout: one line naming it" c8/empty 'no paired data'
check_no_file "folder without a dataset layout: nothing written" c8/e.dnz

# ---------------------------------------------------------------- 9. infer with the model
mkdir c9
run_infer "$NOISY" -o c9/unet.wav --method unet --model "$MODEL" --threads 2
check_rc "infer --method unet: exit code" zero
check_file "infer --method unet: output" c9/unet.wav
check_eq "infer --method unet: sample count kept" "$(info "$NOISY" s)" "$(info c9/unet.wav s)"
check_eq "infer --method unet: rate kept" "$(info "$NOISY" r)" "$(info c9/unet.wav r)"
check_stdout_has "infer --method unet: says unet" "16000 Hz, unet)"

run_infer "$NOISY" -o c9/implicit.wav --model "$MODEL" --threads 2
check_rc "infer --model without --method: exit code" zero
check_stdout_has "infer --model without --method: uses unet" "unet)"
check_file "infer --model without --method: output" c9/implicit.wav

DENOISE_MODEL=$MODEL timeout -k 5 120 "$INFER" "$NOISY" -o c9/env.wav --threads 2 >"$LOG/out" 2>"$LOG/err"; RC=$?
check_rc "infer with DENOISE_MODEL: exit code" zero
check_stdout_has "infer with DENOISE_MODEL: uses unet" "unet)"
check_file "infer with DENOISE_MODEL: output" c9/env.wav

# Without any model: a copy of infer (with its libraries, so that the build's library does not
# look in the checkout) in a tree where no default model lies beside it, so the shipped model
# does not hide the fallback.
mkdir -p c9/tree/bin c9/tree/lib
cp "$INFER" c9/tree/bin/ && cp "$(dirname "$INFER")"/../lib/libdenoise_{model,core}.so c9/tree/lib/
LD_LIBRARY_PATH="$PWD/c9/tree/lib" c9/tree/bin/infer "$NOISY" -o c9/gate.wav >"$LOG/out" 2>"$LOG/err"; RC=$?
check_rc "infer without any model: exit code" zero
check_stderr_has "infer without any model: note" "no trained model found"
check_stderr_has "infer without any model: falls back to gating" "spectral gating"
check_stdout_has "infer without any model: method gate" "16000 Hz, gate)"
check_file "infer without any model: output" c9/gate.wav

sox "$NOISY" -r 44100 c9/hi.wav
check_eq "44.1 kHz input made" 44100 "$(info c9/hi.wav r)"
run_infer c9/hi.wav -o c9/hi_out.wav --model "$MODEL" --threads 2
check_rc "infer unet on 44.1 kHz: exit code" zero
check_eq "infer unet on 44.1 kHz: rate kept" 44100 "$(info c9/hi_out.wav r)"
check_eq "infer unet on 44.1 kHz: sample count kept" "$(info c9/hi.wav s)" "$(info c9/hi_out.wav s)"
check_stdout_has "infer unet on 44.1 kHz: says unet" "44100 Hz, unet)"

# ---------------------------------------------------------------- 10. bad models
mkdir c10 c10/out
head -c 1000 "$MODEL" >c10/truncated.dnz
cp "$MODEL" c10/flipped.dnz
size=$(stat -c %s c10/flipped.dnz)
python3 - c10/flipped.dnz <<'EOF'
import sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
b[len(b) // 2] ^= 0xFF
open(p, "wb").write(b)
EOF
check_eq "flipped copy has the same size" "$size" "$(stat -c %s c10/flipped.dnz)"
check_awk "flipped copy differs" 'a != b' "$(cksum <"$MODEL")" "$(cksum <c10/flipped.dnz)"
cp "$NOISY" c10/audio.dnz
: >c10/empty.dnz
for case in "truncated copy:truncated.dnz:truncated" "byte flipped in the middle:flipped.dnz:corrupt" \
            "WAV file as model:audio.dnz:not a denoise model" "empty file:empty.dnz:empty|truncated|not a denoise model"; do
  IFS=: read -r label file reason <<<"$case"
  before=$(listing c10/out)
  run_infer "$NOISY" -o c10/out/x.wav --model "c10/$file"
  check_rc "bad model, $label: exit code 1" 1
  check_one_error_line "bad model, $label: one line naming the model" "c10/$file" "$reason"
  check_listing "bad model, $label: no output or temp file" c10/out "$before"
done
before=$(listing c10/out)
run_infer "$NOISY" -o c10/out/x.wav --model "$MODEL" --method gate
check_rc "--model with --method gate: exit code 2" 2
check_stderr_has "--model with --method gate: explains" "--model"
check_listing "--model with --method gate: no output" c10/out "$before"

# ---------------------------------------------------------------- 11. folder mode with unet
mkdir c11
cp ds/speaker_audios_new/noisy_audios/p001_001_noisy.wav ds/speaker_audios_new/noisy_audios/p001_002_noisy.wav \
  ds/speaker_audios_new/noisy_audios/p002_001_noisy.wav c11/
echo "this is text, not audio" >c11/broken.wav
run_infer c11 --model "$MODEL" --threads 2
check_rc "folder with unet: exit code 1" 1
for f in p001_001 p001_002 p002_001; do
  check_file "folder with unet: ${f}_noisy_denoised.wav" "c11/${f}_noisy_denoised.wav"
  check_eq "folder with unet: ${f} length kept" "$(info "c11/${f}_noisy.wav" s)" "$(info "c11/${f}_noisy_denoised.wav" s)"
done
check_no_file "folder with unet: no output for the broken file" c11/broken_denoised.wav
check_count "folder with unet: one error line, naming the broken file" 1 "$LOG/err" "c11/broken.wav"
check_stderr_has "folder with unet: summary" "3 files denoised, 1 failed"
check_count "folder with unet: 3 files reported as unet" 3 "$LOG/out" "unet)"

# ---------------------------------------------------------------- 12. --init (fine-tuning)
# Same data, seed and options as c7/small.dnz: the run's step-0 validation scores the weights it
# started from, so it must give the loss c7/small.dnz was saved with. No --config: the network
# (channels [8, 16]) comes from the model file.
mkdir c12
run_train --data ds --steps 2 --crop-seconds 0.5 --threads 2 --val-every 2 --batch 2 --init c7/small.dnz -o c12/ft.dnz
check_rc "--init: exit code" zero
check_stderr_has "--init: says where it starts" "starting from the weights of c7/small.dnz"
check_eq "--init: channels from the model file" "[8,16]" "$(meta c12/ft.dnz model.channels)"
check_eq "--init: recorded in the metadata" "\"c7/small.dnz\"" "$(meta c12/ft.dnz training.init)"
start_loss=$(python3 -c 'import json,sys; print([json.loads(l) for l in open(sys.argv[1])][0]["loss"])' c12/ft.log.jsonl 2>/dev/null)
check_awk "--init: step-0 validation loss is the loaded model's (within 1e-4 relative)" \
  'a != "" && b != "" && (a - b) * (a - b) <= 1e-8 * b * b' "$start_loss" "$(meta c7/small.dnz validation.loss)"
run_train --data ds --steps 2 --crop-seconds 0.5 --threads 2 --val-every 2 --batch 2 -o c12/fresh.dnz
fresh_loss=$(python3 -c 'import json,sys; print([json.loads(l) for l in open(sys.argv[1])][0]["loss"])' c12/fresh.log.jsonl 2>/dev/null)
check_awk "--init: a fresh start scores differently (the check above can fail)" \
  'a != "" && b != "" && (a - b) * (a - b) > 1e-6 * b * b' "$fresh_loss" "$start_loss"
echo '{"model": {"channels": [8, 8]}}' >c12/wider.json
run_train --data ds --steps 2 "${FAST[@]}" --init c7/small.dnz --config c12/wider.json -q -o c12/wider.dnz
check_rc "--init with other shapes: exit code 1" 1
check_one_error_line "--init with other shapes: one line naming the model" c7/small.dnz 'do not fit'
check_no_file "--init with other shapes: no model" c12/wider.dnz
mkdir c12/empty
run_train --data c12/empty --steps 2 "${FAST[@]}" --init c7/small.dnz --config c12/wider.json -q -o c12/wider.dnz
check_one_error_line "--init with other shapes: refused before the data are read" c7/small.dnz 'do not fit'
run_train --data ds --steps 2 "${FAST[@]}" --init c12/wider.json -q -o c12/bad.dnz
check_rc "--init on a file that is not a model: exit code 1" 1
check_one_error_line "--init on a file that is not a model: one line naming it" c12/wider.json '.'
check_no_file "--init on a file that is not a model: no model" c12/bad.dnz

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
