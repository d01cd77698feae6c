#!/usr/bin/env bash
# Every test: installs what is missing (Chromium, chromedriver, Dovecot), then runs the whole suite.
# Under CI=true a missing real part fails the run instead of being skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo fmt --check
cargo clippy --all-targets --quiet -- -D warnings
# The production build: the product without the developer kit (no recorded pages, no fake portal).
cargo clippy --no-default-features --bin pairing-worker --quiet -- -D warnings
cargo test --all-targets
# The HTTP API fuzzed from its own OpenAPI document: zero 5xx, responses as documented.
scripts/fuzz-api.sh
