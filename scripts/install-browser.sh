#!/usr/bin/env bash
# The browser for the UI tests: Debian's own `chromium` package, driven by the Python
# `playwright` package with executable_path=/usr/bin/chromium. Playwright's bundled
# browsers are never downloaded (no `playwright install`).
#
#   bash scripts/install-browser.sh        (run as root, or with sudo available)
set -euo pipefail

CHROMIUM="${NEWS_CHROMIUM:-/usr/bin/chromium}"
if [[ -x "$CHROMIUM" ]]; then
    echo "chromium present: $("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM")"
    exit 0
fi

SUDO=""
if [[ "$(id -u)" -ne 0 ]]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
        echo "error: installing chromium needs root (apt-get install -y chromium)" >&2
        exit 1
    fi
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "error: no apt-get here; install Chromium with your package manager and set NEWS_CHROMIUM to its path" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y chromium
echo "chromium installed: $(chromium --version 2>/dev/null || command -v chromium)"
