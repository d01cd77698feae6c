#!/usr/bin/env bash
# The whole-run benchmark against the tools a team would use instead (see scripts/bench-flows.py
# and BENCHMARKS.md). Installs the peers from the registries (playwright-core from npm, driving
# Debian's Chromium; selenium from PyPI into target/peers-venv), builds the worker in release
# mode, then runs every tool on the same sandbox flow. Arguments go to bench-flows.py
# (--runs, --levels, --tools, --skip-latency, --skip-throughput).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
command -v node >/dev/null || { echo "bench-flows: Node.js (node, npm) is needed for the Playwright peer" >&2; exit 1; }
(cd benches/peers/playwright && npm ci --no-audit --no-fund --silent)
if [ ! -x target/peers-venv/bin/python ]; then
  python3 -m venv target/peers-venv
fi
target/peers-venv/bin/pip install --quiet --disable-pip-version-check -r benches/peers/selenium/requirements.txt
cargo build --release --quiet --bin pairing-worker --example flow_bench
exec python3 scripts/bench-flows.py "$@"
