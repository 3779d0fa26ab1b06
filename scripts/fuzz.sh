#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz) with clang, AddressSanitizer and UBSan in their own
# build folder, and runs each for a bounded time on its seed corpus (tests/fuzz/corpus/TARGET;
# new inputs go to the build folder's corpus/TARGET). Exits non-zero on any finding (a crash, a
# sanitizer report, an exception other than denoise::Error, a timeout); the reproducer is kept in
# the build folder's findings/TARGET and its report printed.
#   scripts/fuzz.sh                    every target, 60 s each
#   FUZZ_SECONDS=3600 scripts/fuzz.sh fuzz_audio     one target for an hour
#   FUZZ_BUILD_DIR=out FUZZ_JOBS=4 scripts/fuzz.sh   elsewhere, four fuzzing processes per target
# Needs clang and libclang-rt-14-dev (scripts/install-deps.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
build="${FUZZ_BUILD_DIR:-build-fuzz}"
case "$build" in /*) ;; *) build="$root/$build" ;; esac
seconds="${FUZZ_SECONDS:-60}"
jobs="${FUZZ_JOBS:-1}"
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(fuzz_audio fuzz_model fuzz_pairs fuzz_config)

launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang \
  -DCMAKE_CXX_COMPILER=clang++ -DDENOISE_FUZZ=ON -DDENOISE_SANITIZE=ON -DDENOISE_BUILD_TESTS=OFF \
  -DDENOISE_WITH_PORTAUDIO=OFF "${launcher[@]}" \
  "-DCMAKE_CXX_FLAGS=-fno-sanitize-recover=all -fno-sanitize=vptr" \
  "-DCMAKE_C_FLAGS=-fno-sanitize-recover=all" >/dev/null
cmake --build "$build" -j"$(nproc)" --target "${targets[@]}"

# LibTorch and libsndfile's codecs are not instrumented; their one-time allocations are not leaks
# of ours.
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}"
parallel=()
[ "$jobs" -gt 1 ] && parallel=(-jobs="$jobs" -workers="$jobs")
failed=()
for t in "${targets[@]}"; do
  work="$build/corpus/$t"      # new inputs found here; the committed seeds stay untouched
  findings="$build/findings/$t"
  mkdir -p "$work" "$findings"
  echo "fuzz: $t for ${seconds} s"
  if ! (cd "$findings" && "$build/bin/$t" -max_total_time="$seconds" -timeout=25 \
          -rss_limit_mb=4096 -max_len=65536 "${parallel[@]}" -print_final_stats=1 \
          "$work" "$root/tests/fuzz/corpus/$t" >"$build/$t.log" 2>&1); then
    failed+=("$t")
    echo "fuzz: FINDING in $t (log: $build/$t.log, reproducer in $findings):"
    grep -E 'ERROR|SUMMARY|fuzz: exception|Test unit written|runtime error' "$build/$t.log" | head -20
  else
    grep -E '^stat::number_of_executed_units|^Done' "$build/$t.log" | tr '\n' ' '; echo
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: findings in ${failed[*]}"
  exit 1
fi
echo "fuzz: no findings (${targets[*]}, ${seconds} s each)"
