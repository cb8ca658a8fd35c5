#!/usr/bin/env bash
# Peak RSS of `secateur prune` on a random LLaMA-7B-shaped model of >= 2 GB f32 weights, compared with
# the weights' size (issue 4). Usage: bench/prune_rss.sh [LAYERS=2] [METHOD=sparsegpt]
# Expected peak ~ weights (all in memory, f32) + 2 activation buffers (nsamples*seqlen*4096*4 B)
# + one block's statistics (SparseGPT: X^T X of 4096^2 (q/k/v), 4096^2 (o), 4096^2 (gate/up),
# 11008^2 (down) floats = 0.68 GB; the copy SparseGPT factors, up to 11008^2 floats = 0.48 GB)
# + the forward scratch of one sample + the one tensor save_model converts while writing.
# Besides /usr/bin/time's peak, /proc/PID/status is sampled every 0.1 s for the breakdown:
# RssAnon (owned memory: copies, statistics, activations) and RssFile (pages of mapped files --
# with copy-on-write loading, the f32 weights that were read but not yet modified).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/blas_env.sh
LAYERS=${1:-2}
METHOD=${2:-sparsegpt}
BUILD=${BUILD:-build}
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD" -j "$(nproc)" --target secateur >/dev/null
TMP=$(mktemp -d "${TMPDIR:-/tmp}/prune_rss.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
S="$BUILD"/secateur
blas_env "$S" init --config configs/llama-7b.json --layers "$LAYERS" -o "$TMP/model"
weights=$(du -sb "$TMP/model" | cut -f1)
blas_env /usr/bin/time -v "$S" prune "$TMP/model" -o "$TMP/pruned" \
  --method "$METHOD" --sparsity 0.5 --calib ../shared/data/tinystories/calib.txt --nsamples 8 --seqlen 256 \
  --tokenizer ../shared/tokenizers/llama2/tokenizer.json >"$TMP/out.txt" 2>"$TMP/time.txt" &
TIME_PID=$!
# The secateur process below $TIME_PID: the background job is a subshell running env/time, and
# only the last process of that chain is the prune (sampling the first one read time's own RSS).
prune_pid() {
  local p=$TIME_PID
  for _ in 1 2 3 4 5; do
    [ "$(cat "/proc/$p/comm" 2>/dev/null)" = secateur ] && { echo "$p"; return; }
    p=$(pgrep -P "$p" 2>/dev/null | head -1) || return 0
  done
}
# Sample the prune process: total, anonymous and file-backed RSS in kB.
(
  while kill -0 "$TIME_PID" 2>/dev/null; do
    pid=$(prune_pid || true)
    if [ -n "$pid" ] && [ -r "/proc/$pid/status" ]; then
      awk -v t="$(date +%s.%N)" '/^VmRSS|^RssAnon|^RssFile/ {v[$1]=$2} END {if (v["VmRSS:"]) print t, v["VmRSS:"], v["RssAnon:"], v["RssFile:"]}' \
        "/proc/$pid/status" 2>/dev/null >>"$TMP/rss.txt" || true
    fi
    sleep 0.1
  done
) &
wait "$TIME_PID" || { cat "$TMP/time.txt"; exit 1; }
wait
peak_kb=$(grep "Maximum resident set size" "$TMP/time.txt" | awk '{print $NF}')
gb() { printf "%.2f" "$(echo "$1 * 1024 / 1000000000" | bc -l)"; }
echo "model files: $weights bytes ($(echo "scale=2; $weights / 1000000000" | bc) GB), $LAYERS blocks"
echo "peak RSS pruning ($METHOD, 8 x 256 tokens): $((peak_kb * 1024)) bytes ($(gb "$peak_kb") GB)"
echo "ratio peak/weights: $(echo "scale=2; $peak_kb * 1024 / $weights" | bc)"
if [ -s "$TMP/rss.txt" ]; then
  read -r rss anon file < <(sort -k2 -n "$TMP/rss.txt" | tail -1 | cut -d' ' -f2-)
  echo "sampled at the largest RSS: $(gb "$rss") GB = anon $(gb "$anon") GB + file-backed $(gb "$file") GB"
  echo "largest sampled anon RSS: $(gb "$(sort -k3 -n "$TMP/rss.txt" | tail -1 | cut -d' ' -f3)") GB," \
    "file-backed: $(gb "$(sort -k4 -n "$TMP/rss.txt" | tail -1 | cut -d' ' -f4)") GB"
fi
grep -E "Elapsed|Maximum resident" "$TMP/time.txt"
[ -n "${KEEP_RSS_LOG:-}" ] && cp "$TMP/rss.txt" "$KEEP_RSS_LOG" && cp "$TMP/time.txt" "$KEEP_RSS_LOG.stderr"
true
