#!/usr/bin/env bash
# The demo, against MONGODB_URI or, when it is unset, a SecantusDB test
# server installed and started here (and stopped by PID afterwards):
#   1. two contenders taking turns on one lock (examples/lock.rs);
#   2. three elector daemons on one key (examples/elector.rs); the master is
#      killed with SIGKILL and another takes over; the survivors are stopped
#      with Ctrl-C (SIGINT) and hand over cleanly.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
if [ -z "${MONGODB_URI:-}" ]; then
    scripts/server.sh install
    exec scripts/with-server.sh "$0" "$@"
fi

echo "demo: building the examples (the first build compiles the driver: a minute or two)"
cargo build --examples
BIN="${CARGO_TARGET_DIR:-target}/debug/examples"
TTL=3 RETRY_MS=500
KEY="demo-$$"
LOGS="$(mktemp -d)"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    rm -rf "$LOGS"
}
trap cleanup EXIT

now_ms() { echo $(($(date +%s%N) / 1000000)); }
secs_since() { # START_MS -> seconds since then, with two decimals (no bc needed)
    local ms=$(($(now_ms) - $1))
    printf '%d.%02d' $((ms / 1000)) $((ms % 1000 / 10))
}

wait_for() { # SECONDS PATTERN FILES... -> prints the first file that matches
    # Counts its own 0.1 s naps rather than reading the wall clock, which
    # can jump (a virtual machine resumed, a time sync).
    local tries=$(($1 * 10)) pattern="$2" f
    shift 2
    while [ "$tries" -gt 0 ]; do
        tries=$((tries - 1))
        for f in "$@"; do
            if grep -q "$pattern" "$f" 2>/dev/null; then echo "$f"; return 0; fi
        done
        sleep 0.1
    done
    return 1
}

echo "== 1. two contenders taking turns on one lock"
"$BIN/lock"
echo
echo "== 2. three electors on key '$KEY' (ttl ${TTL}s, retry ${RETRY_MS}ms)"
for i in 1 2 3; do
    "$BIN/elector" "$KEY" "$TTL" "$RETRY_MS" >"$LOGS/node$i.log" 2>&1 &
    PIDS+=($!)
done
master_log=$(wait_for 20 "BECAME MASTER" "$LOGS"/node*.log) || { cat "$LOGS"/*.log; echo "no master elected" >&2; exit 1; }
sleep 1
"$BIN/status" "$KEY"
n=$(basename "$master_log" .log); n=${n#node}
victim=${PIDS[$((n - 1))]}
echo
echo "-- SIGKILL to the master (node $n, pid $victim): no release, its lease must run out"
killed_at=$(now_ms)
# Bash reports a child killed by a signal ("line N: PID Killed ...") on
# stderr as soon as it notices; this group's stderr goes nowhere.
{
    kill -KILL "$victim"
    wait "$victim" || true
} 2>/dev/null
others=()
for i in 1 2 3; do [ "$i" = "$n" ] || others+=("$LOGS/node$i.log"); done
new_log=$(wait_for $((TTL + 15)) "BECAME MASTER" "${others[@]}") || { cat "$LOGS"/*.log; echo "no takeover" >&2; exit 1; }
took=$(secs_since "$killed_at")
# The replacement bound: ttl + takeover grace (the default, a tenth of the
# ttl, at most 1 s) + retry interval + one round trip (0.7 s allowed).
grace_ms=$((TTL * 100 < 1000 ? TTL * 100 : 1000))
bound_ms=$((TTL * 1000 + grace_ms + RETRY_MS + 700))
printf -- "-- %s took over %s s after the kill (bound: ttl + grace + retry + one round trip = %d.%d s)\n" \
    "$(basename "$new_log" .log)" "$took" $((bound_ms / 1000)) $((bound_ms % 1000 / 100))
sleep 0.5
"$BIN/status" "$KEY"
echo
m=$(basename "$new_log" .log); m=${m#node}
last=$((6 - n - m))
echo "-- Ctrl-C (SIGINT) to the new master (node $m): it releases on the way out, so node $last"
echo "   takes over within its retry interval instead of waiting for the lease to expire"
stopped_at=$(now_ms)
kill -INT "${PIDS[$((m - 1))]}"
wait "${PIDS[$((m - 1))]}" || { echo "node $m did not exit cleanly" >&2; exit 1; }
wait_for 10 "BECAME MASTER" "$LOGS/node$last.log" >/dev/null || { cat "$LOGS"/*.log; echo "no handover" >&2; exit 1; }
printf -- "-- node%s took over %s s after the Ctrl-C\n" "$last" "$(secs_since "$stopped_at")"
kill -INT "${PIDS[$((last - 1))]}"
wait "${PIDS[$((last - 1))]}" || { echo "node $last did not exit cleanly" >&2; exit 1; }
echo
echo "== what the three daemons printed, in time order"
echo "   (each line's time is when it happened in that daemon, to the microsecond:"
echo "   a master steps down before it releases, so its 'lost master' comes first)"
for i in 1 2 3; do sed "s/^/node$i /" "$LOGS/node$i.log"; done | sort -s -k2,2
