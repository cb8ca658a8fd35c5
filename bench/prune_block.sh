#!/usr/bin/env bash
# Time to prune one LLaMA-7B-shaped block (Wanda, SparseGPT at 50%) from 16 x 1024 calibration
# positions, secateur vs PyTorch, same machine, same run (issue 4 benchmark). Block inputs are random
# hidden states N(0,1); weights random N(0,0.02). Both sides: statistics pass (block forward with
# hooks/taps), pruning decision + weight update, output pass (forward of the pruned block).
# Usage: bench/prune_block.sh [--nsamples 16 --seqlen 1024 --methods wanda,sparsegpt]
# OpenBLAS environment: bench/blas_env.sh (unset for both sides; BENCH_OPENBLAS_CORETYPE=Prescott forces one).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/blas_env.sh
BUILD=${BUILD:-build}
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DSECATEUR_BENCH=ON >/dev/null
cmake --build "$BUILD" -j "$(nproc)" --target prune_block >/dev/null
ours=$(blas_env "$BUILD"/bench/prune_block "$@")
theirs=$(blas_env /usr/bin/python3 bench/prune_torch.py "$@")
echo "$ours"
echo "$theirs"
for m in wanda sparsegpt; do
  a=$(echo "$ours" | grep "\"$m\"" | sed -E 's/.*"seconds": ([0-9.]+).*/\1/' || true)
  b=$(echo "$theirs" | grep "\"$m\"" | sed -E 's/.*"seconds": ([0-9.]+).*/\1/' || true)
  if [ -n "$a" ] && [ -n "$b" ]; then
    echo "$m: secateur ${a} s, pytorch ${b} s, speed-up $(echo "scale=2; $b / $a" | bc)x"
  fi
done
