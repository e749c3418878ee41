"""The bulk API of contract §6, in-process: input checks, status, list, errors, cancel, download
formats, and tenant isolation. Jobs are run in the test's own thread by the real runner against
the simulator (the live tests run them in a Celery worker)."""

import csv
import io
import json
from datetime import timedelta
from urllib.parse import quote

import pytest

from bulk import runner, services
from bulk.models import BulkJob, BulkJobError
from conftest import add_user, api_instance
from simulators.mixpanel import datagen

pytestmark = pytest.mark.django_db

BULK = "/elements/api-v2/bulk"
DAYS = ("2024-03-01", "2024-03-02")


@pytest.fixture(autouse=True)
def queued(bulk_in_test_thread, monkeypatch):
    """The jobs that would have been sent to the broker."""
    sent = []
    monkeypatch.setattr(services, "enqueue_job", sent.append)
    return sent


@pytest.fixture
def client(tenant, sa_instance):
    return tenant.element_client(sa_instance["token"])


def submit(client, q, *, path=BULK, **params):
    query = "&".join([f"q={quote(q)}"] + [f"{k}={quote(v)}" for k, v in params.items()])
    return client.post(f"{path}/query?{query}")


def run_to_end(job_id: int) -> BulkJob:
    assert runner.run_job(job_id, heartbeat=False, pipelined=False) in ("COMPLETED", "ERROR")
    return BulkJob.objects.get(pk=job_id)


def error_fields(response) -> list[str]:
    return [e["field"] for e in response.json().get("errors", [])]


# --- submit --------------------------------------------------------------------------------


def test_submit_returns_the_id_and_queues_the_job(
    client, queued, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = submit(client, "select * from activities", **{"from": DAYS[0], "to": DAYS[1]})
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"id", "status"} and body["status"] == "CREATED"
    assert queued == [body["id"]]
    job = BulkJob.objects.get(pk=body["id"])
    assert job.object_name == "activities" and job.date_from.isoformat().startswith(DAYS[0])


def test_submit_under_hubs_and_with_a_json_body(client):
    response = client.post(
        f"/elements/api-v2/hubs/general/bulk/query?q={quote('select * from users')}"
    )
    assert response.status_code == 200, response.content
    response = client.post(f"{BULK}/query", {"q": "select * from service-accounts"}, format="json")
    assert response.status_code == 200, response.content


@pytest.mark.parametrize(
    "q, params, field, words",
    [
        (None, {}, "q", "required"),
        ("", {}, "q", "required"),
        ("select * form activities", {}, "q", "position"),
        ("select * from activities where", {}, "q", "position"),
        ("select * from invoices", {}, "q", "Unknown object"),
        ("select * from service-accounts where id = 1", {}, "q", "cannot be filtered"),
        ("select * from activities", {"from": "yesterday"}, "from", "ISO-8601"),
        ("select * from activities", {"to": "2024-13-45"}, "to", "ISO-8601"),
        ("select * from activities", {"from": "2024-03-05", "to": "2024-03-01"}, "from", "later"),
        ("select * from activities", {"from": "2999-01-01"}, "from", "later"),
        # Dates outside years 1 to 9999 once in UTC, or with an offset no zone has.
        ("select * from activities", {"from": "0001-01-01T00:00:00+00:01"}, "from", "0001-01"),
        ("select * from activities", {"to": "9999-12-31T23:59:59-23:59"}, "to", "UTC offset"),
        ("select * from activities", {"to": "0001-01-01"}, "to", "start before 0001-01-01"),
        ("select * from funnels", {"to": "0001-01-05"}, "to", "start before 0001-01-01"),
        ("select * from activities", {"to": "9999-12-31"}, "to", "before 9999-12-31"),
        # Longer than BULK_MAX_DAYS, by `from` or by the cursor condition.
        ("select * from activities", {"from": "0001-01-01"}, "from", "BULK_MAX_DAYS"),
        ("select * from revenue", {"from": "1990-01-01"}, "from", "BULK_MAX_DAYS"),
        ("select * from activities where time >= '1990-01-01'", {}, "q", "BULK_MAX_DAYS"),
        ("select * from funnels where date >= '1990-01-01'", {}, "q", "BULK_MAX_DAYS"),
    ],
)
def test_bad_input_is_a_400_in_the_error_shape(client, q, params, field, words):
    query = [f"q={quote(q)}"] if q is not None else []
    query += [f"{k}={quote(v)}" for k, v in params.items()]
    response = client.post(f"{BULK}/query?{'&'.join(query)}")
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["requestId"] == response["Elements-Request-Id"]
    assert words in body["message"] and field in error_fields(response)
    assert not BulkJob.objects.exists()


def test_a_range_longer_than_bulk_max_days_is_refused_without_listing_its_days(
    client, settings, monkeypatch
):
    """The limit is checked in constant time (a range of 740,000 days used to take seconds of
    the web process's CPU to list); the message gives the days asked and the limit."""

    def listing(*args):
        raise AssertionError("no list of days is built to check a range")

    monkeypatch.setattr("elements.framework.bulk_sources.day_windows", listing)
    monkeypatch.setattr("elements.mixpanel.bulk.day_windows", listing)
    settings.PLATFORM = {**settings.PLATFORM, "BULK_MAX_DAYS": 10}
    for q in ("select * from activities", "select * from funnels", "select * from revenue"):
        assert submit(client, q, **{"from": "2024-03-01", "to": "2024-03-10"}).status_code == 200
        response = submit(client, q, **{"from": "2024-03-01", "to": "2024-03-11"})
        assert response.status_code == 400, response.content
        message = response.json()["message"]
        assert "2024-03-01 to 2024-03-11 is 11 days" in message and "at most 10" in message
    response = submit(client, "select * from activities", **{"from": "0001-01-01"})
    assert "is 739," in response.json()["message"]


def test_the_limit_counts_the_days_read_from_the_cursor_not_from(client, settings):
    """An incremental sync reads from the later of `from` and the cursor: an old `from` with a
    recent cursor is a short job. The same range is read when the job runs or resumes."""
    settings.PLATFORM = {**settings.PLATFORM, "BULK_MAX_DAYS": 10}
    q = "select * from activities where time >= '2024-03-05T10:00:00Z'"
    response = submit(client, q, **{"from": "2000-01-01", "to": "2024-03-10"})
    assert response.status_code == 200, response.content
    response = submit(client, q, **{"from": "2000-01-01", "to": "2024-03-20"})
    assert response.status_code == 400 and "is 16 days" in response.json()["message"]
    # A cursor past `to` reads nothing: not refused.
    assert submit(client, q, to="2024-03-01").status_code == 200


def test_a_job_runs_to_its_end_when_the_limit_was_lowered_after_it_was_submitted(
    client, sim, settings
):
    sim.configure(events_per_day=5)
    job_id = submit(client, "select * from activities", **{"from": DAYS[0], "to": DAYS[1]})
    settings.PLATFORM = {**settings.PLATFORM, "BULK_MAX_DAYS": 1}
    job = run_to_end(job_id.json()["id"])
    assert job.status == "COMPLETED" and job.records_count == 10, job.status_message


def test_an_unparseable_query_names_the_position(client):
    response = submit(client, "select * from activities where $city = ")
    assert response.status_code == 400
    assert "at position 39" in response.json()["message"]


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:9/hook", "http://10.0.0.8/hook", "ftp://example.com/", "not a url"],
)
def test_callback_urls_to_private_networks_are_refused(client, url, settings):
    settings.PLATFORM = {**settings.PLATFORM, "CALLBACK_ALLOW_PRIVATE_NETWORKS": False}
    response = client.post(
        f"{BULK}/query?q={quote('select * from users')}",
        HTTP_ELEMENTS_ASYNC_CALLBACK_URL=url,
    )
    assert response.status_code == 400, response.content
    assert error_fields(response) == ["Elements-Async-Callback-Url"]


def test_a_private_callback_url_is_accepted_when_allowed(client, settings):
    settings.PLATFORM = {**settings.PLATFORM, "CALLBACK_ALLOW_PRIVATE_NETWORKS": True}
    response = client.post(
        f"{BULK}/query?q={quote('select * from users')}",
        HTTP_ELEMENTS_ASYNC_CALLBACK_URL="http://127.0.0.1:9/hook",
    )
    assert response.status_code == 200
    assert BulkJob.objects.get().callback_url == "http://127.0.0.1:9/hook"


def test_bulk_needs_user_and_element(tenant, sa_instance):
    assert tenant.client().post(f"{BULK}/query?q=x").status_code == 401  # User + Organization
    from rest_framework.test import APIClient

    assert APIClient().get(f"{BULK}/jobs").status_code == 401


def test_a_disabled_instance_is_403(tenant, sa_instance, client):
    tenant.client().delete(f"/elements/api-v2/instances/{sa_instance['id']}/enabled")
    assert submit(client, "select * from users").status_code == 403


# --- status, list, errors, cancel ----------------------------------------------------------


def test_status_list_and_cancel(client):
    ids = [submit(client, "select * from users").json()["id"] for _ in range(3)]
    status = client.get(f"{BULK}/{ids[0]}/status").json()
    assert set(status) == {
        "id",
        "status",
        "objectName",
        "recordsCount",
        "recordsFailedCount",
        "createdDate",
        "startedDate",
        "completedDate",
        "statusMessage",
        "cursor",
    }
    assert status["status"] == "CREATED" and status["recordsCount"] == 0
    assert status["createdDate"].endswith("Z") and status["startedDate"] is None

    page = client.get(f"{BULK}/jobs?pageSize=2")
    assert [j["id"] for j in page.json()] == ids[::-1][:2]
    rest = client.get(f"{BULK}/jobs?pageSize=2&nextPage={page['Elements-Next-Page-Token']}")
    assert [j["id"] for j in rest.json()] == ids[:1]
    assert client.get(f"{BULK}/jobs?status=BOGUS").status_code == 400

    cancelled = client.put(f"{BULK}/{ids[1]}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "CANCELLED"
    assert cancelled.json()["completedDate"]
    assert client.put(f"{BULK}/{ids[1]}/cancel").status_code == 200  # already cancelled
    assert [j["id"] for j in client.get(f"{BULK}/jobs?status=CANCELLED").json()] == [ids[1]]
    refused = client.get(f"{BULK}/{ids[1]}/users")
    assert refused.status_code == 409
    assert "will never be downloadable" in refused.json()["message"]
    assert "Submit a new job" in refused.json()["message"]


def test_a_completed_job_cannot_be_cancelled(client, sim):
    sim.configure(profiles={"count": 10})
    job_id = submit(client, "select * from users").json()["id"]
    run_to_end(job_id)
    response = client.put(f"{BULK}/{job_id}/cancel")
    assert response.status_code == 409 and "COMPLETED" in response.json()["message"]


def test_errors_are_paged(client):
    job_id = submit(client, "select * from activities").json()["id"]
    BulkJobError.objects.bulk_create(
        BulkJobError(job_id=job_id, position=f"2024-03-01#{i}", message="unreadable", raw="{x")
        for i in range(5)
    )
    first = client.get(f"{BULK}/{job_id}/errors?pageSize=3")
    assert [e["position"] for e in first.json()] == [f"2024-03-01#{i}" for i in range(3)]
    assert first.json()[0] == {"position": "2024-03-01#0", "message": "unreadable", "record": "{x"}
    token = first["Elements-Next-Page-Token"]
    assert len(client.get(f"{BULK}/{job_id}/errors?pageSize=3&nextPage={token}").json()) == 2


# --- download ------------------------------------------------------------------------------


@pytest.fixture
def activities_job(client, sim):
    sim.configure(events_per_day=700)
    job_id = submit(client, "select * from activities", **{"from": DAYS[0], "to": DAYS[1]}).json()[
        "id"
    ]
    job = run_to_end(job_id)
    assert job.status == "COMPLETED", job.status_message
    return job


def with_event_id(line: bytes) -> bytes:
    """An export line as the platform writes it: a top-level ``id`` (the $insert_id) first."""
    insert_id = json.loads(line)["properties"]["$insert_id"]
    return b'{"id":' + json.dumps(insert_id).encode() + b"," + line[1:]


def expected_lines() -> list[bytes]:
    return [
        with_event_id(line.rstrip(b"\n")) for line in datagen.export_lines(DAYS[0], DAYS[1], 700)
    ]


def test_download_formats(client, activities_job):
    url = f"{BULK}/{activities_job.pk}/activities"
    lines = expected_lines()
    records = [json.loads(line) for line in lines]
    assert activities_job.records_count == len(lines) == 1400

    for accept in ("application/x-ndjson", "application/jsonl"):
        response = client.get(url, HTTP_ACCEPT=accept)
        assert response.status_code == 200 and response["Content-Type"] == accept
        assert b"".join(response.streaming_content).splitlines() == lines

    for accept in (None, "*/*", "application/json", "application/json, text/csv;q=0.9"):
        extra = {"HTTP_ACCEPT": accept} if accept else {}
        response = client.get(url, **extra)
        assert response.status_code == 200 and response["Content-Type"] == "application/json"
        assert json.loads(b"".join(response.streaming_content)) == records

    response = client.get(url, HTTP_ACCEPT="text/csv")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert len(rows) == 1400
    assert [
        {"id": r["id"], "event": r["event"], "properties": json.loads(r["properties"])}
        for r in rows
    ] == records

    hub = client.get(f"/elements/api-v2/hubs/general/bulk/{activities_job.pk}/activities")
    assert hub.status_code == 200


def test_results_past_the_retention_period_are_404_with_the_reason(client, activities_job):
    assert services.purge_results(now=activities_job.completed_at + timedelta(days=4)) == 1
    response = client.get(f"{BULK}/{activities_job.pk}/activities")
    assert response.status_code == 404
    assert "retention period" in response.json()["message"] and response.json()["requestId"]
    status = client.get(f"{BULK}/{activities_job.pk}/status")
    assert status.status_code == 200 and status.json()["status"] == "COMPLETED"


def test_download_errors(client, activities_job, sim):
    url = f"{BULK}/{activities_job.pk}/activities"
    response = client.get(url, HTTP_ACCEPT="application/xml")
    assert response.status_code == 406
    assert response.json()["requestId"] and "application/xml" in response.json()["message"]
    assert client.get(f"{BULK}/{activities_job.pk}/users").status_code == 404
    assert client.get(f"{BULK}/999999/activities").status_code == 404
    assert client.get(f"{BULK}/abc/status").status_code == 404
    running = submit(client, "select * from activities").json()["id"]
    response = client.get(f"{BULK}/{running}/activities")
    assert response.status_code == 409 and "CREATED" in response.json()["message"]


def test_a_csv_header_is_the_union_of_top_level_keys(client, sim):
    sim.configure(profiles={"count": 300})
    job = run_to_end(submit(client, "select * from users").json()["id"])
    response = client.get(f"{BULK}/{job.pk}/users", HTTP_ACCEPT="text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == ["id", "$distinct_id", "$properties"]
    ndjson = client.get(f"{BULK}/{job.pk}/users", HTTP_ACCEPT="application/x-ndjson")
    records = [json.loads(x) for x in b"".join(ndjson.streaming_content).splitlines()]
    assert [
        {"id": r[0], "$distinct_id": r[1], "$properties": json.loads(r[2])} for r in rows[1:]
    ] == records
    assert sorted(r["$distinct_id"] for r in records) == sorted(
        datagen.profile(i)["$distinct_id"] for i in range(300)
    )


def test_where_filters_the_export(client, sim):
    sim.configure(events_per_day=500)
    q = "select * from activities where $city = 'London'"
    job = run_to_end(submit(client, q, **{"from": DAYS[0], "to": DAYS[0]}).json()["id"])
    expected = list(
        datagen.export_lines(DAYS[0], DAYS[0], 500, where='properties["$city"] == "London"')
    )
    assert 0 < job.records_count == len(expected) < 500


def test_a_vendor_refusal_ends_in_error(client, sim):
    sim.faults(status={"status": 403, "body": {"error": "project access revoked"}})
    job = run_to_end(submit(client, "select * from activities").json()["id"])
    status = client.get(f"{BULK}/{job.pk}/status").json()
    assert status["status"] == "ERROR" and "project access revoked" in status["statusMessage"]
    refused = client.get(f"{BULK}/{job.pk}/activities")
    assert refused.status_code == 409 and "ended in ERROR" in refused.json()["message"]
    assert "will never be downloadable" in refused.json()["message"]


# --- tenants -------------------------------------------------------------------------------


def test_another_tenants_job_is_404(client, other_tenant, sim, activities_job):
    theirs = other_tenant.element_client(api_instance(other_tenant, name="theirs")["token"])
    for method, path in [
        ("get", f"{BULK}/{activities_job.pk}/status"),
        ("get", f"{BULK}/{activities_job.pk}/activities"),
        ("get", f"{BULK}/{activities_job.pk}/errors"),
        ("put", f"{BULK}/{activities_job.pk}/cancel"),
    ]:
        response = getattr(theirs, method)(path)
        assert response.status_code == 404, (path, response.content)
        assert response.json()["message"].startswith("No bulk job")
    assert theirs.get(f"{BULK}/jobs").json() == []
    assert client.get(f"{BULK}/jobs").json()[0]["id"] == activities_job.pk


def test_another_user_of_the_same_organization_sees_nothing(tenant, client, activities_job):
    colleague = add_user(tenant)
    mine = colleague.element_client(api_instance(colleague, name="mine")["token"])
    assert mine.get(f"{BULK}/{activities_job.pk}/status").status_code == 404


def test_bulk_calls_are_in_the_usage_log(client, tenant):
    submitted = submit(client, "select * from activities", **{"from": DAYS[0], "to": DAYS[1]})
    job_id = submitted.json()["id"]
    status = client.get(f"{BULK}/{job_id}/status")
    logged = {r["requestId"]: r for r in tenant.client().get("/elements/api-v2/usage").json()}
    query = logged[submitted["Elements-Request-Id"]]
    assert query["operation"] == "bulk.query" and query["status"] == 200
    assert logged[status["Elements-Request-Id"]]["operation"] == "bulk.status"
