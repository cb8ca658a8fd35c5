#!/usr/bin/env bash
# Runs a benchmark command on an idle machine and beside a busy loop (one core's worth of another
# process: `sh -c 'while :; do :; done'`), alternating, so both conditions see the same machine.
# Usage: bench/busy.sh [ROUNDS=2] -- COMMAND ARGS...
# Example: bench/busy.sh 2 -- build/bench/bench_gemm --cores SkylakeX --shapes block --blis ""
set -euo pipefail
rounds=${1:-2}
shift
[ "${1:-}" = "--" ] && shift
for r in $(seq "$rounds"); do
  echo "== idle (round $r)"
  "$@"
  echo "== one core busy (round $r)"
  sh -c 'while :; do :; done' &
  busy=$!
  "$@" || true
  kill "$busy"
  wait "$busy" 2>/dev/null || true
done
