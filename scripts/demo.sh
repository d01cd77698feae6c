#!/usr/bin/env bash
# Quick start: every sandbox scenario of every supported provider through real headless Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
exec cargo run --quiet -- demo "$@"
