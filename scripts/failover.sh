#!/usr/bin/env bash
# Failover timing: three elector daemons (examples/elector.rs) on one key,
# against MONGODB_URI or, when it is unset, a fresh SecantusDB test server
# (stopped by PID afterwards). Over TRIALS trials each it measures:
#   (a) SIGKILL of the master  -> another node's BECAME MASTER
#       (no release: the lease must run out; bound ttl + retry + 1 round trip)
#   (b) SIGINT of the master   -> another node's BECAME MASTER
#       (the daemon calls elector.stop(), which releases at once; bound: the
#        followers' retry interval, plus one round trip)
# and prints min / median / max beside the bound. The victim is restarted
# after each trial, so there are always three nodes.
#
#   scripts/failover.sh                       # ttl 2 s, retry 200 ms, 10 trials each
#   TTL=3 RETRY_MS=500 TRIALS=20 scripts/failover.sh
#
# Times are measured from just before the signal to the timestamp the new
# master printed on its BECAME MASTER line (both read from this machine's
# clock, in milliseconds).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
if [ -z "${MONGODB_URI:-}" ]; then
    scripts/server.sh install
    exec scripts/with-server.sh "$0" "$@"
fi

# bash reports each SIGKILLed daemon ("... Killed ..."): that is the point here.
exec 2> >(grep --line-buffered -v -E ': line [0-9]+: +[0-9]+ Killed ' >&2)

TTL="${TTL:-2}"
RETRY_MS="${RETRY_MS:-200}"
TRIALS="${TRIALS:-10}"
cargo build --quiet --release --example elector
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/elector"
KEY="failover-$$"
LOGS="$(mktemp -d)"
PIDS=(0 0 0)
LOG=("" "" "")
GEN=0
cleanup() {
    for pid in "${PIDS[@]}"; do
        [ "$pid" = 0 ] || kill -KILL "$pid" 2>/dev/null || true
    done
    rm -rf "$LOGS"
}
trap cleanup EXIT

start_node() { # SLOT
    GEN=$((GEN + 1))
    LOG[$1]="$LOGS/node$1.$GEN.log"
    "$BIN" "$KEY" "$TTL" "$RETRY_MS" >"${LOG[$1]}" 2>&1 &
    PIDS[$1]=$!
}

became() { grep -c "BECAME MASTER" "${LOG[$1]}" 2>/dev/null || true; }

# Seconds since the epoch (UTC, with ms) of the last BECAME MASTER in a log.
became_at() { # SLOT T0
    local hms
    hms=$(grep "BECAME MASTER" "${LOG[$1]}" | tail -1 | cut -d' ' -f1)
    # The daemon prints UTC HH:MM:SS.mmm; put it on T0's day.
    awk -v hms="$hms" -v t0="$2" 'BEGIN {
        split(hms, p, ":"); sod = p[1] * 3600 + p[2] * 60 + p[3];
        day = t0 - (t0 % 86400); t = day + sod;
        if (t < t0 - 43200) t += 86400;
        printf "%.3f", t }'
}

wait_master() { # -> echoes the slot of the one master, or fails after 30 s
    local end=$((SECONDS + 30)) i
    while [ "$SECONDS" -lt "$end" ]; do
        for i in 0 1 2; do
            local b l
            b=$(became "$i")
            l=$(grep -c "lost master" "${LOG[$i]}" 2>/dev/null || true)
            if [ "$b" -gt "$l" ]; then echo "$i"; return 0; fi
        done
        sleep 0.05
    done
    return 1
}

trial() { # SIGNAL -> sets RESULT to the takeover time in seconds
    # (not in a subshell: it restarts the victim, which must stay our child)
    local sig="$1" master others=() before=() i t0 end
    master=$(wait_master) || { cat "$LOGS"/*.log >&2; echo "no master" >&2; exit 1; }
    for i in 0 1 2; do
        [ "$i" = "$master" ] && continue
        others+=("$i")
        before+=("$(became "$i")")
    done
    # Let the followers settle, then signal at a random phase of their
    # polling: fixed sleeps here would line up with the retry interval of
    # the node restarted just before and hide the wait for its next poll.
    sleep "$(awk -v r="$RETRY_MS" -v x="$RANDOM" 'BEGIN { printf "%.3f", 0.5 + (x % r) / 1000 }')"
    t0=$(date +%s.%N)
    kill "-$sig" "${PIDS[$master]}"
    end=$((SECONDS + TTL + 20))
    local winner=""
    while [ -z "$winner" ] && [ "$SECONDS" -lt "$end" ]; do
        for i in 0 1; do
            if [ "$(became "${others[$i]}")" -gt "${before[$i]}" ]; then
                winner="${others[$i]}"
                break
            fi
        done
        [ -n "$winner" ] || sleep 0.01
    done
    [ -n "$winner" ] || { cat "$LOGS"/*.log >&2; echo "no takeover after $sig" >&2; exit 1; }
    if [ "$sig" = INT ]; then
        wait "${PIDS[$master]}" || { echo "the stopped master did not exit cleanly" >&2; exit 1; }
    else
        wait "${PIDS[$master]}" 2>/dev/null || true
    fi
    RESULT=$(awk -v a="$(became_at "$winner" "$t0")" -v b="$t0" 'BEGIN { printf "%.3f", a - b }')
    start_node "$master"
    sleep 0.3
}

stats() { # VALUES... -> "min median max"
    printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END {
        m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2;
        printf "%.3f %.3f %.3f\n", v[1], m, v[NR] }'
}

for i in 0 1 2; do start_node "$i"; done
echo "failover.sh: 3 electors on key $KEY, ttl ${TTL} s, retry ${RETRY_MS} ms, $TRIALS trials each" >&2

KILLS=() STOPS=()
for n in $(seq 1 "$TRIALS"); do
    trial KILL
    KILLS+=("$RESULT")
    echo "  SIGKILL trial $n: ${KILLS[-1]} s" >&2
done
for n in $(seq 1 "$TRIALS"); do
    trial INT
    STOPS+=("$RESULT")
    echo "  stop    trial $n: ${STOPS[-1]} s" >&2
done

read -r kmin kmed kmax < <(stats "${KILLS[@]}")
read -r smin smed smax < <(stats "${STOPS[@]}")
kill_bound=$(awk -v t="$TTL" -v r="$RETRY_MS" 'BEGIN { printf "%.3f", t + r / 1000 }')
stop_bound=$(awk -v r="$RETRY_MS" 'BEGIN { printf "%.3f", r / 1000 }')
echo
echo "## Failover: 3 elector processes, ttl ${TTL} s, retry ${RETRY_MS} ms, $TRIALS trials each"
echo
echo "| master ... | min, s | median, s | max, s | bound, s |"
echo "|---|---|---|---|---|"
echo "| SIGKILLed (lease runs out) | $kmin | $kmed | $kmax | ttl + retry + 1 round trip = $kill_bound + 1 RTT |"
echo "| stopped (SIGINT → stop(), releases) | $smin | $smed | $smax | retry interval = $stop_bound (+ the release and 1 RTT) |"
