#!/usr/bin/env bash
# The whole test suite against a real server: installs what the tests need
# (SecantusDB in .secantus/, Debian's faketime for the clock-skew tests and
# openssl for the security tests' certificates),
# runs `cargo test` (unit, integration and doc tests) against MONGODB_URI
# or, when it is unset, twice: against a SecantusDB replica set and against
# a standalone SecantusDB, each started here and stopped by PID. Then, in
# either case, a third pass: the security tests (tests/security.rs, ignored
# in the other passes) against a SecantusDB with authentication and TLS
# that scripts/secure-server.sh sets up (certificates, users and roles made
# at test time) and stops by PID. SKIP_SECURE=1 leaves that pass out.
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
if [ -n "${MONGODB_URI:-}" ]; then
    cargo test "$@"
else
    # Both server modes: the default replica set (change streams), then a
    # standalone server (no change streams: waiters poll), same tests.
    echo "test.sh: == against SecantusDB as a replica set" >&2
    scripts/with-server.sh cargo test "$@"
    echo "test.sh: == against SecantusDB as a standalone server" >&2
    scripts/with-server.sh --standalone cargo test "$@"
fi
if [ "${SKIP_SECURE:-0}" != 1 ]; then
    echo "test.sh: == against SecantusDB with authentication and TLS" >&2
    scripts/secure-server.sh cargo test --test security -- --ignored
fi
