#!/usr/bin/env bash
# PostgreSQL for the production mode of the Prefect server (NEWS_PREFECT_DB=postgres,
# scripts/prefect-postgres.sh) and its integration test: Debian's own `postgresql`
# package (PostgreSQL 15 on Debian 12). Only the binaries are used: the Debian
# package's default cluster is not needed (the project initialises its own cluster
# under PREFECT_HOME/postgres, on 127.0.0.1, with a generated password).
#
#   bash scripts/install-postgres.sh        (run as root, or with sudo available)
set -euo pipefail

found() {
    local dir
    dir="${NEWS_PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}"
    [[ -n "$dir" && -x "$dir/initdb" && -x "$dir/pg_ctl" ]] && echo "$dir"
}

if dir="$(found)"; then
    echo "PostgreSQL present: $("$dir/postgres" --version 2>/dev/null || echo "$dir")"
    exit 0
fi

SUDO=""
if [[ "$(id -u)" -ne 0 ]]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
        echo "error: installing PostgreSQL needs root (apt-get install -y postgresql)" >&2
        exit 1
    fi
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "error: no apt-get here; install PostgreSQL with your package manager and set NEWS_PG_BIN to its bin folder" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y postgresql
dir="$(found)" || { echo "error: postgresql installed, but initdb/pg_ctl not found under /usr/lib/postgresql/*/bin" >&2; exit 1; }
echo "PostgreSQL installed: $("$dir/postgres" --version)"
