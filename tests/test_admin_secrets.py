"""New tenant secrets issued in the admin are shown once, in the response of the request that
issued them, and never travel in a cookie (Django's messages cookie is signed, not encrypted),
the session, a redirect or a log.

Each flow is driven like a browser: log in through the login form, open the list, run the
action or submit the add form, then come back; every Set-Cookie of every response is checked.
"""

import logging
import re
from urllib.parse import unquote

import pytest
from django.contrib.auth.models import User
from django.contrib.messages.storage.cookie import CookieStorage
from django.contrib.sessions.models import Session
from django.http import HttpRequest
from django.test import Client

from tenants.models import Organization, TenantUser
from tenants.secrets import hash_secret

pytestmark = pytest.mark.django_db

PASSWORD = "operator-password-0123456789"
SECRET_ON_PAGE = re.compile(r'<code class="issued-secret">([A-Za-z0-9_-]{43,})</code>')


class RecordingClient(Client):
    """A test client that keeps every response of the flow, redirects followed included."""

    def __init__(self):
        super().__init__()
        self.responses = []

    def request(self, **request):
        response = super().request(**request)
        self.responses.append(response)
        return response

    def set_cookie_headers(self) -> list[str]:
        """Every Set-Cookie of the flow as sent, and, for the messages cookie, what it decodes
        to as well (Django may compress it, which would hide a secret from a plain search)."""
        seen = []
        for response in self.responses:
            for morsel in response.cookies.values():
                seen.append(morsel.OutputString())
                seen.append(unquote(morsel.value))
                if morsel.key == CookieStorage.cookie_name and morsel.value:
                    decoded = CookieStorage(HttpRequest())._decode(morsel.value)
                    assert decoded is not None  # signed by this platform, readable by anyone
                    seen.extend(str(message) for message in decoded)
        return seen


@pytest.fixture
def operator() -> RecordingClient:
    User.objects.create_superuser("operator", "operator@example.test", PASSWORD)
    client = RecordingClient()
    page = client.get("/admin/login/?next=/admin/")
    assert page.status_code == 200
    response = client.post(
        "/admin/login/?next=/admin/",
        {"username": "operator", "password": PASSWORD, "next": "/admin/"},
    )
    assert response.status_code == 302, response.content[:500]
    return client


def shown(response) -> list[str]:
    return SECRET_ON_PAGE.findall(response.content.decode())


def assert_nowhere_but_the_page(client: RecordingClient, secrets: list[str], caplog) -> None:
    cookies = client.set_cookie_headers()
    assert cookies  # the flow did set cookies (session, CSRF, messages): none holds a secret
    for secret in secrets:
        for cookie in cookies:
            assert secret not in cookie
        for session in Session.objects.all():
            assert secret not in repr(session.get_decoded())
        for response in client.responses:
            assert secret not in response.get("Location", "")
        assert secret not in caplog.text
        # Shown once: exactly one response of the flow carries it, once.
        carriers = [r for r in client.responses if secret.encode() in r.content]
        assert len(carriers) == 1 and carriers[0].content.decode().count(secret) == 1
        assert "no-store" in carriers[0]["Cache-Control"]


def run_action(client, changelist: str, action: str, pk: int):
    return client.post(changelist, {"action": action, "_selected_action": [str(pk)]}, follow=True)


def test_rotating_a_user_secret(operator, tenant, caplog):
    caplog.set_level(logging.DEBUG)
    changelist = "/admin/tenants/tenantuser/"
    operator.get(changelist)
    response = run_action(operator, changelist, "rotate_user_secret", tenant.user.pk)
    assert response.status_code == 200 and response.redirect_chain == []
    [secret] = shown(response)
    assert TenantUser.objects.get(pk=tenant.user.pk).secret_hash == hash_secret(secret)
    assert secret != tenant.user_secret
    operator.get(changelist)  # back to the list: not shown again
    operator.get(f"{changelist}{tenant.user.pk}/change/")
    assert_nowhere_but_the_page(operator, [secret], caplog)


def test_rotating_an_organization_secret(operator, tenant, caplog):
    caplog.set_level(logging.DEBUG)
    changelist = "/admin/tenants/organization/"
    operator.get(changelist)
    response = run_action(
        operator, changelist, "rotate_organization_secret", tenant.organization.pk
    )
    [secret] = shown(response)
    assert Organization.objects.get().secret_hash == hash_secret(secret)
    operator.get(changelist)
    assert_nowhere_but_the_page(operator, [secret], caplog)


def test_adding_an_organization(operator, caplog):
    caplog.set_level(logging.DEBUG)
    operator.get("/admin/tenants/organization/add/")
    response = operator.post(
        "/admin/tenants/organization/add/",
        {"name": "Initech", "email": "ops@initech.test", "_save": "Save"},
        follow=True,
    )
    assert response.status_code == 200 and response.redirect_chain == []
    org_secret, user_secret = shown(response)
    org = Organization.objects.get(name="Initech")
    assert org.secret_hash == hash_secret(org_secret)
    assert TenantUser.objects.get(organization=org).secret_hash == hash_secret(user_secret)
    operator.get("/admin/tenants/organization/")
    assert_nowhere_but_the_page(operator, [org_secret, user_secret], caplog)


def test_adding_a_user(operator, tenant, caplog):
    caplog.set_level(logging.DEBUG)
    operator.get("/admin/tenants/tenantuser/add/")
    response = operator.post(
        "/admin/tenants/tenantuser/add/",
        {"organization": tenant.organization.pk, "email": "new@acme.test", "_save": "Save"},
        follow=True,
    )
    [secret] = shown(response)
    assert TenantUser.objects.get(email="new@acme.test").secret_hash == hash_secret(secret)
    operator.get("/admin/tenants/tenantuser/")
    assert_nowhere_but_the_page(operator, [secret], caplog)


def test_a_messages_cookie_is_still_used_for_other_news(operator, tenant, other_tenant):
    """The check above is not vacuous: the admin's ordinary messages do travel in a cookie."""
    response = operator.post(
        "/admin/tenants/organization/",
        {
            "action": "rotate_organization_secret",
            "_selected_action": [tenant.organization.pk, other_tenant.organization.pk],
        },
    )
    assert response.status_code == 302 and "messages" in response.cookies


def test_rotating_an_instance_token_shows_it_nowhere(operator, tenant):
    """Instance tokens are not shown in the admin at all (their owner reads them through the
    API); the rotation's message, which does travel in the cookie, does not carry one."""
    from conftest import make_instance
    from instances.models import Instance
    from instances.services import token_of

    instance, old = make_instance(tenant)
    operator.post(f"/admin/instances/instance/{instance.pk}/rotate-token/", follow=True)
    run_action(operator, "/admin/instances/instance/", "rotate_tokens", instance.pk)
    new = token_of(Instance.objects.get(pk=instance.pk))
    assert new != old
    cookies = operator.set_cookie_headers()
    assert any("rotated" in cookie for cookie in cookies)  # the decoded message is checked
    for token in (old, new):
        assert not any(token in cookie for cookie in cookies)
        assert not any(token.encode() in r.content for r in operator.responses)
