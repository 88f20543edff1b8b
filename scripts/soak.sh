#!/usr/bin/env bash
# The soak: 11 worker processes (2 threads each: two locks, an election, a
# semaphore, a read-write lock), a planned schedule of faults that gives
# every primitive two pauses, kills, partitions and server restarts, then
# random faults (SIGKILL, SIGSTOP, partition, latency, reset), then the
# history checker. It starts a SecantusDB of its own on an on-disk store
# (restarted as a fault) unless MONGODB_URI is set (which must then be
# mongodb://127.0.0.1:PORT/...; nothing is restarted).
#
#   scripts/soak.sh [SECONDS (default 60)] [SEED]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
cargo build --quiet --examples
scripts/server.sh install
exec "${CARGO_TARGET_DIR:-target}/debug/examples/soak" "$@"
