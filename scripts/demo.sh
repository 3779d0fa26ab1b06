#!/usr/bin/env bash
# The main job, end to end on a fresh machine: install, build, then denoise a bundled example.
# The example is the spoken "Front Center" from alsa-utils with generated noise (hum + hiss) mixed
# in. It is denoised with the shipped model (models/pretrained/default.dnz; spectral gating when
# the model is missing) and with spectral gating for comparison; the result is shown as a table
# of metrics against the clean voice and as pictures under demo-output/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
build="${BUILD_DIR:-build}"
if [ ! -x "$build/bin/infer" ] || [ ! -x "$build/bin/evaluate" ]; then
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DDENOISE_BUILD_TESTS=OFF >/dev/null
fi
cmake --build "$build" -j"$(nproc)" --target infer evaluate >/dev/null

out=demo-output
mkdir -p "$out"
voice=/usr/share/sounds/alsa/Front_Center.wav
[ -f "$voice" ] || { echo "demo: $voice is missing (package alsa-utils)" >&2; exit 1; }

# 1 s of noise alone, the voice, 0.5 s of noise.
sox -q "$voice" -r 16000 -c 1 -b 16 "$out/clean.wav" pad 1 0.5
dur=$(soxi -D "$out/clean.wav")
sox -q -n -r 16000 -c 1 -b 16 "$out/noise.wav" synth "$dur" pinknoise synth "$dur" sine mix 100 vol 0.08
sox -q -m -v 1 "$out/clean.wav" -v 1 "$out/noise.wav" "$out/noisy.wav"

echo "== infer $out/noisy.wav  (the default method: the shipped U-Net when found)"
"$build/bin/infer" "$out/noisy.wav" -o "$out/denoised.wav" --plot "$out/denoised.png"
echo "== infer $out/noisy.wav --method gate  (spectral gating, for comparison)"
"$build/bin/infer" "$out/noisy.wav" -o "$out/denoised_gate.wav" --method gate --plot "$out/denoised_gate.png"

echo
echo "== evaluate: each method against the clean voice"
"$build/bin/evaluate" --clean "$out/clean.wav" --noisy "$out/noisy.wav" --json "$out/scores.json" \
  2>/dev/null | grep '^|'
echo
echo "Listen:  aplay $out/noisy.wav $out/denoised.wav $out/denoised_gate.wav"
echo "Look:    $out/denoised.png  $out/denoised_gate.png  (spectrograms, the gain applied)"
