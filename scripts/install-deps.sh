#!/usr/bin/env bash
# Installs the Debian 12 packages this project builds on, only those that are missing.
# Idempotent: when everything is present it does nothing (no apt-get update, no network).
# Usage: scripts/install-deps.sh [extra-package ...]
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  libxtensor-dev libxtensor-blas-dev libxsimd-dev libopenblas-dev
  libfmt-dev catch2 libcli11-dev nlohmann-json3-dev
  libbenchmark-dev gnuplot-nox zlib1g-dev
  libopenmpi-dev openmpi-bin
  librdkit-dev libcairo2-dev libboost-dev python3-rdkit
  python3-dev pybind11-dev python3-pybind11 python3-numpy python3-pytest python3-torch
  python3-networkx
  doxygen
  "$@"
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
# Try without refreshing the package lists first; refresh only if that fails.
$sudo apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null 2>&1 || {
  $sudo apt-get update -qq
  $sudo apt-get install -y --no-install-recommends "${missing[@]}"
}
