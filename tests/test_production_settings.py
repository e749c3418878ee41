"""Production defaults (DEBUG off): `check --deploy` clean under the documented production
environment, weak SECRET_KEYs refused at start-up, HTTPS enforced unless turned off.

Each case starts a fresh process with only the environment it names, as an operator would."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.live_platform import TEST_KEY

ROOT = Path(__file__).resolve().parent.parent
# 50 characters, as `get_random_secret_key()` makes them.
STRONG_SECRET_KEY = "k7#v%x2n$q9@b4m!w8e&r1t*y6u(i3o)p5a^s0d_f-g+h=j~lz"


def production_env(tmp_path, **overrides) -> dict:
    """The production environment the README documents, and nothing inherited but PATH."""
    env = {
        "PATH": os.environ["PATH"],
        "DJANGO_SETTINGS_MODULE": "platform_core.settings",
        "DEBUG": "0",
        "SECRET_KEY": STRONG_SECRET_KEY,
        "CREDENTIALS_KEYS": TEST_KEY,
        "ALLOWED_HOSTS": "platform.example.com",
        "DATABASE_URL": "postgres://platform:platform@127.0.0.1:5432/platform",
        "CELERY_BROKER_URL": "redis://127.0.0.1:6379/0",
        "PLATFORM_VAR_DIR": str(tmp_path),
        **overrides,
    }
    return {k: v for k, v in env.items() if v is not None}


def manage(tmp_path, *args, **env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=production_env(tmp_path, **env),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_is_clean_in_the_documented_production_environment(tmp_path):
    result = manage(tmp_path, "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_check_deploy_is_clean_behind_a_tls_terminating_proxy(tmp_path):
    result = manage(
        tmp_path,
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto",
    )
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_warns_when_the_ssl_redirect_is_turned_off(tmp_path):
    """The setting is real: turned off, Django's own check names it."""
    result = manage(tmp_path, "check", "--deploy", SECURE_SSL_REDIRECT="0")
    assert "security.W008" in result.stdout + result.stderr


@pytest.mark.parametrize(
    "secret_key",
    [
        pytest.param(STRONG_SECRET_KEY[:49], id="49-characters"),
        pytest.param("live-test-secret-key-0123456789abcdef", id="37-characters"),
        pytest.param("ab" * 30, id="two-distinct-characters"),
        pytest.param("django-insecure-" + STRONG_SECRET_KEY, id="django-insecure-prefix"),
    ],
)
def test_a_weak_secret_key_is_refused_at_start_up(tmp_path, secret_key):
    result = manage(tmp_path, "check", SECRET_KEY=secret_key)
    assert result.returncode != 0
    assert "SECRET_KEY is too weak for production" in result.stderr
    assert "secrets.token_urlsafe(50)" in result.stderr  # says how to make a good one
    assert secret_key not in result.stderr  # and never echoes the key


def test_a_short_secret_key_is_accepted_in_local_development(tmp_path):
    result = manage(tmp_path, "check", DEBUG="1", SECRET_KEY="short-local-key")
    assert result.returncode == 0, result.stderr


# One process per case: settings are read once, at start-up. The script answers with the
# settings that matter and what a plain-HTTP request gets.
REQUEST_OVER_HTTP = """
import json, django
django.setup()
from django.conf import settings
from django.test import Client
headers = json.loads(__import__("sys").argv[1])
response = Client().get("/elements/api-v2/elements/keys", headers=headers)
print(json.dumps({
    "status": response.status_code,
    "location": response.get("Location"),
    "hsts": response.get("Strict-Transport-Security"),
    "session_cookie_secure": settings.SESSION_COOKIE_SECURE,
    "csrf_cookie_secure": settings.CSRF_COOKIE_SECURE,
}))
"""


def request_over_http(tmp_path, headers=None, **env) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", REQUEST_OVER_HTTP, json.dumps(headers or {})],
        cwd=ROOT,
        env=production_env(tmp_path, ALLOWED_HOSTS="testserver", **env),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_production_redirects_plain_http_to_https_by_default(tmp_path):
    answer = request_over_http(tmp_path)
    assert answer["status"] == 301
    assert answer["location"] == "https://testserver/elements/api-v2/elements/keys"
    assert answer["session_cookie_secure"] is True
    assert answer["csrf_cookie_secure"] is True


def test_the_ssl_redirect_can_be_turned_off(tmp_path):
    answer = request_over_http(tmp_path, SECURE_SSL_REDIRECT="0")
    assert answer["status"] == 401  # the API itself answers: no credentials
    assert answer["hsts"] is None  # HSTS only ever travels over HTTPS


def test_the_proxy_header_is_trusted_only_when_configured(tmp_path):
    forwarded = {"X-Forwarded-Proto": "https"}
    # Not configured: a client's header changes nothing.
    assert request_over_http(tmp_path, forwarded)["status"] == 301
    # Configured: the proxy's word counts, and HSTS goes out with its defaults.
    answer = request_over_http(tmp_path, forwarded, SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto")
    assert answer["status"] == 401
    assert answer["hsts"] == "max-age=31536000; includeSubDomains; preload"
    # Another header and value, as some proxies send.
    answer = request_over_http(
        tmp_path, {"X-Forwarded-Ssl": "on"}, SECURE_PROXY_SSL_HEADER="X-Forwarded-Ssl=on"
    )
    assert answer["status"] == 401


def test_hsts_settings_follow_the_environment(tmp_path):
    answer = request_over_http(
        tmp_path,
        {"X-Forwarded-Proto": "https"},
        SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto",
        SECURE_HSTS_SECONDS="3600",
        SECURE_HSTS_INCLUDE_SUBDOMAINS="0",
        SECURE_HSTS_PRELOAD="0",
    )
    assert answer["hsts"] == "max-age=3600"


def test_a_malformed_proxy_header_setting_is_refused(tmp_path):
    result = manage(tmp_path, "check", SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto: https")
    assert result.returncode != 0
    assert "SECURE_PROXY_SSL_HEADER must be a header name" in result.stderr


@pytest.mark.parametrize(
    "env, message",
    [
        ({"BULK_STORAGE": "s3"}, "BULK_STORAGE=s3 needs AWS_STORAGE_BUCKET_NAME"),
        ({"BULK_STORAGE": "ftp"}, "BULK_STORAGE must be local or s3"),
    ],
)
def test_a_bucket_setting_that_cannot_work_stops_start_up(tmp_path, env, message):
    result = manage(tmp_path, "check", **env)
    assert result.returncode != 0
    assert message in result.stderr


def test_the_bucket_backend_is_checked_clean_for_deployment(tmp_path):
    result = manage(
        tmp_path,
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        BULK_STORAGE="s3",
        AWS_STORAGE_BUCKET_NAME="platform-results",
        AWS_S3_REGION_NAME="eu-west-1",
    )
    assert result.returncode == 0, result.stdout + result.stderr
