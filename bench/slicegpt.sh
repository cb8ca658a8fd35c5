#!/usr/bin/env bash
# SliceGPT's slicing time, secateur vs the official procedure in PyTorch, same machine, same run
# (issue 10). Usage: bench/slicegpt.sh [--layers 4 --nsamples 8 --seqlen 512]
# OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are unset for both sides (see bench/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)" --target slicegpt_slice >/dev/null
ours=$(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE build/bench/slicegpt_slice "$@")
official=$(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3 bench/slicegpt_torch.py "$@")
same=$(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3 bench/slicegpt_torch.py "$@" --same-steps 1)
echo "$ours"
echo "$official"
echo "$same"
secs() { echo "$1" | sed -E 's/.*: ([0-9.]+) s$/\1/'; }
echo "secateur vs PyTorch, the official steps: $(echo "scale=2; $(secs "$official") / $(secs "$ours")" | bc)x faster"
echo "secateur vs PyTorch, the same steps:     $(echo "scale=2; $(secs "$same") / $(secs "$ours")" | bc)x faster"
