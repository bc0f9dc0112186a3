#!/usr/bin/env bash
# Chaos run of the release binary (issue 13, "Measured, not hoped"): two
# `gatehouse serve` instances on a private PostgreSQL server of this run,
# eight refresh-token chains (each begun with the real code flow) and two
# client_credentials loops round-robin over both, PostgreSQL stopped
# (`pg_ctl stop -m fast`) for the outage and started again. The driver
# (tests/chaos/driver.rs) prints per-second status counts, 503 latency,
# surviving chains, tokens issued during the outage, the recovery time and
# any 500s, and exits non-zero when a target is missed.
# Usage: tests/chaos/run.sh [outage-seconds]   (default 40; SKIP_BUILD=1 to reuse the build)
# Needs PostgreSQL's server binaries (GATEHOUSE_TEST_PG_BIN, else the newest
# /usr/lib/postgresql/*/bin), python3, openssl and curl. The shared
# PostgreSQL server is never touched.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUTAGE="${1:-40}"
TARGET="${CARGO_TARGET_DIR:-$PWD/target}"
if [ -z "${SKIP_BUILD:-}" ]; then
  cargo build --release -p gatehouse-server --bin gatehouse
  cargo build --release -p gatehouse-it --example chaos
fi
BIN="$TARGET/release/gatehouse"
DRIVER="$TARGET/release/examples/chaos"

PGBIN="${GATEHOUSE_TEST_PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}"
[ -x "$PGBIN/pg_ctl" ] || { echo "no PostgreSQL server binaries: set GATEHOUSE_TEST_PG_BIN" >&2; exit 2; }
AS_PG=""   # PostgreSQL refuses to run as root: then as the postgres user
[ "$(id -u)" != 0 ] || AS_PG="runuser -u postgres --"

WORK="$(mktemp -d)"
PGDIR="$(mktemp -d)"
SERVERS=()
cleanup() {
  for pid in "${SERVERS[@]}"; do kill "$pid" 2>/dev/null || true; done
  $AS_PG "$PGBIN/pg_ctl" -D "$PGDIR/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$WORK" "$PGDIR"
}
trap cleanup EXIT
[ -z "$AS_PG" ] || chown postgres: "$PGDIR"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
json() { python3 -c "import json,sys; print(json.load(sys.stdin)[\"$1\"])"; }

# The private PostgreSQL server: 127.0.0.1, a free port, trust, user postgres.
PGPORT=$(free_port)
$AS_PG "$PGBIN/initdb" -A trust -U postgres --no-sync -E UTF8 -D "$PGDIR/data" >/dev/null
PGCTL="$AS_PG $PGBIN/pg_ctl -D $PGDIR/data -l $PGDIR/server.log"
PGOPTS="-p $PGPORT -k $PGDIR -c listen_addresses=127.0.0.1 -c fsync=off"
$PGCTL -o "$PGOPTS" -w start >/dev/null

cd "$WORK"
P1=$(free_port) P2=$(free_port)
export GATEHOUSE_ISSUER="http://127.0.0.1:$P1" GATEHOUSE_LOG=warn
export GATEHOUSE_DATABASE_URL="postgres://postgres@127.0.0.1:$PGPORT/postgres"
export GATEHOUSE_KEY_ENCRYPTION_KEY="$(python3 -c 'import os,base64; print(base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("="))')"

# An API (ECDH-ES P-256 public key as a JWK) the client_credentials tokens are for.
openssl ecparam -name prime256v1 -genkey -noout 2>/dev/null | openssl ec -pubout -outform DER 2>/dev/null > api.der
python3 - > api.jwk <<'PY'
import base64, json
b64 = lambda b: base64.urlsafe_b64encode(b).decode().rstrip("=")
point = open("api.der", "rb").read()[-65:]  # 04 || x || y
print(json.dumps({"kty": "EC", "crv": "P-256", "x": b64(point[1:33]), "y": b64(point[33:]),
                  "alg": "ECDH-ES+A256KW", "use": "enc", "kid": "chaos-api"}))
PY
RESOURCE=https://api.chaos.example
REDIRECT=http://127.0.0.1:9/callback
"$BIN" migrate >/dev/null
"$BIN" resources create --audience "$RESOURCE" --jwk-file api.jwk >/dev/null
PASSWORD="chaos-$(python3 -c 'import secrets; print(secrets.token_urlsafe(12))')"
echo "$PASSWORD" | "$BIN" users create --username chaos --password-stdin >/dev/null
WEB=$("$BIN" clients create --name chaos-web --redirect-uri "$REDIRECT" \
  --grant-type authorization_code --grant-type refresh_token)
CC1=$("$BIN" clients create --name chaos-cc-1 --grant-type client_credentials)
CC2=$("$BIN" clients create --name chaos-cc-2 --grant-type client_credentials)
pair() { echo "$(echo "$1" | json client_id):$(echo "$1" | json client_secret)"; }

for port in "$P1" "$P2"; do
  "$BIN" serve --listen "127.0.0.1:$port" 2>>"server-$port.log" &
  SERVERS+=($!)
done
for port in "$P1" "$P2"; do
  for _ in $(seq 500); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.02; done
  curl -sf "http://127.0.0.1:$port/readyz" >/dev/null || { cat "server-$port.log" >&2; exit 2; }
done

export CHAOS_BASES="http://127.0.0.1:$P1,http://127.0.0.1:$P2"
export CHAOS_USER="chaos:$PASSWORD" CHAOS_WEB_CLIENT="$(pair "$WEB")"
export CHAOS_CC_CLIENTS="$(pair "$CC1"),$(pair "$CC2")"
export CHAOS_REDIRECT_URI="$REDIRECT" CHAOS_RESOURCE="$RESOURCE" CHAOS_OUTAGE_SECS="$OUTAGE"
export CHAOS_STOP_CMD="$PGCTL -m fast -w stop"
export CHAOS_START_CMD="$PGCTL -o '$PGOPTS' -W start"
export CHAOS_READY_CMD="$PGBIN/pg_isready -q -h 127.0.0.1 -p $PGPORT"
STATUS=0
"$DRIVER" || STATUS=$?
for port in "$P1" "$P2"; do
  n=$(grep -c . "server-$port.log" || true)
  echo "instance on port $port: $n log lines at warn and above"
done
exit "$STATUS"
