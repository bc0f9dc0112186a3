#!/usr/bin/env bash
# Load benchmark of the release binary: the server pinned to CPU 0, wrk on
# CPU 1, against discovery, JWKS, a bare handler (/healthz), the token
# endpoint (client_credentials, JWE to an ECDH-ES and to an RSA-OAEP
# resource server, then at half its maximum rate for latency) and
# introspection (one core, then two). Prints req/s, p50/p99 and RSS, and
# the ratio to the raw crypto limit measured in the same run.
# Usage: tests/load/run.sh [seconds-per-endpoint]   (needs wrk, python3 with jwcrypto)
# With RESULTS=FILE it also appends name, req/s, p50, p99 as TSV (for plot.py).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT="$PWD"
DUR="${1:-10}"
CONNS="${CONNS:-16}"
[ -n "${SKIP_BUILD:-}" ] || cargo build --release -p gatehouse-server >/dev/null
BIN="$PWD/target/release/gatehouse"
WORK="$(mktemp -d)"
trap 'kill "$SERVER" 2>/dev/null || true; rm -rf "$WORK"' EXIT
cd "$WORK"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
BASE="http://127.0.0.1:$PORT"
export GATEHOUSE_ISSUER="$BASE" GATEHOUSE_LOG=warn
export GATEHOUSE_KEY_ENCRYPTION_KEY="$(python3 -c 'import os,base64; print(base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("="))')"

python3 -c "from jwcrypto import jwk; print(jwk.JWK.generate(kty='EC', crv='P-256', alg='ECDH-ES+A256KW', use='enc', kid='load-ec').export_public())" > ec.jwk
python3 -c "from jwcrypto import jwk; print(jwk.JWK.generate(kty='RSA', size=2048, alg='RSA-OAEP-256', use='enc', kid='load-rsa').export_public())" > rsa.jwk
"$BIN" migrate >/dev/null
"$BIN" resources create --audience https://ec.api.example --jwk-file ec.jwk --signing-alg ES256 >/dev/null
"$BIN" resources create --audience https://rsa.api.example --jwk-file rsa.jwk --signing-alg ES256 >/dev/null
CLIENT=$("$BIN" clients create --name load --grant-type client_credentials)
CID=$(echo "$CLIENT" | python3 -c 'import json,sys; print(json.load(sys.stdin)["client_id"])')
CSECRET=$(echo "$CLIENT" | python3 -c 'import json,sys; print(json.load(sys.stdin)["client_secret"])')
AUTH="Basic $(printf '%s:%s' "$CID" "$CSECRET" | base64 -w0)"

# The raw crypto limit of this run, on the server's core: one ES256 sign +
# one ECDH-ES+A256KW/A256GCM encrypt in a loop (gatehouse bench measures it).
LIMIT_JSON=$(taskset -c 0 "$BIN" bench --seconds 8 --json 2>/dev/null)
LIMIT=$(echo "$LIMIT_JSON" | python3 -c 'import json,sys; print(round(json.load(sys.stdin)["issuance_per_second"]["raw_crypto_es256_sign_ecdh_es_encrypt"]["rate"]))')

START=$(date +%s%N)
taskset -c 0 "$BIN" serve --listen "127.0.0.1:$PORT" 2>server.log &
SERVER=$!
until curl -sf "$BASE/healthz" >/dev/null; do sleep 0.01; done
echo "start-up to first answer: $(( ($(date +%s%N) - START) / 1000000 )) ms"
rss() { awk '/VmRSS/ {print int($2/1024)}' "/proc/$SERVER/status"; }
echo "RSS idle: $(rss) MiB"

TOKEN=$(curl -sf -H "Authorization: $AUTH" -d grant_type=client_credentials "$BASE/token" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')

printf '\n%-28s %10s %9s %9s %8s\n' endpoint req/s p50 p99 RSS_MiB
run() { # name, wrk args...
  local name=$1; shift
  local out; out=$(taskset -c 1 wrk -t1 -c"$CONNS" -d"${DUR}s" --latency "$@" 2>&1)
  local rps p50 p99
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  p50=$(echo "$out" | awk '$1=="50%" {print $2}')
  p99=$(echo "$out" | awk '$1=="99%" {print $2}')
  if echo "$out" | grep -q "Non-2xx"; then echo "$out" | grep -E "Non-2xx" >&2; fi
  printf '%-28s %10s %9s %9s %8s\n' "$name" "$rps" "$p50" "$p99" "$(rss)"
  [ -z "${RESULTS:-}" ] || printf '%s\t%s\t%s\t%s\n' "$name" "$rps" "$p50" "$p99" >> "$RESULTS"
  eval "RPS_$(echo "$name" | tr -c 'a-zA-Z0-9\n' '_')=$rps"
}
run healthz "$BASE/healthz"
run discovery "$BASE/.well-known/openid-configuration"
run jwks "$BASE/jwks"
export AUTH BODY="grant_type=client_credentials&resource=https%3A%2F%2Fec.api.example"
run token_ecdh_es -s "$ROOT/tests/load/post.lua" "$BASE/token"
BODY="grant_type=client_credentials&resource=https%3A%2F%2Frsa.api.example"
run token_rsa_oaep -s "$ROOT/tests/load/post.lua" "$BASE/token"
BODY="token=$TOKEN"
run introspect_own_jwe -s "$ROOT/tests/load/post.lua" "$BASE/introspect"

# Latency at half the maximum token-endpoint throughput: each connection
# pauses between requests so the offered load is about half the maximum.
HALF_DELAY=$(python3 -c "print(max(1, round($CONNS * 1000 / ($RPS_token_ecdh_es / 2))))")
BODY="grant_type=client_credentials&resource=https%3A%2F%2Fec.api.example"
DELAY_MS=$HALF_DELAY run token_ecdh_es_half_load -s "$ROOT/tests/load/post.lua" "$BASE/token"
echo "RSS after load: $(rss) MiB"

kill "$SERVER"; wait "$SERVER" 2>/dev/null || true

# Introspection with the whole machine (2 cores shared by server and wrk),
# the setting of Hydra's published figure.
PORT2=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$BIN" serve --listen "127.0.0.1:$PORT2" 2>server2.log &
SERVER=$!
until curl -sf "http://127.0.0.1:$PORT2/healthz" >/dev/null; do sleep 0.01; done
BODY="token=$TOKEN"
out=$(wrk -t2 -c32 -d"${DUR}s" --latency -s "$ROOT/tests/load/post.lua" "http://127.0.0.1:$PORT2/introspect" 2>&1)
if echo "$out" | grep -q "Non-2xx"; then echo "$out" | grep -E "Non-2xx" >&2; fi
RPS_introspect_2=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
printf '%-28s %10s %9s %9s %8s\n' introspect_own_jwe_2_cores "$RPS_introspect_2" "$(echo "$out" | awk '$1=="50%" {print $2}')" "$(echo "$out" | awk '$1=="99%" {print $2}')" "$(rss)"
[ -z "${RESULTS:-}" ] || printf '%s\t%s\t%s\t%s\n' introspect_own_jwe_2_cores "$RPS_introspect_2" "$(echo "$out" | awk '$1=="50%" {print $2}')" "$(echo "$out" | awk '$1=="99%" {print $2}')" >> "$RESULTS"

echo
echo "raw crypto limit (ES256 sign + ECDH-ES+A256KW encrypt, one core): $LIMIT/s"
python3 - "$LIMIT" "$RPS_token_ecdh_es" "$RPS_healthz" "$RPS_discovery" "$RPS_jwks" <<'PY'
import sys
limit, tok, bare, disc, jwks = map(float, sys.argv[1:])
print(f"token endpoint / raw crypto limit: {tok/limit:.2f}")
print(f"bare handler / discovery: {bare/disc:.2f}   bare handler / jwks: {bare/jwks:.2f}")
PY
python3 -c "print(f'introspection on 2 cores / Hydra 5,100/s: {float(\"$RPS_introspect_2\")/5100:.1f}x')"
