#!/usr/bin/env bash
# secateur against llama.cpp on the same GGUF, same machine, same run (issue 11): a TinyLlama-shaped
# random f32 model (`secateur init`, LAYERS blocks), PROMPT-token prefill and GEN-token greedy decode,
# `secateur bench` beside llama.cpp as node-llama-cpp 3.21.1 ships it prebuilt
# (tools/llamacpp/llamacpp.mjs bench: the same seeded prompt ids, wall clock around its calls;
# llama.cpp's defaults otherwise: f16 KV cache, flash attention auto). Both sides use THREADS
# threads. Rounds alternate the sides, idle and with one core busy (`sh -c 'while :; do :; done'`);
# best of ROUNDS per side and condition.
# Usage: bench/llamacpp.sh [LAYERS=4] [PROMPT=512] [GEN=32] [ROUNDS=3] [THREADS=$(nproc)]
#   CONFIG=configs/tinyllama-1.1b.json, BUILD=build, MODEL=path.gguf (instead of a new random one)
# OpenBLAS environment: bench/blas_env.sh (unset for both sides; BENCH_OPENBLAS_CORETYPE=Prescott forces one).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/blas_env.sh
LAYERS=${1:-4}
PROMPT=${2:-512}
GEN=${3:-32}
ROUNDS=${4:-3}
THREADS=${5:-$(nproc)}
CONFIG=${CONFIG:-configs/tinyllama-1.1b.json}
BUILD=${BUILD:-build}
LLAMACPP=tools/llamacpp/llamacpp.mjs
if [[ ! -d tools/llamacpp/node_modules/node-llama-cpp ]]; then
  echo "bench/llamacpp.sh: node-llama-cpp is not installed (scripts/setup.sh, or: cd tools/llamacpp && npm ci)" >&2
  exit 1
fi
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD" -j "$(nproc)" --target secateur >/dev/null
tmp=$(mktemp -d)
busy=
cleanup() {
  [[ -n $busy ]] && kill "$busy" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
model=${MODEL:-$tmp/model.gguf}
[[ -n ${MODEL:-} ]] || "$BUILD/secateur" -q init --config "$CONFIG" --layers "$LAYERS" -o "$model"
field() { /usr/bin/python3 -c "import json,sys; print(json.load(sys.stdin)['$2'])" <<<"$1"; }
ours() {
  blas_env "$BUILD/secateur" -q --threads "$THREADS" bench "$model" \
    --prompt-tokens "$PROMPT" --gen-tokens "$GEN" --json
}
theirs() {
  node "$LLAMACPP" bench "$model" --prompt-tokens "$PROMPT" --gen-tokens "$GEN" --threads "$THREADS" --warmup 2>/dev/null
}
declare -A best
keep() {  # keep KEY VALUE: the larger
  if [[ -z ${best[$1]:-} ]] || (($(echo "$2 > ${best[$1]}" | bc -l))); then best[$1]=$2; fi
}
kernels= llama_backend=
for ((r = 0; r < ROUNDS; r++)); do
  for cond in idle busy; do
    if [[ $cond == busy ]]; then
      sh -c 'while :; do :; done' &
      busy=$!
    fi
    j=$(ours)
    keep "secateur-$cond-prefill" "$(field "$j" prefill_tokens_per_second)"
    keep "secateur-$cond-decode" "$(field "$j" decode_tokens_per_second)"
    kernels=$(field "$j" kernels)
    j=$(theirs)
    keep "llamacpp-$cond-prefill" "$(field "$j" prefill_tokens_per_second)"
    keep "llamacpp-$cond-decode" "$(field "$j" decode_tokens_per_second)"
    llama_backend="llama.cpp $(field "$j" llama_cpp | sed -E "s/.*'release': '([^']*)'.*/\1/") via node-llama-cpp $(field "$j" node_llama_cpp), $(field "$j" cpu_backend), KV $(field "$j" kv_type), flash attention $(field "$j" flash_attention)"
    if [[ -n $busy ]]; then
      kill "$busy"
      wait "$busy" 2>/dev/null || true
      busy=
    fi
  done
done
echo "$(basename "$model"): $LAYERS blocks of $(basename "$CONFIG") f32, prefill $PROMPT tokens, decode $GEN tokens, $THREADS threads, best of $ROUNDS, $(nproc) CPUs"
echo "secateur: $kernels"
echo "$llama_backend"
printf "%-22s %12s %12s %8s %12s %12s %8s\n" condition "secateur pp" "llama.cpp pp" ratio "secateur tg" "llama.cpp tg" ratio
for cond in idle busy; do
  label=$([[ $cond == idle ]] && echo "idle" || echo "one core busy")
  sp=${best[secateur-$cond-prefill]} lp=${best[llamacpp-$cond-prefill]}
  sd=${best[secateur-$cond-decode]} ld=${best[llamacpp-$cond-decode]}
  printf "%-22s %12.1f %12.1f %8.2f %12.2f %12.2f %8.2f\n" "$label" "$sp" "$lp" "$(echo "$sp / $lp" | bc -l)" \
    "$sd" "$ld" "$(echo "$sd / $ld" | bc -l)"
done
