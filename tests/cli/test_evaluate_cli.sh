#!/usr/bin/env bash
# End-to-end tests of the `evaluate` program on paired folders made here with sox.
#   bash tests/cli/test_evaluate_cli.sh /path/to/build/bin/evaluate
# Each check prints "ok - name" or "FAIL - name: details"; the last line is "N passed, M failed"
# and the exit status is non-zero if any check failed. Nothing here depends on machine speed.
set -u
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

[ $# -eq 1 ] || { echo "usage: $0 /path/to/evaluate" >&2; exit 2; }
EVALUATE=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
[ -x "$EVALUATE" ] || { echo "not an executable: $1" >&2; exit 2; }
PY=/usr/bin/python3
for tool in sox "$PY"; do
  command -v "$tool" >/dev/null || { echo "missing tool: $tool" >&2; exit 2; }
done

T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
LOG=$T/log
W=$T/work
mkdir -p "$LOG" "$W"
cd "$W" || exit 2
PASSED=0 FAILED=0
. "$HERE/lib.sh"

# ---------------------------------------------------------------- helpers

ok()   { echo "ok - $1"; PASSED=$((PASSED + 1)); }
fail() { echo "FAIL - $1: $2"; FAILED=$((FAILED + 1)); }

run() { "$EVALUATE" "$@" >"$LOG/out" 2>"$LOG/err"; RC=$?; }
stderr_text() { tr '\n' '|' <"$LOG/err"; }

check_eq() {  # name expected actual
  if [ "$2" = "$3" ]; then ok "$1"; else fail "$1" "expected '$2', got '$3'"; fi
}
check_rc() {  # name expected-code
  if [ "$RC" -eq "$2" ]; then ok "$1"; else fail "$1" "exit code $RC, wanted $2; stderr: $(stderr_text)"; fi
}
check_no_file() {  # name path
  if [ ! -e "$2" ]; then ok "$1"; else fail "$1" "$2 exists"; fi
}
check_stderr_has() {  # name fixed-string
  if grep -qF -- "$2" "$LOG/err"; then ok "$1"; else fail "$1" "stderr lacks '$2': $(stderr_text)"; fi
}
# check_py NAME JSON-FILE PYTHON-EXPRESSION: the expression, with the report as `j`, is true.
check_py() {
  local msg
  if msg=$("$PY" -c "
import json, math, sys
j = json.load(open(sys.argv[1]))
r = eval(sys.argv[2])
print(r)
sys.exit(0 if r is True else 1)" "$2" "$3" 2>&1); then ok "$1"; else fail "$1" "$3 -> $(echo "$msg" | tail -1)"; fi
}

# pair DIR NAME SECONDS FREQ NOISE [NOISY-EXTRA-SECONDS]: DIR/clean/NAME.wav, speech-like
# syllables (a band-limited sawtooth gliding up from FREQ, 0.25 s on, 0.3 s off), and
# DIR/noisy/NAME.wav, it plus stationary NOISE (white/pink) at about 5 dB SNR.
pair() {
  local dir=$1 name=$2 sec=$3 f=$4 noise=$5 extra=${6:-0}
  mkdir -p "$dir/clean" "$dir/noisy"
  sox -R -n -r 16000 -c 1 -b 16 "$dir/clean/$name.wav" synth 0.25 sawtooth "$f-$((f * 3 / 2))" \
    lowpass 3000 fade q 0.04 0.25 0.04 pad 0 0.3 repeat 9 trim 0 "$sec" vol 0.4 2>/dev/null
  sox -R -n -r 16000 -c 1 -b 32 "$T/noise.wav" synth "$(echo "$sec + $extra" | bc -l)" "$noise" \
    vol 0.25 2>/dev/null
  sox -R -m -v 1 "$dir/clean/$name.wav" -v 1 "$T/noise.wav" -b 16 "$dir/noisy/$name.wav" 2>/dev/null
  rm -f "$T/noise.wav"
}
command -v bc >/dev/null || { echo "missing tool: bc" >&2; exit 2; }

# every metric of every method of every file is a finite number; delays are integers
ALL_FIELDS='all(all(isinstance(m.get(k), (int, float)) and math.isfinite(m[k]) for k in ("si_sdr_db", "snr_db", "seg_snr_db", "stoi", "estoi", "rtf")) and isinstance(m.get("delay_samples"), int) for f in j["files"] for m in [f["methods"][n] for n in j["methods"]])'

# ---------------------------------------------------------------- 1. a clean paired folder
pair p f1 3 120 whitenoise
pair p f2 3 150 whitenoise
pair p f3 3 200 whitenoise
run --data p --methods noisy,gate,subtract --json p.json --csv p.csv
check_rc "pairs: exit code" 0
check_py "pairs: 3 files scored, none skipped" p.json 'j["files_scored"] == 3 and j["files_skipped"] == 0 and len(j["files"]) == 3'
check_py "pairs: methods as asked" p.json 'j["methods"] == ["noisy", "gate", "subtract"]'
check_py "pairs: every metric of every method and file present and finite" p.json "$ALL_FIELDS"
check_py "pairs: means for every method" p.json 'all(set(j["mean"][n]) >= {"si_sdr_db", "snr_db", "seg_snr_db", "stoi", "estoi", "rtf", "files", "delay_samples"} for n in j["methods"])'
check_py "pairs: gate's mean SI-SDR above noisy's (stationary noise)" p.json 'j["mean"]["gate"]["si_sdr_db"] > j["mean"]["noisy"]["si_sdr_db"] + 1'
check_py "pairs: noisy input near 5 dB SNR" p.json '2 < j["mean"]["noisy"]["snr_db"] < 8'
check_py "pairs: noisy RTF 0, gate RTF > 0" p.json 'j["mean"]["noisy"]["rtf"] == 0 and j["mean"]["gate"]["rtf"] > 0'
check_py "pairs: classical methods have no delay" p.json 'all(j["mean"][n]["delay_samples"]["files_delayed"] == 0 for n in j["methods"])'
check_eq "pairs: CSV header + 9 rows" 10 "$(wc -l <p.csv)"
check_eq "pairs: CSV header" "noisy,clean,method,sample_rate_hz,samples,si_sdr_db,snr_db,seg_snr_db,stoi,estoi,rtf,delay_samples,pesq_mode,pesq" "$(head -1 p.csv)"
check_eq "pairs: table has a row per method" 3 "$(grep -cE '^\| (noisy|gate|subtract) \|' "$LOG/out")"
check_eq "pairs: no NaN in the table" 0 "$(grep -ciE 'nan|inf' "$LOG/out")"
check_eq "pairs: no temporary file left" "" "$(find . -name '.*.tmp-*')"

# ---------------------------------------------------------------- 1a. PESQ
# 16 kHz: wide-band by default, per file and in the means, over the same 3 files for every method.
check_py "pesq: choice auto, nothing skipped" p.json 'j["pesq"] == "auto" and j["pesq_skipped"] == []'
check_py "pesq: every file wide-band" p.json 'all(f["pesq_mode"] == "wb" for f in j["files"])'
check_py "pesq: per-file PESQ-WB of every method in the MOS-LQO range" p.json 'all(isinstance(f["methods"][n].get("pesq_wb"), float) and 1.0 <= f["methods"][n]["pesq_wb"] <= 4.65 for f in j["files"] for n in j["methods"])'
check_py "pesq: means over 3 files, equal to the per-file mean" p.json 'all(j["mean"][n]["pesq_wb_files"] == 3 and abs(j["mean"][n]["pesq_wb"] - sum(f["methods"][n]["pesq_wb"] for f in j["files"]) / 3) < 1e-9 for n in j["methods"])'
check_py "pesq: no narrow-band means" p.json 'all("pesq_nb" not in j["mean"][n] for n in j["methods"])'
check_eq "pesq: CSV rows carry wb and a score" 9 "$(tail -n +2 p.csv | awk -F, '$13 == "wb" && $14 + 0 >= 1' | wc -l)"
check_eq "pesq: PESQ-WB column in the table" 1 "$(grep -c '^| method |.*| PESQ-WB | RTF |' "$LOG/out")"
check_eq "pesq: table rows have a PESQ-WB value" 3 "$(grep -cE '^\| (noisy|gate|subtract) \|.*\| [1-4]\.[0-9]{3} \| [0-9.]+ \|' "$LOG/out")"
# identical audio: the noisy input of a clean -> clean pair scores 4.64.
run --clean p/clean/f1.wav --noisy p/clean/f1.wav --methods noisy --json id.json -q
check_py "pesq: identity pair scores 4.64 wide-band" id.json 'abs(j["files"][0]["methods"]["noisy"]["pesq_wb"] - 4.644) < 0.002'
# --pesq off: no PESQ anywhere.
run --data p --methods noisy,gate --pesq off --json off.json --csv off.csv
check_rc "pesq off: exit code" 0
check_py "pesq off: no PESQ in the files or the means" off.json 'j["pesq"] == "off" and all(f["pesq_mode"] is None and not any(k.startswith("pesq") for k in f["methods"][n]) for f in j["files"] for n in j["methods"]) and all(not any(k.startswith("pesq") for k in j["mean"][n]) for n in j["methods"])'
check_eq "pesq off: no PESQ column" 0 "$(grep -c 'PESQ' "$LOG/out")"
check_eq "pesq off: CSV mode and score empty" 6 "$(tail -n +2 off.csv | awk -F, '$13 == "" && $14 == ""' | wc -l)"
check_py "pesq off: other metrics unchanged" off.json "abs(j['mean']['gate']['si_sdr_db'] - json.load(open('p.json'))['mean']['gate']['si_sdr_db']) < 1e-9"
# --pesq nb on 16 kHz material: narrow-band at 8 kHz.
run --data p --methods noisy,gate --pesq nb --json nb16.json
check_rc "pesq nb at 16 kHz: exit code" 0
check_py "pesq nb at 16 kHz: narrow-band scores, PESQ-NB means" nb16.json 'all(f["pesq_mode"] == "nb" and 1.0 <= f["methods"][n]["pesq_nb"] <= 4.56 for f in j["files"] for n in j["methods"]) and j["mean"]["gate"]["pesq_nb_files"] == 3'
check_eq "pesq nb at 16 kHz: PESQ-NB column" 1 "$(grep -c '| PESQ-NB | RTF |' "$LOG/out")"
# 8 kHz material: narrow-band by default; wide-band asked of it is skipped with the reason, and
# the other metrics are still scored.
mkdir -p e/clean e/noisy
for f in f1 f2; do
  sox p/clean/$f.wav -r 8000 e/clean/$f.wav 2>/dev/null && sox p/noisy/$f.wav -r 8000 e/noisy/$f.wav 2>/dev/null
done
run --data e --methods noisy,gate --json e.json
check_rc "pesq at 8 kHz: exit code" 0
check_py "pesq at 8 kHz: narrow-band by default" e.json 'all(f["pesq_mode"] == "nb" and isinstance(f["methods"][n]["pesq_nb"], float) for f in j["files"] for n in j["methods"])'
run --data e --methods noisy,gate --pesq wb --json ewb.json --csv ewb.csv
check_rc "pesq wb at 8 kHz: exit code 0 (other metrics scored)" 0
check_py "pesq wb at 8 kHz: both files scored, PESQ null" ewb.json 'j["files_scored"] == 2 and all(f["pesq_mode"] is None and f["methods"][n]["pesq"] is None for f in j["files"] for n in j["methods"])'
check_py "pesq wb at 8 kHz: STOI still scored" ewb.json 'all(0 < f["methods"]["gate"]["stoi"] <= 1 for f in j["files"])'
check_py "pesq wb at 8 kHz: each file in pesq_skipped with the reason" ewb.json 'len(j["pesq_skipped"]) == 2 and all("16 kHz" in s["reason"] and s["noisy"] in s["reason"] for s in j["pesq_skipped"])'
check_py "pesq wb at 8 kHz: no PESQ means" ewb.json 'all(not any(k.startswith("pesq") for k in j["mean"][n]) for n in j["methods"])'
check_eq "pesq wb at 8 kHz: one stderr line per file" 2 "$(grep -c 'evaluate: skipped PESQ: .*needs 16 kHz' "$LOG/err")"
check_eq "pesq wb at 8 kHz: table note counts them" 1 "$(grep -c '2 file(s) without PESQ' "$LOG/out")"
run --data p --methods noisy --pesq bogus --json u.json
check_rc "pesq bogus: usage error" 2
check_no_file "pesq bogus: no JSON" u.json

# ---------------------------------------------------------------- 1b. --report
run --data p --methods noisy,gate,subtract --report rep --report-examples 2
check_rc "report: exit code" 0
check_eq "report: index.html, metrics.png, pair1.png, pair2.png" "index.html metrics.png pair1.png pair2.png" "$(cd rep && ls -p | grep -v / | tr '\n' ' ' | sed 's/ $//')"
check_eq "report: audio of 2 pairs x (clean + 3 methods)" 8 "$(ls rep/audio/*.wav | wc -l)"
check_eq "report: an audio player per file" 8 "$(grep -o '<audio' rep/index.html | wc -l)"
check_eq "report: every linked file exists" ok "$(cd rep && grep -oE '(src|href)="[^"]+"' index.html | sed -E 's/^[a-z]+="//; s/"$//' | while read -r f; do [ -e "$f" ] || echo "missing $f"; done | grep -q . && echo missing || echo ok)"
check_eq "report: mean table row per method" 3 "$(grep -cE '<tr><td>(noisy|gate|subtract)</td><td class=n>' rep/index.html)"
check_eq "report: bar charts (6 metrics + PESQ-WB), 3 x 3 grid" 1200x870 "$(png_size rep/metrics.png)"
check_eq "report: PESQ-WB column in the means" 1 "$(grep -c '<th>PESQ-WB (3 files)</th>' rep/index.html)"
check_eq "report: spectrograms of clean + 3 methods, 2 x 2 grid" 1200x550 "$(png_size rep/pair1.png)"
check_eq "report: scored audio is the input for noisy" "$(soxi -s p/noisy/f1.wav)" "$(soxi -s rep/audio/pair1_noisy.wav)"
check_eq "report: no temporary file left" "" "$(find rep -name '.*.tmp-*')"
echo x >notadir
run --data p --methods noisy,gate --report notadir
check_rc "report into a file: usage error" 2
check_stderr_has "report into a file: named" "notadir"

# ---------------------------------------------------------------- 2. a delayed noisy side
mkdir -p d && cp -r p/clean d/ && mkdir -p d/noisy
for f in f1 f2 f3; do sox p/noisy/$f.wav d/noisy/$f.wav pad 37s trim 0 48000s 2>/dev/null; done
run --data d --methods noisy,gate --json d.json
check_rc "delay: exit code" 0
check_py "delay: 37 samples found for every file and method" d.json 'all(f["methods"][n]["delay_samples"] == 37 for f in j["files"] for n in j["methods"])'
check_py "delay: compensated (gate SI-SDR within 0.5 dB of the aligned run)" d.json "abs(j['mean']['gate']['si_sdr_db'] - json.load(open('p.json'))['mean']['gate']['si_sdr_db']) < 0.5"
if grep -qE '^\| gate \|.*\| 37 \(3/3 files\) \|' "$LOG/out" && grep -q 'compensated' "$LOG/out"; then
  ok "delay: shown in the table with a note"; else fail "delay: shown in the table with a note" "$(tr '\n' '|' <"$LOG/out")"; fi

# ---------------------------------------------------------------- 3. broken pairs are skipped
mkdir -p b && cp -r p/clean p/noisy b/
pair b only 3 200 whitenoise && rm b/clean/only.wav           # no clean partner
pair b long 3 200 whitenoise 0.1                              # noisy 100 ms longer
pair b trim 3 200 whitenoise 0.005                            # 5 ms longer: trimmed, scored
echo "not audio" >b/noisy/text.wav && echo "not audio" >b/clean/text.wav
pair b rate 3 200 whitenoise && sox b/noisy/rate.wav -r 22050 b/noisy/rate22.wav 2>/dev/null \
  && mv b/noisy/rate22.wav b/noisy/rate.wav                    # 22.05 vs 16 kHz
pair b silent 3 200 whitenoise && sox b/clean/silent.wav b/clean/s.wav vol 0 2>/dev/null \
  && mv b/clean/s.wav b/clean/silent.wav                        # silent reference
pair b short 0.3 200 whitenoise                               # too short for STOI
run --data b --methods noisy,gate --json b.json --csv b.csv
check_rc "broken: exit code 0 (some files scored)" 0
check_py "broken: 4 scored (3 + trimmed)" b.json 'j["files_scored"] == 4 and sorted(f["noisy"].rsplit("/", 1)[1] for f in j["files"]) == ["f1.wav", "f2.wav", "f3.wav", "trim.wav"]'
check_py "broken: trimmed pair reports 80 samples trimmed" b.json '[f["trimmed_samples"] for f in j["files"] if f["noisy"].endswith("trim.wav")] == [80]'
check_py "broken: 6 skipped, each with a reason" b.json 'j["files_skipped"] == 6 and len(j["skipped"]) == 6 and all(s["reason"] for s in j["skipped"])'
for name in only long text rate silent short; do
  check_py "broken: $name.wav skipped" b.json "any('$name.wav' in s['noisy'] + s['reason'] for s in j['skipped'])"
done
check_eq "broken: one stderr line per skipped file" 6 "$(grep -c 'evaluate: skipped:' "$LOG/err")"
check_stderr_has "broken: unpaired reason" "only.wav: no file of the same name in the other folder"
check_stderr_has "broken: length reason" "by 100.0 ms (more than 10 ms)"
check_stderr_has "broken: rate reason" "sample rate 22050 Hz"
check_stderr_has "broken: silent reason" "silent"
check_stderr_has "broken: short reason" "too short for STOI"
check_py "broken: every metric present and finite" b.json "$ALL_FIELDS"
check_eq "broken: CSV header + 8 rows" 9 "$(wc -l <b.csv)"
if grep -qF 'skipped: 6' "$LOG/out"; then ok "broken: table counts skipped files"; else fail "broken: table counts skipped files" "$(tr '\n' '|' <"$LOG/out")"; fi

# nothing scorable: exit 1, the JSON still lists why
mkdir -p n && pair n long 3 200 whitenoise 0.1
run --data n --methods noisy,gate --json n.json
check_rc "none scored: exit code 1" 1
check_py "none scored: JSON lists the skipped file" n.json 'j["files_scored"] == 0 and len(j["skipped"]) == 1'

# ---------------------------------------------------------------- 4. the Kaggle layout
K=k/speaker_audios_new
pair "$K" s1 3 120 whitenoise && pair "$K" s2 3 150 whitenoise
mkdir -p "$K/noisy_audios" && mv "$K/clean" "$K/clean_audios"
for s in s1 s2; do mv "$K/noisy/$s.wav" "$K/noisy_audios/${s}_noisy.wav"; done && rmdir "$K/noisy"
# two pairs, an identity row (clean -> clean), its repetition (ignored), a row naming no file
printf 'noisy_audio,clean_audio\ns1_noisy.wav,s1.wav\ns2_noisy.wav,s2.wav\ns2.wav,s2.wav\ns2.wav,s2.wav\nnope.wav,s1.wav\n' >k/audios_meta_data.csv
run --data k --methods noisy,gate --json k.json
check_rc "kaggle: exit code" 0
check_py "kaggle: 2 pairs + 1 identity row scored" k.json 'j["files_scored"] == 3 and sum(f["identity"] for f in j["files"]) == 1'
check_py "kaggle: the row naming a missing file is skipped" k.json 'len(j["skipped"]) == 1 and "nope.wav" in j["skipped"][0]["noisy"]'
check_stderr_has "kaggle: missing file reported" "nope.wav: named in the CSV but not found"
check_py "kaggle: identity pair scores at the ceiling, finite" k.json "$ALL_FIELDS"

# ---------------------------------------------------------------- 5. one pair, default methods
run --clean p/clean/f1.wav --noisy p/noisy/f1.wav --json one.json
check_rc "one pair: exit code" 0
check_py "one pair: one file scored" one.json 'j["files_scored"] == 1'
check_py "one pair: default methods" one.json 'j["methods"][:4] == ["noisy", "subtract", "gate", "gate-nonstationary"]'
check_py "one pair: every metric present and finite" one.json "$ALL_FIELDS"
sox -M p/noisy/f1.wav p/noisy/f1.wav st_noisy.wav 2>/dev/null
sox -M p/clean/f1.wav p/clean/f1.wav st_clean.wav 2>/dev/null
run --clean st_clean.wav --noisy st_noisy.wav --methods noisy,gate --json st.json -q
check_rc "stereo pair: exit code" 0
check_py "stereo pair: same scores as mono" st.json "abs(j['mean']['gate']['si_sdr_db'] - json.load(open('one.json'))['mean']['gate']['si_sdr_db']) < 0.01"
check_eq "-q: nothing on stdout" "" "$(cat "$LOG/out")"
run --clean p/clean/f1.wav --noisy missing.wav --methods noisy
check_rc "one pair, missing noisy file: exit code 1" 1
check_stderr_has "one pair, missing noisy file: named" "missing.wav"

# ---------------------------------------------------------------- 6. usage errors: exit 2, no output
mkdir -p u
usage_case() {  # name args...
  local name=$1; shift
  run "$@" --json u/out.json --csv u/out.csv
  check_rc "usage, $name: exit code 2" 2
  check_no_file "usage, $name: no JSON" u/out.json
  check_no_file "usage, $name: no CSV" u/out.csv
}
usage_case "no input"
usage_case "unknown method" --data p --methods noisy,bogus
usage_case "--data and --clean" --data p --clean p/clean/f1.wav --noisy p/noisy/f1.wav
usage_case "--clean without --noisy" --clean p/clean/f1.wav
usage_case "missing --data folder" --data nowhere
usage_case "unknown option" --data p --frobnicate
run --data p --json nowhere/out.json
check_rc "usage, --json in a missing folder: exit code 2" 2
run --help
check_rc "--help: exit code 0" 0

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
