#!/usr/bin/env bash
# Fuzzes the HTTP API from its own OpenAPI document with schemathesis (PyPI): every operation gets
# generated valid and invalid requests; any 5xx fails the run. Uses a scratch SQLite database, the
# sandbox portals and a local chromedriver, like the quick start.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/schemathesis-venv
if [ ! -x "$venv/bin/schemathesis" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q 'schemathesis>=4,<5'
fi
cargo build --quiet
bin=./target/debug/pairing-worker
scratch=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$scratch"; }
trap cleanup EXIT
PAIRING_WORKER_KEY=$("$bin" keys generate)
export PAIRING_WORKER_KEY
db="sqlite:$scratch/fuzz.db"
token=$("$bin" tokens create --db "$db" --organisation fuzz)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$bin" serve --db "$db" --sandbox --slots 1 --listen "127.0.0.1:$port" --artifacts "$scratch/artifacts" 2>"$scratch/serve.log" &
pid=$!
for _ in $(seq 1 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.1
done
"$venv/bin/schemathesis" run "http://127.0.0.1:$port/openapi.json" \
  --url "http://127.0.0.1:$port" \
  -H "Authorization: Bearer $token" -H "X-Can-Update-Credentials: true" \
  --checks not_a_server_error --max-examples "${FUZZ_EXAMPLES:-25}" "$@"
