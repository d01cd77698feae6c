#!/usr/bin/env bash
# Request latency of the HTTP API under load from a second process (wrk, Debian package), against
# `serve` on a scratch SQLite database (or BENCH_DB=postgres://...) holding 50
# accounts, 10 of them needing attention. Prints wrk's summary per endpoint. wrk runs one thread
# with 8 connections (BENCH_CONNECTIONS) for 10 s (BENCH_SECONDS) per endpoint.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "bench-api: install wrk (apt-get install wrk)" >&2; exit 1; }
cargo build --release --quiet
source scripts/lib/scratch-serve.sh
scratch_serve ./target/release/pairing-worker "${BENCH_DB:-sqlite:$scratch/bench.db}" bench --slots 1
auth=(-H "Authorization: Bearer $token")
for i in $(seq 1 50); do
  curl -s -o /dev/null "${auth[@]}" -H 'X-Can-Update-Credentials: true' -H 'Content-Type: application/json' \
    -d '{"provider": "deliveroo", "credentials": {"username": "owner'"$i"'@sandbox.test", "password": "Sandbox-Pass-1"},
         "stores": [{"id": "219384", "location": "Shoreditch", "brand": "Bao & Co"}]}' "$base/v1/accounts"
done
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
