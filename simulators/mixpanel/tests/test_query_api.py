"""The simulator's Query API past engage and top events (query_api.py): shapes as the reference
documents them, numbers computed from the generated events, Mixpanel's date checks and error
envelope, and the Query API's rate limits (hourly and concurrent) with Mixpanel's 429 body.

Runs the real simulator as a subprocess and talks plain HTTP to it; no Django.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from urllib.parse import urlencode

import pytest

from simulators.mixpanel import datagen
from simulators.mixpanel.testing import basic_auth

SA = basic_auth("sim-admin.a1b2c3.mp-service-account", "sim-sa-secret")
SECRET = basic_auth("sim-api-secret", "")
FROM, TO = "2025-03-03", "2025-03-09"
DATES = {"from_date": FROM, "to_date": TO}
PER_DAY = 1500


@pytest.fixture(autouse=True)
def generated_events(fresh, sim):
    sim.configure(events_per_day=PER_DAY)


def get(sim, path, params=None, *, auth=SA, prefix="/api/query", project=True):
    query = {**(params or {}), **({"project_id": 2002} if project else {})}
    status, headers, raw = sim.request("GET", f"{prefix}{path}?{urlencode(query)}", auth=auth)
    return status, headers, json.loads(raw)


def generated(from_date=FROM, to_date=TO):
    return list(datagen.iter_events(from_date, to_date, PER_DAY))


@pytest.mark.parametrize("prefix", ["/api/query", "/api/2.0"])
@pytest.mark.parametrize(
    "path,params,keys",
    [
        ("/segmentation", {"event": "Login", **DATES}, {"data", "legend_size"}),
        (
            "/segmentation/numeric",
            {"event": "Login", **DATES, "on": 'properties["mp_processing_time_ms"]'},
            {"data", "legend_size"},
        ),
        (
            "/segmentation/sum",
            {"event": "Login", **DATES, "on": 'properties["time"]'},
            {"status", "computed_at", "results"},
        ),
        (
            "/segmentation/average",
            {"event": "Login", **DATES, "on": 'properties["time"]'},
            {"status", "results"},
        ),
        (
            "/events",
            {"event": '["Login"]', "type": "general", "unit": "day", **DATES},
            {"data", "legend_size"},
        ),
        ("/events/properties/top", {"event": "Login"}, None),
        ("/funnels", {"funnel_id": 7509, **DATES}, {"meta", "data"}),
        ("/retention", {"born_event": "Login", **DATES}, None),
        (
            "/retention/addiction",
            {"unit": "week", "addiction_unit": "day", **DATES},
            {"data"},
        ),
        ("/insights", {"bookmark_id": 44001}, {"computed_at", "date_range", "headers", "series"}),
        ("/stream/query", {"distinct_ids": '["user-1"]', **DATES}, {"status", "results"}),
        ("/engage/revenue", DATES, {"computed_at", "status", "session_id", "results"}),
    ],
)
def test_both_prefixes_answer_the_documented_shape(sim, prefix, path, params, keys):
    status, _, body = get(sim, path, params, prefix=prefix)
    assert status == 200, body
    assert isinstance(body, dict)
    if keys is not None:
        assert set(body) == keys


def test_lists_are_bare_arrays(sim):
    status, _, funnels = get(sim, "/funnels/list")
    assert status == 200
    assert funnels == [
        {"funnel_id": f["funnel_id"], "name": f["name"]} for f in datagen.SAVED_FUNNELS
    ]
    status, _, values = get(sim, "/events/properties/values", {"event": "Login", "name": "$city"})
    assert status == 200 and values and set(values) <= set(datagen.CITIES)
    status, _, limited = get(
        sim, "/events/properties/values", {"event": "Login", "name": "$city", "limit": 2}
    )
    assert limited == values[:2]


def test_segmentation_counts_the_generated_events(sim):
    expected = Counter(
        time.strftime("%Y-%m-%d", time.gmtime(e["properties"]["time"]))
        for e in generated()
        if e["event"] == "Purchase"
    )
    status, _, body = get(sim, "/segmentation", {"event": "Purchase", **DATES})
    assert status == 200
    assert body["data"]["values"] == {"Purchase": dict(expected)}
    assert body["data"]["series"] == sorted(expected)
    assert body["legend_size"] == 1


def test_segmentation_on_a_property_and_unique_users(sim):
    events = [e for e in generated(FROM, FROM) if e["event"] == "Login"]
    status, _, body = get(
        sim,
        "/segmentation",
        {"event": "Login", "from_date": FROM, "to_date": FROM, "on": 'properties["$city"]'},
    )
    by_city = Counter(e["properties"]["$city"] for e in events)
    assert {city: days[FROM] for city, days in body["data"]["values"].items()} == dict(by_city)
    status, _, unique = get(
        sim,
        "/segmentation",
        {"event": "Login", "from_date": FROM, "to_date": FROM, "type": "unique"},
    )
    users = {e["properties"]["distinct_id"] for e in events}
    assert unique["data"]["values"]["Login"][FROM] == len(users)


def test_sum_and_average_of_a_numeric_property(sim):
    params = {"event": "Share", "from_date": FROM, "to_date": FROM, "on": 'properties["time"]'}
    times = [e["properties"]["time"] for e in generated(FROM, FROM) if e["event"] == "Share"]
    _, _, total = get(sim, "/segmentation/sum", params)
    assert total["status"] == "ok" and total["results"] == {FROM: float(sum(times))}
    _, _, average = get(sim, "/segmentation/average", params)
    assert average["results"] == {FROM: round(sum(times) / len(times), 3)}


def test_event_counts_by_week(sim):
    status, _, body = get(
        sim, "/events", {"event": '["Login","Share"]', "type": "general", "unit": "week", **DATES}
    )
    assert status == 200
    total = Counter(e["event"] for e in generated())
    assert {name: sum(v.values()) for name, v in body["data"]["values"].items()} == {
        "Login": total["Login"],
        "Share": total["Share"],
    }
    assert body["data"]["series"] == ["2025-03-03"]  # a Monday


def test_funnel_conversion_from_the_events(sim):
    status, _, body = get(sim, "/funnels", {"funnel_id": 7510, **DATES, "length": 7})
    assert status == 200
    assert body["meta"]["dates"] == [d.isoformat() for d in datagen.iter_dates(FROM, TO)]
    steps = body["data"][FROM]["steps"]
    assert [s["goal"] for s in steps] == ["Page View", "Add To Cart", "Purchase"]
    counts = [s["count"] for s in steps]
    assert counts[0] > counts[1] > counts[2] > 0
    assert steps[1]["step_conv_ratio"] == round(counts[1] / counts[0], 4)
    assert steps[2]["overall_conv_ratio"] == round(counts[2] / counts[0], 4)
    assert steps[0]["avg_time"] is None and steps[1]["avg_time"] > 0
    analysis = body["data"][FROM]["analysis"]
    assert analysis["starting_amount"] == counts[0] and analysis["completion"] == counts[2]
    # Who entered on FROM: users whose first Page View of the range is on FROM.
    first_seen = {}
    for e in generated():
        if e["event"] == "Page View":
            first_seen.setdefault(e["properties"]["distinct_id"], e["properties"]["time"])
    entered = sum(1 for t in first_seen.values() if time.strftime("%F", time.gmtime(t)) == FROM)
    assert counts[0] == entered


def test_retention_cohorts(sim):
    status, _, body = get(
        sim, "/retention", {"born_event": "Signed Up", "interval_count": 3, **DATES}
    )
    assert status == 200
    cohort = body[FROM]
    assert len(cohort["counts"]) == 4
    assert cohort["counts"][0] == cohort["first"] > cohort["counts"][1] > 0
    status, _, compounded = get(
        sim, "/retention", {"retention_type": "compounded", "event": "Login", **DATES}
    )
    assert status == 200 and compounded[FROM]["first"] > 0


def test_frequency_is_monotone(sim):
    status, _, body = get(
        sim, "/retention/addiction", {"unit": "week", "addiction_unit": "day", **DATES}
    )
    assert status == 200
    week = body["data"]["2025-03-03"]
    assert len(week) == 7 and week[0] > week[1] > 0
    assert week == sorted(week, reverse=True)


def test_insights_report(sim):
    status, _, body = get(sim, "/insights", {"bookmark_id": 44001})
    assert status == 200
    assert body["headers"] == ["$event"]
    assert set(body["series"]) == {"Login", "Purchase"}
    assert sum(body["series"]["Login"].values()) > 0
    status, _, missing = get(sim, "/insights", {"bookmark_id": 1})
    assert status == 400 and set(missing) == {"request", "error"}


def test_activity_stream_of_one_user(sim):
    status, _, body = get(sim, "/stream/query", {"distinct_ids": '["user-11"]', **DATES})
    assert status == 200 and body["status"] == "ok"
    events = body["results"]["events"]
    expected = [e for e in generated() if e["properties"]["distinct_id"] == "user-11"]
    assert events == expected and events


def test_revenue_from_transactions(sim):
    updates = [
        {
            "$token": "sim-project-token",
            "$distinct_id": did,
            "$append": {"$transactions": {"$amount": amount, "$time": f"{day}T09:00:00"}},
        }
        for did, amount, day in (
            ("a", 10, FROM),
            ("b", 5.5, FROM),
            ("a", 3, TO),
            ("c", 99, "2024-01-01"),
        )
    ]
    assert sim.request("POST", "/engage", updates)[0] == 200
    status, _, body = get(sim, "/engage/revenue", DATES, prefix="/api/2.0")
    assert status == 200 and body["status"] == "ok"
    results = body["results"]
    assert results["$overall"]["amount"] == 18.5 and results["$overall"]["paid_count"] == 2
    assert results[FROM]["amount"] == 15.5 and results[FROM]["paid_count"] == 2
    assert results[TO]["amount"] == 3
    assert len(results) == 8  # seven days and $overall


@pytest.mark.parametrize(
    "path,params,error",
    [
        ("/segmentation", {"event": "Login", "to_date": TO}, "'from_date' is a required parameter"),
        (
            "/segmentation",
            {"event": "Login", "from_date": "2025-3-3", "to_date": TO},
            "'from_date' is invalid",
        ),
        (
            "/segmentation",
            {"event": "Login", "from_date": TO, "to_date": FROM},
            "'from_date' cannot be later than 'to_date'",
        ),
        ("/segmentation", {"event": "Login", **DATES, "unit": "week"}, "'unit' must be one of"),
        ("/segmentation", {"event": "Login", **DATES, "on": "oops"}, "invalid on expression"),
        (
            "/segmentation",
            {"event": "Login", **DATES, "where": 'properties["x" =='},
            "invalid where expression",
        ),
        ("/segmentation", {"event": "Login", **DATES, "limit": 10001}, "'limit' must be <= 10000"),
        ("/segmentation/sum", {"event": "Login", **DATES}, "'on' is a required parameter"),
        (
            "/events",
            {"event": "Login", "type": "general", "unit": "day", **DATES},
            "event must be valid JSON",
        ),
        ("/funnels", {"funnel_id": 1, **DATES}, "funnel_id 1 does not exist"),
        ("/funnels", {"funnel_id": 7509, **DATES, "length": 91}, "'length' must be <= 90"),
        ("/retention", DATES, "'born_event' is a required parameter"),
        (
            "/retention/addiction",
            {"unit": "week", **DATES},
            "'addiction_unit' is a required parameter",
        ),
        ("/stream/query", DATES, "'distinct_ids' is a required parameter"),
        ("/engage/revenue", {"from_date": FROM}, "'to_date' is a required parameter"),
    ],
)
def test_bad_parameters_get_the_query_error_envelope(sim, path, params, error):
    status, _, body = get(sim, path, params)
    assert status == 400
    assert set(body) == {"request", "error"} and body["error"].startswith(error), body
    assert body["request"].startswith(f"/api/query{path}?")


def test_query_auth(sim):
    status, _, body = get(sim, "/segmentation", {"event": "Login", **DATES}, auth=None)
    assert status == 401 and set(body) == {"request", "error"}
    status, _, body = get(sim, "/segmentation", {"event": "Login", **DATES}, project=False)
    assert status == 400  # a service account needs project_id
    status, _, _ = get(
        sim, "/segmentation", {"event": "Login", **DATES}, auth=SECRET, project=False
    )
    assert status == 200  # the API secret alone


def test_hourly_rate_limit_is_shared_by_every_query_endpoint(sim):
    sim.configure(rate_limits={"enabled": True, "query_per_hour": 3})
    assert get(sim, "/funnels/list")[0] == 200
    assert get(sim, "/insights", {"bookmark_id": 44001})[0] == 200
    assert get(sim, "/engage")[0] == 200
    status, headers, body = get(sim, "/segmentation", {"event": "Login", **DATES})
    assert status == 429 and "Retry-After" not in headers  # Mixpanel documents none
    assert set(body) == {"request", "error"}
    assert body["error"].startswith("Query rate limit exceeded for project_id: 2002.")
    assert "4/3 queries running in the last hour" in body["error"]


def test_concurrent_rate_limit(sim):
    sim.configure(events_per_day=20_000, rate_limits={"enabled": True, "query_concurrent": 1})
    slow = {"event": "Login", "from_date": "2025-01-01", "to_date": "2025-01-20"}
    answers = []
    worker = threading.Thread(target=lambda: answers.append(get(sim, "/segmentation", slow)[0]))
    worker.start()
    time.sleep(0.3)  # the slow query holds the project's one slot
    status, _, body = get(sim, "/funnels/list")
    worker.join()
    assert answers == [200]
    assert status == 429
    assert "2/1 queries running concurrently" in body["error"]
    assert get(sim, "/funnels/list")[0] == 200  # the slot is free again
