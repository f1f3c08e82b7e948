#!/usr/bin/env bash
# The PostgreSQL database of the project's Prefect server (production mode of
# scripts/prefect-server.sh, NEWS_PREFECT_DB=postgres): a local cluster of Debian's
# `postgresql` package (scripts/install-postgres.sh, `make postgres`) under
# PREFECT_HOME/postgres, listening on 127.0.0.1 only (TCP, no Unix socket) on a
# free port, password authentication (scram-sha-256) with a generated password.
#
#   scripts/prefect-postgres.sh start     initialise the cluster if needed, start it, create the database
#   scripts/prefect-postgres.sh stop      stop the cluster
#   scripts/prefect-postgres.sh status    exit 0 if the cluster runs
#   scripts/prefect-postgres.sh url       the connection URL for PREFECT_API_DATABASE_CONNECTION_URL
#                                         (no password in it: asyncpg reads it from PGPASSFILE)
#   scripts/prefect-postgres.sh pgpass    the password file's path (export PGPASSFILE=...)
#   scripts/prefect-postgres.sh psql ...  psql connected to the Prefect database (e.g. -c "SELECT count(*) FROM flow_run")
#   scripts/prefect-postgres.sh destroy   stop the cluster and delete it, its data and its password
#
# The password is written only to PREFECT_HOME/postgres.pgpass (mode 0600, libpq's
# pgpass format): never to a log, a command line or the environment. PostgreSQL
# refuses to run as root, so when this script runs as root the cluster belongs to the
# `postgres` system user (NEWS_PG_USER) and its commands run through `runuser`.
#
# Settings (environment):
#   NEWS_PREFECT_HOME   folder holding the cluster                 (default: <repo>/.prefect)
#   NEWS_PG_PORT        port on 127.0.0.1                          (default: the last one if free, else a free one)
#   NEWS_PG_BIN         PostgreSQL's bin folder                    (default: the newest /usr/lib/postgresql/*/bin)
#   NEWS_PG_USER        system user owning the cluster when root   (default: postgres)
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HOME_DIR="${NEWS_PREFECT_HOME:-$REPO/.prefect}"
mkdir -p "$HOME_DIR"
HOME_DIR="$(cd "$HOME_DIR" && pwd)"
PG_ROOT="$HOME_DIR/postgres"
DATA="$PG_ROOT/data"
LOG="$PG_ROOT/postgres.log"
PORT_FILE="$HOME_DIR/postgres.port"
PGPASS="$HOME_DIR/postgres.pgpass"
HOST=127.0.0.1
ROLE=prefect
DATABASE=prefect

find_bin() {
    if [[ -n "${NEWS_PG_BIN:-}" ]]; then echo "$NEWS_PG_BIN"; return; fi
    local dir
    dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
    if [[ -z "$dir" ]] && command -v initdb >/dev/null 2>&1; then dir="$(dirname "$(command -v initdb)")"; fi
    if [[ -z "$dir" || ! -x "$dir/pg_ctl" ]]; then
        echo "error: PostgreSQL not found: run scripts/install-postgres.sh (make postgres) or set NEWS_PG_BIN" >&2
        exit 1
    fi
    echo "$dir"
}

if [[ "$(id -u)" -eq 0 ]]; then
    PG_USER="${NEWS_PG_USER:-postgres}"
    as_owner() { runuser -u "$PG_USER" -- "$@"; }
else
    PG_USER="$(id -un)"
    as_owner() { "$@"; }
fi

port_free() {  # exit 0 if nothing listens on 127.0.0.1:$1
    ! (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null
}

pick_port() {  # $1: a port to avoid (it just failed)
    local port="${NEWS_PG_PORT:-$(cat "$PORT_FILE" 2>/dev/null || true)}"
    if [[ -n "$port" && "$port" != "${1:-}" ]] && port_free "$port"; then echo "$port"; return; fi
    if [[ -n "${NEWS_PG_PORT:-}" ]]; then echo "error: port $NEWS_PG_PORT on $HOST is in use" >&2; exit 1; fi
    for _ in $(seq 1 50); do
        port=$((20000 + RANDOM % 12000))  # below Linux's ephemeral range (32768-): no client socket holds it
        if port_free "$port"; then echo "$port"; return; fi
    done
    echo "error: no free port found on $HOST" >&2
    exit 1
}

running() {
    [[ -f "$DATA/PG_VERSION" ]] && as_owner "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1
}

init_cluster() {
    [[ -f "$DATA/PG_VERSION" ]] && return 0
    if ! as_owner test -x "$HOME_DIR"; then
        echo "error: the '$PG_USER' user cannot reach $HOME_DIR (a parent folder is not searchable by others:" \
            "chmod o+x on it, or choose another NEWS_PREFECT_HOME)" >&2
        exit 1
    fi
    echo "Initialising a PostgreSQL cluster in $DATA (owner $PG_USER) ..."
    rm -rf "$PG_ROOT"
    mkdir -m 700 "$PG_ROOT"
    [[ "$(id -u)" -eq 0 ]] && chown "$PG_USER": "$PG_ROOT"
    local password pwfile
    password="$(head -c 32 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 32)"
    pwfile="$PG_ROOT/initdb.pw"
    (umask 077 && printf '%s\n' "$password" >"$pwfile")
    [[ "$(id -u)" -eq 0 ]] && chown "$PG_USER": "$pwfile"
    if ! as_owner "$BIN/initdb" -D "$DATA" --username="$ROLE" --pwfile="$pwfile" --auth-host=scram-sha-256 \
        --auth-local=scram-sha-256 --encoding=UTF8 --locale=C >"$PG_ROOT/initdb.log" 2>&1; then
        rm -f "$pwfile"
        echo "error: initdb failed; see $PG_ROOT/initdb.log" >&2
        tail -n 20 "$PG_ROOT/initdb.log" >&2
        exit 1
    fi
    rm -f "$pwfile"
    as_owner sh -c "cat >>'$DATA/postgresql.conf'" <<'EOF'

# news-records (scripts/prefect-postgres.sh): local only, TCP with a password, no Unix socket
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
EOF
    (umask 077 && printf '%s:*:*:%s:%s\n' "$HOST" "$ROLE" "$password" >"$PGPASS")
}

start() {
    init_cluster
    local port
    if running; then
        port="$(cat "$PORT_FILE")"
    else
        local tries=0 failed=""
        until port="$(pick_port "$failed")" && as_owner "$BIN/pg_ctl" -D "$DATA" -l "$LOG" -o "-p $port" -w -t 60 start >/dev/null; do
            tries=$((tries + 1))
            # A port that looked free can still be taken (a socket bound but not listening): try another.
            if ((tries >= 3)) || ! tail -n 5 "$LOG" | grep -q "could not create any TCP/IP sockets"; then
                echo "error: PostgreSQL did not start; last lines of $LOG:" >&2
                tail -n 20 "$LOG" >&2
                exit 1
            fi
            failed="$port"
        done
        echo "$port" >"$PORT_FILE"
    fi
    local exists
    exists="$(PGPASSFILE="$PGPASS" "$BIN/psql" -h "$HOST" -p "$port" -U "$ROLE" -d postgres -w -tAc \
        "SELECT 1 FROM pg_database WHERE datname = '$DATABASE'")"
    if [[ "$exists" != "1" ]]; then
        PGPASSFILE="$PGPASS" "$BIN/createdb" -h "$HOST" -p "$port" -U "$ROLE" -w "$DATABASE"
    fi
    echo "PostgreSQL ready on $HOST:$port (database $DATABASE, cluster $DATA)"
}

stop() {
    if running; then
        as_owner "$BIN/pg_ctl" -D "$DATA" -m fast -w -t 60 stop >/dev/null
        echo "Stopped PostgreSQL ($DATA)"
    fi
}

url() {
    [[ -f "$PORT_FILE" ]] || { echo "error: no PostgreSQL cluster started for $HOME_DIR" >&2; exit 1; }
    echo "postgresql+asyncpg://$ROLE@$HOST:$(cat "$PORT_FILE")/$DATABASE"
}

BIN="$(find_bin)"
case "${1:-status}" in
    start) start ;;
    stop) stop ;;
    status)
        if running; then echo "PostgreSQL running on $HOST:$(cat "$PORT_FILE") ($DATA)"; else echo "No PostgreSQL running for $HOME_DIR"; exit 1; fi ;;
    url) url ;;
    pgpass) echo "$PGPASS" ;;
    psql)
        shift
        running || { echo "error: no PostgreSQL running for $HOME_DIR" >&2; exit 1; }
        PGPASSFILE="$PGPASS" exec "$BIN/psql" -h "$HOST" -p "$(cat "$PORT_FILE")" -U "$ROLE" -d "$DATABASE" -w "$@" ;;
    destroy)
        stop
        rm -rf "$PG_ROOT" "$PGPASS" "$PORT_FILE"
        echo "Deleted the PostgreSQL cluster of $HOME_DIR" ;;
    *) echo "usage: $0 [start|stop|status|url|pgpass|psql ...|destroy]" >&2; exit 2 ;;
esac
