#!/usr/bin/env bash
# The main job, from a fresh Debian/Ubuntu machine: install the dependencies, build secateur, prune
# stories260K (a real, tiny pretrained Llama) to 50% sparsity with Wanda, and show its quality
# before and after (perplexity, KL to the dense model, a greedy sample).
#
# Uses ../shared/models/stories260K and ../shared/data/tinystories when present; otherwise
# downloads stories260K from Hugging Face (karpathy/tinyllamas) and TinyStories validation text
# (roneneldan/TinyStories) into .cache/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)" --target secateur
S=build/secateur

shared=../shared
if [ -f "$shared/models/stories260K/stories260K.bin" ] && [ -f "$shared/data/tinystories/calib.txt" ]; then
  model=$shared/models/stories260K/stories260K.bin
  calib=$shared/data/tinystories/calib.txt
  evalt=$shared/data/tinystories/eval.txt
else
  mkdir -p .cache/stories260K
  hf=https://huggingface.co
  for f in stories260K.bin tok512.bin; do
    if [ ! -f .cache/stories260K/$f ]; then
      curl -fL --retry 3 -o .cache/stories260K/$f.part "$hf/karpathy/tinyllamas/resolve/main/stories260K/$f"
      mv .cache/stories260K/$f.part .cache/stories260K/$f
    fi
  done
  if [ ! -f .cache/TinyStories-valid.txt ]; then
    curl -fL --retry 3 -o .cache/TinyStories-valid.txt.part "$hf/datasets/roneneldan/TinyStories/resolve/main/TinyStories-valid.txt"
    mv .cache/TinyStories-valid.txt.part .cache/TinyStories-valid.txt
  fi
  # Stories are separated by <|endoftext|> lines: 300 for calibration, the next 80 for evaluation.
  awk 'BEGIN{n=0} /<\|endoftext\|>/{n++; next} n<300' .cache/TinyStories-valid.txt > .cache/calib.txt
  awk 'BEGIN{n=0} /<\|endoftext\|>/{n++; next} n>=300 && n<380' .cache/TinyStories-valid.txt > .cache/eval.txt
  model=.cache/stories260K/stories260K.bin
  calib=.cache/calib.txt
  evalt=.cache/eval.txt
fi

mkdir -p out
pruned=out/stories260K-wanda50.gguf
echo "== the model"
$S info "$model"
echo "== prune: Wanda, 50% unstructured, 64 calibration windows of 256 tokens"
$S prune "$model" -o "$pruned" --method wanda --sparsity 0.5 --calib "$calib" --nsamples 64 --seqlen 256
echo "== quality before (dense)"
$S eval "$model" --ppl "$evalt" --seqlen 256
echo "== quality after (pruned), with KL divergence to the dense model"
$S eval "$pruned" --ppl "$evalt" --seqlen 256 --ref "$model"
echo "== greedy sample, dense then pruned"
$S -q generate "$model" -n 60
$S -q generate "$pruned" -n 60
