#!/usr/bin/env bash
# The soak: 11 worker processes (2 threads each: two locks, an election, a
# semaphore, a read-write lock) with a random fault every few seconds
# (SIGKILL, SIGSTOP, partition, latency, reset), then the history checker.
# Against a fresh SecantusDB unless MONGODB_URI is set (which must then be
# mongodb://127.0.0.1:PORT/...).
#
#   scripts/soak.sh [SECONDS (default 60)] [SEED]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
cargo build --quiet --examples
[ -n "${MONGODB_URI:-}" ] || scripts/server.sh install
exec scripts/with-server.sh "${CARGO_TARGET_DIR:-target}/debug/examples/soak" "$@"
