"""The Query API operations (contract §5d) through the platform, in both URL styles, against the
simulator: what Mixpanel received, Mixpanel's body unchanged, the checks made before any vendor
call, and the Query API's rate limit as a 429 with Retry-After."""

import base64
import json
import os
from urllib.parse import quote, urlencode

import pytest

from conftest import SIM_PROJECT_ID

pytestmark = [pytest.mark.django_db, pytest.mark.integration]

HUB = "/elements/api-v2/hubs/general"
FROM, TO = "2025-03-03", "2025-03-09"
DATES = {"from_date": FROM, "to_date": TO}
CITY = 'properties["$city"]'
# Answers that carry the moment they were computed (or a session) differ between two calls.
VOLATILE = ("computed_at", "session_id")


@pytest.fixture
def element(tenant, sa_instance):
    return tenant.element_client(sa_instance["token"])


@pytest.fixture
def iid(sa_instance):
    return sa_instance["id"]


@pytest.fixture
def events_sim(sim):
    sim.configure(events_per_day=400)
    return sim


def query_requests(sim, vendor_path):
    return [r for r in sim.requests() if r["path"] == vendor_path]


def stable(body):
    if isinstance(body, dict):
        return {k: v for k, v in body.items() if k not in VOLATILE}
    return body


# (resource path, its query, operation name, the operation style's query, the vendor path,
#  what Mixpanel must receive)
CASES = [
    (
        "/segmentation",
        {"event": "Login", **DATES, "on": CITY, "type": "unique", "limit": "3"},
        "segmentation",
        None,
        "/api/query/segmentation",
        {"event": "Login", **DATES, "on": CITY, "type": "unique", "limit": "3"},
    ),
    (
        "/segmentation/numeric",
        {"event": "Login", **DATES, "on": 'properties["mp_processing_time_ms"]', "unit": "day"},
        "segmentation_numeric",
        None,
        "/api/query/segmentation/numeric",
        {"event": "Login", **DATES, "on": 'properties["mp_processing_time_ms"]', "unit": "day"},
    ),
    (
        "/segmentation/sum",
        {"event": "Purchase", **DATES, "on": 'properties["time"]', "where": f'{CITY} == "Paris"'},
        "segmentation_sum",
        None,
        "/api/query/segmentation/sum",
        {"event": "Purchase", **DATES, "on": 'properties["time"]', "where": f'{CITY} == "Paris"'},
    ),
    (
        "/segmentation/average",
        {"event": "Purchase", **DATES, "on": 'properties["time"]', "unit": "hour"},
        "segmentation_average",
        None,
        "/api/query/segmentation/average",
        {"event": "Purchase", **DATES, "on": 'properties["time"]', "unit": "hour"},
    ),
    (
        "/activities/count",
        {"event": '["Login","Purchase"]', "unit": "week", **DATES},
        "event_counts",
        None,
        "/api/query/events",
        {"event": '["Login", "Purchase"]', "type": "general", "unit": "week", **DATES},
    ),
    (
        "/activities/properties/top",
        {"event": "Login", "limit": "3"},
        "event_properties_top",
        None,
        "/api/query/events/properties/top",
        {"event": "Login", "limit": "3"},
    ),
    (
        "/activities/properties/values",
        {"event": "Login", "name": "$city"},
        "event_property_values",
        None,
        "/api/query/events/properties/values",
        {"event": "Login", "name": "$city"},
    ),
    (
        "/funnels/7510",
        {**DATES, "length": "7"},
        "funnel_query",
        {"funnelId": "7510", **DATES, "length": "7"},
        "/api/query/funnels",
        {"funnel_id": "7510", **DATES, "length": "7"},
    ),
    (
        "/retention",
        {**DATES, "born_event": "Signed Up", "interval_count": "3"},
        "retention",
        None,
        "/api/query/retention",
        {**DATES, "born_event": "Signed Up", "interval_count": "3"},
    ),
    (
        "/retention/frequency",
        {**DATES, "unit": "week", "addiction_unit": "day"},
        "retention_frequency",
        None,
        "/api/query/retention/addiction",
        {**DATES, "unit": "week", "addiction_unit": "day"},
    ),
    (
        "/insights/44001",
        {},
        "insights",
        {"bookmarkId": "44001"},
        "/api/query/insights",
        {"bookmark_id": "44001"},
    ),
    (
        "/users/user-7/activities",
        DATES,
        "profile_activity_stream",
        {"id": "user-7", **DATES},
        "/api/query/stream/query",
        {"distinct_ids": '["user-7"]', **DATES},
    ),
    (
        "/revenue",
        {**DATES, "unit": "week"},
        "revenue",
        None,
        "/api/2.0/engage/revenue",
        {**DATES, "unit": "week"},
    ),
]


@pytest.mark.parametrize(
    "path,query,name,named_query,vendor_path,sent", CASES, ids=[c[2] for c in CASES]
)
def test_each_query_in_both_url_styles(
    element, iid, events_sim, path, query, name, named_query, vendor_path, sent
):
    sim = events_sim
    resource = element.get(f"{HUB}{path}?{urlencode(query)}" if query else f"{HUB}{path}")
    assert resource.status_code == 200, resource.content
    named = element.get(f"/mixpanel/{name}/{iid}?{urlencode(named_query or query)}")
    assert named.status_code == 200, named.content

    received = query_requests(sim, vendor_path)
    assert len(received) == 2, [r["path"] for r in sim.requests()]
    for request in received:
        assert request["method"] == "GET"
        assert request["query"] == {**sent, "project_id": str(SIM_PROJECT_ID)}
    # Mixpanel's body, unchanged, whichever the style.
    direct = sim.request("GET", f"{vendor_path}?{received[0]['query_string']}", auth=sim.sa_auth())
    assert direct[0] == 200
    assert stable(resource.json()) == stable(named.json()) == stable(json.loads(direct[2]))


def test_segmentation_counts_come_from_the_events(element, events_sim):
    response = element.get(f"{HUB}/segmentation?{urlencode({'event': 'Login', **DATES})}")
    body = response.json()
    assert body["data"]["series"][0] == FROM and body["data"]["series"][-1] == TO
    per_day = body["data"]["values"]["Login"]
    assert len(per_day) == 7 and all(count > 0 for count in per_day.values())


def test_funnel_and_retention_numbers_are_not_trivial(element, sim):
    sim.configure(events_per_day=3000)
    funnel = element.get(f"{HUB}/funnels/7510?{urlencode({**DATES, 'length': '7'})}").json()
    steps = funnel["data"][FROM]["steps"]
    assert [s["event"] for s in steps] == ["Page View", "Add To Cart", "Purchase"]
    assert steps[0]["count"] > steps[1]["count"] > steps[2]["count"] > 0
    retention = element.get(
        f"{HUB}/retention?{urlencode({**DATES, 'born_event': 'Signed Up', 'interval_count': 2})}"
    ).json()
    cohort = retention[FROM]
    assert cohort["first"] > cohort["counts"][1] > 0


def test_funnels_list_is_paged_in_both_styles(element, iid, sim):
    first = element.get(f"{HUB}/funnels?pageSize=1")
    assert first.status_code == 200, first.content
    assert first.json() == [{"id": 7509, "funnel_id": 7509, "name": "Signup funnel"}]
    cursor = first["Elements-Next-Page-Token"]
    second = element.get(f"{HUB}/funnels?pageSize=1&nextPage={cursor}")
    assert second.json() == [{"id": 7510, "funnel_id": 7510, "name": "Purchase funnel"}]
    assert "Elements-Next-Page-Token" not in second
    named = element.get(f"/mixpanel/funnels_list/{iid}")
    assert named.status_code == 200
    assert [f["funnel_id"] for f in named.json()] == [7509, 7510]
    assert len(query_requests(sim, "/api/query/funnels/list")) == 3


def test_revenue_sums_the_profiles_transactions(element, sim):
    update = [
        {
            "$token": "sim-project-token",
            "$distinct_id": "buyer-1",
            "$append": {"$transactions": {"$amount": 25.5, "$time": f"{FROM}T10:00:00"}},
        }
    ]
    status, _, _ = sim.request("POST", "/engage", update)
    assert status == 200
    body = element.get(f"{HUB}/revenue?{urlencode(DATES)}").json()
    assert body["results"][FROM]["amount"] == 25.5
    assert body["results"][FROM]["paid_count"] == 1
    assert body["results"]["$overall"]["amount"] == 25.5


BAD = [
    ("/segmentation", {"event": "Login", "from_date": "2025-02-30", "to_date": TO}, "from_date"),
    ("/segmentation", {"event": "Login", "from_date": "03/03/2025", "to_date": TO}, "from_date"),
    ("/segmentation", {"event": "Login", "from_date": TO, "to_date": FROM}, "from_date"),
    ("/segmentation", {"event": "Login", "from_date": FROM}, "to_date"),
    ("/segmentation", {"event": "Login", **DATES, "unit": "week"}, "unit"),
    ("/segmentation", {"event": "Login", **DATES, "unit": "day", "interval": "2"}, "interval"),
    ("/segmentation", {"event": "Login", **DATES, "on": CITY, "limit": "0"}, "limit"),
    ("/segmentation", {"event": "Login", **DATES, "on": CITY, "limit": "10001"}, "limit"),
    ("/segmentation", {"event": "Login", **DATES, "limit": "5"}, "limit"),
    ("/segmentation", {"event": "Login", **DATES, "type": "median"}, "type"),
    ("/segmentation", {"event": "Login", **DATES, "where": 'properties["a" == 1'}, "where"),
    ("/segmentation", {"event": "Login", **DATES, "where": "1 ; 2"}, "where"),
    ("/segmentation", {"event": "Login", **DATES, "on": 'properties["a"])'}, "on"),
    ("/segmentation", {"event": "Login", **DATES, "colour": "red"}, "colour"),
    ("/segmentation", DATES, "event"),
    ("/segmentation/sum", {"event": "Login", **DATES}, "on"),
    ("/segmentation/average", {"event": "Login", **DATES, "on": CITY, "unit": "month"}, "unit"),
    ("/activities/count", {"event": "Login", **DATES}, "event"),
    ("/activities/count", {"event": '["Login"', **DATES}, "event"),
    ("/activities/count", {"event": "[]", **DATES}, "event"),
    ("/activities/count", {"event": '["Login"]'}, "from_date"),
    ("/activities/count", {"event": '["Login"]', "interval": "7", **DATES}, "interval"),
    ("/activities/properties/top", {"event": "Login", "limit": "-1"}, "limit"),
    ("/activities/properties/values", {"event": "Login"}, "name"),
    ("/funnels", {"pageSize": "0"}, "pageSize"),
    ("/funnels/seven", DATES, "funnelId"),
    ("/funnels/7510", {**DATES, "length": "91"}, "length"),
    ("/retention", DATES, "born_event"),
    ("/retention", {**DATES, "retention_type": "sometimes"}, "retention_type"),
    ("/retention/frequency", {**DATES, "unit": "week"}, "addiction_unit"),
    ("/users/user-7/activities", {"from_date": FROM, "to_date": "2025-3-9"}, "to_date"),
    ("/revenue", {**DATES, "unit": "hour"}, "unit"),
]


@pytest.mark.parametrize("path,query,field", BAD, ids=[f"{b[0]}-{b[2]}" for b in BAD])
def test_bad_parameters_are_400_naming_them_without_a_vendor_call(element, sim, path, query, field):
    sim.clear_requests()
    response = element.get(f"{HUB}{path}?{urlencode(query, quote_via=quote)}")
    assert response.status_code == 400, response.content
    body = response.json()
    assert field in {e["field"] for e in body["errors"]}, body
    assert not sim.requests(), "Mixpanel was called"


def test_operation_style_checks_the_same(element, iid, sim):
    sim.clear_requests()
    response = element.get(f"/mixpanel/funnel_query/{iid}?{urlencode(DATES)}")
    assert response.status_code == 400
    assert "funnelId" in {e["field"] for e in response.json()["errors"]}
    response = element.get(f"/mixpanel/event_counts/{iid}?{urlencode({'event': 'Login', **DATES})}")
    assert response.status_code == 400
    assert not sim.requests()


@pytest.fixture
def fast_vendor(settings):
    settings.PLATFORM = {
        **settings.PLATFORM,
        "VENDOR_MAX_RETRIES": 1,
        "VENDOR_BACKOFF_FACTOR": 0.01,
    }


def test_query_rate_limit_is_429_with_retry_after(element, sim, fast_vendor):
    sim.configure(rate_limits={"enabled": True, "query_per_hour": 2})
    query = urlencode({"event": "Login", **DATES})
    for _ in range(2):
        assert element.get(f"{HUB}/segmentation?{query}").status_code == 200
    response = element.get(f"{HUB}/segmentation?{query}")
    assert response.status_code == 429, response.content
    assert int(response["Retry-After"]) > 0
    body = response.json()
    assert body["providerStatus"] == 429
    assert "Query rate limit exceeded" in body["providerMessage"]
    refused = [r for r in query_requests(sim, "/api/query/segmentation") if r["status"] == 429]
    assert refused  # Mixpanel itself refused: the platform passed its answer on


def test_an_api_secret_alone_queries_too(tenant, sim):
    created = tenant.client().post(
        "/elements/api-v2/instances",
        {
            "element": {"key": "mixpanel"},
            "name": "secret only",
            "configuration": {"username": "sim-api-secret"},
        },
        format="json",
    )
    assert created.status_code == 200, created.content
    response = tenant.element_client(created.json()["token"]).get(f"{HUB}/funnels")
    assert response.status_code == 200, response.content
    (received,) = query_requests(sim, "/api/query/funnels/list")
    assert received["headers"]["Authorization"] == "Basic " + base64.b64encode(
        b"sim-api-secret:"
    ).decode("ascii")
    assert "project_id" not in received["query"]  # only service accounts send it


@pytest.mark.parametrize(
    "region,host", [("US", "https://mixpanel.com"), ("EU", "https://eu.mixpanel.com")]
)
def test_the_regions_query_host(region, host, monkeypatch):
    from elements.framework.dispatch import vendor_client
    from elements.mixpanel import ELEMENT

    monkeypatch.delenv("MIXPANEL_BASE_URL", raising=False)
    assert vendor_client(ELEMENT, {"region": region}).hosts["app"] == host


def test_queries_use_the_query_host(element, sim, monkeypatch):
    """Only the query host (alias ``app``) leads to Mixpanel here: nothing listens elsewhere."""
    monkeypatch.setenv("MIXPANEL_APP_BASE_URL", os.environ["MIXPANEL_BASE_URL"])
    monkeypatch.setenv("MIXPANEL_BASE_URL", "http://127.0.0.1:9")
    assert element.get(f"{HUB}/funnels").status_code == 200
    assert element.get(f"{HUB}/revenue?{urlencode(DATES)}").status_code == 200
