#!/usr/bin/env bash
# `cmake --install` into a temporary prefix, then the installed tree alone:
#   bash tests/cli/test_install.sh BUILD_DIR SOURCE_DIR
# The installed programs, library, header, pkg-config file, CMake package and default model are
# used with the build and source folders out of reach: inside a private mount namespace
# (unshare -rm) both are covered by empty tmpfs mounts, so any path under them reads as missing.
# That proves that nothing installed needs them (no run path, model path or plugin path into the
# build or checkout). Where user namespaces are not allowed, the checks run with both folders
# still present and the dynamic loader's log (LD_DEBUG=files) must show no library loaded from
# them: weaker (a model file opened from the checkout would go unseen), and said so in the output.
# Checks: --help of each program; the installed infer with the default model gives the build's
# output; a C program built through pkg-config (and one through find_package) denoises in pieces
# of random sizes and matches the file pipeline within 1e-4 (unet at 16 and 48 kHz, the causal
# gate at 48 kHz); streams on one model in two threads equal one alone; bad calls return errors. Prints "ok - ..." / "FAIL - ..." and "N passed, M
# failed"; non-zero exit status if any check failed.
set -u
[ $# -eq 2 ] || { echo "usage: $0 BUILD_DIR SOURCE_DIR" >&2; exit 2; }
BUILD=$(cd "$1" && pwd -P) SRC=$(cd "$2" && pwd -P)
PY=/usr/bin/python3
"$PY" -c 'import numpy, soundfile' 2>/dev/null || { echo "missing: python3 with numpy and soundfile" >&2; exit 2; }
for tool in cmake cc pkg-config sox; do
  command -v "$tool" >/dev/null || { echo "missing tool: $tool" >&2; exit 2; }
done
T=$(mktemp -d /tmp/denoise-install.XXXXXX)
trap 'rm -rf "$T"' EXIT
unset DENOISE_MODEL
P=$T/prefix

if ! cmake --install "$BUILD" --prefix "$P" >"$T/install.log" 2>&1; then
  echo "FAIL - cmake --install: $(tail -3 "$T/install.log" | tr '\n' '|')"
  echo "0 passed, 1 failed"
  exit 1
fi

# Inputs: a voice with noise, as float WAV at 16 and 48 kHz (outputs keep the float format).
VOICE=/usr/share/sounds/alsa/Front_Center.wav
mkdir -p "$T/work"
if [ -f "$VOICE" ]; then
  sox "$VOICE" -r 16000 -c 1 -e float -b 32 "$T/work/voice16.wav" 2>/dev/null
else
  sox -n -r 16000 -c 1 -e float -b 32 "$T/work/voice16.wav" synth 1.5 sine 180-900 vol 0.3
fi
len=$(soxi -D "$T/work/voice16.wav")
sox -n -r 16000 -c 1 -e float -b 32 "$T/work/noise16.wav" synth "$len" pinknoise vol 0.05
sox -m "$T/work/voice16.wav" "$T/work/noise16.wav" "$T/work/x16.wav"
sox "$T/work/x16.wav" -r 48000 "$T/work/x48.wav"
# References from the build's own infer (the file pipeline), before the folders are hidden.
"$BUILD/bin/infer" "$T/work/x16.wav" -o "$T/work/ref_unet16.wav" -q &&
  "$BUILD/bin/infer" "$T/work/x48.wav" -o "$T/work/ref_unet48.wav" -q &&
  "$BUILD/bin/infer" "$T/work/x48.wav" --method gate-nonstationary --causal --padding 0 \
    --n-fft 960 --hop 240 -o "$T/work/ref_gate48.wav" -q || { echo "FAIL - reference outputs"; exit 1; }
HAVE_LADSPA=no
if [ -f "$BUILD/lib/denoise_ladspa.so" ] && command -v applyplugin >/dev/null; then
  HAVE_LADSPA=yes
  sox "$T/work/x16.wav" -b 16 "$T/work/x16s.wav"
  applyplugin "$T/work/x16s.wav" "$T/work/ref_ladspa16.wav" "$BUILD/lib/denoise_ladspa.so" \
    denoise_mono 0 100 0 >/dev/null 2>&1 || { echo "FAIL - reference plugin output"; exit 1; }
fi
head -c 4000 "$SRC/models/pretrained/default.dnz" >"$T/work/truncated.dnz"
# One byte flipped in the middle (the checksum catches it), and a WAV file named .dnz.
"$PY" -c 'import sys; d = bytearray(open(sys.argv[1], "rb").read()); d[len(d) // 2] ^= 0xFF
open(sys.argv[2], "wb").write(d)' "$SRC/models/pretrained/default.dnz" "$T/work/flipped.dnz"
cp "$T/work/x16.wav" "$T/work/foreign.dnz"
cp "$SRC/tests/capi/denoise_pieces.c" "$T/work/"

cat >"$T/inner.sh" <<'INNER'
set -u
cd "$T/work" || exit 2
PASSED=0 FAILED=0
ok() { echo "ok - $1"; PASSED=$((PASSED + 1)); }
fail() { echo "FAIL - $1: $2"; FAILED=$((FAILED + 1)); }

if [ "$MODE" = hidden ]; then
  if [ -z "$(ls -A "$SRC" 2>/dev/null)" ] && [ -z "$(ls -A "$BUILD" 2>/dev/null)" ] &&
     [ ! -e "$BUILD/bin/infer" ] && [ ! -e "$SRC/models/pretrained/default.dnz" ]; then
    ok "build and source folders out of reach (empty)"
  else fail "build and source folders out of reach" "still listed"; fi
fi
# Libraries the loader opens must come from the prefix or the system, never the build or checkout.
loaded_from_tree() {  # LOGFILE
  grep -E "file=.*($BUILD|$SRC)/" "$1" | grep -v "$T/" | head -3
}

for prog in infer evaluate train make_tiny_dataset make_mixtures; do
  [ -x "$P/bin/$prog" ] || { fail "$prog installed" "no $P/bin/$prog"; continue; }
  if LD_DEBUG=files "$P/bin/$prog" --help >help.out 2>help.err && grep -q "Usage" help.out; then
    bad=$(loaded_from_tree help.err)
    [ -z "$bad" ] && ok "installed $prog --help" || fail "installed $prog --help" "loaded $bad"
  else
    fail "installed $prog --help" "exit or text: $(head -3 help.err | tr '\n' '|')"
  fi
done
for f in include/denoise/denoise.h lib/pkgconfig/denoise.pc lib/cmake/denoise/denoiseConfig.cmake \
         share/denoise/models/default.dnz lib/libdenoise_model.so; do
  [ -f "$P/$f" ] && ok "installed $f" || fail "installed $f" "missing"
done

# The installed infer finds the installed default model by itself.
for r in 16 48; do
  if LD_DEBUG=files "$P/bin/infer" "x$r.wav" -o "inst_unet$r.wav" >infer.out 2>infer.err &&
     grep -q "unet" infer.out; then
    bad=$(loaded_from_tree infer.err)
    same=$("$PY" -c 'import sys, numpy as np, soundfile as sf
a, _ = sf.read(sys.argv[1]); b, _ = sf.read(sys.argv[2]); print(np.max(np.abs(a - b)) <= 1e-6)' \
      "inst_unet$r.wav" "ref_unet$r.wav")
    if [ -n "$bad" ]; then fail "installed infer, default model, $r kHz" "loaded $bad"
    elif [ "$same" != True ]; then fail "installed infer, default model, $r kHz" "output differs from the build's"
    else ok "installed infer, default model, $r kHz (same output as the build's)"; fi
  else
    fail "installed infer, default model, $r kHz" "$(cat infer.out infer.err | grep -v '^ *[0-9]*:' | head -3 | tr '\n' '|')"
  fi
done

# A plain C program through pkg-config.
export PKG_CONFIG_PATH=$P/lib/pkgconfig
if cc -std=c89 -pedantic -Wall -Wextra -Werror -x c -fsyntax-only $(pkg-config --cflags denoise) \
     - <<<'#include <denoise/denoise.h>
int main(void) { return denoise_version() ? 0 : 1; }' 2>cc.err; then
  ok "denoise.h compiles as C89 (-pedantic -Werror)"
else
  fail "denoise.h compiles as C89" "$(head -3 cc.err | tr '\n' '|')"
fi
if cc -std=c99 -pedantic -Wall -Wextra -Werror -pthread denoise_pieces.c -o denoise_pieces \
     $(pkg-config --cflags --libs denoise) -lm -Wl,-rpath,"$(pkg-config --variable=libdir denoise)" 2>cc.err; then
  ok "C program built through pkg-config"
else
  fail "C program built through pkg-config" "$(head -3 cc.err | tr '\n' '|')"
fi
# Its output equals the file pipeline's, but for the last 20 ms (where the file pipeline's last
# frame and resampler flush end the signal differently from a stream that goes on).
compare() {  # NAME OUT.f32 REF.wav RATE
  "$PY" -c 'import sys, numpy as np, soundfile as sf
a = np.fromfile(sys.argv[1], dtype=np.float32); b, _ = sf.read(sys.argv[2], dtype="float32")
k = len(b) - int(sys.argv[3]) // 50
d = np.abs(a[:k] - b[:k]).max() if len(a) == len(b) else float("inf")
print("%.3g" % d); sys.exit(0 if d <= 1e-4 else 1)' "$2" "$3" "$4" >cmp.out 2>&1 &&
    ok "$1 (max difference $(cat cmp.out))" || fail "$1" "max difference $(cat cmp.out) > 1e-4"
}
if [ -x denoise_pieces ]; then
  for r in 16 48; do
    sox "x$r.wav" -t f32 "x$r.f32"
    if LD_DEBUG=files ./denoise_pieces denoise - "${r}000" "x$r.f32" "y_unet$r.f32" $((r + 1)) >dp.out 2>dp.err; then
      bad=$(loaded_from_tree dp.err)
      [ -z "$bad" ] || fail "C program loads nothing from the build or checkout" "$bad"
      compare "C API, default model, $r kHz, random pieces = file pipeline" "y_unet$r.f32" "ref_unet$r.wav" "${r}000"
    else
      fail "C API, default model, $r kHz" "$(grep -v '^ *[0-9]*:' dp.err | head -3 | tr '\n' '|')"
    fi
  done
  if ./denoise_pieces denoise gate 48000 x48.f32 y_gate48.f32 5 >dp.out 2>dp.err; then
    compare "C API, causal gate, 48 kHz, random pieces = file pipeline" y_gate48.f32 ref_gate48.wav 48000
  else
    fail "C API, causal gate, 48 kHz" "$(head -3 dp.err | tr '\n' '|')"
  fi
  ./denoise_pieces threads 48000 x48.f32 >thr.out 2>&1 &&
    ok "C API, one model, streams in two threads at once = one alone ($(grep -o 'difference.*' thr.out))" ||
    fail "C API, one model, two threads" "$(tr '\n' '|' <thr.out)"
  ./denoise_pieces bad-calls truncated.dnz flipped.dnz foreign.dnz >bad.out 2>&1 && ok "C API bad calls return errors" ||
    fail "C API bad calls return errors" "$(grep FAIL bad.out | head -3 | tr '\n' '|')"
fi

# The installed LADSPA plugin finds the installed library and model by itself.
if [ "$HAVE_LADSPA" = yes ]; then
  plugin=$(find "$P" -name denoise_ladspa.so | head -1)
  if [ -n "$plugin" ] && LD_DEBUG=files applyplugin x16s.wav inst_ladspa16.wav "$plugin" denoise_mono 0 100 0 \
       >ap.out 2>ap.err && cmp -s inst_ladspa16.wav ref_ladspa16.wav; then
    bad=$(loaded_from_tree ap.err)
    [ -z "$bad" ] && ok "installed LADSPA plugin (applyplugin) = the build's, model included" ||
      fail "installed LADSPA plugin" "loaded $bad"
  else
    fail "installed LADSPA plugin" "${plugin:-not installed}: $(grep -v '^ *[0-9]*:' ap.err 2>/dev/null | head -3 | tr '\n' '|')"
  fi
fi

# The CMake package.
mkdir -p pkg && cat >pkg/CMakeLists.txt <<'CM'
cmake_minimum_required(VERSION 3.18)
project(client C)
find_package(denoise 0.1 CONFIG REQUIRED)
add_executable(client ../denoise_pieces.c)
find_package(Threads REQUIRED)
target_link_libraries(client PRIVATE denoise::denoise Threads::Threads m)
CM
if cmake -S pkg -B pkg/build -DCMAKE_PREFIX_PATH="$P" >cm.log 2>&1 && cmake --build pkg/build >>cm.log 2>&1 &&
   pkg/build/client bad-calls truncated.dnz >/dev/null 2>&1; then
  ok "C program built through find_package(denoise)"
else
  fail "C program built through find_package(denoise)" "$(grep -iE 'error|fail' cm.log | head -3 | tr '\n' '|')"
fi

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
INNER

cd "$T" || exit 2
export T P BUILD SRC PY HAVE_LADSPA
# DENOISE_INSTALL_TEST_MODE=present runs the weaker check even where namespaces work.
if [ "${DENOISE_INSTALL_TEST_MODE:-}" != present ] && unshare -rm true 2>/dev/null; then
  # Deeper folder first: the build folder may lie inside the checkout.
  MODE=hidden unshare -rm bash -c 'mount -t tmpfs none "$BUILD" && mount -t tmpfs none "$SRC" && exec bash "$T/inner.sh"'
else
  echo "note: the build and source folders stay in place (no user namespaces here, or DENOISE_INSTALL_TEST_MODE=present); checking only that no library is loaded from them"
  MODE=present bash "$T/inner.sh"
fi
