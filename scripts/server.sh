#!/usr/bin/env bash
# Install, start and stop the SecantusDB test server (a MongoDB-compatible
# server in Python, used only for tests; never linked into the crate).
#
#   scripts/server.sh install            venv + pinned secantusdb in .secantus/venv
#   scripts/server.sh start [ARGS...]    start on a free loopback port; prints
#                                        "PORT PID" and waits until it listens;
#                                        its log is .secantus/server-PORT.log (the
#                                        last 10 logs are kept, KEEP_LOGS=N)
#   scripts/server.sh stop PID           SIGTERM, then wait for the PID to exit
#   scripts/server.sh failed PID PORT    after a failed run: stop it (a stuck
#                                        server writes its threads' stacks to
#                                        its log when asked to stop), then
#                                        print the last lines of its log
#
# Extra start ARGS go to secantusd-py (for example --standalone, or
# --storage-path DIR for an on-disk store; the default is :memory:).
#
# Environment:
#   SECANTUS_PORT=N    start on port N instead of a free one (for example
#                      27017, to run programs that default to
#                      mongodb://127.0.0.1:27017/ against it)
#   PYTHON=python3     the Python that creates the venv
#   KEEP_LOGS=10       how many server logs to keep
#
# install also installs the Python package mongoelector (pinned, below)
# into the venv, for the mixed-fleet tests (tests/python_fleet.rs).
set -euo pipefail

SECANTUS_VERSION="0.7.0b3"
# The Python package this crate ports, for the mixed-fleet tests
# (tests/python_fleet.rs drives it through tests/python/*.py).
PY_ELECTOR_VERSION="1.0.2"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="$ROOT/.secantus"
VENV="$DIR/venv"
PYTHON="${PYTHON:-python3}"

die() { echo "server.sh: $*" >&2; exit 1; }

install() {
    local stamp="$VENV/.secantusdb-$SECANTUS_VERSION"
    if [ -f "$stamp" ] && [ -x "$VENV/bin/secantusd-py" ]; then
        install_py_elector
        return 0
    fi
    mkdir -p "$DIR"
    echo "server.sh: installing secantusdb==$SECANTUS_VERSION into $VENV" >&2
    "$PYTHON" -m venv "$VENV" || die "could not create a venv with $PYTHON"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "secantusdb==$SECANTUS_VERSION" ||
        die "pip install secantusdb==$SECANTUS_VERSION failed"
    touch "$stamp"
    install_py_elector
}

install_py_elector() {
    local stamp="$VENV/.mongoelector-$PY_ELECTOR_VERSION"
    [ -f "$stamp" ] && return 0
    echo "server.sh: installing mongoelector==$PY_ELECTOR_VERSION into $VENV" >&2
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "mongoelector==$PY_ELECTOR_VERSION" ||
        die "pip install mongoelector==$PY_ELECTOR_VERSION failed"
    touch "$stamp"
}

free_port() {
    "$PYTHON" - <<'PY'
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
PY
}

wait_port() { # PORT PID
    local i
    for i in $(seq 1 300); do
        kill -0 "$2" 2>/dev/null || return 1
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    return 1
}

# Keep the newest KEEP_LOGS (default 10) server logs; each start writes one.
prune_logs() {
    local keep="${KEEP_LOGS:-10}" old
    # Newest first; names are server-PORT.log, no spaces.
    # shellcheck disable=SC2012
    for old in $(ls -1t "$DIR"/server-*.log 2>/dev/null | tail -n +"$keep"); do
        rm -f "$old"
    done
}

start() {
    install
    local port="${SECANTUS_PORT:-$(free_port)}" has_storage=0 arg
    for arg in "$@"; do [ "$arg" = "--storage-path" ] && has_storage=1; done
    local storage=()
    [ "$has_storage" = 1 ] || storage=(--storage-path :memory:)
    local log="$DIR/server-$port.log"
    prune_logs
    # --enable-test-commands: the `failCommand` fail point, with which the
    # tests make the server apply a write and lose its acknowledgement (as
    # mongod's --setParameter enableTestCommands=1; loopback only here).
    "$VENV/bin/secantusd-py" --host 127.0.0.1 --port "$port" "${storage[@]}" \
        --log-level WARNING --enable-test-commands "$@" >"$log" 2>&1 </dev/null &
    local pid=$!
    if ! wait_port "$port" "$pid"; then
        kill "$pid" 2>/dev/null || true
        cat "$log" >&2 || true
        die "SecantusDB did not start listening on 127.0.0.1:$port"
    fi
    echo "$port $pid"
}

stop() {
    local pid="${1:?usage: server.sh stop PID}" i
    kill -TERM "$pid" 2>/dev/null || return 0
    for i in $(seq 1 300); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    echo "server.sh: PID $pid did not stop after SIGTERM; killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
}

failed() {
    local pid="${1:?usage: server.sh failed PID PORT}" port="${2:?usage: server.sh failed PID PORT}"
    local file="$DIR/server-$port.log"
    stop "$pid"
    [ -s "$file" ] || { echo "server.sh: the server's log ($file) is empty" >&2; return 0; }
    {
        echo "server.sh: ---- the last 200 lines of $file ----"
        tail -n 200 "$file"
        echo "server.sh: ---- end of $file ----"
    } >&2
}

cmd="${1:-}"
shift || true
case "$cmd" in
    install) install ;;
    start) start "$@" ;;
    stop) stop "$@" ;;
    failed) failed "$@" ;;
    *) die "usage: server.sh install | start [ARGS...] | stop PID | failed PID PORT (SECANTUS_PORT=N start: a fixed port)" ;;
esac
