#!/usr/bin/env bash
# Load on the device flow (RFC 8628) against the release binary, on
# SQLite: the server pinned to CPU 0, wrk on CPU 1. Measures
# POST /device_authorization (each a row written; a public client from
# rotating addresses) and polling of pending device codes at /token (each
# poll one read and one conditional write; most answers are slow_down,
# since every code is polled again within its interval: all answers are
# 400, which wrk reports as Non-2xx).
# Usage: tests/load/device.sh [seconds] [device codes to poll]   (needs wrk)
set -euo pipefail
cd "$(dirname "$0")/../.."
DUR="${1:-10}"
NCODES="${2:-2000}"
[ -n "${SKIP_BUILD:-}" ] || cargo build --release -p gatehouse-server >/dev/null
BIN="${BIN:-$PWD/target/release/gatehouse}"
LUA="$PWD/tests/load/device.lua"
WORK="$(mktemp -d)"
trap 'kill "$SERVER" 2>/dev/null || true; rm -rf "$WORK"' EXIT
cd "$WORK"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
BASE="http://127.0.0.1:$PORT"
export GATEHOUSE_ISSUER="$BASE" GATEHOUSE_LOG=error GATEHOUSE_TRUSTED_PROXIES=127.0.0.1/32
export GATEHOUSE_KEY_ENCRYPTION_KEY="$(python3 -c 'import os,base64; print(base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("="))')"
"$BIN" migrate >/dev/null
CID=$("$BIN" clients create --name "load device" --auth-method none \
  --grant-type urn:ietf:params:oauth:grant-type:device_code \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["client_id"])')
taskset -c 0 "$BIN" serve --listen "127.0.0.1:$PORT" 2>server.log &
SERVER=$!
until curl -sf "$BASE/healthz" >/dev/null; do sleep 0.01; done
python3 - "$BASE" "$CID" "$NCODES" > codes.txt <<'PY'
import http.client, json, sys, urllib.parse
base, cid, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
conn = http.client.HTTPConnection(urllib.parse.urlparse(base).netloc)
for i in range(n):
    body = urllib.parse.urlencode({"client_id": cid, "scope": "openid"})
    conn.request("POST", "/device_authorization", body, {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Forwarded-For": f"10.200.{i // 256 % 256}.{i % 256}"})
    r = conn.getresponse()
    print(json.loads(r.read())["device_code"])
PY
rss() { awk '/VmRSS/ {print int($2/1024)}' "/proc/$SERVER/status"; }
printf '%-32s %10s %9s %9s %8s\n' endpoint req/s p50 p99 RSS_MiB
run() { # name, mode
  local out; out=$(MODE=$2 CLIENT_ID=$CID CODES=$WORK/codes.txt taskset -c 1 \
    wrk -t1 -c"${CONNS:-16}" -d"${DUR}s" --latency -s "$LUA" "$BASE" 2>&1)
  printf '%-32s %10s %9s %9s %8s\n' "$1" \
    "$(echo "$out" | awk '/Requests\/sec/ {print $2}')" \
    "$(echo "$out" | awk '$1=="50%" {print $2}')" \
    "$(echo "$out" | awk '$1=="99%" {print $2}')" "$(rss)"
  echo "$out" | grep 'Non-2xx' | sed 's/^/    /' || true
}
run "device_authorization (a row)" start
run "token poll, device_code" poll
