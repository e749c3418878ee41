"""Admin login throttling (django-axes): repeated failures lock the username at that address,
the right password is refused while locked, an operator unlocks it with axes' commands, and the
client address cannot be chosen with a forged X-Forwarded-For."""

import io
import json
import os
import subprocess
import sys

import pytest
from axes.models import AccessAttempt
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client

from conftest import staff_client
from platform_core.conf import DEFAULTS
from tests.test_settings import ROOT

pytestmark = pytest.mark.django_db

LOGIN = "/admin/login/?next=/admin/"
PASSWORD = "operator-password-0123456789"
LIMIT = DEFAULTS["ADMIN_LOGIN_FAILURE_LIMIT"]
ATTACKER = "203.0.113.7"


@pytest.fixture
def operator(db):
    return User.objects.create_superuser("operator", "operator@example.test", PASSWORD)


def log_in(password: str, *, address: str = ATTACKER, **headers):
    client = Client(REMOTE_ADDR=address)
    response = client.post(LOGIN, {"username": "operator", "password": password}, **headers)
    return client, response


def logged_in(client: Client) -> bool:
    return client.get("/admin/").status_code == 200


def fail(times: int, **kwargs) -> None:
    for _ in range(times):
        _, response = log_in("wrong-password", **kwargs)
        assert response.status_code in (200, 429)


def assert_locked(response) -> None:
    assert response.status_code == 429
    page = response.content.decode()
    assert "Too many failed logins" in page
    assert "operator" not in page and ATTACKER not in page  # names neither account nor address
    assert "Traceback" not in page
    assert int(response["Retry-After"]) == DEFAULTS["ADMIN_LOGIN_COOLOFF_MINUTES"] * 60


def test_failures_below_the_limit_do_not_lock(operator):
    fail(LIMIT - 1)
    client, response = log_in(PASSWORD)
    assert response.status_code == 302 and logged_in(client)


def test_the_right_password_is_refused_once_locked(operator, caplog):
    caplog.set_level("DEBUG")
    fail(LIMIT)
    client, response = log_in(PASSWORD)
    assert_locked(response)
    assert not logged_in(client)
    # Fifteen more tries, the right one last: still refused.
    fail(15)
    client, response = log_in(PASSWORD)
    assert_locked(response)
    assert "Locking out" in caplog.text  # axes logs the lockout, never a password
    assert PASSWORD not in caplog.text and "wrong-password" not in caplog.text
    [attempt] = AccessAttempt.objects.all()
    assert attempt.failures_since_start >= LIMIT and attempt.username == "operator"
    kept = f"{attempt.get_data} {attempt.post_data}"
    assert "password=****" in kept and "wrong-password" not in kept and PASSWORD not in kept


def test_the_lock_is_per_address(operator):
    fail(LIMIT)
    client, response = log_in(PASSWORD, address="198.51.100.20")
    assert response.status_code == 302 and logged_in(client)


def test_a_forged_forwarded_for_header_does_not_change_the_address(operator):
    for n in range(LIMIT):
        fail(1, HTTP_X_FORWARDED_FOR=f"192.0.2.{n}")
    _, response = log_in(PASSWORD, HTTP_X_FORWARDED_FOR="192.0.2.200")
    assert_locked(response)


def test_behind_trusted_proxies_the_address_they_saw_counts(operator, settings):
    settings.PLATFORM = {**settings.PLATFORM, "ADMIN_LOGIN_TRUSTED_PROXIES": 1}
    proxy = "10.0.0.2"
    # Whatever the client puts first, the proxy appends the address it saw.
    for n in range(LIMIT):
        fail(1, address=proxy, HTTP_X_FORWARDED_FOR=f"192.0.2.{n}, {ATTACKER}")
    _, response = log_in(PASSWORD, address=proxy, HTTP_X_FORWARDED_FOR=ATTACKER)
    assert_locked(response)
    # Another client behind the same proxy is not locked.
    client, response = log_in(PASSWORD, address=proxy, HTTP_X_FORWARDED_FOR="198.51.100.9")
    assert response.status_code == 302 and logged_in(client)


@pytest.mark.parametrize(
    "command",
    [
        ["axes_reset_username", "operator"],
        ["axes_reset_ip_username", ATTACKER, "operator"],
        ["axes_reset_ip", ATTACKER],
        ["axes_reset"],
    ],
)
def test_an_operator_unlocks_with_the_management_command(operator, command):
    fail(LIMIT)
    assert_locked(log_in(PASSWORD)[1])
    listed = io.StringIO()
    call_command("axes_list_attempts", stdout=listed)
    assert "operator" in listed.getvalue()
    call_command(*command, stdout=io.StringIO())
    client, response = log_in(PASSWORD)
    assert response.status_code == 302 and logged_in(client)


def test_a_successful_login_resets_the_count(operator):
    fail(LIMIT - 1)
    assert log_in(PASSWORD)[1].status_code == 302
    fail(LIMIT - 1)
    assert log_in(PASSWORD)[1].status_code == 302


def test_the_limits_come_from_the_environment():
    script = (
        "import json, django; django.setup(); from django.conf import settings as s; "
        "print(json.dumps([s.AXES_FAILURE_LIMIT, str(s.AXES_COOLOFF_TIME), "
        "s.AXES_LOCKOUT_PARAMETERS]))"
    )

    def read(**environ):
        env = {
            **{k: v for k, v in os.environ.items() if k not in DEFAULTS},
            "DJANGO_SETTINGS_MODULE": "platform_core.settings",
            "DEBUG": "1",
            **environ,
        }
        out = subprocess.run(
            [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True
        )
        assert out.returncode == 0, out.stderr[-2000:]
        return json.loads(out.stdout.strip().splitlines()[-1])

    assert read() == [5, "0:15:00", [["username", "ip_address"]]]
    assert read(ADMIN_LOGIN_FAILURE_LIMIT="3", ADMIN_LOGIN_COOLOFF_MINUTES="0")[:2] == [3, "None"]


def test_another_superuser_unlocks_from_the_admin(operator, admin_client):
    fail(LIMIT)
    assert_locked(log_in(PASSWORD)[1])
    [attempt] = AccessAttempt.objects.all()
    response = admin_client.post(f"/admin/axes/accessattempt/{attempt.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    client, response = log_in(PASSWORD)
    assert response.status_code == 302 and logged_in(client)


def test_axes_broken_cleanup_action_is_not_offered(operator):
    """axes' "Clean up expired attempts" always failed (AttributeError) and was offered to staff
    who may only view attempts; deleting a row (the delete permission) is the admin's way."""
    fail(LIMIT)
    [attempt] = AccessAttempt.objects.all()
    changelist = "/admin/axes/accessattempt/"
    viewer = staff_client("view_accessattempt")
    page = viewer.get(changelist)
    assert page.status_code == 200 and "operator" in page.content.decode()
    assert "cleanup_expired_attempts" not in page.content.decode()
    assert 'value="delete_selected"' not in page.content.decode()
    response = viewer.post(
        changelist, {"action": "cleanup_expired_attempts", "_selected_action": [attempt.pk]}
    )
    assert response.status_code == 200  # no action to run: the list again
    assert AccessAttempt.objects.filter(pk=attempt.pk).exists()

    deleter = staff_client("view_accessattempt", "delete_accessattempt")
    page = deleter.get(changelist).content.decode()
    assert 'value="delete_selected"' in page and "cleanup_expired_attempts" not in page
    response = deleter.post(
        changelist,
        {"action": "delete_selected", "_selected_action": [attempt.pk], "post": "yes"},
    )
    assert response.status_code == 302 and not AccessAttempt.objects.exists()
    client, response = log_in(PASSWORD)
    assert response.status_code == 302 and logged_in(client)
