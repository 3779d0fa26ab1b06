#!/usr/bin/env bash
# End-to-end tests of the `infer` program on real files made here with sox.
#   bash tests/cli/test_infer_cli.sh /path/to/build/bin/infer
# Each check prints "ok - name" or "FAIL - name: details"; the last line is "N passed, M failed"
# and the exit status is non-zero if any check failed. Nothing here depends on machine speed.
set -u
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

[ $# -eq 1 ] || { echo "usage: $0 /path/to/infer" >&2; exit 2; }
INFER=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
[ -x "$INFER" ] || { echo "not an executable: $1" >&2; exit 2; }
for tool in sox soxi md5sum awk; do
  command -v "$tool" >/dev/null || { echo "missing tool: $tool" >&2; exit 2; }
done

T=$(mktemp -d)
trap 'chmod -R u+w "$T" 2>/dev/null; rm -rf "$T"' EXIT
LOG=$T/log                 # infer's stdout/stderr of the last run
W=$T/work                  # test files, one folder per case
mkdir -p "$LOG" "$W"
cd "$W" || exit 2
PASSED=0 FAILED=0
. "$HERE/lib.sh"

# ---------------------------------------------------------------- helpers

ok()   { echo "ok - $1"; PASSED=$((PASSED + 1)); }
fail() { echo "FAIL - $1: $2"; FAILED=$((FAILED + 1)); }

# Runs infer; sets RC, stderr in $LOG/err.
run() { "$INFER" "$@" >"$LOG/out" 2>"$LOG/err"; RC=$?; }
stderr_text() { tr '\n' '|' <"$LOG/err"; }

# gen OUT RATE CHANNELS BITS SYNTH-ARGS...: audio synthesised at RATE (repeatable noise).
gen() {
  local out=$1 rate=$2 ch=$3 bits=$4; shift 4
  sox -R -r "$rate" -c "$ch" -n -b "$bits" "$out" synth "$@" 2>/dev/null
}
# speech OUT RATE CHANNELS BITS SECONDS: a tone sweep (a different one per channel) plus white noise.
speech() {
  gen "$1.tone.wav" "$2" "$3" 32 "$5" sine 220-340 sine 300-520 vol 0.25
  gen "$1.noise.wav" "$2" "$3" 32 "$5" whitenoise vol 0.08
  sox -R -m -v 1 "$1.tone.wav" -v 1 "$1.noise.wav" -b "$4" "$1" 2>/dev/null
  rm -f "$1.tone.wav" "$1.noise.wav"
}
info()  { soxi "-$2" "$1" 2>/dev/null; }   # info FILE r|c|b|e|s
md5()   { md5sum <"$1" | cut -d' ' -f1; }
stat_of() { sox "$1" -n "${@:3}" stat 2>&1 | awk -v k="$2" '$0 ~ k { print $NF; exit }'; }
listing() { (cd "$1" && find . | sort); }  # every entry, hidden ones included

check_eq() {  # name expected actual
  if [ "$2" = "$3" ]; then ok "$1"; else fail "$1" "expected '$2', got '$3'"; fi
}
check_rc() {  # name zero|nonzero
  if { [ "$2" = zero ] && [ "$RC" -eq 0 ]; } || { [ "$2" = nonzero ] && [ "$RC" -ne 0 ]; }; then ok "$1"
  else fail "$1" "exit code $RC, wanted $2; stderr: $(stderr_text)"; fi
}
check_file() {  # name path: exists and is non-empty
  if [ -s "$2" ]; then ok "$1"; else fail "$1" "$2 missing or empty; stderr: $(stderr_text)"; fi
}
check_no_file() {  # name path
  if [ ! -e "$2" ]; then ok "$1"; else fail "$1" "$2 exists"; fi
}
check_awk() {  # name awk-condition-on-a-and-b a b
  if awk -v a="$3" -v b="$4" "BEGIN { exit !($2) }"; then ok "$1"; else fail "$1" "a=$3 b=$4, wanted $2"; fi
}
check_stderr_has() {  # name fixed-string
  if grep -qF -- "$2" "$LOG/err"; then ok "$1"; else fail "$1" "stderr lacks '$2': $(stderr_text)"; fi
}
check_listing() {  # name dir expected-listing: nothing added or removed (no outputs, no .*.tmp-*)
  local now; now=$(listing "$2")
  if [ "$now" = "$3" ]; then ok "$1"; else
    fail "$1" "folder changed: $(diff <(echo "$3") <(echo "$now") | grep '^[<>]' | tr '\n' ' ')"; fi
}
check_no_temp() {  # name dir
  local t; t=$(find "$2" -name '.*.tmp-*')
  if [ -z "$t" ]; then ok "$1"; else fail "$1" "temporary files left: $t"; fi
}

# bad_case NAME DIR NAMED-PATH REASON-REGEX INFER-ARGS...: infer fails, with one error line naming
# NAMED-PATH, and DIR (the output folder) is left exactly as it was.
bad_case() {
  local name=$1 dir=$2 path=$3 reason=$4; shift 4
  local before; before=$(listing "$dir")
  run "$@"
  check_rc "$name: exit code" nonzero
  check_error_line "$name: error names the file" "$path" "$reason"
  check_listing "$name: no output or temp file left" "$dir" "$before"
}

# ---------------------------------------------------------------- 1. happy path, mono 16-bit WAV
mkdir c1 && speech c1/talk.wav 16000 1 16 2
sum=$(md5 c1/talk.wav)
run c1/talk.wav
check_rc "mono wav: exit code" zero
check_file "mono wav: default output beside input" c1/talk_denoised.wav
for k in r c b e s; do
  check_eq "mono wav: soxi -$k kept" "$(info c1/talk.wav $k)" "$(info c1/talk_denoised.wav $k)"
done
check_eq "mono wav: input unchanged" "$sum" "$(md5 c1/talk.wav)"
check_no_temp "mono wav: no temp file" c1

# ---------------------------------------------------------------- 2. stereo 24-bit FLAC, each method
mkdir c2 && speech c2/st.flac 44100 2 24 2
for m in gate gate-nonstationary subtract; do
  run c2/st.flac -o "c2/out-$m.flac" --method "$m"
  check_rc "flac $m: exit code" zero
  check_file "flac $m: output written" "c2/out-$m.flac"
  check_eq "flac $m: stereo" 2 "$(info "c2/out-$m.flac" c)"
  check_eq "flac $m: 44100 Hz" 44100 "$(info "c2/out-$m.flac" r)"
  check_eq "flac $m: 24-bit" 24 "$(info "c2/out-$m.flac" b)"
  check_eq "flac $m: sample count" "$(info c2/st.flac s)" "$(info "c2/out-$m.flac" s)"
done
check_no_temp "flac: no temp file" c2

# ---------------------------------------------------------------- 3. --rate and --bits
mkdir c3 && speech c3/hi.wav 48000 1 16 2 && speech c3/fl.wav 16000 1 32 1
sox c3/fl.wav -e floating-point -b 32 c3/float.wav && rm c3/fl.wav
run c3/hi.wav -o c3/lo.wav --rate 16000
check_rc "--rate 16000: exit code" zero
check_eq "--rate 16000: output rate" 16000 "$(info c3/lo.wav r)"
check_awk "--rate 16000: length within 1 sample of n/3" \
  'a != "" && (a - int(b * 16000 / 48000 + 0.5))^2 <= 1' "$(info c3/lo.wav s)" "$(info c3/hi.wav s)"
check_eq "float wav input is float" "Floating Point PCM" "$(info c3/float.wav e)"
run c3/float.wav -o c3/b16.wav --bits 16
check_rc "--bits 16: exit code" zero
check_eq "--bits 16: 16-bit" 16 "$(info c3/b16.wav b)"
check_eq "--bits 16: integer" "Signed Integer PCM" "$(info c3/b16.wav e)"
run c3/b16.wav -o c3/f32.wav --bits f32
check_rc "--bits f32: exit code" zero
check_eq "--bits f32: float" "Floating Point PCM" "$(info c3/f32.wav e)"
check_eq "--bits f32: 32-bit" 32 "$(info c3/f32.wav b)"

# ---------------------------------------------------------------- 4. noise is really reduced
mkdir c4
gen c4/noise.wav 16000 1 32 3 whitenoise vol 0.2
gen c4/tone.wav 16000 1 32 2 sine 300 vol 0.2 pad 1 0
sox -R -m -v 1 c4/noise.wav -v 1 c4/tone.wav -b 16 c4/mix.wav 2>/dev/null
run c4/mix.wav -o c4/clean.wav --method gate --noise-seconds 1
check_rc "noise reduction: exit code" zero
rms_in=$(stat_of c4/mix.wav 'RMS +amplitude' trim 0 1)
rms_out=$(stat_of c4/clean.wav 'RMS +amplitude' trim 0 1)
check_awk "noise reduction: first second >= 10 dB quieter" \
  'a > 0 && b != "" && (b == 0 || 20 * log(b / a) / log(10) <= -10)' "$rms_in" "$rms_out"
# Spectral gating smooths its mask over 500 Hz, which also dims a pure tone; what must hold is that
# the tone stands well above the remaining noise.
rms_tone=$(stat_of c4/clean.wav "RMS +amplitude" trim 1.2 1.5)
check_awk "noise reduction: tone >= 10 dB above the remaining noise" \
  "a > 0 && (b == 0 || 20 * log(a / b) / log(10) >= 10)" "$rms_tone" "$rms_out"

# ---------------------------------------------------------------- 4b. --plot
run c4/mix.wav -o c4/plotted.wav --method gate --noise-seconds 1 --plot c4/gate.png
check_rc "plot, gate: exit code" zero
# Noisy, gain, denoised and the gate's threshold: a title band and four 240-pixel rows.
check_eq "plot, gate: a 1000x990 PNG (4 panels)" 1000x990 "$(png_size c4/gate.png)"
check_eq "plot, gate: the denoised file too" "$(md5 c4/clean.wav)" "$(md5 c4/plotted.wav)"
run c4/mix.wav -o c4/plotted2.wav --method gate-nonstationary --plot c4/ns.png
check_eq "plot, gate-nonstationary: 3 panels (no threshold)" 1000x750 "$(png_size c4/ns.png)"
run c4 --plot c4/folder.png
check_rc "plot with a folder: usage error" nonzero
check_no_file "plot with a folder: no PNG" c4/folder.png
run c4/mix.wav -o c4/plotted3.wav --method gate --plot c4/missing/p.png
check_rc "plot into a missing folder: error" nonzero
check_stderr_has "plot into a missing folder: the path is named" "c4/missing/p.png"
check_no_temp "plot: no temporary files" c4

# ---------------------------------------------------------------- 5. --gain-db and the limiter
mkdir c5 && speech c5/loud.wav 16000 1 16 2
run c5/loud.wav -o c5/loud_out.wav --gain-db 30
check_rc "--gain-db 30: exit code" zero
hi=$(stat_of c5/loud_out.wav 'Maximum amplitude')
lo=$(stat_of c5/loud_out.wav 'Minimum amplitude')
check_awk "--gain-db 30: peak <= -0.1 dBFS" 'a != "" && a <= 0.9887 && -b <= 0.9887' "$hi" "$lo"
check_stderr_has "--gain-db 30: stderr mentions the limiter" "limiter"

# ---------------------------------------------------------------- 6. bad inputs
mkdir c6 && cd c6 || exit 2
speech good.wav 16000 1 16 2
bad_case "missing path" . nope.wav 'no such file' nope.wav

mkdir textonly && echo hello >textonly/readme.txt
bad_case "folder without audio" textonly textonly 'no audio files' textonly

: >empty.wav
bad_case "zero-length wav" . empty.wav 'empty' empty.wav

{ printf 'garbage!'; head -c 8192 /dev/urandom; } >random.wav
bad_case "random bytes .wav" . random.wav 'cannot read' random.wav

head -c 20 good.wav >cut20.wav
bad_case "wav cut after 20 bytes" . cut20.wav 'cannot read|truncated|malformed' cut20.wav

head -c 20044 good.wav >cutdata.wav   # header says 32000 samples, 10000 are present
bad_case "wav with less data than its header says" . cutdata.wav 'truncated|corrupt|data' cutdata.wav

# Float WAV with NaNs: the sample data starts 8 bytes after the "data" chunk id.
speech f.wav 16000 1 32 2 && sox f.wav -e floating-point -b 32 nan.wav && rm f.wav
data_at=$(grep -obUa data nan.wav | head -1 | cut -d: -f1)
check_awk "float wav header size found (44 or 58)" 'a == 44 || a == 58' "$((data_at + 8))" 0
cp nan.wav nan_late.wav
for i in 0 1 2 3; do   # samples 100..103, and 24000..24003 (1.5 s, after the noise profile)
  printf '\x00\x00\xc0\x7f' | dd of=nan.wav bs=1 seek=$((data_at + 8 + 4 * (100 + i))) conv=notrunc 2>/dev/null
  printf '\x00\x00\xc0\x7f' | dd of=nan_late.wav bs=1 seek=$((data_at + 8 + 4 * (24000 + i))) conv=notrunc 2>/dev/null
done
bad_case "float wav with NaN samples" . nan.wav 'NaN' nan.wav
bad_case "float wav with NaN samples late" . nan_late.wav 'NaN' nan_late.wav --noise-seconds 0.5

gen tiny.wav 16000 1 16 500s sine 300
check_eq "short file has 500 samples" 500 "$(info tiny.wav s)"
# 500 samples: shorter than gating's 1024-sample frame (the U-Net's is 320).
bad_case "file shorter than one FFT frame" . tiny.wav 'too short' tiny.wav --method gate

bad_case "output folder does not exist" . missing/sub/out.wav 'does not exist' good.wav -o missing/sub/out.wav
check_no_file "output folder does not exist: not created" missing
mkdir ro && chmod 555 ro
if touch ro/probe 2>/dev/null; then   # root: permissions do not block writes
  rm -f ro/probe; echo "skip - unwritable output folder: running as root, chmod does not block writes"
else
  bad_case "unwritable output folder" ro ro/out.wav 'not writable|ermission' good.wav -o ro/out.wav
fi
echo "not a folder" >afile
sum=$(md5 afile)
bad_case "--out-dir is a regular file" . afile 'folder|directory|exists' good.wav --out-dir afile
check_eq "--out-dir is a regular file: file unchanged" "$sum" "$(md5 afile)"

sum=$(md5 good.wav)
ln -s good.wav link.wav && ln good.wav hard.wav
for case in "same name:good.wav" "dot prefix:./good.wav" "absolute path:$PWD/good.wav" \
            "symlink:link.wav" "hard link:hard.wav"; do
  label="-o is the input (${case%%:*})" target=${case#*:}
  named=good.wav; [ "$target" = hard.wav ] && named=hard.wav   # the hard link is caught in denoise_file
  bad_case "$label" . "$named" 'input' good.wav -o "$target"
  check_eq "$label: input unchanged" "$sum" "$(md5 good.wav)"
done
cd "$W" || exit 2

# ---------------------------------------------------------------- 7. folder mode
mkdir -p c7/in/sub
speech c7/in/a.wav 16000 1 16 1
speech c7/in/b.wav 22050 2 16 1
speech c7/in/sub/c.wav 16000 1 16 1
{ printf 'garbage!'; head -c 4096 /dev/urandom; } >c7/in/sub/bad.wav
run c7/in
check_rc "folder: exit code" nonzero
for f in a b sub/c; do check_file "folder: ${f}_denoised.wav written" "c7/in/${f}_denoised.wav"; done
check_no_file "folder: no output for the corrupt file" c7/in/sub/bad_denoised.wav
check_stderr_has "folder: summary" "3 files denoised, 1 failed"
check_error_line "folder: error names the corrupt file" c7/in/sub/bad.wav 'cannot read'
check_no_temp "folder: no temp file" c7/in

run c7/in --out-dir c7/out
check_rc "--out-dir folder: exit code" nonzero
for f in a b sub/c; do check_file "--out-dir folder: $f.wav written" "c7/out/$f.wav"; done
check_eq "--out-dir folder: exactly 3 outputs" 3 "$(find c7/out -type f | wc -l)"
check_stderr_has "--out-dir folder: summary" "3 files denoised, 1 failed"
check_error_line "--out-dir folder: error names the corrupt file" c7/in/sub/bad.wav 'cannot read'
check_no_temp "--out-dir folder: no temp file" c7/out

run c7/in
check_stderr_has "folder rerun: outputs are not inputs" "3 files denoised, 1 failed"
check_eq "folder rerun: still 3 outputs" 3 "$(find c7/in -name '*_denoised*' | wc -l)"
check_eq "folder rerun: no _denoised_denoised" "" "$(find c7/in -name '*_denoised_denoised*')"

# ---------------------------------------------------------------- 8. --help and bad options
run --help
check_rc "--help: exit code" zero
for opt in --method --noise-clip --noise-seconds --gain-db --rate --bits --out-dir --prop-decrease; do
  if grep -qF -- "$opt" "$LOG/out" "$LOG/err"; then ok "--help mentions $opt"; else fail "--help mentions $opt" "not found"; fi
done
mkdir c8 && speech c8/x.wav 16000 1 16 1
before=$(listing c8)
run c8/x.wav --method nosuchmethod
check_rc "unknown --method: exit code" nonzero
check_stderr_has "unknown --method: stderr names the value" "nosuchmethod"
check_listing "unknown --method: no output" c8 "$before"

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
