#!/usr/bin/env bash
# The whole test suite against a real server: installs what the tests need
# (SecantusDB in .secantus/, Debian's faketime for the clock-skew tests),
# runs `cargo test` (unit, integration and doc tests) against MONGODB_URI
# or, when it is unset, twice: against a SecantusDB replica set and against
# a standalone SecantusDB, each started here and stopped by PID.
#
#   scripts/test.sh [CARGO TEST ARGS...]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

if ! command -v faketime >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "test.sh: installing faketime (Debian package)" >&2
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq faketime >/dev/null
    else
        echo "test.sh: the clock-skew tests need libfaketime: apt-get install faketime" >&2
        exit 1
    fi
fi

scripts/server.sh install
if [ -n "${MONGODB_URI:-}" ]; then
    exec cargo test "$@"
fi
# Both server modes: the default replica set (change streams), then a
# standalone server (no change streams: waiters poll), same tests.
echo "test.sh: == against SecantusDB as a replica set" >&2
scripts/with-server.sh cargo test "$@"
echo "test.sh: == against SecantusDB as a standalone server" >&2
scripts/with-server.sh --standalone cargo test "$@"
