#!/usr/bin/env bash
# A short fuzz run of the plain-data targets (share links, benchmark tables, engine requests,
# config.json), each from seeds made from the project's real files, with the crashing inputs of
# earlier runs (fuzz/regressions/) replayed first. The long runs and the model-file targets are
# described in docs/RELIABILITY.md. Needs the nightly toolchain (rustup) and cargo-fuzz.
#   scripts/fuzz-smoke.sh [SECONDS per target, default 20]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-20}

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  rustup toolchain install nightly --profile minimal >&2 || {
    echo "fuzz smoke run skipped: no nightly toolchain could be installed" >&2
    exit 0
  }
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  # a tool whose speed does not matter: lightly optimised, it builds in half the time
  CARGO_PROFILE_RELEASE_OPT_LEVEL=1 CARGO_PROFILE_RELEASE_LTO=false \
    cargo install cargo-fuzz --version "=0.13.2" --locked >&2
fi

node fuzz/seed.mjs
cd fuzz
for target in share_link benchmark_tsv engine_request config_json; do
  cargo +nightly fuzz build -s none "$target" >&2
  if [ -d "regressions/$target" ]; then
    cargo +nightly fuzz run -s none "$target" "regressions/$target" -- -runs=0 >&2
  fi
  echo "fuzzing $target for ${seconds}s" >&2
  log=$(mktemp)
  if ! cargo +nightly fuzz run -s none "$target" "corpus/$target" -- \
    -max_total_time="$seconds" -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1; then
    tail -n 60 "$log" >&2
    echo "fuzz target $target failed (the input is in fuzz/artifacts/$target/)" >&2
    exit 1
  fi
  grep -E "^stat::(number_of_executed_units|peak_rss_mb)" "$log" | sed "s/^/$target /" || true
  rm -f "$log"
done
