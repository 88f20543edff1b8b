#!/usr/bin/env bash
# The demo: two contenders taking turns on one lock, against MONGODB_URI or,
# when it is unset, a SecantusDB test server installed and started here.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
[ -n "${MONGODB_URI:-}" ] || scripts/server.sh install
exec scripts/with-server.sh cargo run --quiet --example lock
