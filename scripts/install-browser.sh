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

bash "$(dirname "$0")/apt-install.sh" chromium "install Chromium with your package manager and set NEWS_CHROMIUM to its path"
echo "chromium installed: $(chromium --version 2>/dev/null || command -v chromium)"
