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
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "setup: installing ${missing[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
