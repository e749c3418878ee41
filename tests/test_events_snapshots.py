"""Events by polling for Mixpanel's cohorts and annotations (contract §10: snapshot comparison),
in process against the simulator over HTTP: a baseline, then CREATED, UPDATED and DELETED by
``id``, each once, one vendor query per poll, a poll that died before its commit made again
without a duplicate, and a signed notification the events API shows delivered. Workers killed
mid-poll: tests/test_events_snapshots_live.py."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from conftest import make_instance
from elements.framework.dispatch import make_call, vendor_client
from elements.framework.registry import element_by_key
from events import services
from events.models import Event, Poller
from instances.services import configuration_of
from tests.test_bulk_live import signature_of
from tests.test_events import (
    INSTANCES,
    KEY,
    events_config,
    poll_now,
    pollers_of,
    private_callbacks,  # noqa: F401 - a fixture
    receiver,  # noqa: F401 - a fixture
)

pytestmark = pytest.mark.django_db(transaction=False)

COHORTS_PATH = "/api/query/cohorts/list"


def annotations_path(sim) -> str:
    return f"/api/app/projects/{sim.project_id}/annotations"


def polled(tenant, url, object_name):
    instance, _ = make_instance(
        tenant, configuration=events_config(url, **{"event.objects": object_name})
    )
    return instance, pollers_of(instance)[object_name]


def found(instance, object_name) -> list[tuple[str, str]]:
    events = Event.objects.filter(instance=instance, object_type=object_name).order_by("pk")
    return [(e.event_type, e.object_id) for e in events]


def vendor_calls(sim) -> list[str]:
    return [r["path"] for r in sim.requests() if not r["path"].startswith("/__sim__")]


def test_every_pollable_object_is_polled_by_default(tenant, sim, private_callbacks):  # noqa: F811
    instance, _ = make_instance(tenant, configuration=events_config("http://127.0.0.1:9/e"))
    assert sorted(pollers_of(instance)) == ["activities", "annotations", "cohorts", "users"]


def test_the_metadata_names_the_pollable_objects(tenant):
    body = tenant.client().get("/elements/api-v2/elements/mixpanel/metadata").json()
    pollable = sorted(name for name, obj in body["objects"].items() if obj["events"]["polling"])
    assert pollable == ["activities", "annotations", "cohorts", "users"]
    assert body["events"] == {"supported": True, "methods": ["polling"]}


def test_cohorts_created_updated_deleted_once_each(tenant, sim, private_callbacks):  # noqa: F811
    instance, poller = polled(tenant, "http://127.0.0.1:9/e", "cohorts")
    before = sim.add_cohort(name="Before")
    sim.clear_requests()
    assert poll_now(poller) == "baseline"
    assert vendor_calls(sim) == [COHORTS_PATH]  # one query per poll

    added = sim.add_cohort(name="Newcomers", distinct_ids=[])
    sim.change_cohort(before["id"], description="renamed on purpose")
    assert poll_now(poller) == "2 new events"
    assert sorted(found(instance, "cohorts")) == [
        ("CREATED", str(added["id"])),
        ("UPDATED", str(before["id"])),
    ]
    assert poll_now(poller) == "0 new events"

    # A member count that moves is no change of the cohort (users events say it).
    sim._control("POST", "profile-changes", [{"$distinct_id": "member-1", "$set": {"a": 1}}])
    sim.change_cohort(added["id"], distinct_ids=["member-1"])
    assert [c["count"] for c in sim.cohorts() if c["id"] == added["id"]] == [1]
    sim.delete_cohort(before["id"])
    sim.clear_requests()
    assert poll_now(poller) == "1 new events"
    assert vendor_calls(sim) == [COHORTS_PATH]
    assert found(instance, "cohorts")[-1] == ("DELETED", str(before["id"]))
    assert poll_now(poller) == "0 new events"
    assert len(found(instance, "cohorts")) == 3


def test_annotations_created_updated_deleted_once_each(
    tenant,
    sim,
    private_callbacks,  # noqa: F811
):
    instance, poller = polled(tenant, "http://127.0.0.1:9/e", "annotations")
    kept = sim.add_annotation(date="2026-01-05 10:00:00", description="launch")
    sim.clear_requests()
    assert poll_now(poller) == "baseline"
    assert vendor_calls(sim) == [annotations_path(sim)]

    added = sim.add_annotation(date="2031-02-01 00:00:00", description="planned, years ahead")
    old = sim.add_annotation(date="2009-06-01 00:00:00", description="long ago")
    sim.change_annotation(kept["id"], description="launch (moved)", date="2026-01-06 10:00:00")
    assert poll_now(poller) == "3 new events"
    assert sorted(found(instance, "annotations")) == sorted(
        [
            ("CREATED", str(added["id"])),
            ("CREATED", str(old["id"])),
            ("UPDATED", str(kept["id"])),
        ]
    )
    sim.delete_annotation(kept["id"])
    sim.clear_requests()
    assert poll_now(poller) == "1 new events"
    assert vendor_calls(sim) == [annotations_path(sim)]
    assert found(instance, "annotations")[-1] == ("DELETED", str(kept["id"]))
    assert poll_now(poller) == "0 new events"


def test_a_poll_that_died_before_its_commit_is_made_again_without_a_duplicate(
    tenant,
    sim,
    private_callbacks,  # noqa: F811
):
    """A worker claims the poll, reads the vendor and dies before its commit; once its lease
    has run out another worker polls from the same state: the change is one event."""
    instance, poller = polled(tenant, "http://127.0.0.1:9/e", "cohorts")
    poll_now(poller)
    added = sim.add_cohort(name="Once")
    Poller.objects.filter(pk=poller.pk).update(next_run_at=timezone.now())
    owner = services.poller_claim(poller_id=poller.pk)
    configuration = configuration_of(instance)
    element = element_by_key("mixpanel")
    vendor = services.PollVendor(
        vendor_client(element, configuration, idempotent=True),
        poller_id=poller.pk,
        owner=owner,
        budget_key=element.polling.budget_key(configuration),
    )
    call = make_call(element, instance_id=instance.pk, configuration=configuration, vendor=vendor)
    state = Poller.objects.get(pk=poller.pk).state
    lost = element.polling.pollers["cohorts"].poll(call, state)  # ...and the worker dies here
    Poller.objects.filter(pk=poller.pk).update(lease_until=timezone.now() - timedelta(seconds=1))

    assert poll_now(poller) == "1 new events"
    [event] = Event.objects.filter(instance=instance)
    assert (event.event_type, event.object_id) == ("CREATED", str(added["id"]))
    assert [(c.object_id, c.version) for c in lost.changes] == [(event.object_id, event.version)]
    assert poll_now(poller) == "0 new events"
    assert Event.objects.filter(instance=instance).count() == 1


@pytest.mark.parametrize("object_name", ["cohorts", "annotations"])
def test_a_signed_notification_and_the_events_api_show_it_delivered(
    tenant,
    sim,
    private_callbacks,  # noqa: F811
    receiver,  # noqa: F811
    object_name,
):
    instance, poller = polled(tenant, receiver.url, object_name)
    poll_now(poller)
    if object_name == "cohorts":
        record = sim.add_cohort(name="Paying")
    else:
        record = sim.add_annotation(date="2026-03-01 00:00:00", description="price change")
    assert poll_now(poller) == "1 new events"
    event = Event.objects.get(instance=instance)
    assert services.deliver(event.notification_id) == ("delivered", None)

    [(headers, body)] = receiver.delivered()
    assert headers["Elements-Webhook-Signature"] == signature_of(body, KEY)
    message = json.loads(body)["message"]
    [entry] = message["events"]
    assert (entry["eventType"], entry["objectId"], entry["objectType"]) == (
        "CREATED",
        str(record["id"]),
        object_name,
    )
    assert entry["id"] == str(event.pk)
    assert message["raw"][object_name][0]["id"] == record["id"]
    shown = tenant.client().get(f"{INSTANCES}/{instance.pk}/events/{event.pk}").json()
    assert (shown["status"], shown["objectType"]) == ("NOTIFIED", object_name)
    assert [d["status"] for d in shown["deliveries"]] == ["DELIVERED"]


def test_an_import_of_old_events_is_an_activities_event(tenant, sim, private_callbacks):  # noqa: F811
    """Mixpanel stamps what /import accepts with its processing time, whatever the events'
    ``time``: an import of events hours old (before the poll's window) is a change."""
    instance, token = make_instance(
        tenant,
        configuration=events_config("http://127.0.0.1:9/e", **{"event.objects": "activities"}),
    )
    sim.configure(events_per_day=0)
    poller = pollers_of(instance)["activities"]
    sim._control("POST", "clock", {"advance": 3600})
    sim._control("POST", "events", {"events": [{"event": "now", "properties": {}}]})
    assert poll_now(poller) == "baseline"

    midnight = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    old = {
        "event": "Backfilled",
        "properties": {
            "time": int(midnight.timestamp()) + 1,  # an hour and more before the cursor
            "distinct_id": "d-1",
            "$insert_id": "backfill-1",
        },
    }
    sim._control("POST", "clock", {"advance": 60})
    response = tenant.element_client(token).post(
        "/elements/api-v2/hubs/general/activities/import", [old], format="json"
    )
    assert response.status_code == 200, response.content
    assert poll_now(poller) == "1 new events"
    [event] = Event.objects.filter(instance=instance)
    assert (event.event_type, event.object_id) == ("CREATED", "backfill-1")
    assert poll_now(poller) == "0 new events"
