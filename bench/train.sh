#!/usr/bin/env bash
# Training tokens/s (forward + backward + AdamW), secateur vs PyTorch, same machine, same run (issue 5).
# Usage: bench/train.sh [--layers 2 --batch 1 --seqlen 256 --repeat 3 --recompute 0]
# OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are unset for both sides (see bench/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)" --target train_tokens >/dev/null
ours=$(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE build/bench/train_tokens "$@")
theirs=$(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3 bench/train_torch.py "$@")
echo "$ours"
echo "$theirs"
a=$(echo "$ours" | sed -E 's/.* ([0-9.]+) tokens\/s/\1/')
b=$(echo "$theirs" | sed -E 's/.* ([0-9.]+) tokens\/s/\1/')
echo "ratio secateur/pytorch: $(echo "scale=2; $a / $b" | bc)x"
