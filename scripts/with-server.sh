#!/usr/bin/env bash
# Run a command against MONGODB_URI; when it is unset, install and start a
# SecantusDB test server on a free loopback port first, export its URI, and
# stop it by PID when the command ends (whatever way it ends).
#
#   scripts/with-server.sh [--standalone] cargo test
#
# --standalone starts the server as a standalone mongod would run (no
# replica set, so no change streams) and connects with directConnection.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MODE=()
QUERY=""
if [ "${1:-}" = "--standalone" ]; then
    MODE=(--standalone)
    QUERY="?directConnection=true"
    shift
fi
[ "$#" -gt 0 ] || { echo "usage: with-server.sh [--standalone] COMMAND [ARGS...]" >&2; exit 2; }

if [ -n "${MONGODB_URI:-}" ]; then
    exec "$@"
fi

read -r PORT PID < <("$ROOT/scripts/server.sh" start "${MODE[@]}")
[ -n "${PID:-}" ] || { echo "with-server.sh: the test server did not start" >&2; exit 1; }
trap '[ -z "$PID" ] || "$ROOT/scripts/server.sh" stop "$PID"' EXIT
trap 'exit 130' INT TERM
export MONGODB_URI="mongodb://127.0.0.1:$PORT/$QUERY"
echo "with-server.sh: SecantusDB (PID $PID) at $MONGODB_URI" >&2
status=0
"$@" || status=$?
[ "$status" = 0 ] || { "$ROOT/scripts/server.sh" failed "$PID" "$PORT"; PID=""; }
exit "$status"
