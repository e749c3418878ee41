"""Bulk queries over transformed objects (contract §9): ``select * from customer`` reads the
mapped Mixpanel object, rewrites the ``where`` to vendor names and writes mapped records; every
bulk record carries a top-level ``id``."""

import json
from urllib.parse import quote

import pytest

from bulk import runner, services
from bulk.models import BulkJob
from simulators.mixpanel import datagen

pytestmark = [pytest.mark.django_db, pytest.mark.integration]

API = "/elements/api-v2"
BULK = f"{API}/bulk"
DAY = "2024-03-01"


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


@pytest.fixture(autouse=True)
def queued(monkeypatch):
    monkeypatch.setattr(services, "enqueue_job", lambda job_id: None)
    monkeypatch.setattr(services, "enqueue_callback", lambda job_id, countdown=None: None)


@pytest.fixture
def platform(tenant):
    client = tenant.client()
    client.default_format = "json"
    return client


@pytest.fixture
def element(tenant, sa_instance):
    return tenant.element_client(sa_instance["token"])


def _define(platform, name, fields, mapping):
    definition = platform.post(
        f"{API}/organizations/objects/{name}/definitions",
        {"fields": [{"path": f, "type": "string"} for f in fields]},
    )
    assert definition.status_code == 200, definition.content
    created = platform.post(
        f"{API}/organizations/elements/mixpanel/transformations/{name}", mapping
    )
    assert created.status_code == 200, created.content


def _run(element, q, **params) -> tuple[BulkJob, list[dict]]:
    query = "&".join([f"q={quote(q)}"] + [f"{k}={quote(v)}" for k, v in params.items()])
    submitted = element.post(f"{BULK}/query?{query}")
    assert submitted.status_code == 200, submitted.content
    job_id = submitted.json()["id"]
    assert runner.run_job(job_id, heartbeat=False, pipelined=False) == "COMPLETED"
    job = BulkJob.objects.get(pk=job_id)
    response = element.get(f"{BULK}/{job_id}/{job.object_name}", HTTP_ACCEPT="application/x-ndjson")
    assert response.status_code == 200
    lines = b"".join(response.streaming_content).splitlines()
    return job, [json.loads(line) for line in lines]


def test_a_bulk_job_over_a_transformed_object_with_a_where(platform, element, sim):
    sim.configure(profiles={"count": 120})
    _define(
        platform,
        "customer",
        ["id", "email", "town"],
        {
            "vendorName": "users",
            "fields": [
                {"path": "id", "vendorPath": "id"},
                {"path": "email", "vendorPath": "$properties.$email"},
                {"path": "town", "vendorPath": "$properties.$city"},
            ],
            "configuration": [{"type": "passThrough", "properties": {"fromVendor": False}}],
        },
    )
    job, records = _run(element, "select * from customer where town = 'Dallas'")
    assert job.object_name == "customer"
    engage = [r for r in sim.requests() if r["path"] == "/api/query/engage"][-1]
    assert engage["body"]["where"] == 'properties["$city"] == "Dallas"'
    expected = [
        p
        for p in (datagen.profile(i) for i in range(120))
        if p["$properties"].get("$city") == "Dallas"
    ]
    assert 0 < len(records) == len(expected) == job.records_count
    assert {r["id"] for r in records} == {p["$distinct_id"] for p in expected}
    for record in records:
        assert record["town"] == "Dallas" and set(record) <= {"id", "email", "town"}
    assert job.fields[0] == "id" and set(job.fields) <= {"id", "email", "town"}

    # A projection selects from the mapped record.
    _, projected = _run(element, "select id, email from customer where town = 'Dallas'")
    assert all(set(r) <= {"id", "email"} for r in projected) and len(projected) == len(expected)


def test_a_transformed_activities_export_maps_each_event(platform, element, sim):
    sim.configure(events_per_day=60)
    _define(
        platform,
        "visit",
        ["id", "what", "who"],
        {
            "vendorName": "activities",
            "fields": [
                {"path": "id", "vendorPath": "id"},
                {"path": "what", "vendorPath": "event"},
                {"path": "who", "vendorPath": "properties.distinct_id"},
            ],
            "configuration": [{"type": "passThrough", "properties": {"fromVendor": False}}],
        },
    )
    _, records = _run(element, "select * from visit", **{"from": DAY, "to": DAY})
    events = [json.loads(line) for line in datagen.export_lines(DAY, DAY, 60)]
    assert records == [
        {
            "id": e["properties"]["$insert_id"],
            "what": e["event"],
            "who": e["properties"]["distinct_id"],
        }
        for e in events
    ]


def test_every_bulk_record_has_a_top_level_id(element, sim):
    sim.configure(events_per_day=30, profiles={"count": 20})
    _, users = _run(element, "select * from users")
    assert users and all(u["id"] == u["$distinct_id"] for u in users)
    _, events = _run(element, "select * from activities", **{"from": DAY, "to": DAY})
    assert events and all(e["id"] == e["properties"]["$insert_id"] for e in events)


def test_an_unknown_object_lists_the_transformed_ones(platform, element, sim):
    _define(
        platform,
        "customer",
        ["id"],
        {"vendorName": "users", "fields": [{"path": "id", "vendorPath": "id"}]},
    )
    response = element.post(f"{BULK}/query?q={quote('select * from nothing')}")
    assert response.status_code == 400
    assert "customer" in response.json()["message"]
    bad_where = element.post(f"{BULK}/query?q={quote('select * from customer where id like %x')}")
    assert bad_where.status_code == 400
