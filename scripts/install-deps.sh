#!/usr/bin/env bash
# Installs what the worker and its tests need on Debian/Ubuntu, skipping whatever is already there:
# Chromium + chromedriver (the browser), Dovecot (the real IMAP server the code tests use).
set -euo pipefail

need=()
command -v chromedriver >/dev/null 2>&1 || need+=(chromium chromium-driver)
[ -x /usr/bin/chromium ] || [ -x /usr/bin/chromium-browser ] || need+=(chromium)
command -v dovecot >/dev/null 2>&1 || [ -x /usr/sbin/dovecot ] || need+=(dovecot-imapd)
command -v openssl >/dev/null 2>&1 || need+=(openssl)

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
