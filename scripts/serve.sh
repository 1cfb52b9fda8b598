#!/usr/bin/env bash
# Sets up the web tools if needed and serves the app with the bundled models on
# http://127.0.0.1:8080 (pass --release for an optimised build, --port N for another port).
set -euo pipefail
cd "$(dirname "$0")/.."
# A first run compiles for many minutes (the web tools, then the app): a time limit, a closed
# terminal or Ctrl-C during it must not end this script without a word.
stage="setting up the web tools"
stopped() {
  echo "serve.sh was stopped by $1 while $stage; run it again to go on (what was built is kept)" >&2
  exit "$2"
}
trap 'stopped SIGTERM 143' TERM
trap 'stopped SIGHUP 129' HUP
trap 'stopped Ctrl-C 130' INT
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
# Not exec'd: when Trunk ends (a failed build, a killed process), say so and why, rather than
# leave a silent prompt.
stage="building and serving the app"
status=0
# In the background and waited for, so that a signal to this script is heard at once (bash
# runs a trap only after a foreground command ends); the trap passes it on to Trunk as a
# SIGTERM (a script's background command ignores Ctrl-C's SIGINT).
trunk serve "$@" &
trunk_pid=$!
trap 'kill -TERM "$trunk_pid" 2>/dev/null; stopped SIGTERM 143' TERM
trap 'kill -TERM "$trunk_pid" 2>/dev/null; stopped SIGHUP 129' HUP
trap 'kill -TERM "$trunk_pid" 2>/dev/null; wait "$trunk_pid" 2>/dev/null; echo "stopped" >&2; exit 130' INT
wait "$trunk_pid" || status=$?
if [ "$status" -eq 130 ]; then
  echo "stopped" >&2
elif [ "$status" -gt 128 ]; then
  signal=$((status - 128))
  hint=""
  [ "$signal" -eq 9 ] && hint=" (killed: often the system running out of memory during the build)"
  echo "trunk serve was stopped by signal $signal$hint" >&2
elif [ "$status" -ne 0 ]; then
  echo "trunk serve failed with exit status $status; its messages are above" >&2
else
  echo "trunk serve ended" >&2
fi
exit "$status"
