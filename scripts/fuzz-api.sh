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
source scripts/lib/scratch-serve.sh
scratch_serve ./target/debug/pairing-worker "sqlite:$scratch/fuzz.db" fuzz --slots 1
"$venv/bin/schemathesis" run "$base/openapi.json" --url "$base" \
  -H "Authorization: Bearer $token" -H "X-Can-Update-Credentials: true" \
  --checks not_a_server_error --max-examples "${FUZZ_EXAMPLES:-25}" "$@"
