#!/usr/bin/env bash
# Training tokens/s (forward + backward + AdamW), secateur vs PyTorch, same machine, same run (issue 5).
# Usage: bench/train.sh [--layers 2 --batch 1 --seqlen 256 --repeat 3 --recompute 0]
# OpenBLAS environment: bench/blas_env.sh (unset for both sides; BENCH_OPENBLAS_CORETYPE=Prescott forces one).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/blas_env.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)" --target train_tokens >/dev/null
ours=$(blas_env build/bench/train_tokens "$@")
theirs=$(blas_env /usr/bin/python3 bench/train_torch.py "$@")
echo "$ours"
echo "$theirs"
a=$(echo "$ours" | sed -E 's/.* ([0-9.]+) tokens\/s/\1/')
b=$(echo "$theirs" | sed -E 's/.* ([0-9.]+) tokens\/s/\1/')
echo "ratio secateur/pytorch: $(echo "scale=2; $a / $b" | bc)x"
