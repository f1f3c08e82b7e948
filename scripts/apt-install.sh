#!/usr/bin/env bash
# Install one Debian package for the tests (used by install-browser.sh and install-postgres.sh):
#
#   bash scripts/apt-install.sh PACKAGE "what to do without apt-get"     (run as root, or with sudo available)
set -euo pipefail
package="$1"
otherwise="$2"

SUDO=""
if [[ "$(id -u)" -ne 0 ]]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
        echo "error: installing $package needs root (apt-get install -y $package)" >&2
        exit 1
    fi
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "error: no apt-get here; $otherwise" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y "$package"
