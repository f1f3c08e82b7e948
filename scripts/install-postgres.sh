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

bash "$(dirname "$0")/apt-install.sh" postgresql "install PostgreSQL with your package manager and set NEWS_PG_BIN to its bin folder"
dir="$(found)" || { echo "error: postgresql installed, but initdb/pg_ctl not found under /usr/lib/postgresql/*/bin" >&2; exit 1; }
echo "PostgreSQL installed: $("$dir/postgres" --version)"
