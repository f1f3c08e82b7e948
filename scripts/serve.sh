#!/usr/bin/env bash
# One command: the local Prefect server (127.0.0.1, telemetry off, database under
# .prefect/) and the extraction flow served as a scheduled deployment.
#
#   scripts/serve.sh                                  daily at 06:00 UTC over seeds/ -> outputs/
#   scripts/serve.sh --input ~/inbox --output ~/records --cron "0 */6 * * *"
#   scripts/serve.sh --base-url http://127.0.0.1:11434/v1 --model qwen2.5:7b --concurrency 4
#   scripts/serve.sh --help                           every option
#
# Then open http://127.0.0.1:4200 -> Deployments -> extract-articles/daily -> Run.
# If no server is running for NEWS_PREFECT_HOME / NEWS_PREFECT_PORT (see
# scripts/prefect-server.sh), one is started and is stopped again on exit.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SERVER="$REPO/scripts/prefect-server.sh"
eval "$("$SERVER" env)"
if [[ -n "${NEWS_PYTHON:-}" ]]; then PY="$NEWS_PYTHON"
elif [[ -x "$REPO/.venv/bin/python" ]]; then PY="$REPO/.venv/bin/python"
else PY="$(command -v python3)"; fi

for arg in "$@"; do
    if [[ "$arg" == "-h" || "$arg" == "--help" ]]; then cd "$REPO" && exec "$PY" -m flows.serve --help; fi
done

started=0
if ! "$SERVER" status >/dev/null 2>&1; then
    "$SERVER" start
    started=1
fi

child=0
cleanup() {
    trap - EXIT INT TERM
    if ((child)) && kill -0 "$child" 2>/dev/null; then
        kill -TERM "$child" 2>/dev/null || true
        wait "$child" 2>/dev/null || true
    fi
    if ((started)); then "$SERVER" stop; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

cd "$REPO"
echo "Prefect UI: $PREFECT_UI_URL"
"$PY" -m flows.serve "$@" &
child=$!
set +e
wait "$child"
status=$?
set -e
child=0
exit "$status"
