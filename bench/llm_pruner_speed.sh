#!/usr/bin/env bash
# Speed of an LLM-Pruner model against its dense self (issue 8): a TinyLlama-shaped random model
# (`secateur init`, LAYERS blocks, f32 GGUF) pruned to 80% of its parameters (l2 importance, block-wise
# attention and MLP at one common ratio found by --target-params), then `secateur bench` of both
# (prefill of PROMPT tokens, greedy decode of GEN tokens) in the same run.
# Usage: bench/llm_pruner_speed.sh [LAYERS=4] [PROMPT=512] [GEN=32]
set -euo pipefail
cd "$(dirname "$0")/.."
LAYERS=${1:-4}
PROMPT=${2:-512}
GEN=${3:-32}
BUILD=${BUILD:-build}
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD" -j "$(nproc)" --target secateur >/dev/null
S="$BUILD/secateur"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$S" -q init --config configs/tinyllama-1.1b.json --layers "$LAYERS" -o "$tmp/dense.gguf"
"$S" -q prune "$tmp/dense.gguf" -o "$tmp/pruned.gguf" --method llm-pruner --importance l2 --target-params 0.8 >/dev/null
bench() { "$S" -q bench "$1" --prompt-tokens "$PROMPT" --gen-tokens "$GEN" --json; }
field() { python3 -c "import json,sys; print(json.load(sys.stdin)['$2'])" <<<"$1"; }
d=$(bench "$tmp/dense.gguf")
p=$(bench "$tmp/pruned.gguf")
for k in params prefill_tokens_per_second decode_tokens_per_second; do
  a=$(field "$d" $k)
  b=$(field "$p" $k)
  printf "%-28s dense %12.1f  pruned %12.1f  ratio %.3f\n" "$k" "$a" "$b" "$(echo "scale=4; $b / $a" | bc)"
done
