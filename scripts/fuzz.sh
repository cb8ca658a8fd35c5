#!/usr/bin/env bash
# Coverage-guided fuzzing of every file reader (libFuzzer + ASan + UBSan; see docs/HACKING.md).
#   scripts/fuzz.sh [SECONDS_PER_HARNESS] [HARNESS...]     default: 60 s each, all harnesses
# Builds the harnesses in build-fuzz/ with clang, writes seed corpora made from ../shared (or
# $SECATEUR_SHARED) to build-fuzz/seeds/, then runs the harnesses one after another, each for the
# given time (nice -n 19, one process). The corpora grow across runs in build-fuzz/corpus/<harness>;
# an input that crashes, hangs (> 10 s) or needs more than 2 GB is saved to build-fuzz/artifacts/
# and makes the script fail. Reproduce one with: build-fuzz/fuzz/fuzz_<harness> <artifact file>.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
[ $# -gt 0 ] && shift
all=(gguf safetensors hf_config hf_model llama2c tokenizer_json tokenizer_model tokenizer_bin tasks corpus)
harnesses=("$@")
[ ${#harnesses[@]} -eq 0 ] && harnesses=("${all[@]}")
shared="${SECATEUR_SHARED:-$PWD/../shared}"

bash scripts/setup.sh --fuzz
CC=clang CXX=clang++ cmake -S . -B build-fuzz -DSECATEUR_FUZZ=ON -DSECATEUR_TESTS=OFF -DSECATEUR_BENCH=OFF \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
# The seeds are written by the secateur CLI: the release build's when there is one (CI has just
# built it), else an instrumented one built here.
cli="${SECATEUR_CLI:-}"
[ -z "$cli" ] && [ -x build/secateur ] && cli=build/secateur
targets=(fuzz_all)
[ -z "$cli" ] && targets+=(secateur) && cli=build-fuzz/secateur
cmake --build build-fuzz -j "$(nproc)" --target "${targets[@]}"

out=build-fuzz
rm -rf "$out/seeds"
if [ -d "$shared" ]; then
  "${SECATEUR_PYTHON:-/usr/bin/python3}" fuzz/make_seeds.py "$cli" "$shared" "$out/seeds"
else
  echo "fuzz: $shared is absent; starting from empty corpora (set SECATEUR_SHARED)" >&2
fi
mkdir -p "$out/artifacts" "$out/logs"

export OMP_NUM_THREADS=1
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
failed=()
printf '%-16s %8s %12s %8s %10s  %s\n' harness seconds executions files bytes result
for h in "${harnesses[@]}"; do
  corpus="$out/corpus/$h" seeds="$out/seeds/$h" log="$out/logs/$h.log"
  mkdir -p "$corpus" "$seeds"
  dict=()
  [ -f "fuzz/dicts/$h.dict" ] && dict=(-dict="fuzz/dicts/$h.dict")
  rc=0
  nice -n 19 "$out/fuzz/fuzz_$h" "$corpus" "$seeds" "${dict[@]}" -max_total_time="$seconds" -rss_limit_mb=2048 \
    -timeout=10 -print_final_stats=1 -artifact_prefix="$out/artifacts/$h-" >"$log" 2>&1 || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  files=$(find "$corpus" -type f | wc -l)
  bytes=$(find "$corpus" -type f -printf '%s\n' | awk '{s += $1} END {print s + 0}')
  result=ok
  if [ "$rc" -ne 0 ]; then
    result="FAILED (exit $rc; log $log)"
    failed+=("$h")
  fi
  printf '%-16s %8s %12s %8s %10s  %s\n' "$h" "$seconds" "${execs:-?}" "$files" "$bytes" "$result"
  if [ "$rc" -ne 0 ]; then
    grep -E "ERROR: |SUMMARY: |runtime error|Test unit written|terminate called|what\(\)" "$log" | head -20 >&2 || true
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: findings in: ${failed[*]} (inputs in $out/artifacts/)" >&2
  exit 1
fi
