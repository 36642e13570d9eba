#!/usr/bin/env bash
# What the browser tests (tests/lab) need outside the virtualenv: Debian's Chromium at
# /usr/bin/chromium (Playwright drives it; its own browsers are never downloaded).
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq chromium
/usr/bin/chromium --version
