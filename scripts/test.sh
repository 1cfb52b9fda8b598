#!/usr/bin/env bash
# Sets up what the tests need on a fresh Debian machine (as root, or with the packages already
# there) and runs them: formatting, lints (native and WASM, within the builds), every Rust test,
# the web app's end-to-end tests in headless Chromium, and a short fuzz run.
set -euo pipefail
cd "$(dirname "$0")/.."

# Each stage's wall time, printed at the end (also when a stage fails): CI has a time limit, and
# this says where the time goes.
stages=()
stage_name="setup"
stage_start=$SECONDS
stage() {
  stages+=("$(printf '%-34s %5d s' "$stage_name" $((SECONDS - stage_start)))")
  stage_name=$1
  stage_start=$SECONDS
}
report_stages() {
  stage done
  echo
  echo "stage times:"
  printf '  %s\n' "${stages[@]}"
  echo "  total                              $SECONDS s"
}
trap report_stages EXIT

if ! command -v cargo >/dev/null 2>&1; then
  echo "Rust is needed: install it with rustup (https://rustup.rs)" >&2
  exit 1
fi

can_apt() { command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; }

# Mesa's lavapipe gives wgpu a Vulkan device without a GPU, so the GPU code path is tested too.
if ! ls /usr/share/vulkan/icd.d/lvp_icd.*.json >/dev/null 2>&1; then
  if can_apt; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mesa-vulkan-drivers >/dev/null
  else
    echo "note: mesa-vulkan-drivers is not installed; the wgpu tests will be skipped" >&2
  fi
fi

# What later stages download (Chromium for the end-to-end tests, the nightly toolchain for the
# fuzz run) comes down while the native tests build: downloads hardly compete with compiling.
# Each stage still installs what is missing itself, so a download that failed here is retried
# there with its own message.
downloads=$(mktemp)
(
  if [ ! -x /usr/lib/chromium/chromium ] && can_apt; then
    ls /var/lib/apt/lists/*_Packages* >/dev/null 2>&1 || apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  fi
  rustup run nightly rustc --version >/dev/null 2>&1 || rustup toolchain install nightly --profile minimal
) >"$downloads" 2>&1 &
downloads_pid=$!
wait_for_downloads() {
  wait "$downloads_pid" || { echo "note: a download ahead of time failed:" >&2; cat "$downloads" >&2; }
}

# The Vulkan loader warns on every device when this is unset (headless machines).
if [ -z "${XDG_RUNTIME_DIR:-}" ]; then
  XDG_RUNTIME_DIR=$(mktemp -d) && chmod 700 "$XDG_RUNTIME_DIR" && export XDG_RUNTIME_DIR
fi

rustup component add rustfmt clippy >/dev/null 2>&1 || true
rustup target add wasm32-unknown-unknown >/dev/null 2>&1 || true

stage "format"
cargo fmt --all -- --check

# Clippy's lints, as errors, run inside the builds the tests need: clippy-driver compiles this
# crate in every build below (`cargo clippy` does the same in check mode, which would compile
# every dependency a second time, natively and for wasm32). So `cargo test` lints every native
# target (library, binaries, tests, examples) and Trunk's builds lint the web app and its worker
# for wasm32, the page without the engine as index.html builds it.
RUSTC_WORKSPACE_WRAPPER=$(rustup which clippy-driver)
CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"
export RUSTC_WORKSPACE_WRAPPER CLIPPY_ARGS

stage "native build, lints and tests"
cargo test
stage "GPU benchmark smoke (lavapipe)"
# The GPU benchmark (scripts/gpu-bench.sh) on the tiny fixture: that it runs and that wgpu's
# results are the CPU's; the example was built, and linted, by `cargo test`.
if ls /usr/share/vulkan/icd.d/lvp_icd.*.json >/dev/null 2>&1; then
  ./scripts/gpu-bench.sh --smoke --out target/gpu-bench-smoke.txt
else
  echo "note: no Vulkan driver (mesa-vulkan-drivers); the GPU benchmark smoke is skipped" >&2
fi
stage "web build, lints and end-to-end tests"
wait_for_downloads
# The web app in headless Chromium (installs Trunk, wasm-bindgen, wasm-opt, chromium if missing).
./scripts/e2e.sh
stage "fuzz smoke"
# on the nightly toolchain, which the stable clippy-driver cannot wrap
unset RUSTC_WORKSPACE_WRAPPER CLIPPY_ARGS
# A short fuzz run of the link, table, request and config parsers (nightly and cargo-fuzz).
./scripts/fuzz-smoke.sh 10
