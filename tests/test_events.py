"""Events by polling, in process (contract §10): the configuration keys, pollers following the
configuration, polls against the Mixpanel simulator over HTTP (baseline, changes, duplicates
dropped, the shared query budget, a disabled instance), snapshot comparison, signed
notifications to a real local receiver with retries, and the events API scoped to its caller.
Celery workers, beat and killed workers: tests/test_events_live.py."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from conftest import SA_CONFIGURATION, make_instance
from elements.framework.polling import SnapshotPoller
from events import services
from events.models import Delivery, Event, Notification, Poller
from tests.test_bulk_live import Receiver, signature_of

pytestmark = pytest.mark.django_db(transaction=False)

INSTANCES = "/elements/api-v2/instances"
KEY = "events-signing-key-0123456789"


@pytest.fixture
def private_callbacks(settings):
    settings.PLATFORM = {**settings.PLATFORM, "CALLBACK_ALLOW_PRIVATE_NETWORKS": True}


@pytest.fixture
def receiver():
    r = Receiver(path="/events")
    yield r
    r.close()


def events_config(url, **extra):
    return {
        **SA_CONFIGURATION,
        "event.notification.enabled": True,
        "event.vendor.type": "polling",
        "event.notification.callback.url": url,
        "event.notification.signature.key": KEY,
        "event.poller.refresh_interval": 0.1,
        **extra,
    }


def poll_now(poller: Poller) -> str:
    Poller.objects.filter(pk=poller.pk).update(next_run_at=timezone.now())
    return services.poll(poller.pk)


def pollers_of(instance) -> dict[str, Poller]:
    return {p.object_name: p for p in Poller.objects.filter(instance=instance)}


# --- configuration --------------------------------------------------------------------------


def test_metadata_says_events_by_polling(tenant):
    body = tenant.client().get("/elements/api-v2/elements/mixpanel/metadata").json()
    assert body["events"] == {"supported": True, "methods": ["polling"]}


@pytest.mark.parametrize(
    "extra, field",
    [
        ({"event.notification.callback.url": None}, "event.notification.callback.url"),
        ({"event.notification.callback.url": "ftp://x.test/"}, "event.notification.callback.url"),
        ({"event.poller.refresh_interval": 0.05}, "event.poller.refresh_interval"),
        ({"event.poller.refresh_interval": "0.05"}, "event.poller.refresh_interval"),
        ({"event.poller.refresh_interval": "-1"}, "event.poller.refresh_interval"),
        ({"event.poller.refresh_interval": "soon"}, "event.poller.refresh_interval"),
        ({"event.objects": "users,funnels"}, "event.objects"),
        ({"event.vendor.type": "webhook"}, "event.vendor.type"),
        ({"event.notification.enabled": "yes"}, "event.notification.enabled"),
    ],
)
def test_bad_event_configuration_is_400(tenant, sim, private_callbacks, extra, field):
    configuration = {
        k: v for k, v in events_config("http://127.0.0.1:9/e", **extra).items() if v is not None
    }
    response = tenant.client().post(
        INSTANCES,
        {"element": {"key": "mixpanel"}, "name": "x", "configuration": configuration},
        format="json",
    )
    assert response.status_code == 400, response.content
    fields = [e["field"] for e in response.json()["errors"]]
    assert f"configuration.{field}" in fields
    assert KEY not in response.content.decode()


def test_a_private_callback_url_is_refused_by_default(tenant, sim):
    response = tenant.client().post(
        INSTANCES,
        {
            "element": {"key": "mixpanel"},
            "name": "x",
            "configuration": events_config("http://127.0.0.1:9/e"),
        },
        format="json",
    )
    assert response.status_code == 400
    assert "private, loopback" in json.dumps(response.json()["errors"])


def test_pollers_follow_the_configuration(tenant, sim, private_callbacks):
    response = tenant.client().post(
        INSTANCES,
        {
            "element": {"key": "mixpanel"},
            "name": "x",
            "configuration": events_config(
                "http://127.0.0.1:9/e", **{"event.poller.refresh_interval": "0.5"}
            ),
        },
        format="json",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["configuration"]["event.poller.refresh_interval"] == 0.5
    assert body["eventsEnabled"] is True
    assert body["configuration"]["event.notification.signature.key"] == "********"
    instance_id = body["id"]
    pollers = Poller.objects.filter(instance_id=instance_id)
    assert sorted(p.object_name for p in pollers) == [
        "activities",
        "annotations",
        "cohorts",
        "users",
    ]
    assert {p.interval_seconds for p in pollers} == {30.0}

    client = tenant.client()
    patched = client.patch(
        f"{INSTANCES}/{instance_id}", {"configuration": {"event.objects": "users"}}, format="json"
    )
    assert patched.status_code == 200, patched.content
    assert [p.object_name for p in Poller.objects.filter(instance_id=instance_id)] == ["users"]

    off = client.patch(
        f"{INSTANCES}/{instance_id}",
        {"configuration": {"event.notification.enabled": "false"}},
        format="json",
    )
    assert off.status_code == 200, off.content
    assert not Poller.objects.filter(instance_id=instance_id).exists()
    assert off.json()["eventsEnabled"] is False


# --- polling against the simulator ---------------------------------------------------------


def test_users_baseline_then_created_and_updated_once(tenant, sim, private_callbacks):
    instance, _ = make_instance(
        tenant, configuration=events_config("http://127.0.0.1:9/e", **{"event.objects": "users"})
    )
    poller = pollers_of(instance)["users"]
    sim._control("POST", "profile-changes", {"$distinct_id": "before", "$set": {"a": 1}})
    assert poll_now(poller) == "baseline"
    assert not Event.objects.exists()

    sim._control("POST", "clock", {"advance": 60})
    sim._control("POST", "profile-changes", {"$distinct_id": "before", "$set": {"a": 2}})
    sim._control("POST", "profile-changes", {"$distinct_id": "newcomer", "$set": {"b": 1}})
    assert poll_now(poller) == "2 new events"
    events = {e.object_id: e for e in Event.objects.filter(instance=instance)}
    assert events["before"].event_type == "UPDATED"
    assert events["newcomer"].event_type == "CREATED"
    assert all(e.notification_id for e in events.values())

    # The overlapping window sees both again: nothing new.
    assert poll_now(poller) == "0 new events"
    assert Event.objects.filter(instance=instance).count() == 2


def test_activities_are_created_events_keyed_by_insert_id(tenant, sim, private_callbacks):
    instance, _ = make_instance(
        tenant,
        configuration=events_config("http://127.0.0.1:9/e", **{"event.objects": "activities"}),
    )
    sim.configure(events_per_day=0)
    poller = pollers_of(instance)["activities"]
    sim._control("POST", "events", {"events": [{"event": "old", "properties": {}}]})
    assert poll_now(poller) == "baseline"
    sim._control("POST", "clock", {"advance": 30})
    signed_up = {"event": "Signed up", "properties": {"$insert_id": "ins-1"}}
    sim._control("POST", "events", {"events": [signed_up]})
    assert poll_now(poller) == "1 new events"
    event = Event.objects.get(instance=instance)
    assert (event.event_type, event.object_id, event.object_type) == (
        "CREATED",
        "ins-1",
        "activities",
    )
    assert poll_now(poller) == "0 new events"


def test_a_disabled_instance_is_not_polled(tenant, sim, private_callbacks):
    instance, _ = make_instance(tenant, configuration=events_config("http://127.0.0.1:9/e"))
    instance.disabled = True
    instance.save()
    sim.clear_requests()
    for poller in pollers_of(instance).values():
        assert poll_now(poller) == "not claimed"
    assert sim.requests() == []


def test_a_deleted_instance_takes_its_pollers_and_events(tenant, sim, private_callbacks):
    instance, event = _one_event(tenant, sim, "http://127.0.0.1:9/e")
    poller_ids = list(Poller.objects.filter(instance=instance).values_list("pk", flat=True))
    response = tenant.client().delete(f"{INSTANCES}/{instance.pk}")
    assert response.status_code == 200
    assert not Poller.objects.filter(pk__in=poller_ids).exists()
    assert not Event.objects.filter(pk=event.pk).exists()
    assert [services.poll(pk) for pk in poller_ids] == ["not claimed"] * len(poller_ids)


def test_a_poll_whose_lease_was_taken_commits_nothing(tenant, sim, private_callbacks):
    instance, _ = make_instance(
        tenant, configuration=events_config("http://127.0.0.1:9/e", **{"event.objects": "users"})
    )
    poller = pollers_of(instance)["users"]
    poll_now(poller)
    Poller.objects.filter(pk=poller.pk).update(next_run_at=timezone.now())
    owner = services.poller_claim(poller_id=poller.pk)
    assert owner is not None
    # Another worker's claim while this one holds the lease fails...
    assert services.poller_claim(poller_id=poller.pk) is None
    # ...and once the lease is taken over (it ran out), the first worker's poll stops.
    Poller.objects.filter(pk=poller.pk).update(lease_owner="someone-else")
    vendor = services.PollVendor(None, poller_id=poller.pk, owner=owner, budget_key="k")
    with pytest.raises(services.LeaseLost):
        vendor.request("GET", "app", "/never-sent")


def test_a_poll_stops_before_its_next_vendor_request_once_disabled(tenant, sim, private_callbacks):
    instance, _ = make_instance(
        tenant, configuration=events_config("http://127.0.0.1:9/e", **{"event.objects": "users"})
    )
    poller = pollers_of(instance)["users"]
    owner = services.poller_claim(poller_id=poller.pk)
    vendor = services.PollVendor(None, poller_id=poller.pk, owner=owner, budget_key="k")
    tenant.client().delete(f"{INSTANCES}/{instance.pk}/enabled")
    with pytest.raises(services.LeaseLost):
        vendor.stream_lines("GET", "data", "/never-sent")


def test_two_instances_of_one_project_share_its_query_budget(
    tenant, sim, private_callbacks, settings
):
    settings.PLATFORM = {**settings.PLATFORM, "EVENTS_PROJECT_QUERY_BUDGET": 3}
    sim.configure(events_per_day=0)
    pollers = []
    for name in ("one", "two"):
        instance, _ = make_instance(
            tenant, name=name, configuration=events_config("http://127.0.0.1:9/e")
        )
        pollers += pollers_of(instance).values()
    sim.clear_requests()
    outcomes = [poll_now(p) for p in pollers * 2]
    vendor_calls = [r for r in sim.requests() if not r["path"].startswith("/__sim__")]
    assert len(vendor_calls) == 3
    assert outcomes.count("budget spent") == len(outcomes) - 3
    spent = Poller.objects.filter(last_error__contains="budget").first()
    assert spent.next_run_at > timezone.now() + timedelta(minutes=50)


def test_snapshot_comparison_created_updated_deleted_and_recreated(tenant):
    listed = [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]
    poller = SnapshotPoller(lambda call: list(listed), id_of=lambda r: r["id"])
    first = poller.poll(None, None)
    assert [(c.object_id, c.event_type) for c in first.changes] == [
        ("1", "CREATED"),
        ("2", "CREATED"),
    ]
    listed[:] = [{"id": 1, "name": "a2"}, {"id": 3, "name": "c"}]
    second = poller.poll(None, first.state)
    assert sorted((c.object_id, c.event_type) for c in second.changes) == [
        ("1", "UPDATED"),
        ("2", "DELETED"),
        ("3", "CREATED"),
    ]
    assert poller.poll(None, second.state).changes == []
    listed.append({"id": 2, "name": "b"})  # back, as it was
    third = poller.poll(None, second.state)
    [again] = third.changes
    assert (again.object_id, again.event_type) == ("2", "CREATED")
    assert again.version != first.changes[1].version


# --- notifications and the events API ------------------------------------------------------


def _one_event(tenant, sim, url, **extra):
    instance, _ = make_instance(
        tenant, configuration=events_config(url, **{"event.objects": "users"}, **extra)
    )
    poller = pollers_of(instance)["users"]
    poll_now(poller)
    sim._control("POST", "clock", {"advance": 60})
    sim._control("POST", "profile-changes", {"$distinct_id": "u-1", "$set": {"x": 1}})
    poll_now(poller)
    return instance, Event.objects.get(instance=instance)


def test_a_notification_is_signed_and_retried_until_delivered(
    tenant, sim, private_callbacks, receiver
):
    receiver.statuses = [503, 200]
    instance, event = _one_event(tenant, sim, receiver.url)
    outcome, delay = services.deliver(event.notification_id)
    assert outcome == "retry" and 0 < delay <= 30
    Notification.objects.filter(pk=event.notification_id).update(next_at=timezone.now())
    assert services.deliver(event.notification_id) == ("delivered", None)

    [(headers, body)] = receiver.delivered()
    assert headers["Elements-Webhook-Signature"] == signature_of(body, KEY)
    notification = Notification.objects.get(pk=event.notification_id)
    assert headers["Elements-Webhook-Id"] == str(notification.message_id)
    message = json.loads(body)["message"]
    assert message["eventId"] == str(notification.message_id)
    assert (message["elementKey"], message["instanceId"]) == ("mixpanel", instance.pk)
    [entry] = message["events"]
    assert entry["id"] == str(event.pk)
    assert (entry["eventType"], entry["objectId"], entry["objectType"]) == (
        "CREATED",  # a new profile
        "u-1",
        "users",
    )
    assert message["raw"]["users"][0]["$distinct_id"] == "u-1"

    shown = tenant.client().get(f"{INSTANCES}/events/{event.pk}").json()
    assert shown["status"] == "NOTIFIED"
    assert [(d["attempt"], d["status"], d["responseStatus"]) for d in shown["deliveries"]] == [
        (1, "RETRY", 503),
        (2, "DELIVERED", 200),
    ]


def test_a_failed_notification_is_kept_and_redelivered(
    tenant, sim, private_callbacks, receiver, settings
):
    settings.PLATFORM = {**settings.PLATFORM, "EVENTS_DELIVERY_MAX_ATTEMPTS": 2}
    receiver.statuses = [500, 500, 200]
    _, event = _one_event(tenant, sim, receiver.url)
    services.deliver(event.notification_id)
    Notification.objects.filter(pk=event.notification_id).update(next_at=timezone.now())
    assert services.deliver(event.notification_id) == ("failed", None)
    client = tenant.client()
    assert client.get(f"{INSTANCES}/events/{event.pk}").json()["status"] == "FAILED"

    response = client.put(f"{INSTANCES}/events/{event.pk}/redeliver")
    assert response.status_code == 200, response.content
    assert response.json()["id"] == str(event.pk)
    assert services.deliver(event.notification_id) == ("delivered", None)
    assert client.get(f"{INSTANCES}/events/{event.pk}").json()["status"] == "NOTIFIED"
    assert Delivery.objects.filter(notification_id=event.notification_id).count() == 3


def test_the_events_api_is_scoped_and_paged(tenant, other_tenant, sim, private_callbacks):
    instance, event = _one_event(tenant, sim, "http://127.0.0.1:9/e")
    sim._control("POST", "profile-changes", {"$distinct_id": "u-2", "$set": {"x": 1}})
    poll_now(pollers_of(instance)["users"])
    client = tenant.client()
    everything = client.get(f"{INSTANCES}/events").json()
    assert [e["objectId"] for e in everything] == ["u-1", "u-2"]
    first = client.get(f"{INSTANCES}/{instance.pk}/events?pageSize=1")
    assert [e["objectId"] for e in first.json()] == ["u-1"]
    token = first.headers["Elements-Next-Page-Token"]
    second = client.get(f"{INSTANCES}/{instance.pk}/events?pageSize=1&nextPage={token}")
    assert [e["objectId"] for e in second.json()] == ["u-2"]
    one = client.get(f"{INSTANCES}/{instance.pk}/events/{event.pk}").json()
    assert set(one) >= {"id", "eventDate", "status", "objectType", "eventType", "objectId"}
    assert client.get(f"{INSTANCES}/events?status=NOPE").status_code == 400

    other = other_tenant.client()
    assert other.get(f"{INSTANCES}/events").json() == []
    for path in (
        f"{INSTANCES}/events/{event.pk}",
        f"{INSTANCES}/{instance.pk}/events",
        f"{INSTANCES}/{instance.pk}/events/{event.pk}",
        f"{INSTANCES}/events/not-a-number",
    ):
        assert other.get(path).status_code == 404, path
    assert other.put(f"{INSTANCES}/events/{event.pk}/redeliver").status_code == 404


def test_the_tick_queues_a_due_poll_once_until_it_may_have_been_lost(
    tenant, sim, private_callbacks, monkeypatch, settings
):
    """The broker is the boundary here: what the tick would send is recorded instead."""
    from events import queue

    sent = []
    monkeypatch.setattr(queue, "enqueue_poll", sent.append)
    monkeypatch.setattr(queue, "enqueue_delivery", lambda pk, countdown=None: None)
    instance, _ = make_instance(
        tenant, configuration=events_config("http://127.0.0.1:9/e", **{"event.objects": "users"})
    )
    poller = pollers_of(instance)["users"]
    assert services.tick()["polls"] == 1
    assert services.tick()["polls"] == 0  # its message may still be waiting for a worker
    assert sent == [poller.pk]
    lease = settings.PLATFORM.get("EVENTS_POLL_LEASE_SECONDS", 120.0)
    Poller.objects.filter(pk=poller.pk).update(
        queued_at=timezone.now() - timedelta(seconds=lease + 1)
    )
    assert services.tick()["polls"] == 1  # that message was lost: queued again
    assert services.poll(poller.pk) == "baseline"
    assert services.tick()["polls"] == 0  # polled: not due for another interval


def test_delivered_events_past_retention_are_purged_failed_ones_kept(
    tenant, sim, private_callbacks
):
    instance, delivered = _one_event(tenant, sim, "http://127.0.0.1:9/e")
    sim._control("POST", "profile-changes", {"$distinct_id": "u-2", "$set": {"x": 1}})
    poll_now(pollers_of(instance)["users"])
    failed = Event.objects.get(instance=instance, object_id="u-2")
    Notification.objects.filter(pk=delivered.notification_id).update(status="DELIVERED")
    Notification.objects.filter(pk=failed.notification_id).update(status="FAILED")
    Event.objects.filter(pk=delivered.pk).update(status="NOTIFIED")
    Event.objects.filter(pk=failed.pk).update(status="FAILED")
    assert services.events_purge() == 0  # both are new
    Event.objects.update(created_at=timezone.now() - timedelta(days=31))
    Notification.objects.update(created_at=timezone.now() - timedelta(days=31))
    assert services.events_purge() == 1
    assert list(Event.objects.values_list("pk", flat=True)) == [failed.pk]
    assert list(Notification.objects.values_list("pk", flat=True)) == [failed.notification_id]


def test_at_most_ten_events_per_notification(tenant, sim, private_callbacks):
    instance, _ = make_instance(
        tenant, configuration=events_config("http://127.0.0.1:9/e", **{"event.objects": "users"})
    )
    poller = pollers_of(instance)["users"]
    poll_now(poller)
    sim._control("POST", "clock", {"advance": 60})
    changes = [{"$distinct_id": f"many-{i}", "$set": {"i": i}} for i in range(23)]
    sim._control("POST", "profile-changes", changes)
    assert poll_now(poller) == "23 new events"
    sizes = sorted(n.events.count() for n in Notification.objects.filter(instance=instance))
    assert sizes == [3, 10, 10]


def test_the_events_api_is_in_the_openapi_document(tenant):
    paths = tenant.client().get("/elements/api-v2/openapi.json").json()["paths"]
    for path, method in (
        ("/elements/api-v2/instances/events", "get"),
        ("/elements/api-v2/instances/events/{eventId}", "get"),
        ("/elements/api-v2/instances/events/{eventId}/redeliver", "put"),
        ("/elements/api-v2/instances/{instanceId}/events", "get"),
        ("/elements/api-v2/instances/{instanceId}/events/{eventId}", "get"),
    ):
        assert method in paths[path], path


def test_records_are_encrypted_at_rest_and_follow_a_key_rotation(
    tenant, sim, private_callbacks, receiver, settings
):
    import io

    from cryptography.fernet import Fernet
    from django.core.management import call_command
    from django.db import connection

    _, event = _one_event(tenant, sim, receiver.url)
    with connection.cursor() as cursor:
        cursor.execute("SELECT encrypted_record FROM events_event WHERE id = %s", [event.pk])
        [stored] = cursor.fetchone()
    assert "u-1" not in stored

    old_keys = list(settings.PLATFORM["CREDENTIALS_KEYS"])
    new_key = Fernet.generate_key().decode()
    settings.PLATFORM = {**settings.PLATFORM, "CREDENTIALS_KEYS": [new_key, *old_keys]}
    out = io.StringIO()
    call_command("rotate_credentials_key", stdout=out)
    assert "1 event record(s)" in out.getvalue()
    settings.PLATFORM = {**settings.PLATFORM, "CREDENTIALS_KEYS": [new_key]}
    assert services.deliver(event.notification_id) == ("delivered", None)
    [(_, body)] = receiver.delivered()
    assert json.loads(body)["message"]["raw"]["users"][0]["$distinct_id"] == "u-1"
