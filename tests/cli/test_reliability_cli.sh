#!/usr/bin/env bash
# Reliability of infer, evaluate and train against a hostile but realistic user (issue 17): no
# output overwrites an input, signals leave no temporary files, odd numbers never give garbage,
# odd file names survive JSON/CSV, broken model files give one clear line.
#   bash tests/cli/test_reliability_cli.sh BUILD/bin/infer BUILD/bin/evaluate BUILD/bin/train \
#        BUILD/bin/make_tiny_dataset          (train and make_tiny_dataset may be "-": skipped)
# Each check prints "ok - name" or "FAIL - name: details"; the last line is "N passed, M failed"
# and the exit status is non-zero if any check failed. Nothing here depends on machine speed (the
# signal cases poll for the temporary file rather than sleep a fixed time).
set -u
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

[ $# -eq 4 ] || { echo "usage: $0 infer evaluate train|- make_tiny_dataset|-" >&2; exit 2; }
abs() { if [ "$1" = - ]; then echo -; else echo "$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"; fi; }
INFER=$(abs "$1") EVALUATE=$(abs "$2") TRAIN=$(abs "$3") MAKE_DATA=$(abs "$4")
for tool in sox soxi md5sum awk timeout python3; do
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
LOG=$T/log
W=$T/work
mkdir -p "$LOG" "$W"
cd "$W" || exit 2
PASSED=0 FAILED=0
. "$HERE/lib.sh"

ok()   { echo "ok - $1"; PASSED=$((PASSED + 1)); }
fail() { echo "FAIL - $1: $2"; FAILED=$((FAILED + 1)); }
skip() { echo "skip - $1: $2"; }

# prog ARGS...: runs a program with a time limit; sets RC, stdout in $LOG/out, stderr in $LOG/err.
prog() { timeout -k 5 300 "$@" >"$LOG/out" 2>"$LOG/err"; RC=$?; }
stderr_text() { tr '\n' '|' <"$LOG/err"; }
md5() { md5sum <"$1" | cut -d' ' -f1; }
listing() { (cd "$1" && find . | sort); }
check_eq() {  # name expected actual
  if [ "$2" = "$3" ]; then ok "$1"; else fail "$1" "expected '$2', got '$3'"; fi
}
check_rc() {  # name code|nonzero
  if { [ "$2" = nonzero ] && [ "$RC" -ne 0 ]; } || [ "$RC" = "$2" ]; then ok "$1"
  else fail "$1" "exit code $RC, wanted $2; stderr: $(stderr_text)"; fi
}
check_no_temp() {  # name dir
  local t; t=$(find "$2" -name '.*.tmp-*')
  if [ -z "$t" ]; then ok "$1"; else fail "$1" "temporary files left: $t"; fi
}
check_listing() {  # name dir expected-listing
  local now; now=$(listing "$2")
  if [ "$now" = "$3" ]; then ok "$1"; else
    fail "$1" "folder changed: $(diff <(echo "$3") <(echo "$now") | grep '^[<>]' | tr '\n' ' ')"; fi
}
# refused NAME DIR NAMED REASON PROGRAM ARGS...: the program fails with one error line naming
# NAMED, and DIR is left exactly as it was (every file, its content included).
refused() {
  local name=$1 dir=$2 named=$3 reason=$4; shift 4
  local before; before=$(cd "$dir" && find . -type f -exec md5sum {} + | sort; listing .)
  prog "$@"
  check_rc "$name: exit code" nonzero
  if [ "$(grep -vc 'note:' "$LOG/err")" -ne 1 ]; then fail "$name: one error line" "$(stderr_text)"
  elif ! grep -F -- "$named" "$LOG/err" | grep -qE -- "$reason"; then
    fail "$name: error names $named and /$reason/" "$(stderr_text)"
  else ok "$name: one error line naming $named"; fi
  check_eq "$name: nothing written or changed" "$before" \
    "$(cd "$dir" && find . -type f -exec md5sum {} + | sort; listing .)"
}
# speech OUT SECONDS [RATE]: a tone sweep plus white noise, 16-bit mono.
speech() {
  sox -R -r "${3:-16000}" -c 1 -n -b 16 "$1" synth "$2" sine 220-340 whitenoise vol 0.2 2>/dev/null
}

# ---------------------------------------------------------------- 1. output-path collisions
mkdir c1 && cd c1 || exit 2
speech in.wav 1 && speech other.wav 1
ln -s in.wav link.wav && ln in.wav hard.wav && mkdir sub && ln -s .. sub/up
for spelling in in.wav ./in.wav "$PWD/in.wav" sub/../in.wav sub/up/in.wav link.wav hard.wav; do
  refused "infer --plot onto the input ($spelling)" . "$spelling" 'same file.*input' \
    "$INFER" in.wav -o out.wav --plot "$spelling"
done
refused "infer --plot onto the -o file" . out.wav 'same file' \
  "$INFER" in.wav -o out.wav --plot sub/up/out.wav
refused "infer -o onto the --noise-clip" . other.wav 'same file.*--noise-clip' \
  "$INFER" in.wav -o other.wav --noise-clip other.wav
mkdir -p a b && cp in.wav a/x.wav && cp other.wav b/x.wav
prog "$INFER" a/x.wav b/x.wav --out-dir o
check_rc "infer: two inputs onto one --out-dir name: exit code" 1
check_eq "infer: two inputs onto one --out-dir name: the first written, the second refused" \
  "1 1" "$(ls o | wc -l) $(grep -c 'same file' "$LOG/err")"
rm -rf o
mkdir f && cp in.wav f/x.wav && cp other.wav f/y.wav
before=$(cd f && md5sum x.wav y.wav)
prog "$INFER" f --out-dir ./f/../f
check_rc "infer: a folder with --out-dir the same folder: exit code" 1
check_eq "infer: a folder with --out-dir the same folder: each file refused" 2 "$(grep -c 'same file.*input' "$LOG/err")"
check_eq "infer: a folder with --out-dir the same folder: inputs unchanged" "$before" "$(cd f && md5sum x.wav y.wav)"
mkdir p && cp in.wav p/n.wav && cp other.wav p/c.wav
for out in --json --csv; do
  refused "evaluate $out onto the noisy input" . p/n.wav 'same file.*input' \
    "$EVALUATE" --clean p/c.wav --noisy p/n.wav -m noisy "$out" sub/up/p/n.wav
done
refused "evaluate --json onto --csv" . s.json 'same file' \
  "$EVALUATE" --clean p/c.wav --noisy p/n.wav -m noisy --json s.json --csv ./s.json
mkdir r
refused "evaluate --json onto the --report page" . index.html 'same file' \
  "$EVALUATE" --clean p/c.wav --noisy p/n.wav -m noisy --json r/index.html --report r
refused "evaluate --report over the inputs' folder" . p/audio 'holds the' \
  "$EVALUATE" --clean p/audio/c.wav --noisy p/n.wav -m noisy --report p
if [ "$TRAIN" != - ]; then
  "$MAKE_DATA" --pairs 4 --seconds 1 d >/dev/null 2>&1
  clean=$(find d -name '*.wav' | sort | head -1)
  refused "train -o onto a data file" . "$clean" 'input' \
    "$TRAIN" --data d -o "$clean" --steps 1 --batch 2 --crop-seconds 0.5
  cp "$HERE/../../models/pretrained/default.dnz" m.dnz
  refused "train -o onto the --init model" . m.dnz 'same file.*--init' \
    "$TRAIN" --data d --init m.dnz -o ./m.dnz --steps 1
fi
cd "$W" || exit 2

# ---------------------------------------------------------------- 2. signals
# Job control on: background programs get the default SIGINT action, as in a terminal (without
# it, bash starts them with SIGINT ignored, and the programs keep an ignored signal ignored).
set -m
mkdir c2 && cd c2 || exit 2
sox -R -r 48000 -c 1 -n -b 16 long.wav synth 60 sine 220-340 whitenoise vol 0.2 2>/dev/null
# wait_for_temp SECONDS: until a temporary output file appears (0), or the time is up (1).
wait_for_temp() {
  local tries=$(($1 * 20))
  while [ $tries -gt 0 ]; do
    [ -n "$(find . -name '.*.tmp-*' 2>/dev/null)" ] && return 0
    kill -0 "$BG_PID" 2>/dev/null || return 1
    sleep 0.05; tries=$((tries - 1))
  done
  return 1
}
for sig in INT TERM HUP; do
  signo=$(kill -l "$sig")
  # Resampling to another rate keeps infer busy for seconds, with its temporary file open.
  "$INFER" long.wav -o "out-$sig.wav" --rate 44100 -q >"$LOG/out" 2>"$LOG/err" &
  BG_PID=$!
  if wait_for_temp 60; then ok "infer SIG$sig: temporary file seen"
  else fail "infer SIG$sig: temporary file seen" "none within 60 s; stderr: $(stderr_text)"; fi
  kill "-$sig" "$BG_PID"
  wait "$BG_PID"; RC=$?; BG_PID=""
  check_rc "infer SIG$sig: exit status 128+$signo" $((128 + signo))
  check_no_temp "infer SIG$sig: no temporary file left" .
  check_eq "infer SIG$sig: no output" "" "$(ls out-* 2>/dev/null)"
done
sox -R -r 16000 -c 1 -n -b 16 clean.wav synth 30 sine 220-340 vol 0.3 2>/dev/null
sox -R -m clean.wav "|sox -R -r 16000 -c 1 -n -p synth 30 whitenoise vol 0.1" noisy.wav 2>/dev/null
for sig in INT TERM; do
  signo=$(kill -l "$sig")
  "$EVALUATE" --clean clean.wav --noisy noisy.wav --json "s-$sig.json" --report "r-$sig" \
    >"$LOG/out" 2>"$LOG/err" &
  BG_PID=$!
  sleep 0.5
  kill "-$sig" "$BG_PID"
  wait "$BG_PID"; RC=$?; BG_PID=""
  check_rc "evaluate SIG$sig: exit status 128+$signo" $((128 + signo))
  check_no_temp "evaluate SIG$sig: no temporary file left" .
  check_eq "evaluate SIG$sig: no scores written" "" "$(ls "s-$sig.json" "r-$sig/index.html" 2>/dev/null)"
done
set +m
cd "$W" || exit 2

# ---------------------------------------------------------------- 3. odd numbers
mkdir c3 && cd c3 || exit 2
# spike OUT VALUE: 1 s of 32-bit float WAV at 16 kHz, a tone with one sample set to VALUE.
spike() {
  python3 - "$1" "$2" <<'PY'
import math, struct, sys
rate = n = 16000
x = [0.3 * math.sin(2 * math.pi * 300 * i / rate) + 0.05 * math.sin(i * 12.9898) for i in range(n)]
x[8000] = float(sys.argv[2])
data = struct.pack("<%df" % n, *x)
fmt = struct.pack("<HHIIHH", 3, 1, rate, rate * 4, 4, 32)
open(sys.argv[1], "wb").write(b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVEfmt " +
    struct.pack("<I", 16) + fmt + b"data" + struct.pack("<I", len(data)) + data)
PY
}
MODEL=$HERE/../../models/pretrained/default.dnz
methods="gate gate-nonstationary subtract"
"$INFER" --help | grep -q -- '--model' && [ -f "$MODEL" ] && methods="$methods unet"
for v in 1e20 1e30; do
  spike "s$v.wav" "$v"
  for m in $methods; do
    extra=(); [ "$m" = unet ] && extra=(--model "$MODEL")
    refused "infer $m, a float sample of $v" . "s$v.wav" 'above full scale' \
      "$INFER" "s$v.wav" -o out.wav -m "$m" "${extra[@]}"
  done
done
spike s9e5.wav 9e5   # just inside the limit: processed, finite and not silent
for m in $methods; do
  extra=(); [ "$m" = unet ] && extra=(--model "$MODEL")
  prog "$INFER" s9e5.wav -o "o-$m.wav" -m "$m" -q "${extra[@]}"
  check_rc "infer $m, a float sample of 9e5: exit code" 0
  rms=$(sox "o-$m.wav" -n stat 2>&1 | awk '/RMS +amplitude/ { print $3 }')
  if awk -v r="$rms" 'BEGIN { exit !(r > 0.01 && r < 1) }'; then ok "infer $m, 9e5: output finite, not silent (RMS $rms)"
  else fail "infer $m, 9e5: output finite, not silent" "RMS '$rms'"; fi
done
speech in.wav 1
for opt in "--gain-db nan" "--gain-db inf" "--gain-db 1e9" "--gain-db -1e9" "--prop-decrease nan" \
           "--prop-decrease 1.5" "--over-subtraction nan" "--floor -0.1" "--noise-seconds -1" \
           "--noise-seconds nan" "--time-constant-s 1e9" "--time-constant-s 0" "--n-std inf" \
           "--n-fft 1000000000" "--hop 0" "--block-seconds nan" "--padding -5" "--sigmoid-slope nan"; do
  name=${opt%% *}
  before=$(listing .)
  # shellcheck disable=SC2086
  prog "$INFER" in.wav -o out.wav $opt
  check_rc "infer $opt: usage error, exit code 2" 2
  if head -1 "$LOG/err" | grep -F -- "$name" | grep -qE 'finite number|outside|not in range'; then
    ok "infer $opt: the first line names the option and its range"
  else fail "infer $opt: the first line names the option and its range" "$(stderr_text)"; fi
  check_listing "infer $opt: nothing written" . "$before"
done
prog "$INFER" --help
for name in --gain-db --prop-decrease --over-subtraction --floor --noise-seconds --time-constant-s \
            --n-std --freq-smooth-hz --time-smooth-ms --thresh-n-mult --sigmoid-slope --n-fft --hop \
            --padding --block-seconds --rate; do
  if grep -E -- "^ *$name [A-Z]+:[A-Z]+ in \[" "$LOG/out" >/dev/null; then ok "infer --help: $name states its range"
  else fail "infer --help: $name states its range" "$(grep -- "$name" "$LOG/out" | head -1)"; fi
done
prog "$EVALUATE" --clean in.wav --noisy in.wav -m noisy --max-delay-ms nan
check_rc "evaluate --max-delay-ms nan: usage error" 2
cd "$W" || exit 2

# ---------------------------------------------------------------- 4. file names that are not UTF-8
mkdir c4 && cd c4 || exit 2
bad=$(printf 'p_\xff\xe9')           # bytes 0xFF 0xE9: legal on Linux, not UTF-8
data=$(printf 'd\xfe')
mkdir -p "$data/noisy" "$data/clean"
for i in 1 2 3 4; do
  sox -R -r 16000 -c 1 -n -b 16 "$data/clean/$bad$i.wav" synth 1 sine $((200 + 40 * i)) vol 0.3 2>/dev/null
  sox -R -m "$data/clean/$bad$i.wav" "|sox -R -r 16000 -c 1 -n -p synth 1 whitenoise vol 0.1" \
    "$data/noisy/$bad$i.wav" 2>/dev/null
done
prog "$EVALUATE" --data "$data" -m noisy,gate --json s.json --csv s.csv -q
check_rc "evaluate, names not UTF-8: exit code" 0
if python3 -c '
import json, sys
j = json.load(open("s.json", encoding="utf-8"))
names = sorted(f["noisy"].rsplit("/", 1)[-1] for f in j["files"])
sys.exit(names != ["p_\\xff\\xe9%d.wav" % i for i in range(1, 5)])' 2>"$LOG/py"; then
  ok "evaluate --json, names not UTF-8: valid JSON, each name with \\xNN escapes"
else fail "evaluate --json, names not UTF-8: valid JSON, each name with \\xNN escapes" "$(cat "$LOG/py") $(head -c 600 s.json)"; fi
check_eq "evaluate --csv, names not UTF-8: the names as they are (bytes)" 8 "$(grep -c -F "$bad" s.csv)"
if [ "$TRAIN" != - ]; then
  out=$(printf 'm\xff')
  prog "$TRAIN" --data "$data" --steps 2 --batch 2 --crop-seconds 0.5 --threads 2 --val-every 2 \
    -o "$out.dnz" -q
  check_rc "train, names not UTF-8: exit code" 0
  if python3 -c '
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]
sys.exit(len(lines) < 1)' "$out.log.jsonl" 2>"$LOG/py"; then ok "train, names not UTF-8: the log is valid JSON lines"
  else fail "train, names not UTF-8: the log is valid JSON lines" "$(cat "$LOG/py")"; fi
  check_eq "train, names not UTF-8: model, log, curves, resume state" "4" \
    "$(ls "$out.dnz" "$out.log.jsonl" "$out.curves.png" "$out.resume.pt" 2>/dev/null | wc -l)"
  prog "$INFER" "$data/noisy/${bad}1.wav" -o "$bad.wav" --model "$out.dnz" -q
  check_rc "infer with that model, names not UTF-8: exit code" 0
fi
cd "$W" || exit 2

# ---------------------------------------------------------------- 5. broken model files
if "$INFER" --help | grep -q -- '--model' && [ -f "$MODEL" ]; then
  mkdir c5 && cd c5 || exit 2
  speech in.wav 1
  # remodel OUT KEY=JSON...: the shipped model with metadata fields changed, checksum valid.
  remodel() {
    python3 - "$MODEL" "$@" <<'PY'
import json, struct, sys
src, dst, edits = sys.argv[1], sys.argv[2], sys.argv[3:]
b = open(src, "rb").read()
meta_len = struct.unpack_from("<Q", b, 12)[0]
meta = json.loads(b[20:20 + meta_len])
payload = b[20 + meta_len + 8:-8]
for e in edits:
    path, value = e.split("=", 1)
    obj, keys = meta, path.split(".")
    for k in keys[:-1]:
        obj = obj[int(k)] if isinstance(obj, list) else obj[k]
    obj[int(keys[-1]) if isinstance(obj, list) else keys[-1]] = json.loads(value)
text = json.dumps(meta).encode()
out = b[:12] + struct.pack("<Q", len(text)) + text + struct.pack("<Q", len(payload)) + payload
h = 1469598103934665603
for x in out:
    h = ((h ^ x) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
open(dst, "wb").write(out + struct.pack("<Q", h))
PY
  }
  # poke OUT OFFSET-EXPRESSION VALUE: the shipped model with a little-endian u64 overwritten
  # (ml: the metadata length); "cut N" keeps the first N bytes.
  poke() {
    python3 - "$MODEL" "$@" <<'PY'
import struct, sys
b = bytearray(open(sys.argv[1], "rb").read())
ml = struct.unpack_from("<Q", b, 12)[0]
if sys.argv[3] == "cut":
    b = b[:int(sys.argv[4])]
elif sys.argv[3] == "flip":
    b[int(eval(sys.argv[4]))] ^= 0x40
else:
    struct.pack_into("<Q", b, eval(sys.argv[3]), int(sys.argv[4]))
open(sys.argv[2], "wb").write(b)
PY
  }
  remodel fft.dnz front_end.n_fft=1073741824
  remodel fft2.dnz front_end.n_fft=1048576 front_end.hop_length=262144
  remodel shape.dnz tensors.0.shape=[1000000000,1000000000]
  remodel width.dnz model.channels=[100000]
  remodel eps.dnz front_end.log_epsilon=1e300
  remodel dtype.dnz tensors.0.dtype='"complex128"'
  poke payload.dnz 20+ml 18446744073709551608
  poke meta.dnz 12 281474976710655
  poke cut.dnz cut 100000
  poke flip.dnz flip 20+ml+5000
  for case in "fft:n_fft must be" "fft2:n_fft must be" "shape:impossible shape" \
              "width:channel width" "eps:epsilon" "dtype:unknown type" \
              "payload:corrupt model file \(its tensor data length" \
              "meta:corrupt model file \(its metadata length" \
              "cut:truncated model file \(100000 of the [0-9]+ bytes" "flip:corrupt.*checksum"; do
    m=${case%%:*}.dnz
    refused "infer --model, $m" . "$m" "${case#*:}" "$INFER" in.wav -o out.wav --model "$m"
    check_rc "infer --model, $m: exit code 1" 1
  done
  refused "evaluate --model, fft.dnz" . fft.dnz "n_fft must be" \
    "$EVALUATE" --clean in.wav --noisy in.wav -m unet --model fft.dnz
  if [ "$TRAIN" != - ]; then
    refused "train --init, fft.dnz" . fft.dnz "n_fft must be" \
      "$TRAIN" --data "$W/c4/$data" --init fft.dnz -o t.dnz --steps 1
  fi
  cd "$W" || exit 2
else
  skip "broken model files" "infer has no U-Net or models/pretrained/default.dnz is missing"
fi

# ---------------------------------------------------------------- 6. messages in our words
mkdir c6 && cd c6 || exit 2
sox -R -r 16000 -c 1 -n -b 16 f.flac synth 3 sine 300 whitenoise vol 0.2 2>/dev/null
sox -R -r 16000 -c 1 -n -b 16 w.wav synth 1 sine 300 whitenoise vol 0.2 2>/dev/null
for n in 200 1000 5000; do head -c "$n" f.flac >"cut$n.flac"; done
printf 'RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x00\x00' >nochan.wav
head -c 3000 /dev/urandom >noise.wav
# 40 copies with a few bytes changed, in the header and in the data.
python3 - <<'PY'
import random
for src in ("f.flac", "w.wav"):
    b = open(src, "rb").read()
    for i in range(20):
        r, m = random.Random(i), bytearray(b)
        for _ in range(r.choice([1, 3, 8])):
            m[r.randrange(0, 200 if i % 2 else len(m))] = r.randrange(256)
        open("mut%02d_%s" % (i, src), "wb").write(m)
PY
jargon='psf_|SF_INFO|[Ii]nternal|Unspecified|struct|karma|Error :'
for f in cut200.flac cut1000.flac cut5000.flac nochan.wav noise.wav mut*; do
  for m in gate $([ "${methods#*unet}" != "$methods" ] && echo unet); do
    prog "$INFER" "$f" -o "out.wav" -m "$m" -q
    [ "$RC" -eq 0 ] && { rm -f out.wav; continue; }
    line=$(head -1 "$LOG/err")
    if [ "$RC" -ne 1 ] || [ "$(wc -l <"$LOG/err")" -ne 1 ] || [[ "$line" != *"$f"* ]] ||
       grep -qE "$jargon" <<<"$line"; then
      fail "infer $m $f: one line naming the file, in our words" "exit $RC: $(stderr_text)"
    else ok "infer $m $f: one line naming the file, in our words"; fi
  done
done
check_no_temp "broken inputs: no temporary file left" .
sox -R -r 22050 -c 129 -n -b 16 c129.wav synth 0.5 whitenoise vol 0.1 2>/dev/null
refused "infer, 129 channels resampled" . c129.wav 'channels.*at most 128' \
  "$INFER" c129.wav -o out.wav -m gate --rate 16000
prog "$INFER" c129.wav -o out.wav -m gate -q
check_rc "infer, 129 channels at their own rate: exit code" 0
cd "$W" || exit 2

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
