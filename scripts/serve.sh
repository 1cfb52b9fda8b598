#!/usr/bin/env bash
# Sets up the web tools if needed and serves the app with the bundled models on
# http://127.0.0.1:8080 (pass --release for an optimised build, --port N for another port).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(./scripts/setup-web.sh)
export PATH="$bin:$PATH"
# The address Trunk will serve on: its default port unless --port N (or --port=N) is passed.
port=8080
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case "${args[$i]}" in
    --port) port="${args[$((i + 1))]:-$port}" ;;
    --port=*) port="${args[$i]#--port=}" ;;
  esac
done
echo "walf-lab will be served at http://127.0.0.1:$port once built" >&2
exec trunk serve "$@"
