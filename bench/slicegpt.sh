#!/usr/bin/env bash
# SliceGPT's slicing time, secateur vs the official procedure in PyTorch, same machine, same run
# (issue 10). Usage: bench/slicegpt.sh [--layers 4 --nsamples 8 --seqlen 512]
# OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are unset for both sides (see bench/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)" --target slicegpt_slice >/dev/null
ours=$(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE build/bench/slicegpt_slice "$@")
theirs=$(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3 bench/slicegpt_torch.py "$@")
echo "$ours"
echo "$theirs"
a=$(echo "$ours" | sed -E 's/.*: ([0-9.]+) s$/\1/')
b=$(echo "$theirs" | sed -E 's/.*: ([0-9.]+) s$/\1/')
echo "secateur is $(echo "scale=2; $b / $a" | bc)x faster"
