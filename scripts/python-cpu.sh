#!/usr/bin/env bash
# Client CPU per acquire+release cycle: this crate's MongoLocker against the
# Python package mongoelector (1.0.2, its MongoLocker), side by side.
#
#   scripts/python-cpu.sh            3 rounds of CYCLES (default 3000) cycles
#   ROUNDS=5 CYCLES=2000 scripts/python-cpu.sh
#
# Each round runs both programs, each on a fresh SecantusDB server (the
# server slows down as its oplog grows), the order alternating from round
# to round. Each program measures its own user + sys CPU time (getrusage,
# all its threads) over the measured cycles only, after a warm-up. The
# Python package is installed into the test venv by scripts/server.sh.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROUNDS="${ROUNDS:-3}"
CYCLES="${CYCLES:-3000}"
export CYCLES
cd "$ROOT"
"$ROOT/scripts/server.sh" install
PY="$ROOT/.secantus/venv/bin/python"
cargo bench --bench cycle_cpu --no-run >&2

PID=""
trap '[ -z "$PID" ] || "$ROOT/scripts/server.sh" stop "$PID"' EXIT
# Runs one side on a fresh server; prints its result line.
side() {
    local port
    read -r port PID < <("$ROOT/scripts/server.sh" start)
    if [ "$1" = rust ]; then
        MONGODB_URI="mongodb://127.0.0.1:$port/" cargo bench --quiet --bench cycle_cpu 2>/dev/null | grep '^rust '
    else
        MONGODB_URI="mongodb://127.0.0.1:$port/" "$PY" "$ROOT/scripts/cycle_cpu.py" "$CYCLES"
    fi
    "$ROOT/scripts/server.sh" stop "$PID"
    PID=""
}

results=()
for round in $(seq 1 "$ROUNDS"); do
    if [ $((round % 2)) = 1 ]; then order=(rust python); else order=(python rust); fi
    for who in "${order[@]}"; do
        line="$(side "$who")"
        echo "round $round: $line" >&2
        results+=("$line")
    done
done

printf '%s\n' "${results[@]}" | awk -v rounds="$ROUNDS" '
    { cpu[$1] += $3; wall[$1] += $4; n[$1]++ }
    END {
        print "| client | cycles per run | runs | client CPU per cycle, µs | wall per cycle, µs |"
        print "|---|---|---|---|---|"
        printf "| this crate (MongoLocker, Rust) | %d | %d | %.0f | %.0f |\n", ENVIRON["CYCLES"], n["rust"], cpu["rust"]/n["rust"], wall["rust"]/n["rust"]
        printf "| mongoelector 1.0.2 (MongoLocker, Python) | %d | %d | %.0f | %.0f |\n", ENVIRON["CYCLES"], n["python"], cpu["python"]/n["python"], wall["python"]/n["python"]
        printf "\nClient CPU ratio, Rust to Python: %.2f\n", (cpu["rust"]/n["rust"]) / (cpu["python"]/n["python"])
    }'
