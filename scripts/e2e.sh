#!/usr/bin/env bash
# End-to-end tests of the web app: builds it with Trunk (debug unless --release), builds the
# native `walf` for reference numbers, and drives Debian's Chromium with playwright-core.
# Screenshots of each view land in tests/e2e/artifacts/.
set -euo pipefail
cd "$(dirname "$0")/.."

profile=()
[ "${1:-}" = "--release" ] && profile=(--release)

bin=$(./scripts/setup-web.sh)
export PATH="$bin:$PATH"

if [ ! -x /usr/lib/chromium/chromium ]; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "the end-to-end tests need Debian's chromium (apt-get install chromium)" >&2
    exit 1
  fi
fi
if [ ! -d tests/e2e/node_modules/playwright-core ]; then
  npm install --silent --no-audit --no-fund --prefix tests/e2e >&2
fi

trunk build "${profile[@]}"
cargo build --bin walf
node --test --test-concurrency=1 tests/e2e/app.test.mjs
