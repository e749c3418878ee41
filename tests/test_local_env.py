"""Local development needs no exported variables; production stays safe by default.

``var/local.env`` (written by scripts/run.sh) is read by the settings when it exists; the
environment wins over it; without it, DEBUG is off and start-up refuses to run without
SECRET_KEY and CREDENTIALS_KEYS. Each case is a fresh process with a clean environment.
"""

import json
import subprocess
import sys
from pathlib import Path

from cryptography.fernet import Fernet

# Keys production accepts (50+ characters, many different ones), told apart by their start.
LOCAL_KEY = "local-" + "0123456789abcdefghijklmnopqrstuvwxyz" * 2
ENV_KEY = "environment-" + "0123456789abcdefghijklmnopqrstuvwxyz" * 2
PRODUCTION_KEY = "production-" + "0123456789abcdefghijklmnopqrstuvwxyz" * 2

ROOT = Path(__file__).resolve().parent.parent
SHOW = (
    "import json, django; from django.conf import settings; django.setup(); "
    "print(json.dumps({'DEBUG': settings.DEBUG, 'SECRET_KEY': settings.SECRET_KEY, "
    "'KEYS': settings.PLATFORM['CREDENTIALS_KEYS']}))"
)


def run(var_dir: Path, *args: str, **environ: str) -> subprocess.CompletedProcess:
    env = {
        "PATH": "/usr/bin:/bin",
        "DJANGO_SETTINGS_MODULE": "platform_core.settings",
        "PLATFORM_VAR_DIR": str(var_dir),
        **environ,
    }
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def settings_in(var_dir: Path, **environ: str) -> dict:
    done = run(var_dir, "-c", SHOW, **environ)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def write_local_env(var_dir: Path, secret_key: str) -> None:
    (var_dir / "local.env").write_text(f"# local\nDEBUG=1\nSECRET_KEY={secret_key}\n")


def test_a_checkout_with_local_env_runs_as_development_without_exports(tmp_path):
    write_local_env(tmp_path, LOCAL_KEY)
    seen = settings_in(tmp_path)
    assert seen["DEBUG"] is True and seen["SECRET_KEY"] == LOCAL_KEY
    # The development credentials key is generated once and then reused.
    assert seen["KEYS"] == [(tmp_path / "credentials.key").read_text().strip()]
    assert settings_in(tmp_path)["KEYS"] == seen["KEYS"]


def test_the_environment_wins_over_local_env(tmp_path):
    write_local_env(tmp_path, LOCAL_KEY)
    assert settings_in(tmp_path, SECRET_KEY=ENV_KEY)["SECRET_KEY"] == ENV_KEY
    refused = run(tmp_path, "-c", SHOW, DEBUG="0")
    assert refused.returncode != 0 and "CREDENTIALS_KEYS must be set" in refused.stderr


def test_without_local_env_it_is_production_and_refuses_to_start(tmp_path):
    refused = run(tmp_path, "manage.py", "check")
    assert refused.returncode != 0 and "SECRET_KEY must be set" in refused.stderr
    assert not (tmp_path / "credentials.key").exists()


def test_generate_credentials_key_prints_a_new_key_that_production_accepts(tmp_path):
    write_local_env(tmp_path, LOCAL_KEY)
    keys = []
    for _ in range(2):
        done = run(tmp_path, "manage.py", "generate_credentials_key")
        assert done.returncode == 0, done.stderr
        keys.append(done.stdout.strip())
    assert keys[0] != keys[1]
    for key in keys:
        Fernet(key)  # raises unless it is a Fernet key
    production = settings_in(
        tmp_path / "prod", DEBUG="0", SECRET_KEY=PRODUCTION_KEY, CREDENTIALS_KEYS=",".join(keys)
    )
    assert production["DEBUG"] is False and production["KEYS"] == keys
