#!/usr/bin/env bash
# Fuzzes the HTTP API from its own OpenAPI document (derived from the handlers, served at
# /openapi.json) with schemathesis (PyPI): every operation gets generated valid and invalid
# requests, and every check runs: no 5xx, and each response's status code, content type, headers
# and body are the ones the document describes. Uses a scratch SQLite database, the sandbox
# portals and a local chromedriver, like the quick start. Honours CARGO_TARGET_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${CARGO_TARGET_DIR:-target}
venv=$target/schemathesis-venv
if [ ! -x "$venv/bin/schemathesis" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q 'schemathesis>=4,<5'
fi
cargo build --quiet
source scripts/lib/scratch-serve.sh
scratch_serve "$target/debug/pairing-worker" "sqlite:$scratch/fuzz.db" fuzz --slots 1
"$venv/bin/schemathesis" run "$base/openapi.json" --url "$base" \
  -H "Authorization: Bearer $token" -H "X-Can-Update-Credentials: true" \
  --checks all --max-examples "${FUZZ_EXAMPLES:-25}" "$@"
