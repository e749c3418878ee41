#!/usr/bin/env bash
# Set up and run the platform on a bare machine: a virtualenv, SQLite, a generated local
# credentials key, and gunicorn on http://127.0.0.1:${PORT:-8000}. No servers to install.
# Stop with Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ] || ! cmp -s requirements.txt .venv/.requirements.txt; then
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check -r requirements.txt
  cp requirements.txt .venv/.requirements.txt
fi
export DEBUG="${DEBUG:-1}"
PORT="${PORT:-8000}"
.venv/bin/python manage.py migrate --noinput
.venv/bin/python manage.py collectstatic --noinput >/dev/null
echo "Platform on http://127.0.0.1:${PORT}  (admin: http://127.0.0.1:${PORT}/admin/;"
echo "  create a login with: .venv/bin/python manage.py createsuperuser)"
exec .venv/bin/gunicorn platform_core.wsgi --bind "127.0.0.1:${PORT}" --workers 2 --threads 4 \
  --access-logfile -
