#!/usr/bin/env bash
# Peak RSS of `secateur prune` on a random LLaMA-7B-shaped model of >= 2 GB f32 weights, compared with
# the weights' size (issue 4). Usage: bench/prune_rss.sh [LAYERS=2] [METHOD=sparsegpt]
# Expected peak ~ weights (all in memory, f32) + 2 activation buffers (nsamples*seqlen*4096*4 B)
# + one block's statistics (SparseGPT: X^T X of 4096^2 (q/k/v), 4096^2 (o), 4096^2 (gate/up),
# 11008^2 (down) floats = 0.68 GB; the copy SparseGPT factors, up to 11008^2 floats = 0.48 GB)
# + the forward scratch of one sample + what save_model buffers while writing.
set -euo pipefail
cd "$(dirname "$0")/.."
LAYERS=${1:-2}
METHOD=${2:-sparsegpt}
BUILD=${BUILD:-build}
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD" -j "$(nproc)" --target secateur >/dev/null
TMP=$(mktemp -d "${TMPDIR:-/tmp}/prune_rss.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
S="$BUILD"/secateur
env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$S" init --config configs/llama-7b.json --layers "$LAYERS" -o "$TMP/model"
weights=$(du -sb "$TMP/model" | cut -f1)
env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/time -v "$S" prune "$TMP/model" -o "$TMP/pruned" \
  --method "$METHOD" --sparsity 0.5 --calib ../shared/data/tinystories/calib.txt --nsamples 8 --seqlen 256 \
  --tokenizer ../shared/tokenizers/llama2/tokenizer.json >"$TMP/out.txt" 2>"$TMP/time.txt" || { cat "$TMP/time.txt"; exit 1; }
peak_kb=$(grep "Maximum resident set size" "$TMP/time.txt" | awk '{print $NF}')
echo "model files: $weights bytes ($(echo "scale=2; $weights / 1000000000" | bc) GB), $LAYERS blocks"
echo "peak RSS pruning ($METHOD, 8 x 256 tokens): $((peak_kb * 1024)) bytes ($(echo "scale=2; $peak_kb * 1024 / 1000000000" | bc) GB)"
echo "ratio peak/weights: $(echo "scale=2; $peak_kb * 1024 / $weights" | bc)"
grep -E "Elapsed|Maximum resident" "$TMP/time.txt"
