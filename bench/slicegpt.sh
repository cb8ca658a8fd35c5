#!/usr/bin/env bash
# SliceGPT's slicing time, secateur vs the official procedure in PyTorch, same machine, same run
# (issue 10). Usage: bench/slicegpt.sh [--layers 4 --nsamples 8 --seqlen 512]
# OpenBLAS environment: bench/blas_env.sh (unset for both sides; BENCH_OPENBLAS_CORETYPE=Prescott forces one).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/blas_env.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)" --target slicegpt_slice >/dev/null
ours=$(blas_env build/bench/slicegpt_slice "$@")
official=$(blas_env /usr/bin/python3 bench/slicegpt_torch.py "$@")
same=$(blas_env /usr/bin/python3 bench/slicegpt_torch.py "$@" --same-steps 1)
echo "$ours"
echo "$official"
echo "$same"
secs() { echo "$1" | sed -E 's/.*: ([0-9.]+) s$/\1/'; }
echo "secateur vs PyTorch, the official steps: $(echo "scale=2; $(secs "$official") / $(secs "$ours")" | bc)x faster"
echo "secateur vs PyTorch, the same steps:     $(echo "scale=2; $(secs "$same") / $(secs "$ours")" | bc)x faster"
