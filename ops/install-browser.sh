#!/usr/bin/env bash
# Install Debian's Chromium and ChromeDriver for the dashboard's browser test
# (tests/ops/test_browser.py drives /usr/bin/chromium through /usr/bin/chromedriver with
# Selenium; nothing is downloaded by the test itself). Needs root or sudo and apt.
set -euo pipefail

if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
    echo "chromium already installed: $(/usr/bin/chromium --version 2>/dev/null | head -1)"
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
if ! command -v apt-get >/dev/null; then
    echo "install-browser: apt-get not found; install Chromium and ChromeDriver as /usr/bin/chromium and /usr/bin/chromedriver" >&2
    exit 1
fi
$SUDO apt-get update -qq || true  # a stale package index is not fatal when the packages are cached
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver
/usr/bin/chromium --version
