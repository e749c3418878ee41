"""Incremental bulk sync (contract §6): every bulk object declares its key and cursor; a job
reports the highest cursor it wrote; the next job, asked for ``where <cursor> >= '<cursor>'``
(or ``from``), returns exactly the records added since plus those sitting at the cursor.
``activities`` holds each ``$insert_id`` once, also across a crash and resume.

Jobs run in the test's thread with the real runner against the simulator over HTTP; new records
go into the simulator through its own Mixpanel APIs (/import, /engage, service accounts)."""

import calendar
import json
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, quote

import pytest
from django.utils import timezone

from bulk import runner
from bulk.models import BulkJob
from conftest import BULK, SIM_ORG_ID, SIM_PROJECT_ID, SIM_PROJECT_TOKEN, Crash, dying_at_part
from conftest import bulk_records as records
from conftest import bulk_status as status
from conftest import bulk_sync as sync
from elements.framework.ceql import parse_where
from elements.framework.incremental import cursor_text, day_windows, instant, split_cursor
from simulators.mixpanel import datagen
from simulators.mixpanel.testing import SimulatorProcess

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("bulk_in_test_thread")]

API = "/elements/api-v2/hubs/general"
DAY = "2024-03-01"
PER_DAY = 20
EXPORT = "/api/2.0/export"


@pytest.fixture
def client(tenant, sa_instance):
    return tenant.element_client(sa_instance["token"])


def epoch(iso: str) -> int:
    return calendar.timegm(datetime.fromisoformat(iso.replace("Z", "+00:00")).utctimetuple())


def import_events(sim, events: list[dict]) -> None:
    code, _, body = sim.request(
        "POST",
        f"/import?strict=1&project_id={SIM_PROJECT_ID}",
        events,
        auth=SimulatorProcess.sa_auth(),
    )
    assert code == 200, body


def new_event(insert_id: str, at: int, **props) -> dict:
    return {
        "event": "Incremental",
        "properties": {"time": at, "distinct_id": "user-new", "$insert_id": insert_id, **props},
    }


def generated_ids(day: str = DAY) -> list[str]:
    return [datagen.event(day, k, PER_DAY)["properties"]["$insert_id"] for k in range(PER_DAY)]


def insert_ids(rows: list[dict]) -> list[str]:
    return [r["properties"]["$insert_id"] for r in rows]


# --- declarations ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, key, cursor",
    [
        ("activities", "properties.$insert_id", "properties.time"),
        ("users", "$distinct_id", "$properties.$last_seen"),
        ("service-accounts", "id", "created"),
    ],
)
def test_each_bulk_object_declares_its_key_and_cursor(client, name, key, cursor):
    body = client.get(f"{API}/objects/{name}/metadata").json()
    assert (body["primaryKey"], body["cursorField"]) == (key, cursor)


def test_the_cursor_condition_is_split_from_the_rest_of_the_where():
    since, rest = split_cursor(
        parse_where("$city = 'Oslo' and time >= '2024-03-01T10:00:00Z' and plan = 'pro'"),
        "properties.time",
        ("time",),
    )
    assert since == datetime(2024, 3, 1, 10, tzinfo=UTC)
    assert rest == parse_where("$city = 'Oslo' and plan = 'pro'")
    assert split_cursor(parse_where("time >= '2024-03-01'"), "properties.time", ("time",)) == (
        datetime(2024, 3, 1, tzinfo=UTC),
        None,
    )


def test_vendor_time_formats_become_one_cursor_format():
    assert cursor_text(instant(1709287200)) == "2024-03-01T10:00:00Z"  # epoch seconds
    assert cursor_text(instant(1709287200123)) == "2024-03-01T10:00:00Z"  # milliseconds
    assert cursor_text(instant("2024-03-01T10:00:00")) == "2024-03-01T10:00:00Z"  # no zone
    assert cursor_text(instant("2024-03-01T11:00:00+01:00")) == "2024-03-01T10:00:00Z"
    assert cursor_text(instant("2024-03-01T10:00:00Z"), day=True) == "2024-03-01"
    assert day_windows(datetime(2024, 3, 1).date(), datetime(2024, 3, 5).date(), 2) == [
        (datetime(2024, 3, 1).date(), datetime(2024, 3, 2).date()),
        (datetime(2024, 3, 3).date(), datetime(2024, 3, 4).date()),
        (datetime(2024, 3, 5).date(), datetime(2024, 3, 5).date()),
    ]
    last = datetime.max.date()  # no day after it is made
    assert day_windows(last - timedelta(days=2), last, 2) == [
        (last - timedelta(days=2), last - timedelta(days=1)),
        (last, last),
    ]


@pytest.mark.parametrize(
    "q, words",
    [
        ("select * from activities where time > '2024-03-01'", "takes only '>='"),
        ("select * from activities where time >= 'yesterday'", "ISO-8601"),
        ("select * from activities where time >= 1709287200", "ISO-8601"),
        ("select * from activities where time >= '0001-01-01T00:00:00+05:00'", "0001-01-01"),
        ("select * from users where $last_seen >= '2024-03-01T00:00:00+23:00'", "UTC offset"),
        ("select * from activities where $city = 'X' or time >= '2024-03-01'", "AND"),
        ("select * from users where not $last_seen >= '2024-03-01'", "AND"),
        ("select * from service-accounts where username = 'x'", "cannot be filtered"),
    ],
)
def test_a_cursor_condition_that_cannot_run_is_a_400(client, q, words):
    response = client.post(f"{BULK}/query?q={quote(q)}")
    assert response.status_code == 400, response.content
    assert words in response.json()["message"]
    assert not BulkJob.objects.exists()


# --- activities --------------------------------------------------------------------------------


def test_activities_incremental_sync(client, sim):
    sim.configure(events_per_day=PER_DAY)
    first, done = sync(client, "select * from activities", "activities", **{"from": DAY, "to": DAY})
    assert insert_ids(first) == generated_ids()
    last = max(r["properties"]["time"] for r in first)
    assert done["cursor"] == cursor_text(instant(last)) == "2024-03-01T22:48:00Z"

    # New events: one exactly at the cursor, two after it; one before it (a late arrival the
    # cursor does not cover).
    at = epoch(done["cursor"])
    import_events(
        sim,
        [
            new_event("new-at-cursor", at),
            new_event("new-later-1", at + 60, **{"$city": "Testville"}),
            new_event("new-later-2", at + 600),
            new_event("new-before", at - 3600),
        ],
    )
    sim.clear_requests()
    second, again = sync(
        client,
        f"select * from activities where time >= '{done['cursor']}'",
        "activities",
        to=DAY,
    )
    # The generated event at the cursor comes back, with the new ones at or after it.
    assert sorted(insert_ids(second)) == sorted(
        [generated_ids()[-1], "new-at-cursor", "new-later-1", "new-later-2"]
    )
    assert again["cursor"] == "2024-03-01T22:58:00Z"
    # The export was asked for the days from the cursor's on (here up to `to`), one a request.
    asked = [parse_qs(r["query_string"]) for r in sim.requests() if r["path"] == EXPORT]
    assert [(q["from_date"], q["to_date"]) for q in asked] == [([DAY], [DAY])]

    # ANDed with other conditions, and `from` as a date-time, ask for the same.
    anded, _ = sync(
        client,
        "select * from activities where $city = 'Testville' and properties.time >= "
        f"'{done['cursor']}'",
        "activities",
        to=DAY,
    )
    assert insert_ids(anded) == ["new-later-1"]
    since_from, _ = sync(
        client, "select * from activities", "activities", **{"from": done["cursor"], "to": DAY}
    )
    assert sorted(insert_ids(since_from)) == sorted(insert_ids(second))


def test_a_repeated_insert_id_is_written_once(client, sim):
    sim.configure(events_per_day=PER_DAY)
    repeated = datagen.event(DAY, 5, PER_DAY)
    # Mixpanel's export can repeat an event: the simulator exports an imported copy again.
    import_events(
        sim, [repeated, new_event("twice", epoch(DAY) + 100), new_event("twice", epoch(DAY) + 100)]
    )
    rows, done = sync(client, "select * from activities", "activities", **{"from": DAY, "to": DAY})
    ids = insert_ids(rows)
    assert sorted(ids) == sorted([*generated_ids(), "twice"])
    assert len(ids) == len(set(ids)) and done["recordsCount"] == PER_DAY + 1


def test_a_crash_mid_day_resumes_with_each_insert_id_once_and_the_cursor_right(
    client, sim, settings
):
    settings.PLATFORM = {**settings.PLATFORM, "BULK_EXPORT_PAGE_RECORDS": 4}
    sim.configure(events_per_day=PER_DAY)
    # Repeats of events that end up in the pages committed before the crash, streamed after it.
    import_events(sim, [datagen.event(DAY, 1, PER_DAY), datagen.event(DAY, 6, PER_DAY)])
    response = client.post(
        f"{BULK}/query?q={quote('select * from activities')}&from={DAY}&to={DAY}"
    )
    job_id = response.json()["id"]

    with dying_at_part(3), pytest.raises(Crash):
        runner.run_job(job_id, heartbeat=False, pipelined=False)
    killed = BulkJob.objects.get(pk=job_id)
    assert killed.status == "RUNNING" and killed.records_count == 8
    eighth = datagen.event(DAY, 7, PER_DAY)["properties"]["time"]
    assert status(client, job_id)["cursor"] == cursor_text(instant(eighth))

    BulkJob.objects.filter(pk=job_id).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    assert runner.run_job(job_id, heartbeat=False, pipelined=False) == "COMPLETED"
    done = status(client, job_id)
    ids = insert_ids(records(client, job_id, "activities"))
    assert ids == generated_ids() and done["recordsCount"] == PER_DAY
    assert done["cursor"] == "2024-03-01T22:48:00Z"


# --- users -------------------------------------------------------------------------------------


def engage_set(sim, distinct_id: str, **props) -> None:
    body = {"$token": SIM_PROJECT_TOKEN, "$distinct_id": distinct_id, "$set": props}
    code, _, answer = sim.request("POST", "/engage?verbose=1", [body])
    assert code == 200 and json.loads(answer)["status"] == 1, answer


def test_users_incremental_sync(client, sim):
    count = 30
    sim.configure(profiles={"count": count})
    first, done = sync(client, "select * from users", "users")
    assert len(first) == count
    last_seen = max(datagen.profile_properties(i)["$last_seen"] for i in range(count))
    assert done["cursor"] == cursor_text(instant(last_seen))
    at_cursor = {
        datagen.profile_distinct_id(i)
        for i in range(count)
        if datagen.profile_properties(i)["$last_seen"] == last_seen
    }

    # Mixpanel's form: no zone.
    cursor = instant(done["cursor"])
    naive = lambda dt: dt.strftime("%Y-%m-%dT%H:%M:%S")  # noqa: E731
    engage_set(sim, "new-at-cursor", **{"$last_seen": naive(cursor)})
    engage_set(
        sim, "new-later", **{"$last_seen": naive(cursor + timedelta(days=1)), "$city": "Testville"}
    )
    engage_set(sim, "user-0", **{"$last_seen": naive(cursor + timedelta(days=2))})  # seen again
    engage_set(sim, "new-before", **{"$last_seen": naive(cursor - timedelta(days=1))})

    sim.clear_requests()
    second, again = sync(
        client, f"select * from users where $last_seen >= '{done['cursor']}'", "users"
    )
    assert {r["$distinct_id"] for r in second} == at_cursor | {
        "new-at-cursor",
        "new-later",
        "user-0",
    }
    assert again["cursor"] == cursor_text(cursor + timedelta(days=2))
    # The vendor was asked for the newer profiles only.
    engage = [r for r in sim.requests() if r["path"] == "/api/query/engage"]
    selector = (engage[0]["body"] or {}).get("where") or parse_qs(engage[0]["query_string"])[
        "where"
    ][0]
    assert "datetime(" in selector and "$last_seen" in selector

    anded, _ = sync(
        client,
        f"select * from users where $properties.$last_seen >= '{done['cursor']}' "
        "and $city = 'Testville'",
        "users",
    )
    assert [r["$distinct_id"] for r in anded] == ["new-later"]


# --- service accounts --------------------------------------------------------------------------


def test_service_accounts_incremental_sync(client, sim):
    first, done = sync(client, "select * from service-accounts", "service-accounts")
    assert done["cursor"] == max(cursor_text(instant(a["created"])) for a in first)
    created = client.post(
        f"{API}/service-accounts?organization_id={SIM_ORG_ID}",
        {"username": "later", "role": "consumer"},
        format="json",
    )
    assert created.status_code == 200, created.content

    second, again = sync(
        client,
        f"select * from service-accounts where created >= '{done['cursor']}'",
        "service-accounts",
    )
    at_cursor = [a["id"] for a in first if cursor_text(instant(a["created"])) == done["cursor"]]
    assert sorted(a["id"] for a in second) == sorted([*at_cursor, created.json()["id"]])
    assert again["cursor"] >= done["cursor"]
    assert again["cursor"] == max(cursor_text(instant(a["created"])) for a in second)


# --- the runner's side -------------------------------------------------------------------------


def test_a_limited_job_reports_the_cursor_of_what_it_wrote(client, sim):
    sim.configure(events_per_day=PER_DAY)
    rows, done = sync(
        client, "select * from activities limit 3", "activities", **{"from": DAY, "to": DAY}
    )
    assert insert_ids(rows) == generated_ids()[:3]
    third = datagen.event(DAY, 2, PER_DAY)["properties"]["time"]
    assert done["cursor"] == cursor_text(instant(third))


class MixedCursors:
    """A source whose records carry cursor values of different kinds, as a malformed vendor
    record would (a time as text beside epoch seconds)."""

    def pages(self, call, query, checkpoint):
        from elements.framework.bulk import Page

        rows = [{"n": 1}, {"n": 2}, {"n": 3}]
        yield Page(
            records=rows,
            raw=[json.dumps(r).encode() for r in rows],
            checkpoint={"done": True},
            done=True,
            cursors=[1709287200, "2024-03-01T11:00:00", None],
        )


def test_cursor_values_of_different_kinds_are_compared_as_instants(client):
    job_id = client.post(f"{BULK}/query?q={quote('select * from activities')}").json()["id"]
    assert runner.run_job(job_id, source=MixedCursors(), heartbeat=False, pipelined=False) == (
        "COMPLETED"
    )
    assert status(client, job_id)["cursor"] == "2024-03-01T11:00:00Z"


# --- the shapes the next objects build on (elements/framework/bulk_sources.py) -----------------


def export_window(call, first, last, query) -> list[dict]:
    """A date-range vendor call, as funnels or revenue make: here the export of the window."""
    from elements.mixpanel.vendor import project_query

    params = {"from_date": first.isoformat(), "to_date": last.isoformat()}
    with call.vendor.stream_lines(
        "GET", "data", EXPORT, query={**params, **project_query(call.configuration)}, gzip=False
    ) as lines:
        return [json.loads(line) for line in lines if line.strip()]


def test_a_day_window_source_asks_from_the_cursors_day_in_windows_and_filters_exactly(client, sim):
    from elements.framework.bulk_sources import DayWindowSource

    per_day = 4
    sim.configure(events_per_day=per_day)
    source = DayWindowSource(
        export_window, lambda r: r["properties"]["time"], window_days=2, day=False
    )
    since = "2024-03-02T12:00:00Z"
    q = f"select * from activities where time >= '{since}'"
    job_id = client.post(f"{BULK}/query?q={quote(q)}&to=2024-03-05").json()["id"]
    sim.clear_requests()
    assert runner.run_job(job_id, source=source, heartbeat=False, pipelined=False) == "COMPLETED"

    asked = [parse_qs(r["query_string"]) for r in sim.requests() if r["path"] == EXPORT]
    assert [(q["from_date"][0], q["to_date"][0]) for q in asked] == [
        ("2024-03-02", "2024-03-03"),
        ("2024-03-04", "2024-03-05"),
    ]
    expected = [
        datagen.event(day, k, per_day)
        for day in ("2024-03-02", "2024-03-03", "2024-03-04", "2024-03-05")
        for k in range(per_day)
    ]
    expected = [e for e in expected if e["properties"]["time"] >= epoch(since)]
    assert records(client, job_id, "activities") == expected
    done = status(client, job_id)
    assert done["cursor"] == cursor_text(instant(expected[-1]["properties"]["time"]))
    assert BulkJob.objects.get(pk=job_id).checkpoint == {"next": "2024-03-06"}


def test_a_cursor_past_to_completes_with_nothing_and_no_cursor(client, sim):
    sim.configure(events_per_day=PER_DAY)
    sim.clear_requests()
    rows, done = sync(
        client, "select * from activities where time >= '2024-03-05'", "activities", to=DAY
    )
    assert rows == [] and done["recordsCount"] == 0 and done["cursor"] is None
    assert not [r for r in sim.requests() if r["path"] == EXPORT]  # nothing to ask for
