#!/usr/bin/env bash
# The whole test suite against a real server: installs what the tests need
# (SecantusDB in .secantus/, Debian's faketime for the clock-skew tests and
# openssl for the security tests' certificates),
# runs `cargo test --features cli` (unit, integration and doc tests, and
# the command-line tool's tests, which run its binary) against MONGODB_URI
# or, when it is unset, twice: against a SecantusDB replica set and against
# a standalone SecantusDB (without the tests a server's mode cannot change:
# see below), each started here and stopped by PID. Then, in
# either case, a third pass: the security tests (tests/security.rs, ignored
# in the other passes) against a SecantusDB with authentication and TLS
# that scripts/secure-server.sh sets up (certificates, users and roles made
# at test time) and stops by PID. SKIP_SECURE=1 leaves that pass out.
#
# The tests are built first; then, when not run from a terminal (CI), each
# pass has a time limit (TEST_PASS_TIMEOUT seconds, default 900, about
# three times a pass on a loaded 2-core machine), so that a hung test fails
# the run loudly, with the server's log, instead of stalling it.
#
#   scripts/test.sh [CARGO TEST ARGS...]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# Debian packages the tests need: faketime (the clock-skew tests) and
# openssl (the security pass makes its certificates with it).
missing=()
command -v faketime >/dev/null 2>&1 || missing+=(faketime)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "test.sh: installing ${missing[*]} (Debian packages)" >&2
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        echo "test.sh: the tests need: apt-get install ${missing[*]}" >&2
        exit 1
    fi
fi

scripts/server.sh install
# The tests' servers of their own come from the test kit
# (mongoelector::testing): the same SecantusDB as the shared server, not
# an install of the kit's own (tests/test_kit.rs tests that one).
export MONGOELECTOR_SECANTUS_PYTHON="$ROOT/.secantus/venv/bin/python"
export MONGOELECTOR_TEST_SERVER="${MONGOELECTOR_TEST_SERVER:-secantusdb}"
echo "test.sh: building the tests" >&2
cargo test --no-run --features cli "$@"

LIMIT="${TEST_PASS_TIMEOUT:-900}"
# pass NAME COMMAND...: runs one pass, its tests under the time limit.
pass() {
    local name="$1" status=0
    shift
    echo "test.sh: == $name" >&2
    "$@" || status=$?
    if [ "$status" = 124 ]; then
        echo "test.sh: FAILED: the pass $name ran over ${LIMIT}s and was stopped" \
            "(a hung test: the lines 'has been running for over 60 seconds' name it)" >&2
    elif [ "$status" != 0 ]; then
        echo "test.sh: FAILED: the pass $name (exit $status)" >&2
    fi
    return "$status"
}
# The limit covers the pass's whole process group (cargo, the test binaries
# and their worker processes). Run from a terminal, the tests stay in its
# foreground group instead, so that Ctrl-C reaches them, and no limit is set.
limited=(timeout --kill-after=30 "$LIMIT")
[ ! -t 0 ] || limited=()

if [ -n "${MONGODB_URI:-}" ]; then
    pass "against MONGODB_URI" "${limited[@]}" cargo test --features cli "$@"
else
    # Both server modes: the default replica set (change streams), then a
    # standalone server (no change streams: waiters poll), same tests.
    pass "against SecantusDB as a replica set" \
        scripts/with-server.sh "${limited[@]}" cargo test --features cli "$@"
    # The standalone pass runs what a server without change streams can
    # change. Left to the first pass: the doc tests and tests/readme.rs (no
    # server), tests/unreachable.rs (no server either), and the mixed
    # Python fleet (about two minutes; its handovers and history checks
    # do not depend on change streams), and tests/commit_order.rs (it needs
    # a change stream and skips itself without one), and tests/test_kit.rs
    # (it starts servers of both modes itself). With arguments, all of
    # them run.
    standalone=("$@")
    if [ "$#" = 0 ]; then
        standalone=(--lib --bins)
        for t in tests/*.rs; do
            name="$(basename "$t" .rs)"
            case "$name" in
                readme | unreachable | python_fleet | commit_order | test_kit) ;;
                *) standalone+=(--test "$name") ;;
            esac
        done
    fi
    pass "against SecantusDB as a standalone server" \
        scripts/with-server.sh --standalone "${limited[@]}" cargo test --features cli "${standalone[@]}"
fi
if [ "${SKIP_SECURE:-0}" != 1 ]; then
    pass "against SecantusDB with authentication and TLS" \
        scripts/secure-server.sh "${limited[@]}" cargo test --features cli --test security -- --ignored
fi
