#!/usr/bin/env bash
# The main job, end to end on a fresh machine: install, build, then denoise a bundled example.
# The example is the spoken "Front Center" from alsa-utils with generated noise (hum + hiss) mixed
# in; the result is described with numbers and spectrogram pictures under demo-output/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
build="${BUILD_DIR:-build}"
if [ ! -x "$build/bin/infer" ]; then
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DDENOISE_BUILD_TESTS=OFF >/dev/null
fi
cmake --build "$build" -j"$(nproc)" --target infer >/dev/null

out=demo-output
mkdir -p "$out"
voice=/usr/share/sounds/alsa/Front_Center.wav
[ -f "$voice" ] || { echo "demo: $voice is missing (package alsa-utils)" >&2; exit 1; }

# 1 s of noise alone, the voice, 0.5 s of noise: the stationary gate profiles the whole file.
sox -q "$voice" -r 16000 -c 1 -b 16 "$out/clean.wav" pad 1 0.5
dur=$(soxi -D "$out/clean.wav")
sox -q -n -r 16000 -c 1 -b 16 "$out/noise.wav" synth "$dur" pinknoise synth "$dur" sine mix 100 vol 0.08
sox -q -m -v 1 "$out/clean.wav" -v 1 "$out/noise.wav" "$out/noisy.wav"

echo "== infer $out/noisy.wav (default method: spectral gating)"
"$build/bin/infer" "$out/noisy.wav" -o "$out/denoised.wav"

rms() { sox "$1" -n trim "$2" "$3" stat 2>&1 | awk '/RMS +amplitude/ {print $3}'; }
db() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", 20 * log(a / b) / log(10) }'; }
noise_in=$(rms "$out/noisy.wav" 0 0.9); noise_out=$(rms "$out/denoised.wav" 0 0.9)
speech_in=$(rms "$out/noisy.wav" 1 1.4); speech_out=$(rms "$out/denoised.wav" 1 1.4)
echo
echo "noise-only first second:  RMS $noise_in -> $noise_out  ($(db "$noise_out" "$noise_in") dB)"
echo "voice + noise segment:    RMS $speech_in -> $speech_out  ($(db "$speech_out" "$speech_in") dB)"
sox "$out/noisy.wav" -n spectrogram -o "$out/noisy.png" -t "noisy" 2>/dev/null || true
sox "$out/denoised.wav" -n spectrogram -o "$out/denoised.png" -t "denoised (gate)" 2>/dev/null || true
echo
echo "Listen:  aplay $out/noisy.wav $out/denoised.wav"
[ -f "$out/denoised.png" ] && echo "Look:    $out/noisy.png  $out/denoised.png (spectrograms)"
