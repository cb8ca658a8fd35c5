#!/usr/bin/env bash
# Cost of Minitron's width statistics relative to a plain forward over the same tokens (issue 9).
# Usage: bench/minitron_stats.sh [--layers 4 --nsamples 8 --seqlen 512 --repeat 3]
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/blas_env.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)" --target minitron_stats >/dev/null
blas_env build/bench/minitron_stats "$@"
