#!/usr/bin/env bash
# Installs the Debian packages secateur needs to build, test and benchmark.
#   scripts/setup.sh          build, test and benchmark
#   scripts/setup.sh --fuzz   also clang + libFuzzer + OpenMP for clang (scripts/fuzz.sh)
# Safe to run repeatedly; skips apt-get when everything is already installed.
set -euo pipefail
packages=(
  build-essential cmake pkg-config
  libopenblas-dev libopenblas-openmp-dev nlohmann-json3-dev libcli11-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  python3 python3-torch python3-numpy python3-sentencepiece
  libpcre2-dev ccache bc curl ca-certificates
)
if [ "${1:-}" = "--fuzz" ]; then
  packages+=(clang libclang-rt-dev libomp-dev)
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js + npm run a real llama.cpp in the tests (tools/llamacpp). Checked by command, not by
# package: a Node.js from elsewhere (e.g. NodeSource's nodejs, which bundles npm) is fine.
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "setup: installing ${missing[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# tools/llamacpp: node-llama-cpp (pinned in package-lock.json) and its prebuilt llama.cpp CPU
# binaries for linux-x64 (~85 MB; optional GPU/other-platform builds are not installed). Installed
# again when package-lock.json changes. Without it the llama.cpp tests skip with a message.
llamacpp_dir="$(cd "$(dirname "$0")/.." && pwd)/tools/llamacpp"
llamacpp_warn() { echo "setup: warning: $*; the llama.cpp tests will skip" >&2; }
lock_sum="$(sha256sum "$llamacpp_dir/package-lock.json" | cut -d' ' -f1)"
stamp="$llamacpp_dir/node_modules/.secateur-lock-sha256"
if [ "$(cat "$stamp" 2>/dev/null)" != "$lock_sum" ]; then
  node_major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
  if [ "$(uname -sm)" != "Linux x86_64" ]; then
    llamacpp_warn "tools/llamacpp pins llama.cpp's prebuilt linux-x64 binaries; this is $(uname -sm)"
  elif [ "$node_major" -lt 20 ]; then
    llamacpp_warn "node-llama-cpp needs Node.js >= 20, found $(node --version 2>/dev/null || echo none) (Debian 12 ships 18)"
  elif log="$(cd "$llamacpp_dir" && npm ci --omit=optional --ignore-scripts --no-audit --no-fund --loglevel=error \
      --fetch-retries=1 --fetch-retry-mintimeout=1000 --fetch-retry-maxtimeout=3000 2>&1)"; then
    echo "$lock_sum" >"$stamp"
    echo "setup: installed tools/llamacpp (node-llama-cpp, prebuilt llama.cpp)" >&2
  else
    llamacpp_warn "npm ci in tools/llamacpp failed (is the npm registry reachable?): $(echo "$log" | tail -n 3)"
  fi
fi
