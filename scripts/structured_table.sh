#!/usr/bin/env bash
# Regenerates the README's structured-pruning table with the secateur CLI on stories260K:
# LLM-Pruner (every importance, attention ratio 0.25 + MLP ratio 0.2), Minitron (hidden 48, FFN 128,
# 3 KV groups, by activation / magnitude / random importance; depth --layers 4; the --target-params
# 0.6 search) and SliceGPT (25%, per block and --uniform), each without recovery, and then with one
# epoch of `distill` (Minitron) or 40 LoRA steps (LLM-Pruner, SliceGPT). Calibration: tinystories/
# calib.txt, 128 windows x 256 tokens, seed 0; perplexity and KL to the dense model: tinystories/
# eval.txt, papers protocol, non-overlapping 256-token windows. Prints a markdown table.
# Usage: scripts/structured_table.sh [SHARED_DIR]   (default ../shared; ~10 minutes on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
shared=${1:-../shared}
model=$shared/models/stories260K/stories260K.bin
calib=$shared/data/tinystories/calib.txt
evalt=$shared/data/tinystories/eval.txt
BUILD=${BUILD:-build}
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD" -j "$(nproc)" --target secateur >/dev/null
S="$BUILD/secateur -q -t 1"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cal=(--calib "$calib" --nsamples 128 --seqlen 256 --seed 0 --batch 8)

metrics() {  # "params | PPL | KL" of a model
  $S eval "$1" --ppl "$evalt" --seqlen 256 --ref "$model" --json | /usr/bin/python3 -c '
import json, sys
j = json.load(sys.stdin)
p = j["perplexity"]
print("%d | %.2f | %.3f" % (j["model"]["params"], p["ppl"], p["reference"]["kl_mean"]))'
}
lora() {  # 40 LoRA steps (r 8, alpha 16) on calib.txt, merged
  $S finetune "$1" -o "$2" --data "$calib" --seqlen 128 --batch 16 --micro-batch 8 --max-steps 40 --lr 2e-3 \
    --warmup 4 --merge >/dev/null
}
distill() {  # one epoch of calib.txt at 256, logit KL from the dense teacher
  $S distill --teacher "$model" --student "$1" -o "$2" --data "$calib" --epochs 1 --seqlen 256 --batch 8 \
    --micro-batch 8 --lr 2e-3 >/dev/null
}
ppl() { $S eval "$1" --ppl "$evalt" --seqlen 256 --json | /usr/bin/python3 -c 'import json,sys; print("%.2f" % json.load(sys.stdin)["perplexity"]["ppl"])'; }

echo "| method | settings | params | PPL | KL to dense | PPL after recovery |"
echo "|---|---|---|---|---|---|"
echo "| dense | | $(metrics "$model") | |"
for imp in "taylor --taylor first" "taylor --taylor vector" "taylor --taylor second" "taylor --taylor mix" l1 l2 random; do
  $S prune "$model" -o "$out/p.gguf" --method llm-pruner --importance $imp --attn-ratio 0.25 --mlp-ratio 0.2 "${cal[@]}" >/dev/null
  rec=""
  if [ "$imp" = "taylor --taylor first" ]; then lora "$out/p.gguf" "$out/r.gguf"; rec="$(ppl "$out/r.gguf") (LoRA)"; fi
  echo "| llm-pruner | ${imp/--taylor /}, attn 0.25, mlp 0.2 | $(metrics "$out/p.gguf") | $rec |"
done
for imp in activation magnitude random; do
  $S prune "$model" -o "$out/m.gguf" --method minitron --importance $imp --hidden 48 --ffn 128 --kv-heads 3 "${cal[@]}" >/dev/null
  distill "$out/m.gguf" "$out/d.gguf"
  echo "| minitron | $imp, hidden 48, ffn 128, 6/3 heads | $(metrics "$out/m.gguf") | $(ppl "$out/d.gguf") (distill) |"
done
$S prune "$model" -o "$out/m.gguf" --method minitron --layers 4 "${cal[@]}" >/dev/null
echo "| minitron | depth --layers 4 (BI) | $(metrics "$out/m.gguf") | |"
$S prune "$model" -o "$out/m.gguf" --method minitron --target-params 0.6 "${cal[@]}" >/dev/null
arch=$(/usr/bin/python3 -c 'import json,sys; a=json.load(open(sys.argv[1]))["plan"]["architecture"]; print("L%d h%d ffn%d" % (a["layers"], a["hidden"], a["ffn"]))' "$out/m.gguf.report.json")
distill "$out/m.gguf" "$out/d.gguf"
echo "| minitron | --target-params 0.6 -> $arch | $(metrics "$out/m.gguf") | $(ppl "$out/d.gguf") (distill) |"
for mode in "" "--uniform"; do
  $S prune "$model" -o "$out/s.gguf" --method slicegpt --sparsity 0.25 $mode "${cal[@]}" >/dev/null
  lora "$out/s.gguf" "$out/r.gguf"
  echo "| slicegpt | 25% ${mode:-per block} | $(metrics "$out/s.gguf") | $(ppl "$out/r.gguf") (LoRA) |"
done
