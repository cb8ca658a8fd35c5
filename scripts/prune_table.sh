#!/usr/bin/env bash
# Regenerates the README's pruning table with the secateur CLI: stories260K pruned by magnitude,
# Wanda and SparseGPT at {50%, 2:4, 4:8, 70%, 70% + OWL}; calibration on tinystories/calib.txt
# (128 windows x 256 tokens, seed 0), perplexity on tinystories/eval.txt (papers protocol,
# non-overlapping 256-token windows). Prints a markdown table on stdout. At 4:8 the down
# projections stay dense (their 172 inputs are not a multiple of 8).
# Usage: scripts/prune_table.sh [SHARED_DIR]   (default ../shared)
set -euo pipefail
cd "$(dirname "$0")/.."
shared=${1:-../shared}
model=$shared/models/stories260K/stories260K.bin
calib=$shared/data/tinystories/calib.txt
evalt=$shared/data/tinystories/eval.txt
BUILD=${BUILD:-build}
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD" -j "$(nproc)" --target secateur >/dev/null
S="$BUILD/secateur -q"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

ppl() {  # perplexity of a model on the evaluation text
  $S eval "$1" --ppl "$evalt" --seqlen 256 --json | /usr/bin/python3 -c 'import json,sys; print("%.2f" % json.load(sys.stdin)["perplexity"]["ppl"])'
}

echo "| method | 50% | 2:4 | 4:8 | 70% | 70% + OWL |"
echo "|---|---|---|---|---|---|"
echo "| dense | $(ppl "$model") | | | | |"
for method in magnitude wanda sparsegpt; do
  row="| $method |"
  for target in "--sparsity 0.5" "--nm 2:4" "--nm 4:8" "--sparsity 0.7" "--sparsity 0.7 --owl"; do
    if [ "$method" = magnitude ] && [[ "$target" == *owl* ]]; then row="$row – |"; continue; fi
    skip=()
    # stories260K's down_proj has 172 inputs, not a multiple of 8: 4:8 leaves it dense.
    [ "$target" = "--nm 4:8" ] && skip=(--skip 'mlp\.down_proj')
    # shellcheck disable=SC2086
    $S prune "$model" -o "$out/p.gguf" --method $method $target "${skip[@]}" --calib "$calib" --nsamples 128 --seqlen 256 --seed 0 >/dev/null
    row="$row $(ppl "$out/p.gguf") |"
  done
  echo "$row"
done
