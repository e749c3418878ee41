"""The admin UI: organizations, users, instances and the element catalog.

Secrets are shown once (rotation and creation messages) and never otherwise; an instance's page
shows only its masked configuration; the operations on instances change the database.
"""

import logging
import re

import pytest
from django.contrib import admin
from django.contrib.admin.models import LogEntry
from django.contrib.messages import get_messages
from django.core.exceptions import ValidationError

from bulk.models import BulkJob
from conftest import (
    SA_CONFIGURATION,
    SIM_API_SECRET,
    SIM_PROJECT_TOKEN,
    SIM_SA_SECRET,
    make_instance,
    staff_client,
)
from conftest import SIM_SA_USERNAME as SA_USERNAME
from elements.models import ElementRecord
from events.models import Event, Poller
from instances.admin import TagsField
from instances.models import Instance
from instances.services import token_of
from tenants.models import Organization, TenantUser
from tenants.secrets import hash_secret

pytestmark = pytest.mark.django_db

ADMIN = "/admin"
INSTANCES_API = "/elements/api-v2/instances"
SECRET_ON_PAGE = re.compile(r'<code class="issued-secret">([A-Za-z0-9_-]{43,})</code>')


@pytest.fixture
def instance(tenant):
    return make_instance(tenant, tags=("prod",))


def messages_of(response) -> list[tuple[str, str]]:
    return [(m.level_tag, m.message) for m in get_messages(response.wsgi_request)]


def secrets_in(response) -> list[str]:
    """The secrets shown on the page (tests/test_admin_secrets.py: never in a message)."""
    return SECRET_ON_PAGE.findall(response.content.decode())


def platform_status(user_secret: str, org_secret: str) -> int:
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"User {user_secret}, Organization {org_secret}")
    return client.get(INSTANCES_API).status_code


def run_action(admin_client, changelist: str, action: str, *pks, follow=True):
    return admin_client.post(
        changelist,
        {"action": action, "_selected_action": [str(pk) for pk in pks]},
        follow=follow,
    )


# -- every page renders ---------------------------------------------------------------------


def test_changelists_and_change_pages_render(admin_client, tenant, instance):
    obj, _ = instance
    record = ElementRecord.objects.get(key="mixpanel")
    pages = {
        f"{ADMIN}/": None,
        f"{ADMIN}/tenants/organization/": tenant.organization.name,
        f"{ADMIN}/tenants/organization/{tenant.organization.pk}/change/": "stored as a hash",
        f"{ADMIN}/tenants/tenantuser/": tenant.user.email,
        f"{ADMIN}/tenants/tenantuser/{tenant.user.pk}/change/": tenant.user.email,
        f"{ADMIN}/instances/instance/": obj.name,
        f"{ADMIN}/instances/instance/{obj.pk}/change/": obj.name,
        f"{ADMIN}/elements/elementrecord/": "mixpanel",
        f"{ADMIN}/elements/elementrecord/{record.pk}/change/": record.name,
        f"{ADMIN}/tenants/organization/add/": None,
        f"{ADMIN}/tenants/tenantuser/add/": None,
    }
    for url, expected in pages.items():
        response = admin_client.get(url)
        assert response.status_code == 200, url
        if expected:
            assert expected.lower() in response.content.decode().lower(), url


def test_lists_search_and_filter(admin_client, tenant, other_tenant):
    make_instance(tenant, name="Alpha")
    beta, _ = make_instance(other_tenant, name="Beta")
    page = admin_client.get(f"{ADMIN}/instances/instance/?q=Beta").content.decode()
    assert "Beta" in page and "Alpha" not in page
    page = admin_client.get(f"{ADMIN}/instances/instance/?disabled__exact=1").content.decode()
    assert "Beta" not in page
    page = admin_client.get(f"{ADMIN}/instances/instance/?element_key=mixpanel").content.decode()
    assert "Alpha" in page and "Beta" in page
    org = other_tenant.organization.pk
    page = admin_client.get(
        f"{ADMIN}/tenants/tenantuser/?organization__id__exact={org}"
    ).content.decode()
    assert other_tenant.user.email in page and tenant.user.email not in page
    page = admin_client.get(f"{ADMIN}/tenants/tenantuser/?q=globex").content.decode()
    assert other_tenant.user.email in page and tenant.user.email not in page
    page = admin_client.get(f"{ADMIN}/tenants/organization/?q=Globex").content.decode()
    assert "Globex" in page and "Acme" not in page


def test_organization_list_counts_users(admin_client, tenant):
    from conftest import add_user

    add_user(tenant)
    response = admin_client.get(f"{ADMIN}/tenants/organization/")
    assert response.context["cl"].result_list.get(pk=tenant.organization.pk)._user_count == 2


# -- nothing secret on the pages ------------------------------------------------------------


def test_instance_page_shows_the_masked_configuration_and_nothing_secret(
    admin_client, tenant, instance
):
    obj, token = instance
    obj.refresh_from_db()
    change = admin_client.get(f"{ADMIN}/instances/instance/{obj.pk}/change/").content.decode()
    listing = admin_client.get(f"{ADMIN}/instances/instance/").content.decode()
    assert "********" in change
    assert "2002" in change and "1001" in change  # project and organization ids are not secret
    assert "prod" in change
    forbidden = {
        "token": token,
        "token hash": obj.token_hash,
        "encrypted token": obj.encrypted_token,
        "encrypted configuration": obj.encrypted_configuration,
        "SA username": SA_USERNAME,
        "SA password": SIM_SA_SECRET,
        "project token": SIM_PROJECT_TOKEN,
        "user secret hash": tenant.user.secret_hash,
        "organization secret hash": tenant.organization.secret_hash,
    }
    for what, value in forbidden.items():
        assert value not in change, f"{what} on the change page"
        assert value not in listing, f"{what} on the changelist"
    # Nothing of the configuration is an editable form field.
    assert 'name="configuration' not in change and 'name="encrypted' not in change
    assert 'name="token' not in change


def test_tenant_pages_never_show_secret_hashes(admin_client, tenant):
    org, user = tenant.organization, tenant.user
    pages = [
        f"{ADMIN}/tenants/organization/",
        f"{ADMIN}/tenants/organization/{org.pk}/change/",
        f"{ADMIN}/tenants/tenantuser/",
        f"{ADMIN}/tenants/tenantuser/{user.pk}/change/",
        f"{ADMIN}/tenants/organization/add/",
        f"{ADMIN}/tenants/tenantuser/add/",
    ]
    for url in pages:
        page = admin_client.get(url).content.decode()
        for value in (org.secret_hash, user.secret_hash, tenant.organization_secret):
            assert value not in page, url
        assert tenant.user_secret not in page, url
        assert 'name="secret_hash"' not in page, url


@pytest.mark.parametrize(
    "url",
    [
        "/admin/instances/instance/?token_hash__startswith=a",
        "/admin/instances/instance/?encrypted_token__contains=a",
        "/admin/instances/instance/?encrypted_configuration__gt=a",
        "/admin/instances/instance/?user__secret_hash__startswith=a",
        "/admin/tenants/organization/?secret_hash__startswith=a",
        "/admin/tenants/tenantuser/?secret_hash__startswith=a",
        "/admin/tenants/tenantuser/?organization__secret_hash__startswith=a",
        # Not secret, but not shown either: pollers' state (their cursors), bulk checkpoints and
        # the records the vendor showed (encrypted).
        "/admin/events/poller/?state__icontains=1005",
        "/admin/bulk/bulkjob/?checkpoint__session_id__startswith=a",
        "/admin/events/event/?encrypted_record__startswith=g",
    ],
)
def test_secret_columns_cannot_be_probed_through_list_filters(admin_client, instance, url):
    response = admin_client.get(url)
    assert response.status_code == 400


@pytest.mark.parametrize(
    "model, lookup",
    [
        (Poller, "state__icontains"),
        (BulkJob, "checkpoint__session_id__startswith"),
        (Event, "encrypted_record__startswith"),
        (Instance, "encrypted_configuration__gt"),
    ],
)
def test_hidden_columns_are_refused_by_the_admins_own_lookup_check(rf, model, lookup):
    """Even were a list filter to name one of them."""
    assert not admin.site._registry[model].lookup_allowed(lookup, "a", rf.get("/"))


def test_names_are_rendered_as_text(admin_client, db):
    from conftest import make_tenant

    make_tenant(name='<script>alert("x")</script>Evil', email="evil@example.test")
    for url in (f"{ADMIN}/tenants/organization/", f"{ADMIN}/tenants/tenantuser/"):
        page = admin_client.get(url).content.decode()
        assert '<script>alert("x")' not in page
    page = admin_client.get(f"{ADMIN}/tenants/organization/").content.decode()
    assert "&lt;script&gt;" in page


# -- secrets: shown once on rotation and creation ----------------------------------------------


def test_rotate_organization_secret_shows_the_new_secret_once(admin_client, tenant, caplog):
    caplog.set_level(logging.DEBUG)
    changelist = f"{ADMIN}/tenants/organization/"
    old = tenant.organization_secret
    assert platform_status(tenant.user_secret, old) == 200

    response = run_action(
        admin_client, changelist, "rotate_organization_secret", tenant.organization.pk
    )
    assert response.status_code == 200
    [new] = secrets_in(response)
    assert new != old and response.content.decode().count(new) == 1
    tenant.organization.refresh_from_db()
    assert tenant.organization.secret_hash == hash_secret(new)

    assert platform_status(tenant.user_secret, old) == 401
    assert platform_status(tenant.user_secret, new) == 200
    # Shown once: not on the next page, not in the admin log, not in any log line.
    assert new not in admin_client.get(changelist).content.decode()
    assert (
        new
        not in admin_client.get(f"{changelist}{tenant.organization.pk}/change/").content.decode()
    )
    assert new not in repr(list(LogEntry.objects.values()))
    assert LogEntry.objects.filter(change_message__contains="Rotated").exists()
    assert new not in caplog.text


def test_rotate_user_secret_shows_the_new_secret_once(admin_client, tenant, caplog):
    caplog.set_level(logging.DEBUG)
    changelist = f"{ADMIN}/tenants/tenantuser/"
    old = tenant.user_secret
    response = run_action(admin_client, changelist, "rotate_user_secret", tenant.user.pk)
    [new] = secrets_in(response)
    assert response.content.decode().count(new) == 1
    assert platform_status(old, tenant.organization_secret) == 401
    assert platform_status(new, tenant.organization_secret) == 200
    assert new not in admin_client.get(changelist).content.decode()
    assert new not in caplog.text


def test_rotation_needs_exactly_one_selected_row(admin_client, tenant, other_tenant):
    before = {o.pk: o.secret_hash for o in Organization.objects.all()}
    response = run_action(
        admin_client,
        f"{ADMIN}/tenants/organization/",
        "rotate_organization_secret",
        tenant.organization.pk,
        other_tenant.organization.pk,
    )
    assert secrets_in(response) == []
    assert any(level == "error" and "exactly one" in text for level, text in messages_of(response))
    assert {o.pk: o.secret_hash for o in Organization.objects.all()} == before
    assert platform_status(tenant.user_secret, tenant.organization_secret) == 200


def test_adding_an_organization_generates_both_secrets_once(admin_client, caplog):
    caplog.set_level(logging.DEBUG)
    page = admin_client.get(f"{ADMIN}/tenants/organization/add/").content.decode()
    assert 'name="name"' in page and 'name="email"' in page and "secret" not in page.lower()

    response = admin_client.post(
        f"{ADMIN}/tenants/organization/add/",
        {"name": "Initech", "email": "ops@initech.test", "_save": "Save"},
        follow=True,
    )
    assert response.status_code == 200
    org_secret, user_secret = secrets_in(response)
    org = Organization.objects.get(name="Initech")
    user = TenantUser.objects.get(organization=org)
    assert org.secret_hash == hash_secret(org_secret)
    assert user.secret_hash == hash_secret(user_secret) and user.email == "ops@initech.test"
    assert platform_status(user_secret, org_secret) == 200
    assert org_secret not in admin_client.get(f"{ADMIN}/tenants/organization/").content.decode()
    assert org_secret not in caplog.text and user_secret not in caplog.text
    assert Organization.objects.count() == 1 and TenantUser.objects.count() == 1


def test_adding_a_user_generates_its_secret_once(admin_client, tenant):
    response = admin_client.post(
        f"{ADMIN}/tenants/tenantuser/add/",
        {"organization": tenant.organization.pk, "email": "new@acme.test", "_save": "Save"},
        follow=True,
    )
    [secret] = secrets_in(response)
    user = TenantUser.objects.get(email="new@acme.test")
    assert user.organization == tenant.organization
    assert platform_status(secret, tenant.organization_secret) == 200


def test_a_users_organization_cannot_be_changed(admin_client, tenant, other_tenant):
    url = f"{ADMIN}/tenants/tenantuser/{tenant.user.pk}/change/"
    response = admin_client.post(
        url,
        {"organization": other_tenant.organization.pk, "email": "renamed@acme.test"},
    )
    assert response.status_code == 302
    tenant.user.refresh_from_db()
    assert tenant.user.email == "renamed@acme.test"
    assert tenant.user.organization == tenant.organization


# -- instances: operations ----------------------------------------------------------------------


def test_instances_cannot_be_added_in_the_admin(admin_client):
    assert admin_client.get(f"{ADMIN}/instances/instance/add/").status_code == 403


def test_disable_and_enable_actions(admin_client, tenant):
    first, _ = make_instance(tenant, name="One")
    second, _ = make_instance(tenant, name="Two")
    changelist = f"{ADMIN}/instances/instance/"
    response = run_action(admin_client, changelist, "disable_instances", first.pk, second.pk)
    assert response.status_code == 200
    assert set(Instance.objects.values_list("disabled", flat=True)) == {True}
    assert sum("now disabled" in text for _, text in messages_of(response)) == 2
    assert response.content.decode().count(">disabled<") == 2

    run_action(admin_client, changelist, "enable_instances", first.pk)
    first.refresh_from_db()
    second.refresh_from_db()
    assert not first.disabled and second.disabled


def test_disable_and_enable_buttons_on_the_change_page(admin_client, tenant, instance):
    obj, _ = instance
    change = f"{ADMIN}/instances/instance/{obj.pk}/change/"
    page = admin_client.get(change).content.decode()
    assert f'action="{ADMIN}/instances/instance/{obj.pk}/disable/"' in page
    assert "/enable/" not in page  # only the operation that applies

    # POST only.
    assert admin_client.get(f"{ADMIN}/instances/instance/{obj.pk}/disable/").status_code == 405
    obj.refresh_from_db()
    assert not obj.disabled

    response = admin_client.post(f"{ADMIN}/instances/instance/{obj.pk}/disable/")
    assert response.status_code == 302 and response["Location"] == change
    obj.refresh_from_db()
    assert obj.disabled
    page = admin_client.get(change).content.decode()
    assert "is now disabled" in page and "/enable/" in page

    admin_client.post(f"{ADMIN}/instances/instance/{obj.pk}/enable/")
    obj.refresh_from_db()
    assert not obj.disabled
    # A missing instance is the admin's usual redirect, not an error page.
    assert admin_client.post(f"{ADMIN}/instances/instance/999999/disable/").status_code == 302


def test_buttons_need_a_csrf_token(tenant, instance, django_user_model):
    from django.test import Client

    obj, _ = instance
    django_user_model.objects.create_superuser("strict", "strict@example.test", "pw-123456789")
    client = Client(enforce_csrf_checks=True)
    client.force_login(django_user_model.objects.get(username="strict"))
    response = client.post(f"{ADMIN}/instances/instance/{obj.pk}/disable/")
    assert response.status_code == 403
    obj.refresh_from_db()
    assert not obj.disabled


def test_staff_without_change_permission_cannot_use_the_buttons(tenant, instance, client):
    from django.contrib.auth.models import Permission, User

    obj, _ = instance
    staff = User.objects.create_user("viewer", password="pw-123456789", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_instance"))
    client.force_login(staff)
    page = client.get(f"{ADMIN}/instances/instance/{obj.pk}/change/").content.decode()
    assert "/disable/" not in page and "********" in page
    assert client.post(f"{ADMIN}/instances/instance/{obj.pk}/disable/").status_code == 403
    obj.refresh_from_db()
    assert not obj.disabled


def test_rotate_token_does_not_display_the_new_token(admin_client, tenant, instance):
    obj, old_token = instance
    old_hash = obj.token_hash
    response = admin_client.post(f"{ADMIN}/instances/instance/{obj.pk}/rotate-token/", follow=True)
    assert response.status_code == 200
    obj.refresh_from_db()
    new_token = token_of(obj)
    assert obj.token_hash != old_hash and obj.token_hash == hash_secret(new_token)
    assert new_token not in response.content.decode()
    assert any("rotated" in text and "API" in text for _, text in messages_of(response))
    # The old token is dead at once.
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=tenant.element_auth(old_token))
    assert client.get("/elements/api-v2/ping").status_code == 401

    # And as a list action.
    response = run_action(admin_client, f"{ADMIN}/instances/instance/", "rotate_tokens", obj.pk)
    newest = token_of(Instance.objects.get(pk=obj.pk))
    assert newest != new_token and newest not in response.content.decode()


def test_editing_name_and_tags_leaves_credentials_alone(admin_client, tenant, instance):
    obj, token = instance
    before = Instance.objects.values("encrypted_configuration", "token_hash").get(pk=obj.pk)
    response = admin_client.post(
        f"{ADMIN}/instances/instance/{obj.pk}/change/",
        {
            "name": "  <b>Renamed</b>   project ",
            "tags": "alpha\nbeta\n\nalpha\n",
            "encrypted_configuration": "tampered",
            "token_hash": "tampered",
            "disabled": "on",
            "_save": "Save",
        },
    )
    assert response.status_code == 302
    obj.refresh_from_db()
    assert obj.name == "Renamed project"
    assert obj.tags == ["alpha", "beta"]
    assert not obj.disabled
    after = Instance.objects.values("encrypted_configuration", "token_hash").get(pk=obj.pk)
    assert after == before
    assert token_of(obj) == token


def test_an_empty_name_is_refused(admin_client, instance):
    obj, _ = instance
    response = admin_client.post(
        f"{ADMIN}/instances/instance/{obj.pk}/change/",
        {"name": "<i></i>", "tags": "", "_save": "Save"},
    )
    assert response.status_code == 200 and "must contain text" in response.content.decode()
    obj.refresh_from_db()
    assert obj.name == "Main project"


def test_a_nul_in_a_tag_is_a_form_error(tenant, instance):
    obj, _ = instance
    client = staff_client("view_instance", "change_instance")
    response = client.post(
        f"{ADMIN}/instances/instance/{obj.pk}/change/",
        {"name": "ok", "tags": "x\x00y", "_save": "Save"},
    )
    assert response.status_code == 200
    assert "A tag must not contain NUL characters." in response.content.decode()
    obj.refresh_from_db()
    assert (obj.name, obj.tags) == ("Main project", ["prod"])


def test_a_lone_surrogate_in_a_tag_is_refused():
    # A form post cannot carry one (Django decodes the body with replacement characters); the
    # field refuses it all the same.
    with pytest.raises(ValidationError, match="lone surrogate"):
        TagsField().clean("ok\nx\ud800y")
    assert TagsField().clean("ok\nx y") == ["ok", "x y"]


# -- element records are read-only -----------------------------------------------------------


def test_element_records_are_read_only(admin_client):
    record = ElementRecord.objects.get(key="mixpanel")
    base = f"{ADMIN}/elements/elementrecord/"
    assert admin_client.get(f"{base}add/").status_code == 403
    assert admin_client.post(f"{base}add/", {"key": "x"}).status_code == 403
    assert admin_client.get(f"{base}{record.pk}/delete/").status_code == 403
    page = admin_client.get(f"{base}{record.pk}/change/").content.decode()
    assert 'name="_save"' not in page and 'name="key"' not in page
    response = admin_client.post(f"{base}{record.pk}/change/", {"name": "Hacked"})
    assert response.status_code == 403
    record.refresh_from_db()
    assert record.name != "Hacked"
    listing = admin_client.get(base).content.decode()
    for value in (record.key, record.name, record.hub, record.auth_type):
        assert value in listing
    assert 'name="action"' not in listing  # no bulk delete


# -- verify now (talks to the Mixpanel simulator) ---------------------------------------------


@pytest.mark.integration
def test_verify_now_marks_valid_credentials_valid(admin_client, tenant, sim):
    obj, _ = make_instance(tenant)
    Instance.objects.filter(pk=obj.pk).update(valid=False)
    response = admin_client.post(f"{ADMIN}/instances/instance/{obj.pk}/verify/", follow=True)
    obj.refresh_from_db()
    assert obj.valid
    assert any(level == "success" and "valid" in text for level, text in messages_of(response))


@pytest.mark.integration
def test_verify_now_marks_rejected_credentials_invalid(admin_client, tenant, sim):
    good, _ = make_instance(tenant, name="Good", configuration={"username": SIM_API_SECRET})
    bad, _ = make_instance(
        tenant, name="Bad", configuration={**SA_CONFIGURATION, "password": "wrong-secret"}
    )
    response = run_action(
        admin_client, f"{ADMIN}/instances/instance/", "verify_instances", good.pk, bad.pk
    )
    good.refresh_from_db()
    bad.refresh_from_db()
    assert good.valid and not bad.valid
    texts = dict((text.split("”")[0], (level, text)) for level, text in messages_of(response))
    assert texts["Instance “Good"][0] == "success"
    level, text = texts["Instance “Bad"]
    assert level == "warning" and "invalid" in text
    assert "wrong-secret" not in response.content.decode()
