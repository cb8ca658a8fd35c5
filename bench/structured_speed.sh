#!/usr/bin/env bash
# Speed of structurally pruned models against their dense self (issues 8-10): a TinyLlama-shaped
# random model (`secateur init`, LAYERS blocks, f32 GGUF), pruned by
#   llm-pruner (l2 importance, one attention/MLP ratio found for 80% of the parameters),
#   minitron   (magnitude importance, hidden 1536, FFN 4096: ~the same budget),
#   slicegpt   (25%, per block with shortcut matrices, and --uniform),
# then `secateur bench` of each (prefill of PROMPT tokens, greedy decode of GEN tokens) in the same
# run. Calibration for SliceGPT: the shared Llama-2 tokenizer (TinyLlama's vocabulary) on
# tinystories/calib.txt, 8 windows x 512 tokens (the weights are random: only the shapes matter).
# Usage: bench/structured_speed.sh [LAYERS=4] [PROMPT=512] [GEN=32]   (SHARED=../shared)
set -euo pipefail
cd "$(dirname "$0")/.."
LAYERS=${1:-4}
PROMPT=${2:-512}
GEN=${3:-32}
SHARED=${SHARED:-../shared}
BUILD=${BUILD:-build}
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD" -j "$(nproc)" --target secateur >/dev/null
S="$BUILD/secateur -q"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
tok=(--tokenizer "$SHARED/tokenizers/llama2/tokenizer.model")
cal=(--calib "$SHARED/data/tinystories/calib.txt" --nsamples 8 --seqlen 512)
$S init --config configs/tinyllama-1.1b.json --layers "$LAYERS" -o "$tmp/dense.gguf"
$S prune "$tmp/dense.gguf" -o "$tmp/llm-pruner.gguf" --method llm-pruner --importance l2 --target-params 0.8 >/dev/null
$S prune "$tmp/dense.gguf" -o "$tmp/minitron.gguf" --method minitron --importance magnitude --hidden 1536 --ffn 4096 \
  "${tok[@]}" "${cal[@]}" >/dev/null
$S prune "$tmp/dense.gguf" -o "$tmp/slicegpt.gguf" --method slicegpt --sparsity 0.25 "${tok[@]}" "${cal[@]}" >/dev/null
$S prune "$tmp/dense.gguf" -o "$tmp/slicegpt-uniform.gguf" --method slicegpt --sparsity 0.25 --uniform "${tok[@]}" \
  "${cal[@]}" >/dev/null
bench() { $S bench "$1" --prompt-tokens "$PROMPT" --gen-tokens "$GEN" --json; }
field() { /usr/bin/python3 -c "import json,sys; print(json.load(sys.stdin)['$2'])" <<<"$1"; }
d=$(bench "$tmp/dense.gguf")
dp=$(field "$d" params)
dpre=$(field "$d" prefill_tokens_per_second)
ddec=$(field "$d" decode_tokens_per_second)
printf "%-18s %12s %10s %12s %8s %12s %8s\n" model params "params" "prefill/s" ratio "decode/s" ratio
printf "%-18s %12d %10s %12.1f %8s %12.2f %8s\n" dense "$dp" "1.000" "$dpre" "1.000" "$ddec" "1.000"
for m in llm-pruner minitron slicegpt slicegpt-uniform; do
  b=$(bench "$tmp/$m.gguf")
  p=$(field "$b" params)
  pre=$(field "$b" prefill_tokens_per_second)
  dec=$(field "$b" decode_tokens_per_second)
  printf "%-18s %12d %10.3f %12.1f %8.3f %12.2f %8.3f\n" "$m" "$p" "$(echo "$p / $dp" | bc -l)" "$pre" \
    "$(echo "$pre / $dpre" | bc -l)" "$dec" "$(echo "$dec / $ddec" | bc -l)"
done
