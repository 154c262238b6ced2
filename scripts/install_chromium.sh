#!/usr/bin/env bash
# Install Debian's headless-capable Chromium and its WebDriver for the dashboard's browser test.
#
# Idempotent: does nothing when /usr/bin/chromium and /usr/bin/chromedriver already exist.
# Uses only Debian's packages (never a browser download). Needs root (or sudo) and apt.
# Exit status: 0 when both binaries are present afterwards, 1 otherwise.
set -euo pipefail

have_all() { [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; }

if have_all; then
    echo "chromium and chromedriver already installed"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; else
        echo "install_chromium.sh: need root or sudo to apt-get install chromium" >&2
        exit 1
    fi
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium chromium-driver fonts-dejavu-core >/dev/null

if have_all; then
    echo "installed: $(/usr/bin/chromium --version 2>/dev/null | head -n1)"
    exit 0
fi
echo "install_chromium.sh: chromium or chromedriver still missing after apt-get" >&2
exit 1
