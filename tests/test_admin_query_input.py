"""Query strings and posts that used to be 500s in the admin, sent by staff users holding exactly
the permissions under test (or a superuser): a lookup no list filter of the changelist makes, a
date hierarchy's value out of range, an action on a selection that is not row ids, a posted key
that is not a key. Each is refused the way Django refuses bad admin input: a 400, a redirect to
``?e=1``, a message, a form error."""

import pytest
from axes.models import AccessAttempt
from django.contrib import admin
from django.contrib.messages import get_messages
from django.utils import timezone

from bulk.models import BulkJob
from conftest import make_instance, staff_client
from events.admin import EventAdmin
from events.models import Event, Notification, Poller
from instances.models import Instance
from platform_core.admin_base import PlatformAdminMixin
from tenants.models import Organization

pytestmark = pytest.mark.django_db


@pytest.fixture
def rows(tenant):
    """A row of each changelist, so that a lookup that got through would reach the database."""
    instance, _ = make_instance(tenant, tags=("prod",))
    now = timezone.now()
    Poller.objects.create(
        instance=instance,
        object_name="users",
        interval_seconds=60,
        next_run_at=now,
        state={"cursor": 1005},
    )
    notification = Notification.objects.create(
        instance=instance, object_type="users", next_at=now, status=Notification.Status.FAILED
    )
    Event.objects.create(
        instance=instance,
        object_type="users",
        event_type="UPDATED",
        object_id="u-1",
        version="1",
        event_date=now,
        encrypted_record="gAAAAB-ciphertext",
        notification=notification,
    )
    BulkJob.objects.create(
        instance=instance,
        user=tenant.user,
        element_key="mixpanel",
        object_name="users",
        query_text="select * from users",
        checkpoint={"session_id": "s-1"},
    )
    AccessAttempt.objects.create(
        username="operator",
        ip_address="203.0.113.7",
        path_info="/admin/login/",
        failures_since_start=1,
    )
    return instance


@pytest.mark.parametrize(
    "url",
    [
        "/admin/instances/instance/?name__regex=(",
        "/admin/instances/instance/?tags__regex=(",
        "/admin/instances/instance/?tags__0__regex=(",
        "/admin/instances/instance/?id__in=1,abc",
        "/admin/bulk/bulkjob/?query_text__regex=[",
        "/admin/bulk/bulkjob/?checkpoint__regex=(",
        "/admin/events/poller/?state__regex=(",
        "/admin/events/event/?event_date__year=99999999999",
        "/admin/events/notification/?last_error__regex=(",
        "/admin/tenants/organization/?name__regex=(",
        "/admin/transformations/transformation/?element_key__regex=(",
        "/admin/elements/elementrecord/?key__regex=(",
        "/admin/axes/accessattempt/?username__regex=(",
        "/admin/auth/user/?username__regex=(",
    ],
)
def test_a_lookup_no_list_filter_makes_is_refused(admin_client, rows, url):
    assert admin_client.get(url).status_code == 400


@pytest.mark.parametrize(
    "url",
    [
        "/admin/instances/instance/?element_key=mixpanel&disabled__exact=0&q=Main",
        "/admin/bulk/bulkjob/?status__exact=CREATED&object_name=users&element_key=mixpanel&q=users",
        "/admin/events/event/?status__exact=NEW&object_type=users&event_type=UPDATED&q=u-1",
        "/admin/events/notification/?status__exact=FAILED&object_type=users",
        "/admin/axes/accessattempt/?locked_out=no&path_info=%2Fadmin%2Flogin%2F&q=operator",
    ],
)
def test_the_list_filters_and_the_search_still_filter(admin_client, rows, url):
    response = admin_client.get(url)
    assert response.status_code == 200
    assert response.context["cl"].result_count == 1


@pytest.mark.parametrize(
    "query",
    [
        "attempt_time__year=9999",
        "attempt_time__year=99999999999",
        "attempt_time__year=0",
        "attempt_time__year=%D9%A3",
        "attempt_time__year=2026&attempt_time__month=13",
        "attempt_time__year=2026&attempt_time__month=2&attempt_time__day=31",
        "attempt_time__year=2026&attempt_time__month=12&attempt_time__day=99",
    ],
)
def test_a_date_hierarchy_value_out_of_range_is_an_invalid_lookup(rows, query):
    client = staff_client("view_accessattempt")
    response = client.get(f"/admin/axes/accessattempt/?{query}")
    assert response.status_code == 302
    assert response["Location"] == "/admin/axes/accessattempt/?e=1"


def test_a_date_hierarchy_in_range_filters(rows):
    client = staff_client("view_accessattempt")
    year = timezone.now().year
    response = client.get(f"/admin/axes/accessattempt/?attempt_time__year={year}")
    assert response.status_code == 200 and response.context["cl"].result_count == 1
    response = client.get(f"/admin/axes/accessattempt/?attempt_time__year={year - 1}")
    assert response.status_code == 200 and response.context["cl"].result_count == 0
    response = client.get("/admin/axes/accessattempt/?attempt_time__year=9998")
    assert response.status_code == 200 and response.context["cl"].result_count == 0


def test_a_platform_date_hierarchy_is_bounded_too(rows, monkeypatch):
    monkeypatch.setattr(EventAdmin, "date_hierarchy", "event_date")
    client = staff_client("view_event")
    response = client.get("/admin/events/event/?event_date__year=99999999999")
    assert response.status_code == 302 and response["Location"].endswith("?e=1")
    year = timezone.now().year
    response = client.get(f"/admin/events/event/?event_date__year={year}")
    assert response.status_code == 200 and response.context["cl"].result_count == 1
    # Its range is the hierarchy's own: not a lookup of the query string.
    assert client.get("/admin/events/event/?event_date__gte=2000-01-01").status_code == 400


def _selected_abc(client, changelist: str, action: str):
    response = client.post(changelist, {"action": action, "_selected_action": ["abc"]})
    assert response.status_code == 302 and response["Location"] == changelist
    return [m.message for m in get_messages(response.wsgi_request)]


@pytest.mark.parametrize(
    "changelist, action, permissions",
    [
        ("/admin/instances/instance/", "disable_instances", ["change_instance"]),
        ("/admin/bulk/bulkjob/", "cancel_jobs", ["view_bulkjob", "change_bulkjob"]),
        ("/admin/events/notification/", "redeliver", ["change_notification"]),
        ("/admin/events/event/", "redeliver", ["change_event"]),
        ("/admin/tenants/organization/", "rotate_organization_secret", ["change_organization"]),
        (
            "/admin/axes/accessattempt/",
            "delete_selected",
            ["view_accessattempt", "delete_accessattempt"],
        ),
    ],
)
def test_an_action_on_a_selection_that_is_not_row_ids_is_refused(
    rows, changelist, action, permissions
):
    client = staff_client(*permissions)
    assert f'value="{action}"' in client.get(changelist).content.decode()
    assert _selected_abc(client, changelist, action) == [
        "The selection is not a list of row ids: nothing was done."
    ]
    assert not Instance.objects.get(pk=rows.pk).disabled
    assert BulkJob.objects.get().status == BulkJob.Status.CREATED
    assert Notification.objects.get().status == Notification.Status.FAILED
    assert AccessAttempt.objects.exists()


def test_an_organization_that_is_not_a_key_is_a_form_error(tenant):
    client = staff_client("add_tenantuser", "view_organization")
    before = Organization.objects.get().users.count()
    response = client.post(
        "/admin/tenants/tenantuser/add/", {"organization": "abc", "email": "new@acme.test"}
    )
    assert response.status_code == 200
    assert "Select a valid choice." in response.content.decode()
    assert Organization.objects.get().users.count() == before


def test_every_admin_of_the_site_is_on_the_platform_base():
    """So that none of them takes a lookup, a selection or a key unchecked."""
    assert admin.site._registry
    for model, model_admin in admin.site._registry.items():
        assert isinstance(model_admin, PlatformAdminMixin), model
