"""``settings.PLATFORM`` is built from ``platform_core.conf.DEFAULTS``: one list of names and
defaults, each overridable by the environment variable of its name."""

import json
import os
import subprocess
import sys
from pathlib import Path

from platform_core.conf import DEFAULTS

ROOT = Path(__file__).resolve().parent.parent
PRINT_PLATFORM = (
    "import json, django; django.setup(); from django.conf import settings; "
    "print(json.dumps({k: v for k, v in settings.PLATFORM.items() if k != 'CREDENTIALS_KEYS'}))"
)


def platform_settings_with(**environ) -> dict:
    env = {
        **{k: v for k, v in os.environ.items() if k not in DEFAULTS},
        "DJANGO_SETTINGS_MODULE": "platform_core.settings",
        "DEBUG": "1",
        **environ,
    }
    out = subprocess.run(
        [sys.executable, "-c", PRINT_PLATFORM],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_every_setting_has_its_default_unless_the_environment_sets_it():
    defaults = platform_settings_with()
    assert defaults == {k: v for k, v in DEFAULTS.items() if k != "CREDENTIALS_KEYS"}

    changed = platform_settings_with(
        BULK_ENCRYPT_RESULTS="0", VENDOR_READ_TIMEOUT="7", BULK_MAX_ATTEMPTS="4"
    )
    assert changed["BULK_ENCRYPT_RESULTS"] is False
    assert changed["VENDOR_READ_TIMEOUT"] == 7.0
    assert changed["BULK_MAX_ATTEMPTS"] == 4
    assert {k for k in changed if changed[k] != defaults[k]} == {
        "BULK_ENCRYPT_RESULTS",
        "VENDOR_READ_TIMEOUT",
        "BULK_MAX_ATTEMPTS",
    }


def test_gunicorn_conf_sizes_workers_and_threads_from_the_environment(monkeypatch):
    import runpy
    from types import SimpleNamespace

    from gunicorn.workers.gthread import ThreadWorker

    monkeypatch.delenv("WEB_CONCURRENCY", raising=False)
    monkeypatch.delenv("WEB_THREADS", raising=False)
    monkeypatch.delenv("WEB_REQUEST_READ_TIMEOUT", raising=False)
    shipped = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    # gthread, its waits for a client bounded (tests/test_slow_clients.py).
    assert issubclass(shipped["worker_class"], ThreadWorker)
    assert shipped["request_read_timeout"] == 30
    # The platform derives VENDOR_HOST_MAX_IN_FLIGHT from the same default.
    assert shipped["threads"] == DEFAULTS["WEB_THREADS"]
    assert shipped["timeout"] > DEFAULTS["VENDOR_CALL_DEADLINE"]
    assert shipped["graceful_timeout"] > DEFAULTS["VENDOR_CALL_DEADLINE"]

    monkeypatch.setenv("WEB_CONCURRENCY", "3")
    monkeypatch.setenv("WEB_THREADS", "12")
    monkeypatch.setenv("WEB_REQUEST_READ_TIMEOUT", "7.5")
    sized = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    assert (sized["workers"], sized["threads"]) == (3, 12)
    assert sized["request_read_timeout"] == 7.5
    # A --threads flag wins over the file: the workers are told the number in force.
    sized["on_starting"](SimpleNamespace(cfg=SimpleNamespace(threads=6)))
    assert os.environ["WEB_THREADS"] == "6"
