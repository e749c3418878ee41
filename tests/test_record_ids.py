"""Every record of every Mixpanel object carries a top-level ``id``, its primary key (contract
§9), in element calls and in bulk results, against the simulator over HTTP. A composite key is
its parts joined with ':' (elements/framework/record_ids.py)."""

import json
from urllib.parse import quote

import pytest

from bulk import services
from conftest import SA_CONFIGURATION, SIM_PROJECT_TOKEN, completed_bulk_job
from elements.framework.record_ids import primary_key_id
from elements.mixpanel import ELEMENT
from simulators.mixpanel.state import DEFAULT_GDPR_TOKEN

pytestmark = [pytest.mark.django_db, pytest.mark.integration]

BULK = "/elements/api-v2/bulk"
HUB = "/elements/api-v2/hubs/general"
COMPANY = -1405123841946871899
DAYS = {"from": "2024-03-01", "to": "2024-03-02"}
OBJECTS = {o.name: o for o in ELEMENT.bulk_objects}


@pytest.fixture(autouse=True)
def queued(monkeypatch, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    monkeypatch.setattr(services, "enqueue_job", lambda job_id: None)
    monkeypatch.setattr(services, "enqueue_callback", lambda job_id, countdown=None: None)


@pytest.fixture
def client(tenant, sim):
    sim.configure(group_keys={"company_id": COMPANY}, profiles={"count": 20}, events_per_day=50)
    response = tenant.client().post(
        "/elements/api-v2/instances",
        {
            "element": {"key": "mixpanel"},
            "name": "Ids",
            "configuration": {
                **SA_CONFIGURATION,
                "gdpr_token": DEFAULT_GDPR_TOKEN,
                "data_groups": {"company_id": COMPANY},
            },
        },
        format="json",
    )
    assert response.status_code == 200, response.content
    return tenant.element_client(response.json()["token"])


def sim_post(sim, path: str, body) -> None:
    code, _, answer = sim.request("POST", f"{path}?verbose=1", body)
    assert code == 200 and json.loads(answer)["status"] == 1, answer


def seed(sim) -> None:
    """A group profile and a revenue transaction in the test's days."""
    group = {"$group_key": "company_id", "$group_id": "Acme", "$set": {"name": "Acme"}}
    sim_post(sim, "/groups", [{"$token": SIM_PROJECT_TOKEN, **group}])
    transaction = {"$amount": 10, "$time": "2024-03-01T09:00:00"}
    update = {"$distinct_id": "user-0", "$append": {"$transactions": transaction}}
    sim_post(sim, "/engage", [{"$token": SIM_PROJECT_TOKEN, **update}])


@pytest.mark.parametrize("name", sorted(OBJECTS))
def test_every_bulk_record_carries_its_primary_key_as_id(client, sim, name):
    seed(sim)
    params = DAYS if name in ("activities", "funnels", "revenue") else {}
    job_id = completed_bulk_job(client, f"select * from {name}", **params)
    response = client.get(f"{BULK}/{job_id}/{quote(name)}", HTTP_ACCEPT="application/x-ndjson")
    assert response.status_code == 200
    rows = [json.loads(line) for line in b"".join(response.streaming_content).splitlines()]
    assert rows, name
    key = OBJECTS[name].primary_key
    for row in rows:
        assert row["id"] == primary_key_id(row, key), (name, key, row)
    joined = {
        "groups": lambda r: f"{r['$group_key']}:{r['$group_id']}",
        "cohort-members": lambda r: f"{r['cohort_id']}:{r['$distinct_id']}",
        "funnels": lambda r: f"{r['funnel_id']}:{r['date']}",
    }
    if name in joined:
        assert all(row["id"] == joined[name](row) for row in rows)
    if name == "groups":
        assert [row["id"] for row in rows] == ["company_id:Acme"]


def test_element_calls_carry_ids(client, sim):
    seed(sim)
    groups = client.get(f"{HUB}/groups/company_id")
    assert groups.status_code == 200, groups.content
    assert [g["id"] for g in groups.json()] == ["company_id:Acme"]
    one = client.get(f"{HUB}/groups/company_id/Acme").json()
    assert one["id"] == "company_id:Acme"
    updated = client.patch(
        f"{HUB}/groups/company_id/Acme", {"$set": {"plan": "Pro"}}, format="json"
    ).json()
    assert updated["id"] == "company_id:Acme"

    cohort = next(c for c in sim.cohorts() if c["members"])
    members = client.get(f"{HUB}/cohorts/{cohort['id']}/users").json()
    assert members and all(m["id"] == m["$distinct_id"] for m in members)
    assert {m["id"] for m in members} <= set(cohort["members"])

    funnels = client.get(f"{HUB}/funnels").json()
    assert funnels and all(f["id"] == f["funnel_id"] for f in funnels)

    event = {"event": "Signed up", "properties": {"distinct_id": "user-0"}}
    tracked = client.post(f"{HUB}/activities", event, format="json").json()
    assert tracked["id"] == tracked["properties"]["$insert_id"]

    created = client.post(
        f"{HUB}/privacy/deletions", {"distinct_ids": ["user-0"]}, format="json"
    ).json()
    assert created["id"] == created["task_id"]
    status = client.get(f"{HUB}/privacy/deletions/{created['task_id']}").json()
    assert status["id"] == created["task_id"]

    for path in ("/cohorts", "/annotations", "/service-accounts"):
        listed = client.get(f"{HUB}{path}").json()
        assert listed and all(r["id"] is not None for r in listed), path
