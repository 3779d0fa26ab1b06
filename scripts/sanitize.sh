#!/usr/bin/env bash
# The whole test suite built with DENOISE_SANITIZE=ON (AddressSanitizer + UBSan) in its own
# folder and run by ctest; any sanitizer report fails its test. The live test is left out: with
# the sanitizers' slowdown it cannot keep real time. Extra arguments go to ctest (e.g. -R core).
#   scripts/sanitize.sh
#   SANITIZE_BUILD_DIR=out scripts/sanitize.sh -E 'Training\.'
set -euo pipefail
cd "$(dirname "$0")/.."
build="${SANITIZE_BUILD_DIR:-build-asan}"
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDENOISE_BUILD_TESTS=ON \
  -DDENOISE_SANITIZE=ON "${launcher[@]}" >/dev/null
cmake --build "$build" -j"$(nproc)"
export LSAN_OPTIONS="suppressions=$PWD/tests/sanitize/lsan.supp:${LSAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}"
ctest --test-dir "$build" --output-on-failure -j"$(nproc)" -E '^(live_cli|train_cli)$' "$@"
# LeakSanitizer's tracer crashes at the exit of programs that ran LibTorch's thread pool with
# several threads ("Tracer caught signal 11"), as train_cli's runs do: there, leaks go unchecked.
ASAN_OPTIONS="detect_leaks=0:${ASAN_OPTIONS:-}" \
  ctest --test-dir "$build" --output-on-failure -R '^train_cli$' "$@"
