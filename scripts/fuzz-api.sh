#!/usr/bin/env bash
# Fuzzes the HTTP API from its own OpenAPI document (derived from the handlers, served at
# /openapi.json) with schemathesis (PyPI): every operation gets generated valid and invalid
# requests, and all its checks run: no 5xx; each response's status code, content type, headers
# and body as the document describes them; requests the document forbids refused. All but one:
# positive_data_acceptance (every schema-valid request accepted) cannot hold for rules a JSON
# Schema does not express (a host that resolves only to public addresses, a TOTP secret of at
# least 80 bits, credentials required when `kind` is `pair`). Uses a scratch SQLite database, the
# sandbox portals and a local chromedriver, like the quick start. Honours CARGO_TARGET_DIR.
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
  --checks all --exclude-checks positive_data_acceptance --max-examples "${FUZZ_EXAMPLES:-25}" "$@"
