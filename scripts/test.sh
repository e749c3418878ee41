#!/usr/bin/env bash
# Run the test suite. Creates .venv with the pinned requirements on first use.
# Uses DATABASE_URL when set (CI points it at PostgreSQL); SQLite otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ] || ! cmp -s requirements-dev.txt .venv/.requirements-dev.txt \
    || ! cmp -s requirements.txt .venv/.requirements.txt; then
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
  cp requirements-dev.txt .venv/.requirements-dev.txt
  cp requirements.txt .venv/.requirements.txt
fi
exec .venv/bin/python -m pytest "$@"
