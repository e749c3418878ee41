#!/usr/bin/env bash
# Set up and run the platform on a bare machine: a virtualenv, SQLite, a generated local
# credentials key, gunicorn on http://127.0.0.1:${PORT:-8000}, and a Celery worker with beat
# (bulk jobs) in the background on the embedded broker (set CELERY_BROKER_URL=redis://... to use
# Redis instead). No servers to install. Stop with Ctrl-C: the worker stops with it.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ] || ! cmp -s requirements.txt .venv/.requirements.txt; then
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check -r requirements.txt
  cp requirements.txt .venv/.requirements.txt
fi
export DEBUG="${DEBUG:-1}"
PORT="${PORT:-8000}"
VAR_DIR="${PLATFORM_VAR_DIR:-var}"
mkdir -p "$VAR_DIR"
.venv/bin/python manage.py migrate --noinput
.venv/bin/python manage.py collectstatic --noinput >/dev/null

# Bulk jobs run in this worker process, not in gunicorn; --beat runs the periodic tasks (the
# sweeper that re-queues jobs of dead workers, the retention purge).
.venv/bin/celery -A platform_core worker --beat --loglevel INFO \
  --concurrency "${BULK_WORKER_CONCURRENCY:-2}" \
  --schedule "$VAR_DIR/celerybeat-schedule" --logfile "$VAR_DIR/celery-worker.log" &
CELERY_PID=$!
stop_worker() {
  kill -TERM "$CELERY_PID" 2>/dev/null || return 0
  # Warm shutdown waits for running tasks; a job cut short is resumed later from its checkpoint.
  for _ in $(seq 20); do kill -0 "$CELERY_PID" 2>/dev/null || return 0; sleep 0.5; done
  kill -QUIT "$CELERY_PID" 2>/dev/null || true
  wait "$CELERY_PID" 2>/dev/null || true
}
trap stop_worker EXIT
trap 'exit 130' INT TERM

echo "Platform on http://127.0.0.1:${PORT}  (admin: http://127.0.0.1:${PORT}/admin/;"
echo "  create a login with: .venv/bin/python manage.py createsuperuser)"
echo "Bulk worker (pid $CELERY_PID) logs to $VAR_DIR/celery-worker.log"
# Workers and threads: gunicorn.conf.py (WEB_CONCURRENCY, WEB_THREADS).
.venv/bin/gunicorn --bind "127.0.0.1:${PORT}" --access-logfile -
