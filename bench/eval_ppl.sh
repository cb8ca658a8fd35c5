#!/usr/bin/env bash
# `secateur eval --ppl` tokens/s vs the same evaluation in PyTorch, same machine, same run (issue 3).
# Usage: bench/eval_ppl.sh [LAYERS=4] [SEQLEN=512] [WINDOWS=4] [BATCH=2]
# A random TinyLlama-1.1B-shaped model (`secateur init --layers LAYERS`, f32) evaluated on the first
# WINDOWS windows of WikiText-2 (papers protocol). OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are unset for
# both sides (see bench/README.md). BUILD (default: build) is the CMake build folder.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/blas_env.sh
LAYERS=${1:-4}; SEQLEN=${2:-512}; WINDOWS=${3:-4}; BATCH=${4:-2}
BUILD=${BUILD:-build}
SHARED=${SECATEUR_SHARED:-../shared}
TEXT=$SHARED/data/wikitext2/wiki.test.raw.txt
TOK=$SHARED/tokenizers/llama2/tokenizer.json
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD" -j "$(nproc)" --target secateur >/dev/null
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$BUILD/secateur" -q init --config configs/tinyllama-1.1b.json --layers "$LAYERS" -o "$tmp/model"
"$BUILD/secateur" -q tokenize --tokenizer "$TOK" --ids < "$TEXT" > "$tmp/ids.txt"
json=$(blas_env "$BUILD/secateur" -q eval "$tmp/model" --tokenizer "$TOK" \
  --ppl "$TEXT" --seqlen "$SEQLEN" --max-windows "$WINDOWS" --batch "$BATCH" --json)
ours=$(echo "$json" | /usr/bin/python3 -c '
import json, sys
p = json.load(sys.stdin)["perplexity"]
print("secateur  eval --ppl: %d windows x %d, batch %d: PPL %.4f, %.2f s, %.1f tokens/s"
      % (p["windows"], p["seqlen"], p["batch"], p["ppl"], p["seconds"], p["tokens_per_second"]))')
theirs=$(blas_env /usr/bin/python3 bench/eval_torch.py "$tmp/model" "$tmp/ids.txt" \
  "$SEQLEN" "$WINDOWS" "$BATCH")
echo "model: TinyLlama-1.1B shapes, $LAYERS blocks + LM head (random, f32), threads: $(nproc)"
echo "$ours"
echo "$theirs"
a=$(echo "$ours" | sed -E 's/.* ([0-9.]+) tokens\/s/\1/')
b=$(echo "$theirs" | sed -E 's/.* ([0-9.]+) tokens\/s/\1/')
echo "ratio secateur/pytorch: $(echo "scale=2; $a / $b" | bc)x"
