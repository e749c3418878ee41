"""Recorded Mixpanel answers replayed through the operations (unit tests: a fake vendor)."""

import json
from pathlib import Path
from unittest import mock

import pytest

from elements.framework.definition import Call
from elements.framework.dispatch import run_operation
from elements.framework.vendor import VendorError, VendorResponse, raise_for_status
from elements.mixpanel import ELEMENT

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
SA_CONFIG = {"username": "u", "password": "p", "organization_id": 1, "project_id": 2}


def recorded(name: str, status: int = 200) -> VendorResponse:
    return VendorResponse(status, {}, (FIXTURES / name).read_bytes(), "/")


class FakeVendor:
    """Answers every request with the next recorded response; remembers what was asked."""

    def __init__(self, *responses: VendorResponse):
        self.responses = list(responses)
        self.sent = []

    def request(self, method, host, path, *, check=True, **kwargs):
        self.sent.append((method, host, path, kwargs))
        response = self.responses.pop(0)
        return raise_for_status(response) if check else response


def run(op_id: str, inputs: dict, vendor: FakeVendor, config=SA_CONFIG):
    op = ELEMENT.operation(op_id)
    call = Call(ELEMENT, 1, config, inputs, vendor)
    outcome = op.handler(call)
    # The output must satisfy the operation's own schema, as run_operation checks.
    assert op.output_validator.passes(getattr(outcome, "body", outcome))
    return outcome.body


def test_service_account_list_and_create():
    body = run("get_service_accounts", {}, FakeVendor(recorded("service_accounts_list.json")))
    assert body["total"] == 1 and body["service_accounts"][0]["id"] == 98765
    created = run(
        "create", {"username": "etl-bot"}, FakeVendor(recorded("service_account_create.json", 201))
    )
    assert created == {
        "service_account_created": True,
        "id": 98765,
        "username": "etl-bot.1a2b3c.mp-service-account",
        "secret": "one-time-secret-from-mixpanel",
    }


def test_engage_page_maps_to_query_profiles_output():
    body = run("query_profiles", {}, FakeVendor(recorded("engage_page.json")))
    assert body["total"] == 1 and body["session_id"] == "1234567890-EXAMPL"
    assert body["has_more"] is False and body["results"][0]["$distinct_id"] == "4"


def test_import_partial_failure_is_reindexed_into_the_callers_positions():
    events = [{"event": "e", "properties": {"time": 1, "distinct_id": "d", "$insert_id": "i"}}]
    vendor = FakeVendor(recorded("import_partial.json", 400))
    body = run("import_events", {"events": events}, vendor)
    assert body["num_records_imported"] == 999
    assert body["failed_records"][0]["index"] == 0
    assert body["failed_records"][0]["field"] == "properties.time"


def test_import_unauthorized_is_the_vendors_401():
    events = [{"event": "e", "properties": {}}]
    with pytest.raises(VendorError) as caught:
        run(
            "import_events",
            {"events": events},
            FakeVendor(recorded("import_unauthorized.json", 401)),
        )
    assert caught.value.status_code == 401
    assert caught.value.provider_message == "Invalid credentials"


def test_query_rate_limit_becomes_429_with_the_vendors_words():
    with pytest.raises(VendorError) as caught:
        run("query_profiles", {}, FakeVendor(recorded("query_rate_limited.json", 429)))
    assert caught.value.status_code == 429
    assert "Query rate limit exceeded" in caught.value.provider_message
    assert caught.value.headers["Retry-After"] == "60"


def test_run_operation_rejects_output_that_breaks_the_schema():
    garbage = VendorResponse(
        200, {}, json.dumps({"status": "ok", "results": [{"x": 1}]}).encode(), "/"
    )
    with (
        mock.patch("elements.framework.dispatch.vendor_client", return_value=FakeVendor(garbage)),
        pytest.raises(VendorError) as caught,
    ):
        run_operation(
            ELEMENT,
            ELEMENT.operation("getServiceAccounts"),
            instance_id=1,
            configuration=SA_CONFIG,
            inputs={},
        )
    assert caught.value.status_code == 502


def test_import_splits_by_count_and_by_bytes(monkeypatch):
    from elements.mixpanel import events as events_module

    class CountingVendor(FakeVendor):
        def request(self, method, host, path, *, check=True, body=b"", **kwargs):
            batch = json.loads(body)
            self.sent.append(len(batch))
            assert len(body) <= events_module.IMPORT_MAX_BYTES or len(batch) == 1
            reply = json.dumps({"code": 200, "num_records_imported": len(batch), "status": "OK"})
            return VendorResponse(200, {}, reply.encode(), "/import")

    monkeypatch.setattr(events_module, "IMPORT_MAX_BYTES", 20_000)
    batch = [
        {"event": "e", "properties": {"time": 1, "distinct_id": str(i), "$insert_id": f"i{i}"}}
        for i in range(4500)
    ]
    vendor = CountingVendor()
    body = run("import_events", {"events": batch}, vendor)
    assert body == {"status": "OK", "num_records_imported": 4500, "failed_records": []}
    assert sum(vendor.sent) == 4500 and max(vendor.sent) <= 2000 and len(vendor.sent) > 3
