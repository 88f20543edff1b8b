#!/usr/bin/env bash
# Run a command against MONGODB_URI; when it is unset, install and start a
# SecantusDB test server on a free loopback port first, export its URI, and
# stop it by PID when the command ends (whatever way it ends).
#
#   scripts/with-server.sh cargo test
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
[ "$#" -gt 0 ] || { echo "usage: with-server.sh COMMAND [ARGS...]" >&2; exit 2; }

if [ -n "${MONGODB_URI:-}" ]; then
    exec "$@"
fi

read -r PORT PID < <("$ROOT/scripts/server.sh" start)
[ -n "${PID:-}" ] || { echo "with-server.sh: the test server did not start" >&2; exit 1; }
trap '"$ROOT/scripts/server.sh" stop "$PID"' EXIT
trap 'exit 130' INT TERM
export MONGODB_URI="mongodb://127.0.0.1:$PORT/"
echo "with-server.sh: SecantusDB (PID $PID) at $MONGODB_URI" >&2
status=0
"$@" || status=$?
exit "$status"
