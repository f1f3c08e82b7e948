#!/usr/bin/env bash
# The project's local Prefect server: bound to 127.0.0.1, telemetry off, its database
# and result storage under one project-chosen PREFECT_HOME (default: .prefect/ in the
# repository, git-ignored). The database is SQLite (zero set-up, one developer) or, with
# NEWS_PREFECT_DB=postgres, a local PostgreSQL cluster under PREFECT_HOME/postgres
# (scripts/prefect-postgres.sh; production: many workers, global concurrency and rate
# limits). One PREFECT_HOME per server: two servers sharing one SQLite file answer
# "database is locked" (HTTP 503).
#
#   scripts/prefect-server.sh start    start in the background, wait until healthy (idempotent)
#   scripts/prefect-server.sh run      run in the foreground (Ctrl-C stops it)
#   scripts/prefect-server.sh stop     stop the background server of this PREFECT_HOME (and its PostgreSQL)
#   scripts/prefect-server.sh status   exit 0 if the API answers; says which database it uses
#   scripts/prefect-server.sh env      print the `export` lines that point the prefect CLI,
#                                      workers and flows at this server:
#                                      eval "$(scripts/prefect-server.sh env)"
#
# Settings (environment):
#   NEWS_PREFECT_HOME   database, result storage, pid and log file   (default: <repo>/.prefect)
#   NEWS_PREFECT_PORT   port on 127.0.0.1                             (default: 4200)
#   NEWS_PYTHON         interpreter with prefect installed            (default: <repo>/.venv/bin/python)
#   NEWS_PREFECT_DB     sqlite | postgres                             (default: sqlite)
#                       (an own PREFECT_API_DATABASE_CONNECTION_URL in the environment is used as given)
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HOME_DIR="${NEWS_PREFECT_HOME:-$REPO/.prefect}"
PORT="${NEWS_PREFECT_PORT:-4200}"
HOST=127.0.0.1
if [[ -n "${NEWS_PYTHON:-}" ]]; then PY="$NEWS_PYTHON"
elif [[ -x "$REPO/.venv/bin/python" ]]; then PY="$REPO/.venv/bin/python"
else PY="$(command -v python3)"; fi

mkdir -p "$HOME_DIR"
HOME_DIR="$(cd "$HOME_DIR" && pwd)"
PID_FILE="$HOME_DIR/server.pid"
DB_FILE="$HOME_DIR/server.database"
PG="$REPO/scripts/prefect-postgres.sh"
DB="${NEWS_PREFECT_DB:-sqlite}"
case "$DB" in sqlite | postgres) ;; *) echo "error: NEWS_PREFECT_DB must be sqlite or postgres, not '$DB'" >&2; exit 2 ;; esac
PORT_FILE="$HOME_DIR/server.port"
LOG_FILE="$HOME_DIR/server.log"
API_URL="http://$HOST:$PORT/api"

export PREFECT_HOME="$HOME_DIR"
export PREFECT_API_URL="$API_URL"
export PREFECT_UI_URL="http://$HOST:$PORT"
export PREFECT_SERVER_API_HOST="$HOST"
export PREFECT_SERVER_API_PORT="$PORT"
export PREFECT_SERVER_ANALYTICS_ENABLED=false
export DO_NOT_TRACK=1
export PREFECT_LOCAL_STORAGE_PATH="$HOME_DIR/storage"
export PREFECT_LOGGING_EXTRA_LOGGERS="${PREFECT_LOGGING_EXTRA_LOGGERS:-pipeline}"

healthy() {
    [[ "$(curl -fsS --max-time 2 "$API_URL/health" 2>/dev/null)" == "true" ]]
}

running_pid() {  # the pid of this home's background server, if it is alive
    [[ -f "$PID_FILE" ]] || return 1
    local pid
    pid="$(cat "$PID_FILE")"
    [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

print_env() {
    local var
    for var in PREFECT_HOME PREFECT_API_URL PREFECT_UI_URL PREFECT_SERVER_API_HOST PREFECT_SERVER_API_PORT \
        PREFECT_SERVER_ANALYTICS_ENABLED DO_NOT_TRACK PREFECT_LOCAL_STORAGE_PATH PREFECT_LOGGING_EXTRA_LOGGERS; do
        printf 'export %s=%q\n' "$var" "${!var}"
    done
}

use_database() {  # point the server process at its database (PostgreSQL: start the cluster first)
    if [[ "$DB" == postgres ]]; then
        NEWS_PREFECT_HOME="$HOME_DIR" bash "$PG" start
        PREFECT_API_DATABASE_CONNECTION_URL="$(NEWS_PREFECT_HOME="$HOME_DIR" bash "$PG" url)"
        PGPASSFILE="$(NEWS_PREFECT_HOME="$HOME_DIR" bash "$PG" pgpass)"  # the password stays in that 0600 file
        export PREFECT_API_DATABASE_CONNECTION_URL PGPASSFILE
        echo "postgres" >"$DB_FILE"
    else
        if [[ -n "${PREFECT_API_DATABASE_CONNECTION_URL:-}" ]]; then echo "external" >"$DB_FILE"; else echo "sqlite" >"$DB_FILE"; fi
    fi
}

stop_postgres() {  # whatever mode this call was given: a cluster of this home that runs is stopped
    if [[ -d "$HOME_DIR/postgres" ]]; then NEWS_PREFECT_HOME="$HOME_DIR" bash "$PG" stop; fi
}

start() {
    local pid
    if pid="$(running_pid)"; then
        local other
        other="$(cat "$PORT_FILE" 2>/dev/null || echo "?")"
        if [[ "$other" != "$PORT" ]]; then
            echo "error: a Prefect server for $HOME_DIR already runs on port $other (pid $pid); one server per PREFECT_HOME" >&2
            exit 1
        fi
        if healthy; then echo "Prefect server already running: $PREFECT_UI_URL (pid $pid, home $HOME_DIR)"; return 0; fi
    elif healthy; then
        echo "error: something else already answers on $API_URL; choose another NEWS_PREFECT_PORT" >&2
        exit 1
    else
        use_database
        echo "Starting Prefect server on $PREFECT_UI_URL (home $HOME_DIR, database $(cat "$DB_FILE"), log $LOG_FILE) ..."
        # Own session: a Ctrl-C meant for `serve` does not kill the server under it.
        setsid "$PY" -m prefect server start --host "$HOST" --port "$PORT" --analytics-off >"$LOG_FILE" 2>&1 </dev/null &
        pid=$!
        echo "$pid" >"$PID_FILE"
        echo "$PORT" >"$PORT_FILE"
    fi
    local deadline=$((SECONDS + ${NEWS_PREFECT_START_TIMEOUT:-120}))
    until healthy; do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "error: the Prefect server exited; last lines of $LOG_FILE:" >&2
            tail -n 30 "$LOG_FILE" >&2
            rm -f "$PID_FILE"
            stop_postgres
            exit 1
        fi
        if ((SECONDS > deadline)); then
            echo "error: the Prefect server did not answer on $API_URL in time; see $LOG_FILE" >&2
            exit 1
        fi
        sleep 0.5
    done
    echo "Prefect server ready: $PREFECT_UI_URL (pid $pid)"
}

stop() {
    local pid
    if ! pid="$(running_pid)"; then
        rm -f "$PID_FILE"
        echo "No Prefect server running for $HOME_DIR"
        stop_postgres
        return 0
    fi
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid"
    for _ in $(seq 1 40); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.25
    done
    kill -0 "$pid" 2>/dev/null && { kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid"; }
    rm -f "$PID_FILE" "$PORT_FILE"
    echo "Stopped Prefect server (pid $pid)"
    stop_postgres
}

case "${1:-run}" in
    start) start ;;
    stop) stop ;;
    status)
        if [[ -d "$HOME_DIR/postgres" ]]; then NEWS_PREFECT_HOME="$HOME_DIR" bash "$PG" status || true; fi
        if healthy; then echo "Prefect server healthy: $PREFECT_UI_URL (home $HOME_DIR, database $(cat "$DB_FILE" 2>/dev/null || echo "?"))"; else echo "No Prefect server on $API_URL"; exit 1; fi ;;
    env) print_env ;;
    run)
        if healthy; then echo "error: a server already answers on $API_URL" >&2; exit 1; fi
        use_database
        echo "Prefect server on $PREFECT_UI_URL (home $HOME_DIR, database $(cat "$DB_FILE")); Ctrl-C stops it"
        if [[ "$DB" == postgres ]]; then
            trap stop_postgres EXIT
            "$PY" -m prefect server start --host "$HOST" --port "$PORT" --analytics-off
        else
            exec "$PY" -m prefect server start --host "$HOST" --port "$PORT" --analytics-off
        fi ;;
    *) echo "usage: $0 [start|run|stop|status|env]" >&2; exit 2 ;;
esac
