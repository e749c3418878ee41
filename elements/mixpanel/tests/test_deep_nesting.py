"""Deeply nested JSON, both ways (platform_core/nesting.py): a body deeper than the platform
passes on is a 400 before Mixpanel is called; an answer deeper than orjson encodes is still
relayed; nothing deep ends in a 500."""

import json
import urllib.request

import pytest

from conftest import SIM_PROJECT_TOKEN
from platform_core.nesting import MAX_JSON_DEPTH, NESTED_TOO_DEEPLY

pytestmark = [pytest.mark.django_db, pytest.mark.integration]

HUB = "/elements/api-v2/hubs/general"


def nested(depth: int):
    """A value with ``depth`` levels of arrays."""
    value = 1
    for _ in range(depth):
        value = [value]
    return value


def sent(sim, path: str) -> list[dict]:
    return [r for r in sim.requests() if r["path"] == path]


def seed_profile(sim, distinct_id: str, properties: dict) -> None:
    """A profile as another of the project's sources would have written it, past the platform."""
    update = [{"$token": SIM_PROJECT_TOKEN, "$distinct_id": distinct_id, "$set": properties}]
    request = urllib.request.Request(
        f"{sim.base_url}/engage",
        data=json.dumps(update).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 200


@pytest.mark.parametrize(
    "method, path, body",
    [
        ("patch", f"{HUB}/users/victim", {"$set": {"x": nested(MAX_JSON_DEPTH)}}),
        ("post", f"{HUB}/activities", {"event": "e", "properties": {"x": nested(MAX_JSON_DEPTH)}}),
    ],
)
def test_a_body_past_the_limit_is_refused_before_mixpanel_is_called(
    element, sim, method, path, body
):
    sim.clear_requests()
    response = getattr(element, method)(path, body, format="json")
    assert response.status_code == 400, response.content[:300]
    assert response.json()["message"] == NESTED_TOO_DEEPLY
    assert sim.requests() == []


@pytest.mark.parametrize("depth", [1000, 1100, 5000])
def test_an_import_nested_past_every_parser_is_a_400(element, sim, iid, depth):
    """msgspec and orjson each give up at their own depth: neither is a 500."""
    sim.clear_requests()
    deep = "[" * depth + "]" * depth
    for path, body in (
        (f"{HUB}/activities/import", deep),
        (f"/mixpanel/import_events/{iid}", f'{{"events": [{{"properties": {{"x": {deep}}}}}]}}'),
    ):
        response = element.post(path, body, content_type="application/json")
        assert response.status_code == 400, (path, response.content[:300])
    assert sim.requests() == []


def test_imported_events_pass_as_sent_however_deep(element, sim):
    """An import the platform need not rewrite sends each event's own bytes (never re-encoded):
    their depth is Mixpanel's to judge."""
    properties = {"time": 1700000000, "distinct_id": "u", "$insert_id": "deep-1", "x": nested(300)}
    response = element.post(
        f"{HUB}/activities/import", [{"event": "e", "properties": properties}], format="json"
    )
    assert response.status_code == 200, response.content[:300]
    assert response.json()["num_records_imported"] == 1
    assert sim.imported()["events"][-1]["properties"]["x"] == nested(300)


def test_a_body_at_the_limit_is_sent_and_its_record_read_back(element, sim):
    value = nested(MAX_JSON_DEPTH - 2)  # under {"$set": {"x": ...}}
    response = element.patch(f"{HUB}/users/deep", {"$set": {"x": value}}, format="json")
    assert response.status_code == 200, response.content[:300]
    assert sim.profile("deep")["$properties"]["x"] == value
    got = element.get(f"{HUB}/users/deep")
    assert got.status_code == 200, got.content[:300]
    assert got.json()["$properties"]["x"] == value


def test_an_answer_deeper_than_orjson_encodes_is_relayed(element, sim, iid):
    """A profile that another source wrote 300 levels deep: reading it, alone or in a list,
    is the vendor's answer as it is, not a 500 after the fact."""
    value = nested(300)
    seed_profile(sim, "deeper", {"x": value})
    one = element.get(f"{HUB}/users/deeper")
    assert one.status_code == 200, one.content[:300]
    assert one.json()["$properties"]["x"] == value
    listed = element.get(f"{HUB}/users", {"where": "distinct_id = 'deeper'"})
    assert listed.status_code == 200, listed.content[:300]
    queried = element.post(f"/mixpanel/query_profiles/{iid}", {}, format="json")
    assert queried.status_code == 200, queried.content[:300]
    assert any(p["$distinct_id"] == "deeper" for p in queried.json()["results"])


def test_a_bulk_query_body_with_text_postgresql_cannot_store_is_a_400(element):
    for q in ("select * from users where a = '\u0000'", "select * from users where a = 'x\ud800'"):
        body = json.dumps({"q": q}).encode()  # \u escapes: the JSON itself is valid
        response = element.post(
            "/elements/api-v2/bulk/query", body, content_type="application/json"
        )
        assert response.status_code == 400, response.content[:300]
        assert response.json()["errors"][0]["field"] == "q"
