"""The events admin with real admin requests by staff users holding exactly the permissions
under test: seeing events and deliveries is not redelivering them; no secret is shown."""

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.test import Client

from conftest import staff_client
from events.models import Event, Notification, Poller
from tests.test_events import KEY, _one_event

pytestmark = pytest.mark.django_db

EVENTS = "/admin/events/event/"


@pytest.fixture
def failed_event(tenant, sim, settings):
    settings.PLATFORM = {**settings.PLATFORM, "CALLBACK_ALLOW_PRIVATE_NETWORKS": True}
    _, event = _one_event(tenant, sim, "http://127.0.0.1:9/e")
    Notification.objects.filter(pk=event.notification_id).update(
        status=Notification.Status.FAILED, attempts=8
    )
    Event.objects.filter(pk=event.pk).update(status=Event.Status.FAILED)
    return event


def redeliver(client: Client, event: Event):
    return client.post(EVENTS, {"action": "redeliver", "_selected_action": [event.pk]}, follow=True)


def test_viewing_lists_events_and_deliveries_but_cannot_redeliver(failed_event):
    client = staff_client("view_event", "view_notification", "view_delivery")
    listing = client.get(EVENTS)
    assert listing.status_code == 200
    page = listing.content.decode()
    assert failed_event.object_id in page
    assert 'value="redeliver"' not in page
    notification = client.get(f"/admin/events/notification/{failed_event.notification_id}/change/")
    assert notification.status_code == 200
    assert KEY not in notification.content.decode()
    assert client.get("/admin/events/delivery/").status_code == 200
    redeliver(client, failed_event)
    assert Notification.objects.get(pk=failed_event.notification_id).status == "FAILED"


def test_the_change_permission_redelivers(failed_event):
    client = staff_client("view_event", "change_event")
    assert 'value="redeliver"' in client.get(EVENTS).content.decode()
    response = redeliver(client, failed_event)
    assert response.status_code == 200
    assert "queued for redelivery" in response.content.decode()
    notification = Notification.objects.get(pk=failed_event.notification_id)
    assert (notification.status, notification.attempts) == ("PENDING", 0)
    [entry] = LogEntry.objects.all()  # in the admin log, like a bulk download
    assert (entry.user, entry.action_flag) == (client.user, CHANGE)
    assert (entry.content_type.model, entry.object_id) == ("event", str(failed_event.pk))
    assert entry.get_change_message() == "Queued the event for redelivery."


def test_redelivering_a_notification_is_in_the_admin_log(failed_event):
    client = staff_client("view_notification", "change_notification")
    response = client.post(
        "/admin/events/notification/",
        {"action": "redeliver", "_selected_action": [failed_event.notification_id]},
        follow=True,
    )
    assert "queued again" in response.content.decode()
    assert Notification.objects.get(pk=failed_event.notification_id).status == "PENDING"
    [entry] = LogEntry.objects.all()
    assert (entry.user, entry.action_flag) == (client.user, CHANGE)
    assert entry.content_type.model == "notification"
    assert entry.object_id == str(failed_event.notification_id)
    assert entry.get_change_message() == "Queued the notification again."
    history = client.get(f"/admin/events/notification/{failed_event.notification_id}/history/")
    assert "Queued the notification again." in history.content.decode()


def test_pollers_state_is_neither_shown_nor_filterable(failed_event):
    client = staff_client("view_poller")
    poller = Poller.objects.get(instance=failed_event.instance_id)
    assert poller.state  # the cursors the element handed back
    page = client.get(f"/admin/events/poller/{poller.pk}/change/")
    assert page.status_code == 200 and "state" not in page.content.decode().lower()
    for value in map(str, poller.state.values()):
        assert client.get(f"/admin/events/poller/?state__icontains={value}").status_code == 400


def test_no_permission_no_events(failed_event):
    assert staff_client().get(EVENTS).status_code == 403
    for page in ("/admin/events/event/", "/admin/events/poller/"):
        body = Client()
        assert body.get(page).status_code == 302  # to the login page
