#!/usr/bin/env bash
# Run a command against a locked-down SecantusDB: SCRAM-SHA-256
# authentication required, TLS with client certificates required, and users
# whose roles grant only what the README's "Security" section documents.
# Everything is made here, at test time, in a temporary directory that is
# removed afterwards:
#
#   1. a throwaway CA, a server certificate (127.0.0.1) and a client
#      certificate, with openssl;
#   2. the server, started once WITHOUT --auth on an on-disk store, where
#      the users and roles, and each user's two collections, are created
#      (with the venv's pymongo), then stopped by PID;
#   3. the server, restarted on the same store with --auth and TLS;
#   4. COMMAND, with these variables exported (and the server stopped by
#      PID when it ends, whatever way it ends):
#
#   MONGOELECTOR_SECURE_HOST      127.0.0.1:PORT
#   MONGOELECTOR_SECURE_TLS       tls=true&tlsCAFile=...&tlsCertificateKeyFile=...
#   MONGOELECTOR_SECURE_PASSWORD  every test user's password
#
# Users (authSource admin): `admin` (root); `elector_app` and
# `elector_commands`, each with only the README's role; and `lacks_ACTION`
# for each action the server checks (`find`, `update`, `createIndex`,
# `killCursors`), with the README's role minus that one action. Each role
# grants on the database named after its user.
#
#   scripts/secure-server.sh cargo test --test security -- --ignored
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
[ "$#" -gt 0 ] || { echo "usage: secure-server.sh COMMAND [ARGS...]" >&2; exit 2; }
die() { echo "secure-server.sh: $*" >&2; exit 1; }
command -v openssl >/dev/null 2>&1 || die "openssl is needed to make the test certificates"

"$ROOT/scripts/server.sh" install
PY="$ROOT/.secantus/venv/bin/python"
"$PY" -c "import pymongo" 2>/dev/null || die "pymongo is missing from $ROOT/.secantus/venv"

TMP="$(mktemp -d)"
PID=""
cleanup() {
    [ -z "$PID" ] || "$ROOT/scripts/server.sh" stop "$PID"
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# 1. Certificates: EC P-256 keys (quick to make), PKCS#8 PEM.
cd "$TMP"
ossl() { openssl "$@" 2>"$TMP/openssl.err" || { cat "$TMP/openssl.err" >&2; die "openssl $1 failed"; }; }
key() { ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"; }
key ca.key
ossl req -x509 -new -key ca.key -days 2 -subj "/CN=mongoelector test CA" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" -out ca.pem
leaf() { # NAME SUBJECT EXTENSIONS
    key "$1.key"
    ossl req -new -key "$1.key" -subj "$2" -out "$1.csr"
    printf '%s\n' "$3" >"$1.ext"
    ossl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
        -extfile "$1.ext" -out "$1.pem"
}
leaf server "/CN=127.0.0.1" "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,DNS:localhost"
leaf client "/CN=elector_app" "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth"
# The driver's tlsCertificateKeyFile: the certificate, then its key.
cat client.pem client.key >client-bundle.pem
cd "$ROOT"

# 2. Users and roles, on a server without --auth.
PASSWORD="pw-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
read -r PORT PID < <("$ROOT/scripts/server.sh" start --storage-path "$TMP/data")
[ -n "$PID" ] || die "the server did not start"
"$PY" - "$PORT" "$PASSWORD" <<'PY' || die "creating the users and roles failed"
import sys
from pymongo import MongoClient

port, password = int(sys.argv[1]), sys.argv[2]
# The role the README documents: the lock collection and the status
# collection (the crate's default names), in the database of its user.
LOCK = ["find", "insert", "update", "changeStream", "killCursors", "listIndexes"]
STATUS = ["find", "insert", "update", "createIndex"]

def privileges(db, without=None):
    drop = lambda actions: [a for a in actions if a != without]
    return [
        {"resource": {"db": db, "collection": "mongolocker"}, "actions": drop(LOCK)},
        {"resource": {"db": db, "collection": "elector.status"}, "actions": drop(STATUS)},
    ]

client = MongoClient("127.0.0.1", port, directConnection=True)
admin = client.admin
admin.command("createUser", "admin", pwd=password, roles=[{"role": "root", "db": "admin"}],
              mechanisms=["SCRAM-SHA-256"])
# Each user works in a database named after it (a change stream is shared
# per database and collection within a process, so the tests keep apart).
users = [("elector_app", None), ("elector_commands", None)]
# The actions this server checks, each missing from one role.
users += [(f"lacks_{a}", a) for a in ["find", "update", "createIndex", "killCursors"]]
for user, without in users:
    admin.command("createRole", user, privileges=privileges(user, without), roles=[])
    admin.command("createUser", user, pwd=password, roles=[{"role": user, "db": "admin"}],
                  mechanisms=["SCRAM-SHA-256"])
    # The two collections exist before the tests: on an on-disk store
    # SecantusDB 0.7.0b3 can deadlock for good when a createIndexes that
    # creates a collection races the first write into it (the status index
    # against the first status report); MongoDB does not. The crate's own
    # index creation still runs (and is refused where the role lacks it).
    for coll in ["mongolocker", "elector.status"]:
        client[user].create_collection(coll)
client.close()
PY
"$ROOT/scripts/server.sh" stop "$PID"
PID=""

# 3. The same store with authentication and TLS (client certificates required).
read -r PORT PID < <("$ROOT/scripts/server.sh" start \
    --storage-path "$TMP/data" --auth \
    --tls-cert-file "$TMP/server.pem" --tls-key-file "$TMP/server.key" \
    --tls-ca-file "$TMP/ca.pem" --tls-require-client-cert)
[ -n "$PID" ] || die "the server did not restart with --auth and TLS"

export MONGOELECTOR_SECURE_HOST="127.0.0.1:$PORT"
export MONGOELECTOR_SECURE_TLS="tls=true&tlsCAFile=$TMP/ca.pem&tlsCertificateKeyFile=$TMP/client-bundle.pem"
export MONGOELECTOR_SECURE_PASSWORD="$PASSWORD"
echo "secure-server.sh: SecantusDB with --auth and TLS (PID $PID) at 127.0.0.1:$PORT" >&2
status=0
"$@" || status=$?
[ "$status" = 0 ] || { "$ROOT/scripts/server.sh" failed "$PID" "$PORT"; PID=""; }
exit "$status"
