#!/usr/bin/env bash
# Request latency of the HTTP API under load from a second process (wrk, Debian package), against
# `serve` on a scratch SQLite database (or `--db postgres://...` passed through) holding 50
# accounts, 10 of them needing attention. Prints wrk's summary per endpoint. wrk runs one thread
# with 8 connections (BENCH_CONNECTIONS) for 10 s (BENCH_SECONDS) per endpoint.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "bench-api: install wrk (apt-get install wrk)" >&2; exit 1; }
cargo build --release --quiet
bin=./target/release/pairing-worker
scratch=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$scratch"; }
trap cleanup EXIT
PAIRING_WORKER_KEY=$("$bin" keys generate)
export PAIRING_WORKER_KEY
db="${BENCH_DB:-sqlite:$scratch/bench.db}"
token=$("$bin" tokens create --db "$db" --organisation bench)
for i in $(seq 1 50); do
  printf 'Sandbox-Pass-1\n' | "$bin" accounts add --db "$db" --organisation bench --provider deliveroo \
    --username "owner$i@sandbox.test" --store "219384:Shoreditch:Bao & Co" >/dev/null
done
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$bin" serve --db "$db" --sandbox --slots 1 --listen "127.0.0.1:$port" 2>"$scratch/serve.log" &
pid=$!
for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
base="http://127.0.0.1:$port"
auth=(-H "Authorization: Bearer $token")
# Ten accounts get checked first; the sandbox does not know their usernames, so they end
# `invalid_credentials/unknown_account` and show up as repair alerts.
accounts=$(curl -s "${auth[@]}" "$base/v1/accounts" | python3 -c 'import json,sys; print(" ".join(a["id"] for a in json.load(sys.stdin)[:10]))')
for account in $accounts; do
  job=$(curl -s -X POST "${auth[@]}" -H 'Content-Type: application/json' \
    -d '{"kind":"recheck","interactive":false}' "$base/v1/accounts/$account/jobs" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
done
for _ in $(seq 1 600); do
  alerts=$(curl -s "${auth[@]}" "$base/v1/repair-alerts" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["alerts"]))')
  [ "$alerts" -ge 10 ] && break
  sleep 0.2
done
echo "accounts: 50, needing attention: $alerts"
for path in /healthz "/v1/jobs/$job" /v1/accounts /v1/repair-alerts; do
  echo "== GET $path"
  wrk -t1 -c"${BENCH_CONNECTIONS:-8}" -d"${BENCH_SECONDS:-10}s" --latency -H "Authorization: Bearer $token" "$base$path" \
    | grep -E "Latency|50%|99%|Requests/sec|Non-2xx"
done
