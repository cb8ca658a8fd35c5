#!/usr/bin/env bash
# Speed and size of sparse-stored models against their dense self (issue 11 phase 2): a
# TinyLlama-shaped random model (`secateur init`, LAYERS blocks, f32 GGUF), pruned by magnitude
# (no calibration needed; random weights: only the shapes and the zero pattern matter) to
#   50% unstructured and 2:4, each stored sparse (`prune --sparse`: bitmask + f32 values),
# and the unpruned model stored f32 and bf16. Then `secateur bench` of each (prefill of PROMPT
# tokens, greedy decode of GEN tokens), best of REPEAT runs, alternating the models, with the ratio
# to dense f32, the file size and its ratio, and the kernels that ran (bench prints them).
# Usage: bench/sparse.sh [LAYERS=4] [PROMPT=512] [GEN=32] [REPEAT=3]
#   CONFIG=configs/tinyllama-1.1b.json (any HF config.json), BUILD=build
set -euo pipefail
cd "$(dirname "$0")/.."
LAYERS=${1:-4}
PROMPT=${2:-512}
GEN=${3:-32}
REPEAT=${4:-3}
CONFIG=${CONFIG:-configs/tinyllama-1.1b.json}
BUILD=${BUILD:-build}
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD" -j "$(nproc)" --target secateur >/dev/null
S="$BUILD/secateur -q"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
$S init --config "$CONFIG" --layers "$LAYERS" -o "$tmp/dense-f32.gguf"
$S convert "$tmp/dense-f32.gguf" -o "$tmp/dense-bf16.gguf" --dtype bf16
$S prune "$tmp/dense-f32.gguf" -o "$tmp/sparse-50.gguf" --method magnitude --sparsity 0.5 --sparse >/dev/null
$S prune "$tmp/dense-f32.gguf" -o "$tmp/sparse-2of4.gguf" --method magnitude --nm 2:4 --sparse >/dev/null
models=(dense-f32 dense-bf16 sparse-50 sparse-2of4)
# A bf16 file is expanded to f32 on load; --weights bf16 keeps its block linears bf16 in memory.
extra() { [[ $1 == dense-bf16 ]] && echo "--weights bf16" || true; }
field() { /usr/bin/python3 -c "import json,sys; print(json.load(sys.stdin)['$2'])" <<<"$1"; }
declare -A pre dec
formats=()
kernels=
for ((r = 0; r < REPEAT; r++)); do
  for m in "${models[@]}"; do
    # shellcheck disable=SC2046
    j=$($S bench "$tmp/$m.gguf" --prompt-tokens "$PROMPT" --gen-tokens "$GEN" $(extra "$m") --json)
    p=$(field "$j" prefill_tokens_per_second)
    d=$(field "$j" decode_tokens_per_second)
    if [[ -z ${pre[$m]:-} ]] || (($(echo "$p > ${pre[$m]}" | bc -l))); then pre[$m]=$p; fi
    if [[ -z ${dec[$m]:-} ]] || (($(echo "$d > ${dec[$m]}" | bc -l))); then dec[$m]=$d; fi
    if ((r == 0)); then
      formats[${#formats[@]}]="$m: $(field "$j" linear_weights)"
      kernels=$(field "$j" kernels)
    fi
  done
done
size0=$(stat -c %s "$tmp/dense-f32.gguf")
echo "$LAYERS blocks of $(basename "$CONFIG"), prefill $PROMPT tokens, decode $GEN tokens, best of $REPEAT, $(nproc) CPUs"
echo "$kernels"
printf "%-12s %12s %8s %12s %8s %12s %8s   %s\n" model "prefill/s" ratio "decode/s" ratio "file MiB" ratio "block linears"
i=0
for m in "${models[@]}"; do
  size=$(stat -c %s "$tmp/$m.gguf")
  printf "%-12s %12.1f %8.3f %12.2f %8.3f %12.1f %8.3f   %s\n" "$m" "${pre[$m]}" \
    "$(echo "${pre[$m]} / ${pre[dense-f32]}" | bc -l)" "${dec[$m]}" "$(echo "${dec[$m]} / ${dec[dense-f32]}" | bc -l)" \
    "$(echo "$size / 1048576" | bc -l)" "$(echo "$size / $size0" | bc -l)" "${formats[$i]#*: }"
  i=$((i + 1))
done
