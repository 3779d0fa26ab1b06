#!/usr/bin/env bash
# Sets up and runs every test: installs the Debian packages, builds (Release, tests on) and runs
# ctest. Tests that compare against ../shared skip with a message when it is absent.
#   scripts/test.sh              build in ./build
#   BUILD_DIR=out scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
build="${BUILD_DIR:-build}"
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DDENOISE_BUILD_TESTS=ON
cmake --build "$build" -j"$(nproc)"
ctest --test-dir "$build" --output-on-failure -j"$(nproc)"
