#!/usr/bin/env bash
# Sets up the web tools if needed and serves the app with the bundled model on
# http://127.0.0.1:8080 (pass --release for an optimised build, --port N for another port).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(./scripts/setup-web.sh)
export PATH="$bin:$PATH"
echo "walf-lab will be served at http://127.0.0.1:8080 once built" >&2
exec trunk serve "$@"
