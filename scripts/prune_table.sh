#!/usr/bin/env bash
# Prints the markdown table dense / magnitude / Wanda / SparseGPT x {50%, 2:4, 4:8, 70%, 70%+OWL}
# of stories260K perplexities (calibration tinystories/calib.txt 128 x 256 tokens seed 0; PPL on
# tinystories/eval.txt, non-overlapping 256-token windows). Usage: scripts/prune_table.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD" -j "$(nproc)" --target test_prune_stories >/dev/null
SECATEUR_PRUNE_TABLE=1 "$BUILD"/tests/test_prune_stories --gtest_filter='PruneStories.Table' 2>/dev/null | sed -n '/^|/p'
