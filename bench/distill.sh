#!/usr/bin/env bash
# Distillation step throughput into a narrower student, secateur vs PyTorch, same machine, same run
# (issue 9). Usage: bench/distill.sh [--layers 2 --batch 1 --seqlen 256 --repeat 3]
# OpenBLAS environment: bench/blas_env.sh (unset for both sides; BENCH_OPENBLAS_CORETYPE=Prescott forces one).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/blas_env.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)" --target distill_step >/dev/null
ours=$(blas_env build/bench/distill_step "$@")
theirs=$(blas_env /usr/bin/python3 bench/distill_torch.py "$@")
echo "$ours"
echo "$theirs"
a=$(echo "$ours" | sed -E 's/.* ([0-9.]+) tokens\/s/\1/')
b=$(echo "$theirs" | sed -E 's/.* ([0-9.]+) tokens\/s/\1/')
echo "ratio secateur/pytorch: $(echo "scale=2; $a / $b" | bc)x"
