#!/usr/bin/env bash
# Forward tokens/s, secateur vs PyTorch, same machine, same run (issue 2 benchmark).
# Usage: bench/forward.sh [--layers 4 --batch 4 --seqlen 512 --repeat 3]
# OpenBLAS environment: bench/blas_env.sh (unset for both sides; BENCH_OPENBLAS_CORETYPE=Prescott forces one).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/blas_env.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)" --target bench_forward >/dev/null
ours=$(blas_env build/bench/bench_forward "$@")
theirs=$(blas_env /usr/bin/python3 bench/forward_torch.py "$@")
echo "$ours"
echo "$theirs"
a=$(echo "$ours" | sed -E 's/.* ([0-9.]+) tokens\/s/\1/')
b=$(echo "$theirs" | sed -E 's/.* ([0-9.]+) tokens\/s/\1/')
echo "ratio secateur/pytorch: $(echo "scale=2; $a / $b" | bc)x"
