#!/usr/bin/env bash
# Installs what building the web app needs, skipping what is already there: the wasm32 target,
# Trunk, wasm-bindgen-cli matching Cargo.lock, and wasm-opt (npm `binaryen`) under .cache/.
# Prints the folder to put on PATH for wasm-opt.
set -euo pipefail
cd "$(dirname "$0")/.."
# The tools are other projects: the test script's lints (clippy-driver as the workspace wrapper)
# are not theirs to pass.
unset RUSTC_WORKSPACE_WRAPPER CLIPPY_ARGS

TRUNK_VERSION=0.21.14   # 0.22 needs a newer rustc than this project's
BINARYEN_VERSION=132    # Debian's binaryen 108 writes a wasm that fails at load
tools="${WALF_CACHE:-.cache}/web-tools"

rustup target add wasm32-unknown-unknown >/dev/null 2>&1 || true

# The tools' speed hardly matters (they copy files and rewrite one wasm), their build time does.
light_build=(env CARGO_PROFILE_RELEASE_OPT_LEVEL=1 CARGO_PROFILE_RELEASE_LTO=false
  CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16)

if ! trunk --version 2>/dev/null | grep -q "$TRUNK_VERSION"; then
  echo "installing trunk $TRUNK_VERSION (it compiles: several minutes on two cores)" >&2
  # Trunk's own release profile links with fat LTO in one codegen unit: minutes of every fresh
  # setup (and CI run) for a tool whose speed does not matter here; light optimisation halves
  # the rest. Without its default features it has no TLS and no update check: it serves over
  # plain HTTP and never downloads a tool (this script installs them), and builds without
  # rustls and ring.
  "${light_build[@]}" cargo install trunk --version "=$TRUNK_VERSION" --locked \
    --no-default-features >&2
fi

bindgen=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
if [ -z "$bindgen" ]; then
  echo "wasm-bindgen is not in Cargo.lock" >&2
  exit 1
fi
if ! wasm-bindgen --version 2>/dev/null | grep -q " $bindgen\$"; then
  echo "installing wasm-bindgen-cli $bindgen" >&2
  # without TLS: it only downloads for its test runner, which is not used here
  "${light_build[@]}" cargo install wasm-bindgen-cli --version "=$bindgen" --no-default-features >&2
fi
# Trunk.toml pins the same version, so that Trunk never looks for another one.
if ! grep -q "^wasm_bindgen = \"$bindgen\"" Trunk.toml; then
  echo "Trunk.toml's wasm_bindgen pin differs from Cargo.lock's wasm-bindgen $bindgen: update it" >&2
  exit 1
fi

if [ ! -x "$tools/node_modules/.bin/wasm-opt" ]; then
  mkdir -p "$tools"
  npm install --silent --no-audit --no-fund --prefix "$tools" "binaryen@$BINARYEN_VERSION" >&2
fi
echo "$PWD/$tools/node_modules/.bin"
