"""Sessions, Django users and messages are the admin's alone (platform_core/middleware.py): the
API authenticates every request by its Authorization header, so a browser's admin session
neither reaches it nor is touched by it, and the admin keeps all three."""

import pytest
from django.test import Client

from conftest import staff_client

pytestmark = pytest.mark.django_db


def test_an_admin_session_does_not_authenticate_an_api_call_and_is_left_alone():
    client = staff_client("view_instance")
    response = client.get("/elements/api-v2/instances")
    assert response.status_code == 401
    assert not response.cookies  # no session or CSRF cookie set or refreshed
    assert "Cookie" not in response.get("Vary", "")
    assert not hasattr(response.wsgi_request, "session")
    assert getattr(response.wsgi_request, "user", None) is None  # DRF's "no user", not staff


def test_an_api_call_with_its_header_gets_no_cookie(tenant):
    response = tenant.client().get("/elements/api-v2/instances")
    assert response.status_code == 200
    assert not response.cookies
    assert not hasattr(response.wsgi_request, "session")


def test_the_admin_keeps_its_session_user_and_messages():
    client = staff_client("view_instance")
    response = client.get("/admin/instances/instance/")
    assert response.status_code == 200
    request = response.wsgi_request
    assert request.user == client.user
    assert request.session.session_key
    assert hasattr(request, "_messages")
    # And a login still sets the session cookie.
    login = Client().post(
        "/admin/login/", {"username": client.user.username, "password": "pw-123456789"}
    )
    assert login.status_code == 302
    assert "sessionid" in login.cookies
