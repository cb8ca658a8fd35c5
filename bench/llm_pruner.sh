#!/usr/bin/env bash
# LLM-Pruner Taylor importance (gradients + scores) and surgery, secateur vs PyTorch, same machine,
# same run (issue 8 benchmark). Usage: bench/llm_pruner.sh [--layers 4 --nsamples 10 --seqlen 64 --repeat 3]
# OpenBLAS environment: bench/blas_env.sh (unset for both sides; BENCH_OPENBLAS_CORETYPE=Prescott forces one).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/blas_env.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)" --target llm_pruner_taylor >/dev/null
ours=$(blas_env build/bench/llm_pruner_taylor "$@")
official=$(blas_env /usr/bin/python3 bench/llm_pruner_torch.py "$@")
same=$(blas_env /usr/bin/python3 bench/llm_pruner_torch.py "$@" --same-tensors 1)
echo "$ours"
echo "$official"
echo "$same"
total() { echo "$1" | sed -E 's/.* total ([0-9.]+) s.*/\1/'; }
echo "secateur vs PyTorch as the official code (every gradient): $(echo "scale=2; $(total "$official") / $(total "$ours")" | bc)x faster"
echo "secateur vs PyTorch with the same gradients:               $(echo "scale=2; $(total "$same") / $(total "$ours")" | bc)x faster"
