#!/usr/bin/env bash
# Set up and run the platform on a bare machine: a virtualenv, SQLite, a generated local
# credentials key, gunicorn on http://127.0.0.1:${PORT:-8000}, and a Celery worker with beat
# (bulk jobs) in the background on the embedded broker (set CELERY_BROKER_URL=redis://... to use
# Redis instead). No servers to install. Stop with Ctrl-C: everything it started stops with it.
#
#   bash scripts/run.sh           the platform
#   bash scripts/run.sh --demo    the platform and the bundled Mixpanel simulator with demo data,
#                                 a demo tenant and instance, and curl commands to paste
set -euo pipefail
cd "$(dirname "$0")/.."

DEMO=0
for arg in "$@"; do
  case "$arg" in
    --demo) DEMO=1 ;;
    -h | --help) sed -n '2,9p' "$0" | cut -c3-; exit 0 ;;
    *) echo "run.sh: unknown argument $arg (try --help)" >&2; exit 2 ;;
  esac
done

PORT="${PORT:-8000}"
VAR_DIR="${PLATFORM_VAR_DIR:-var}"

# Refuse at once when the port is taken (usually a run.sh still running): starting anyway would
# leave the old server answering while this one's worker fights it for the same broker.
port_in_use() {
  python3 - "$1" <<'EOF'
import socket, sys
with socket.socket() as s:
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("127.0.0.1", int(sys.argv[1])))
    except OSError:
        sys.exit(0)
sys.exit(1)
EOF
}
if port_in_use "$PORT"; then
  echo "run.sh: port $PORT is already in use (another run.sh?). Stop it with Ctrl-C in its" >&2
  echo "terminal, or pick another port: PORT=9000 bash scripts/run.sh" >&2
  exit 1
fi

if [ ! -x .venv/bin/python ] || ! cmp -s requirements.txt .venv/.requirements.txt; then
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check -r requirements.txt
  cp requirements.txt .venv/.requirements.txt
fi

# This checkout is for local development: var/local.env (git-ignored, never in the Docker image)
# turns DEBUG on with a SECRET_KEY of its own for every command run here, in any shell
# (platform_core/settings.py reads it; exported variables win over it).
mkdir -p "$VAR_DIR"
if [ ! -f "$VAR_DIR/local.env" ]; then
  (
    umask 077
    {
      echo "# Written by scripts/run.sh: this checkout runs as local development."
      echo "# Exported environment variables win over these. Never copy this file to production."
      echo "DEBUG=1"
      echo "SECRET_KEY=$(python3 -c 'import secrets; print(secrets.token_urlsafe(50))')"
    } > "$VAR_DIR/local.env"
  )
fi

.venv/bin/python manage.py migrate --noinput
.venv/bin/python manage.py collectstatic --noinput >/dev/null

SIM_PID=""
CELERY_PID=""
GUNICORN_PID=""
stop_pid() {  # stop_pid PID SECONDS: TERM, wait, then KILL
  [ -n "$1" ] && kill -TERM "$1" 2>/dev/null || return 0
  for _ in $(seq $(($2 * 2))); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.5; done
  kill -KILL "$1" 2>/dev/null || true
}
stop_all() {
  stop_pid "$GUNICORN_PID" 10
  # Warm shutdown waits for running tasks; a job cut short is resumed later from its checkpoint.
  stop_pid "$CELERY_PID" 10
  stop_pid "$SIM_PID" 5
  wait 2>/dev/null || true
}
trap stop_all EXIT
trap 'exit 130' INT TERM

if [ "$DEMO" = 1 ]; then
  # The simulator, seeded: 2000 profiles (cities include Dallas) and 300 events a day on every
  # day (so the last 30 days are full). Its port is picked free; the platform is pointed at it.
  SIM_LOG="$VAR_DIR/simulator.log"
  .venv/bin/python simulators/mixpanel --port "${SIM_PORT:-0}" \
    --profiles 2000 --events-per-day 300 > "$SIM_LOG" 2>&1 &
  SIM_PID=$!
  for _ in $(seq 100); do
    grep -q '^LISTENING ' "$SIM_LOG" 2>/dev/null && break
    kill -0 "$SIM_PID" 2>/dev/null || { cat "$SIM_LOG" >&2; exit 1; }
    sleep 0.1
  done
  MIXPANEL_BASE_URL="$(sed -n 's/^LISTENING //p' "$SIM_LOG" | head -1)"
  [ -n "$MIXPANEL_BASE_URL" ] || { echo "run.sh: the simulator did not start" >&2; exit 1; }
  export MIXPANEL_BASE_URL
  # The demo tenant: created once, its secrets and token re-issued on every run (the old ones
  # stop working); kept in a variable only, never written to disk. Its configuration is the
  # simulator's seeded service account (the platform itself never imports the simulator).
  DEMO_CONFIGURATION="$(.venv/bin/python -c 'import json; from simulators.mixpanel.testing import SA_CONFIGURATION; print(json.dumps(SA_CONFIGURATION))')"
  DEMO_TEXT="$(.venv/bin/python manage.py demo_setup --base-url "http://127.0.0.1:${PORT}" \
    --configuration "$DEMO_CONFIGURATION")"
fi

# Bulk jobs run in this worker process, not in gunicorn; it re-queues the jobs of dead workers
# itself, and --beat adds the periodic retention purge.
.venv/bin/celery -A platform_core worker --beat --loglevel INFO \
  --concurrency "${BULK_WORKER_CONCURRENCY:-2}" \
  --schedule "$VAR_DIR/celerybeat-schedule" --logfile "$VAR_DIR/celery-worker.log" &
CELERY_PID=$!

# Workers and threads: gunicorn.conf.py (WEB_CONCURRENCY, WEB_THREADS).
.venv/bin/gunicorn --bind "127.0.0.1:${PORT}" --access-logfile - &
GUNICORN_PID=$!
for _ in $(seq 150); do
  kill -0 "$GUNICORN_PID" 2>/dev/null || { echo "run.sh: gunicorn exited" >&2; exit 1; }
  python3 -c "import socket; socket.create_connection(('127.0.0.1', $PORT), 0.5).close()" \
    2>/dev/null && break
  sleep 0.2
done

echo "Platform on http://127.0.0.1:${PORT}  (admin: http://127.0.0.1:${PORT}/admin/;"
echo "  create a login with: .venv/bin/python manage.py createsuperuser)"
echo "Bulk worker (pid $CELERY_PID) logs to $VAR_DIR/celery-worker.log"
if [ "$DEMO" = 1 ]; then
  echo "Mixpanel simulator on $MIXPANEL_BASE_URL (logs to $SIM_LOG)"
  echo
  echo "$DEMO_TEXT"
  echo
fi
echo "Stop with Ctrl-C."
wait "$GUNICORN_PID"
