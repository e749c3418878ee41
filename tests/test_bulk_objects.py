"""The bulk objects past the seeds (contract §6): cohorts, cohort-members, annotations, funnels,
revenue and groups, each synced incrementally. For each: a first run, new records added in the
simulator (through its own Mixpanel APIs or its control API), a second run with the reported
cursor, which returns exactly the new records plus those sitting at the cursor.

Jobs run in the test's thread with the real runner against the simulator over HTTP."""

import json
from datetime import timedelta
from urllib.parse import parse_qs, quote

import pytest
from django.utils import timezone

from bulk import services
from bulk.models import BulkJob
from conftest import SA_CONFIGURATION, SIM_API_SECRET, SIM_PROJECT_TOKEN, completed_bulk_job
from elements.framework.incremental import cursor_text, instant
from simulators.mixpanel import datagen

pytestmark = pytest.mark.django_db

BULK = "/elements/api-v2/bulk"
API = "/elements/api-v2/hubs/general"
FUNNEL_IDS = sorted(f["funnel_id"] for f in datagen.SAVED_FUNNELS)
COMPANY = -1405123841946871899
TEAM = 4242


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


@pytest.fixture(autouse=True)
def queued(monkeypatch):
    monkeypatch.setattr(services, "enqueue_job", lambda job_id: None)
    monkeypatch.setattr(services, "enqueue_callback", lambda job_id, countdown=None: None)


@pytest.fixture
def client(tenant, sa_instance):
    return tenant.element_client(sa_instance["token"])


def status(client, job_id) -> dict:
    return client.get(f"{BULK}/{job_id}/status").json()


def records(client, job_id, name) -> list[dict]:
    response = client.get(f"{BULK}/{job_id}/{name}", HTTP_ACCEPT="application/x-ndjson")
    assert response.status_code == 200
    body = b"".join(response.streaming_content).decode()
    return [json.loads(line) for line in body.splitlines() if line]


def sync(client, q, name, **params) -> tuple[list[dict], dict]:
    job_id = completed_bulk_job(client, q, **params)
    return records(client, job_id, name), status(client, job_id)


def engage_update(sim, distinct_id: str, **operation) -> None:
    body = {"$token": SIM_PROJECT_TOKEN, "$distinct_id": distinct_id, **operation}
    code, _, answer = sim.request("POST", "/engage?verbose=1", [body])
    assert code == 200 and json.loads(answer)["status"] == 1, answer


def naive(moment) -> str:
    """A time as Mixpanel keeps $last_seen: no zone (UTC)."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S")


def asked(sim, path: str) -> list[dict]:
    return [parse_qs(r["query_string"]) for r in sim.requests() if r["path"] == path]


# --- declarations ------------------------------------------------------------------------------

DECLARED = [
    ("cohorts", "id", "created"),
    ("cohort-members", "cohort_id,$distinct_id", "$properties.$last_seen"),
    ("annotations", "id", "date"),
    ("funnels", "funnel_id,date", "date"),
    ("revenue", "date", "date"),
    ("groups", "$group_key,$group_id", "$properties.$last_seen"),
]


@pytest.mark.parametrize("name, key, cursor", DECLARED)
def test_each_new_object_declares_its_key_and_cursor(client, name, key, cursor):
    body = client.get(f"{API}/objects/{name}/metadata").json()
    assert (body["primaryKey"], body["cursorField"]) == (key, cursor)


def test_the_element_metadata_shows_every_bulk_objects_key_and_cursor(tenant):
    body = tenant.client().get("/elements/api-v2/elements/mixpanel/metadata").json()
    for name, key, cursor in DECLARED:
        entry = body["objects"][name]
        assert entry["bulk"]["download"] is True
        assert (entry["primaryKey"], entry["cursorField"]) == (key, cursor)
    assert body["objects"]["activities"]["primaryKey"] == "properties.$insert_id"
    assert "primaryKey" not in body["objects"]["privacy-requests"]  # not bulk-downloadable


@pytest.mark.parametrize(
    "q, words",
    [
        ("select * from cohorts where created >= 'soon'", "ISO-8601"),
        ("select * from cohorts where created > '2024-03-01'", "takes only '>='"),
        ("select * from cohorts where name = 'x'", "cannot be filtered"),
        ("select * from annotations where date >= 20240301", "ISO-8601"),
        ("select * from funnels where date <= '2024-03-01'", "takes only '>='"),
        ("select * from funnels where funnel_id = 7509", "cannot be filtered"),
        ("select * from revenue where date >= '2024-02-30'", "ISO-8601"),
        ("select * from revenue where amount > 3", "cannot be filtered"),
        ("select * from cohort-members where $last_seen >= 'x'", "ISO-8601"),
        ("select * from groups where not $last_seen >= '2024-03-01'", "AND"),
    ],
)
def test_a_bad_cursor_or_filter_is_a_400(client, q, words):
    response = client.post(f"{BULK}/query?q={quote(q)}")
    assert response.status_code == 400, response.content
    assert words in response.json()["message"]
    assert not BulkJob.objects.exists()


# --- cohorts -----------------------------------------------------------------------------------


def test_cohorts_incremental_sync(client, sim):
    first, done = sync(client, "select * from cohorts", "cohorts")
    assert sorted(c["id"] for c in first) == [1001, 1002, 1003]
    assert done["cursor"] == "2024-04-20T18:45:10Z"  # the latest created, as ISO-8601 UTC

    at_cursor = sim.add_cohort(name="Same second", created="2024-04-20 18:45:10")
    later = sim.add_cohort(name="Later", created="2024-05-02 08:00:00")
    sim.add_cohort(name="Back-dated", created="2024-01-01 00:00:00")  # before the cursor
    second, again = sync(
        client, f"select * from cohorts where created >= '{done['cursor']}'", "cohorts"
    )
    assert sorted(c["id"] for c in second) == sorted([1003, at_cursor["id"], later["id"]])
    assert again["cursor"] == "2024-05-02T08:00:00Z"


# --- cohort members ----------------------------------------------------------------------------


def member_keys(rows: list[dict]) -> set[tuple[int, str]]:
    return {(r["cohort_id"], r["$distinct_id"]) for r in rows}


def test_cohort_members_incremental_sync(client, sim):
    count = 40
    sim.configure(profiles={"count": count})
    first, done = sync(client, "select * from cohort-members", "cohort-members")
    expected = {
        (c["id"], did) for c in sim.cohorts() for did in c["members"]
    }  # as the simulator computes them
    assert member_keys(first) == expected and len(first) == len(expected)
    assert {1001, 1003} <= {r["cohort_id"] for r in first}
    seen = [instant(r["$properties"]["$last_seen"]) for r in first]
    assert done["cursor"] == cursor_text(max(seen))
    cursor = instant(done["cursor"])
    at_cursor = {
        (r["cohort_id"], r["$distinct_id"])
        for r in first
        if instant(r["$properties"]["$last_seen"]) >= cursor
    }

    # New members of "Dallas users": one at the cursor, one after it, one before it; and user-1
    # (hand-picked) seen again.
    engage_update(
        sim, "new-at-cursor", **{"$set": {"$city": "Dallas", "$last_seen": naive(cursor)}}
    )
    later = naive(cursor + timedelta(days=1))
    engage_update(sim, "new-later", **{"$set": {"$city": "Dallas", "$last_seen": later}})
    engage_update(
        sim,
        "new-before",
        **{"$set": {"$city": "Dallas", "$last_seen": naive(cursor - timedelta(days=1))}},
    )
    engage_update(sim, "user-1", **{"$set": {"$last_seen": naive(cursor + timedelta(days=2))}})
    sim.clear_requests()
    second, again = sync(
        client,
        f"select * from cohort-members where $last_seen >= '{done['cursor']}'",
        "cohort-members",
    )
    user_1 = {(c["id"], "user-1") for c in sim.cohorts() if "user-1" in c["members"]}
    assert member_keys(second) == at_cursor | user_1 | {
        (1001, "new-at-cursor"),
        (1001, "new-later"),
    }
    assert again["cursor"] == cursor_text(cursor + timedelta(days=2))
    # Engage was asked for each cohort with the cursor as a selector.
    engage = [r for r in sim.requests() if r["path"] == "/api/query/engage"]
    assert len(engage) == len(sim.cohorts())
    for request in engage:
        form = request["body"] or parse_qs(request["query_string"])
        assert "datetime(" in str(form) and "filter_by_cohort" in str(form)


class Crash(BaseException):
    """Stands for SIGKILL: nothing in the runner catches it."""


def test_cohort_members_resume_after_a_crash_with_every_member_once(client, sim, monkeypatch):
    from bulk import runner
    from bulk.models import BulkPart
    from elements.mixpanel import bulk_objects

    sim.configure(profiles={"count": 60})
    monkeypatch.setattr(bulk_objects, "ENGAGE_PAGE_SIZE", 4)  # several pages per cohort
    job_id = client.post(f"{BULK}/query?q={quote('select * from cohort-members')}").json()["id"]
    real_create = BulkPart.objects.create
    calls = {"n": 0}

    def create(**kwargs):  # the worker dies as it commits its fourth page
        calls["n"] += 1
        if calls["n"] == 4:
            raise Crash()
        return real_create(**kwargs)

    monkeypatch.setattr(BulkPart.objects, "create", create)
    with pytest.raises(Crash):
        runner.run_job(job_id, heartbeat=False, pipelined=False)
    assert BulkJob.objects.get(pk=job_id).checkpoint["todo"]  # cohorts left to read

    monkeypatch.setattr(BulkPart.objects, "create", real_create)
    BulkJob.objects.filter(pk=job_id).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    assert runner.run_job(job_id, heartbeat=False, pipelined=False) == "COMPLETED"
    rows = records(client, job_id, "cohort-members")
    expected = {(c["id"], did) for c in sim.cohorts() for did in c["members"]}
    assert member_keys(rows) == expected and len(rows) == len(expected)
    assert status(client, job_id)["recordsCount"] == len(expected)


def test_cohort_members_take_a_where_like_users(client, sim):
    sim.configure(profiles={"count": 40})
    rows, _ = sync(client, "select * from cohort-members where $city = 'Dallas'", "cohort-members")
    assert rows and all(r["$properties"]["$city"] == "Dallas" for r in rows)
    dallas = {(1001, did) for c in sim.cohorts() if c["id"] == 1001 for did in c["members"]}
    assert dallas <= member_keys(rows)


# --- annotations -------------------------------------------------------------------------------


def test_annotations_incremental_sync(client, sim):
    first, done = sync(client, "select * from annotations", "annotations")
    assert sorted(a["id"] for a in first) == [101, 102, 103]
    assert done["cursor"] == "2024-06-01T08:30:00Z"

    created = client.post(
        f"{API}/annotations",
        {"date": "2024-06-03 10:00:00", "description": "Launch"},
        format="json",
    )
    assert created.status_code == 200, created.content
    at_cursor = sim.add_annotation(date="2024-06-01 08:30:00", description="Same time")
    sim.add_annotation(date="2024-05-31 23:59:59", description="Before the cursor")
    sim.clear_requests()
    second, again = sync(
        client, f"select * from annotations where date >= '{done['cursor']}'", "annotations"
    )
    assert sorted(a["id"] for a in second) == sorted([103, at_cursor["id"], created.json()["id"]])
    assert again["cursor"] == "2024-06-03T10:00:00Z"
    # Mixpanel was asked from the cursor's day on.
    lists = [r for r in sim.requests() if r["path"].endswith("/annotations")]
    assert [parse_qs(r["query_string"]).get("fromDate") for r in lists] == [["2024-06-01"]]


def test_a_secret_only_instance_syncs_annotations_through_the_older_list(tenant, sim):
    response = tenant.client().post(
        "/elements/api-v2/instances",
        {
            "element": {"key": "mixpanel"},
            "name": "Secret",
            "configuration": {"username": SIM_API_SECRET},
        },
        format="json",
    )
    assert response.status_code == 200, response.content
    client = tenant.element_client(response.json()["token"])
    sim.clear_requests()
    rows, done = sync(client, "select * from annotations where date >= '2024-05-10'", "annotations")
    assert sorted(a["id"] for a in rows) == [102, 103] and done["cursor"] == "2024-06-01T08:30:00Z"
    lists = [r for r in sim.requests() if r["path"] == "/api/2.0/annotations"]
    assert [parse_qs(r["query_string"]).get("from_date") for r in lists] == [["2024-05-10"]]
    cohorts, _ = sync(client, "select * from cohorts", "cohorts")
    assert sorted(c["id"] for c in cohorts) == [1001, 1002, 1003]


# --- funnels -----------------------------------------------------------------------------------


def funnel_keys(rows: list[dict]) -> list[tuple[int, str]]:
    return sorted((r["funnel_id"], r["date"]) for r in rows)


def test_funnels_incremental_sync(client, sim):
    sim.configure(events_per_day=300)
    first, done = sync(
        client, "select * from funnels", "funnels", **{"from": "2024-03-01", "to": "2024-03-02"}
    )
    assert funnel_keys(first) == [(f, d) for f in FUNNEL_IDS for d in ("2024-03-01", "2024-03-02")]
    assert done["cursor"] == "2024-03-02"  # day-granular
    row = first[0]
    assert row["name"] and row["steps"][0]["count"] > 0 and "completion" in row["analysis"]

    # New days of entry: the next run, from the cursor, reads the cursor's day again.
    sim.clear_requests()
    second, again = sync(
        client, "select * from funnels where date >= '2024-03-02'", "funnels", to="2024-03-04"
    )
    assert funnel_keys(second) == [
        (f, d) for f in FUNNEL_IDS for d in ("2024-03-02", "2024-03-03", "2024-03-04")
    ]
    assert again["cursor"] == "2024-03-04"
    windows = [
        (q["funnel_id"][0], q["from_date"][0], q["to_date"][0])
        for q in asked(sim, "/api/query/funnels")
    ]
    assert windows == [(str(f), "2024-03-02", "2024-03-04") for f in FUNNEL_IDS]


def test_a_funnel_cursor_past_to_asks_mixpanel_nothing(client, sim):
    sim.clear_requests()
    rows, done = sync(
        client, "select * from funnels where date >= '2024-03-05'", "funnels", to="2024-03-04"
    )
    assert rows == [] and done["cursor"] is None
    assert not [r for r in sim.requests() if r["path"].startswith("/api/query/funnels")]


def test_a_long_funnel_range_is_asked_in_windows(client, sim):
    sim.configure(events_per_day=20)
    sim.clear_requests()
    rows, done = sync(
        client, "select * from funnels", "funnels", **{"from": "2024-01-01", "to": "2024-03-04"}
    )
    assert len(rows) == len(FUNNEL_IDS) * 64 and done["cursor"] == "2024-03-04"
    windows = sorted(
        {(q["from_date"][0], q["to_date"][0]) for q in asked(sim, "/api/query/funnels")}
    )
    assert windows == [
        ("2024-01-01", "2024-01-30"),
        ("2024-01-31", "2024-02-29"),
        ("2024-03-01", "2024-03-04"),
    ]
    assert len(asked(sim, "/api/query/funnels/list")) == 1


# --- revenue -----------------------------------------------------------------------------------


def charge(sim, distinct_id: str, amount: float, day: str) -> None:
    engage_update(
        sim,
        distinct_id,
        **{"$append": {"$transactions": {"$amount": amount, "$time": f"{day}T09:00:00"}}},
    )


def by_day(rows: list[dict]) -> dict[str, float]:
    return {r["date"]: r["amount"] for r in rows}


def test_revenue_incremental_sync(client, sim):
    sim.configure(profiles={"count": 5})
    charge(sim, "user-0", 10, "2024-03-01")
    charge(sim, "user-1", 5.5, "2024-03-02")
    first, done = sync(
        client, "select * from revenue", "revenue", **{"from": "2024-03-01", "to": "2024-03-02"}
    )
    assert by_day(first) == {"2024-03-01": 10, "2024-03-02": 5.5}  # no $overall
    assert first[0]["paid_count"] == 1 and first[0]["count"] == 5
    assert done["cursor"] == "2024-03-02"

    charge(sim, "user-2", 4, "2024-03-02")  # on the cursor's day
    charge(sim, "user-3", 7, "2024-03-03")
    sim.clear_requests()
    second, again = sync(
        client,
        f"select * from revenue where date >= '{done['cursor']}'",
        "revenue",
        to="2024-03-03",
    )
    assert by_day(second) == {"2024-03-02": 9.5, "2024-03-03": 7}
    assert again["cursor"] == "2024-03-03"
    calls = asked(sim, "/api/2.0/engage/revenue")
    assert [(q["from_date"][0], q["to_date"][0], q["unit"][0]) for q in calls] == [
        ("2024-03-02", "2024-03-03", "day")
    ]


# --- groups ------------------------------------------------------------------------------------


@pytest.fixture
def groups_client(tenant, sim):
    sim.configure(group_keys={"company_id": COMPANY, "team_id": TEAM})
    response = tenant.client().post(
        "/elements/api-v2/instances",
        {
            "element": {"key": "mixpanel"},
            "name": "Groups",
            "configuration": {
                **SA_CONFIGURATION,
                "data_groups": {"company_id": COMPANY, "team_id": TEAM},
            },
        },
        format="json",
    )
    assert response.status_code == 200, response.content
    return tenant.element_client(response.json()["token"])


def group_set(sim, key: str, group_id: str, **props) -> None:
    update = {"$token": SIM_PROJECT_TOKEN, "$group_key": key, "$group_id": group_id, "$set": props}
    code, _, answer = sim.request("POST", "/groups?verbose=1", [update])
    assert code == 200 and json.loads(answer)["status"] == 1, answer


def group_keys(rows: list[dict]) -> set[tuple[str, str]]:
    return {(r["$group_key"], r["$group_id"]) for r in rows}


def test_groups_across_two_group_keys_incremental_sync(groups_client, sim):
    group_set(sim, "company_id", "Acme", name="Acme", **{"$last_seen": "2024-03-01T10:00:00"})
    group_set(sim, "company_id", "Globex", **{"$last_seen": "2024-03-02T10:00:00"})
    group_set(sim, "team_id", "red", **{"$last_seen": "2024-03-03T10:00:00"})
    group_set(sim, "team_id", "blue", **{"$last_seen": "2024-03-01T08:00:00"})
    first, done = sync(groups_client, "select * from groups", "groups")
    assert group_keys(first) == {
        ("company_id", "Acme"),
        ("company_id", "Globex"),
        ("team_id", "red"),
        ("team_id", "blue"),
    }
    acme = next(r for r in first if r["$group_id"] == "Acme")
    assert acme["$properties"]["name"] == "Acme"
    assert done["cursor"] == "2024-03-03T10:00:00Z"

    group_set(sim, "company_id", "Initech", **{"$last_seen": "2024-03-04T00:00:00"})
    group_set(sim, "team_id", "green", **{"$last_seen": "2024-03-03T10:00:00"})  # at the cursor
    group_set(sim, "company_id", "Acme", **{"$last_seen": "2024-03-05T00:00:00"})  # seen again
    group_set(sim, "team_id", "grey", **{"$last_seen": "2024-02-01T00:00:00"})  # before
    second, again = sync(
        groups_client, f"select * from groups where $last_seen >= '{done['cursor']}'", "groups"
    )
    assert group_keys(second) == {
        ("team_id", "red"),
        ("team_id", "green"),
        ("company_id", "Initech"),
        ("company_id", "Acme"),
    }
    assert again["cursor"] == "2024-03-05T00:00:00Z"

    # A where like users', on the group profiles' properties, in every group key.
    named, _ = sync(groups_client, "select * from groups where name = 'Acme'", "groups")
    assert group_keys(named) == {("company_id", "Acme")}


def test_groups_without_data_groups_is_refused_at_submission(client, sim):
    sim.clear_requests()
    response = client.post(f"{BULK}/query?q={quote('select * from groups')}")
    assert response.status_code == 400, response.content
    body = response.json()
    assert [e["field"] for e in body["errors"]] == ["configuration.data_groups"]
    assert "PATCH /elements/api-v2/instances/" in body["message"]
    assert not BulkJob.objects.exists() and not sim.requests()


def test_data_groups_removed_after_submission_ends_the_job_in_error_naming_it(
    groups_client, tenant, sim
):
    job_id = groups_client.post(f"{BULK}/query?q={quote('select * from groups')}").json()["id"]
    instance = BulkJob.objects.get(pk=job_id).instance
    patched = tenant.client().patch(
        f"/elements/api-v2/instances/{instance.pk}",
        {"configuration": {"data_groups": {}}},
        format="json",
    )
    assert patched.status_code == 200, patched.content
    from bulk import runner

    sim.clear_requests()
    assert runner.run_job(job_id, heartbeat=False, pipelined=False) == "ERROR"
    message = status(groups_client, job_id)["statusMessage"]
    assert "needs configuration" in message and "data_groups" in message
    assert f"PATCH /elements/api-v2/instances/{instance.pk} " in message
    assert not sim.requests()
