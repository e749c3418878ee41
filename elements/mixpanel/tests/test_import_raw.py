"""Import's fast path: events forwarded as the caller's own bytes, checked without being built,
and their failures mapped back exactly whatever order the concurrent requests end in."""

import json

import msgspec
import pytest

from elements.mixpanel.events import Batch, _all_have_insert_ids, _raw_import_inputs
from elements.mixpanel.tests.test_element_calls import events

HUB = "/elements/api-v2/hubs/general"


def encoded(event: dict, i: int) -> bytes:
    """One event's bytes in a form a re-encoder would change: spaces, raw UTF-8, an escape."""
    text = json.dumps(event, ensure_ascii=False, separators=(" , ", " : "))
    return text.replace('"Imported"', '"Imp\\u006frted"' if i % 2 else '"Impörted"').encode()


# --- the parsing, in-process -----------------------------------------------------------------


def test_each_batch_is_the_callers_bytes_joined():
    parts = [encoded(e, i) for i, e in enumerate(events(5))]
    raw = b'{ "strict" : "1" , "events" : [ ' + b" ,\n ".join(parts) + b" ] }"
    inputs = _raw_import_inputs(raw, array_body=False)
    assert inputs is not None and inputs["strict"] == "1"
    body = Batch(0, inputs["events"]).body()
    assert body == b"[" + b",".join(parts) + b"]"
    assert json.loads(body) == json.loads(b"[" + b",".join(parts) + b"]")


@pytest.mark.parametrize(
    "raw",
    [
        b'{"events": []}',  # minItems
        b'{"events": [1, {"event": "x"}]}',  # an event that is not an object
        b'{"events": [{"event": "x"}], "strict": "2"}',
        b'{"events": [{"event": "x"}], "other": 1}',  # unknown key
        b'{"events": [{"event": "x"}], "properties": {"a": 1}}',  # merging needs the objects
        b'{"events": [{"event": "x"},]}',  # not JSON
        b'{"events": [{"event": "\\ud800"}]}',  # a lone surrogate escape
        '{"events": [{"event": "é"}]}'.encode("latin-1"),  # not UTF-8
        b'[{"event": "x"}]',  # a bare array where the operation takes none
        b"{}",
        # Each non-object kind, first, in the middle and last: the check of the joined slices.
        b'{"events": [[{"event": "x"}], {"event": "y"}]}',
        b'{"events": [{"event": "x"}, "{", {"event": "y"}]}',
        b'{"events": [{"event": "x"}, null]}',
        b'{"events": [{"event": "x"}, true, {"event": "y"}]}',
        b'{"events": [{"event": "x"}, -1]}',
        # NUL, which the objects check joins the slices with, is never valid JSON.
        b'{"events": [{"event": "x"},\x00{"event": "y"}]}',
        b'{"events": [{"event": "x\x00"}]}',
    ],
)
def test_anything_unsure_goes_the_general_way(raw):
    assert _raw_import_inputs(raw, array_body=False) is None


def test_events_with_nested_values_of_any_kind_are_objects():
    raw = b'{"events": [ {"event": "x", "properties": {"l": [1, "a", null, [{}]]}} ,\n\t{}]}'
    inputs = _raw_import_inputs(raw, array_body=False)
    assert [bytes(e) for e in inputs["events"]] == [
        b'{"event": "x", "properties": {"l": [1, "a", null, [{}]]}}',
        b"{}",
    ]


def test_a_bare_array_where_the_operation_takes_one():
    inputs = _raw_import_inputs(b' [{"event": "x"}, {"event": "y"}]', array_body=True)
    assert [bytes(e) for e in inputs["events"]] == [b'{"event": "x"}', b'{"event": "y"}']


def test_retry_safety_reads_every_events_insert_id():
    with_ids = events(3)
    without_one = events(3)
    del without_one[1]["properties"]["$insert_id"]
    nested_only = [{"event": "x", "properties": {"deep": {"$insert_id": "1"}}}]
    not_an_object = [{"event": "x", "properties": "$insert_id"}]
    for batch, expected in [
        (with_ids, True),
        (without_one, False),
        (nested_only, False),
        (not_an_object, False),
        ([{"event": "x"}], False),
    ]:
        body = json.dumps(batch).encode()
        raw_events = msgspec.json.decode(body, type=list[msgspec.Raw])
        assert _all_have_insert_ids(raw_events, body) is expected, batch
        assert _all_have_insert_ids(batch, body) is expected, batch


# --- through the platform, against the simulator ---------------------------------------------


@pytest.mark.django_db
@pytest.mark.integration
def test_the_vendor_receives_the_callers_bytes(element, sim, sa_instance):
    parts = [encoded(e, i) for i, e in enumerate(events(4500))]
    raw = b'{"events" : [' + b" , ".join(parts) + b"]}"
    sim.clear_requests()
    response = element.post(
        f"/mixpanel/import_events/{sa_instance['id']}", raw, content_type="application/json"
    )
    assert response.status_code == 200, response.content
    assert response.json() == {"status": "OK", "num_records_imported": 4500, "failed_records": []}
    imports = [r for r in sim.requests() if r["path"] == "/import"]
    expected_sizes = [
        len(b"[" + b",".join(parts[start : start + 2000]) + b"]") for start in (0, 2000, 4000)
    ]
    assert sorted(r["body_size"] for r in imports) == sorted(expected_sizes)
    received = sim.imported()["events"]
    assert sorted(e["properties"]["$insert_id"] for e in received) == sorted(
        f"id-{i}" for i in range(4500)
    )
    assert {e["event"] for e in received} == {"Imported", "Impörted"}


@pytest.mark.django_db
@pytest.mark.integration
def test_failed_records_are_exact_when_batches_end_in_any_order(element, sim):
    bad = {0, 1999, 2000, 4321, 7999, 8000, 11_999, 12_000}
    batch = events(12_001, bad=bad)
    # Random latency per request: the six concurrent requests end in a shuffled order.
    sim.faults(path_prefix="/import", latency_ms={"ms": 150, "probability": 0.5}, seed=7)
    response = element.post(f"{HUB}/activities/import", batch, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "PARTIAL"
    assert body["num_records_imported"] == 12_001 - len(bad)
    assert [r["index"] for r in body["failed_records"]] == sorted(bad)
    assert all("time" in r["message"] or r["field"] for r in body["failed_records"])


@pytest.mark.django_db
@pytest.mark.integration
def test_a_batch_without_insert_ids_is_not_retried_and_reported_whole(element, sim, sa_instance):
    batch = events(6000)
    for event in batch[2000:4000]:  # the second request's events have no deduplication key
        del event["properties"]["$insert_id"]
    sim.clear_requests()
    sim.faults(
        path_prefix="/import",
        status={"status": 503, "body": {"error": "busy"}},
        count=3,  # the first attempt of each of the three requests
    )
    response = element.post(
        f"/mixpanel/import_events/{sa_instance['id']}", {"events": batch}, format="json"
    )
    assert response.status_code == 200, response.content
    body = response.json()
    # The other two requests were retried (their events carry $insert_id) and got in.
    assert [r["index"] for r in body["failed_records"]] == list(range(2000, 4000))
    assert body["num_records_imported"] == 4000
    assert len([r for r in sim.requests() if r["path"] == "/import"]) == 5


@pytest.mark.django_db
@pytest.mark.integration
def test_a_traced_import_logs_its_events_as_json(tenant, traced_instance):
    created = traced_instance
    client = tenant.element_client(created["token"])
    response = client.post(
        f"/mixpanel/import_events/{created['id']}", {"events": events(2)}, format="json"
    )
    assert response.status_code == 200, response.content
    record = tenant.client().get(f"/elements/api-v2/usage/{response['Elements-Request-Id']}").json()
    assert record["requestBody"] == {"events": events(2)}
