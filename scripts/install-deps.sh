#!/usr/bin/env bash
# Installs the Debian (bookworm) packages the project builds and tests with.
# Runs apt-get directly as root, or through sudo otherwise. Safe to run again.
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  libtorch-dev libsndfile1-dev libsamplerate0-dev libfftw3-dev
  # LibTorch's matrix products go through whatever libblas.so.3 Debian's alternatives select;
  # without this it is the reference (netlib) BLAS, which made training 2.4x slower. OpenBLAS's
  # OpenMP build shares LibTorch's libgomp threads (the pthread build would add a second pool
  # competing with them for the same cores); installing it switches the alternative.
  libopenblas0-openmp
  portaudio19-dev nlohmann-json3-dev libcli11-dev libgtest-dev
  libcairo2-dev       # PNG figures (infer --plot, evaluate --report, training curves)
  fonts-dejavu-core   # a font for the figures' labels on machines without one
  alsa-utils          # example voices in /usr/share/sounds/alsa, aplay/arecord
  sox                 # demo and tests make and measure audio with it
  time                # GNU time, peak memory in scripts/bench.sh
  ladspa-sdk          # ladspa.h for the LADSPA plugin; analyseplugin/applyplugin test it
  python3 python3-numpy python3-soundfile   # the CLI tests check audio and JSON with them
  libgloo-dev         # Gloo's headers, for LibTorch's c10d process groups (train on several processes)
  python3-torch       # PyTorch's launcher (torchrun), with which tests/cli/test_train_dist_cli.sh starts train
  clang libclang-rt-14-dev   # scripts/fuzz.sh: libFuzzer targets with ASan and UBSan
)
# The live-mode test (tests/cli/test_live_cli.sh) needs a sound card; on machines without one it
# runs a private pulseaudio (which brings libasound2-plugins, ALSA's pulse plugin, through which
# PortAudio reaches it) as a virtual microphone and speaker. Not where PipeWire serves PulseAudio
# (pipewire-pulse, e.g. GNOME desktops): two sound servers would compete for the user's session,
# so there the live test skips instead.
if ! dpkg-query -W -f='${Status}' pipewire-pulse 2>/dev/null | grep -q "install ok installed"; then
  packages+=(pulseaudio pulseaudio-utils libasound2-plugins)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  SUDO="sudo"
fi
echo "install-deps: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
