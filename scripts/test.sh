#!/usr/bin/env bash
# Every test: installs what is missing (Chromium, chromedriver, Dovecot), then runs the whole suite.
# Under CI=true a missing real part fails the run instead of being skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo fmt --check
# The container files: hadolint, the Compose Specification's schema, the image's install script.
scripts/check-docker.sh
cargo clippy --all-targets --quiet -- -D warnings
# The production build: the product without the developer kit (no recorded pages, no fake portal).
cargo clippy --no-default-features --bin pairing-worker --quiet -- -D warnings
# ... and it carries no recorded page: the sandbox scenarios' password (431 times in a kit build) is not in it.
cargo build --no-default-features --bin pairing-worker --quiet
if grep -q "Sandbox-Pass-1" target/debug/pairing-worker; then
  echo "test: the production build (--no-default-features) embeds recorded pages" >&2
  exit 1
fi
cargo test --all-targets
# The HTTP API fuzzed from its own OpenAPI document: zero 5xx, responses as documented.
scripts/fuzz-api.sh
