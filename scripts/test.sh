#!/usr/bin/env bash
# Builds secateur and runs the whole test suite with ctest.
#   scripts/test.sh              release build in build/, all tests
#   scripts/test.sh --sanitize   AddressSanitizer + UndefinedBehaviorSanitizer build in build-asan/
#   extra arguments after the flags go to ctest (e.g. -L unit, -R Tokenizer)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
build=build
cmake_flags=(-DCMAKE_BUILD_TYPE=Release)
if [ "${1:-}" = "--sanitize" ]; then
  shift
  build=build-asan
  cmake_flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DSECATEUR_SANITIZE=ON -DSECATEUR_BENCH=OFF)
  export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
fi
cmake -S . -B "$build" "${cmake_flags[@]}" >/dev/null
cmake --build "$build" -j "$(nproc)"
cd "$build"
ctest --output-on-failure -j "$(nproc)" "$@"
