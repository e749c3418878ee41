"""The element test kit on an element that is not Mixpanel: the example element (in
``example_element/``, registered here only) passes the conformance suite, its calls reach a
scripted ``FakeVendor``, and neither the kit nor the example uses any Mixpanel code."""

import ast
import json
import socket
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

import elements
from elements.framework import testing
from elements.framework.registry import all_elements, element_by_key
from elements.framework.testing import (
    ElementConformance,
    FakeVendor,
    registered_element_folders,
)

EXAMPLE_FOLDERS = Path(__file__).resolve().parent / "example_element"
API = "/elements/api-v2"


@pytest.fixture
def element():
    with registered_element_folders(EXAMPLE_FOLDERS):
        example = element_by_key("example")
        assert example is not None
        yield example


@pytest.mark.django_db
@pytest.mark.integration
class TestExampleConformance(ElementConformance):
    def test_calls_reach_the_scripted_vendor(self, element, element_call, instance, fake_vendor):
        fake_vendor.answer("GET", "/v1/widgets", json=[{"id": 1, "name": "Sprocket"}])
        fake_vendor.answer("GET", "/v1/widgets/1", json={"id": 1, "name": "Sprocket"})
        fake_vendor.answer("POST", "/v1/widgets", json={"id": 2, "name": "Cog"})
        hub = f"{API}/hubs/general"
        assert element_call("GET", f"{hub}/widgets").json() == [{"id": 1, "name": "Sprocket"}]
        assert element_call("GET", f"/example/list_widgets/{instance['id']}").status_code == 200
        assert element_call("GET", f"{hub}/widgets/1").json()["name"] == "Sprocket"
        created = element_call("POST", f"/example/create_widget/{instance['id']}", {"name": "Cog"})
        assert created.status_code == 200 and created.json() == {"id": 2, "name": "Cog"}
        sent = fake_vendor.requests
        assert [(r.method, r.path) for r in sent] == [
            ("GET", "/v1/widgets"),
            ("GET", "/v1/widgets"),
            ("GET", "/v1/widgets/1"),
            ("POST", "/v1/widgets"),
        ]
        assert {r.headers["Authorization"] for r in sent} == {"Bearer example-api-key"}
        assert json.loads(sent[-1].body) == {"name": "Cog"}

    def test_a_non_idempotent_call_is_not_retried(self, element, element_call, fake_vendor):
        fake_vendor.fail("5xx", path="/v1/widgets")
        response = element_call("POST", f"{API}/hubs/general/widgets", {"name": "Cog"})
        assert response.status_code == 502 and response.json()["providerStatus"] == 503
        assert len(fake_vendor.requests) == 1


def test_the_example_is_registered_only_inside_the_override():
    assert element_by_key("example") is None
    with registered_element_folders(EXAMPLE_FOLDERS):
        assert [e.key for e in all_elements()].count("example") == 1
    assert element_by_key("example") is None
    assert "example" not in [e.key for e in all_elements()]
    assert "elements.example" not in sys.modules and not hasattr(elements, "example")


def _imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_neither_the_kit_nor_the_example_uses_mixpanel_code():
    files = [Path(testing.__file__), *EXAMPLE_FOLDERS.rglob("*.py")]
    assert len(files) >= 3
    for path in files:
        for name in _imported_modules(path):
            assert not name.startswith(("elements.mixpanel", "simulators")), (path, name)


# --- the fake vendor itself ------------------------------------------------------------------


def _get(url, **kwargs):
    try:
        with urllib.request.urlopen(url, timeout=5, **kwargs) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as err:
        with err:
            return err.code, dict(err.headers), err.read()


def test_fake_vendor_answers_routes_records_requests_and_resets():
    with FakeVendor() as vendor:
        vendor.answer("GET", "/v1/me", json={"id": 1}, headers={"X-Vendor": "yes"})
        status, headers, body = _get(vendor.base_url + "/v1/me?verbose=1")
        assert (status, json.loads(body), headers["X-Vendor"]) == (200, {"id": 1}, "yes")
        assert _get(vendor.base_url + "/v1/other")[0] == 404
        assert [(r.method, r.path, r.query) for r in vendor.requests] == [
            ("GET", "/v1/me", "verbose=1"),
            ("GET", "/v1/other", ""),
        ]
        vendor.fail("429", path="/v1/me", retry_after=7)
        status, headers, _ = _get(vendor.base_url + "/v1/me")
        assert (status, headers["Retry-After"]) == (429, "7")
        assert _get(vendor.base_url + "/v1/other")[0] == 404  # the fault is for /v1/me only
        vendor.fail("5xx")
        assert _get(vendor.base_url + "/v1/other")[0] == 503
        vendor.reset()
        assert vendor.requests == [] and _get(vendor.base_url + "/v1/me")[0] == 404
        with pytest.raises(ValueError):
            vendor.fail("meltdown")


@pytest.mark.parametrize("fault", ["drop", "garbage", "hang"])
def test_fake_vendor_faults_at_the_socket(fault):
    with FakeVendor(hang_seconds=1.0) as vendor:
        vendor.fail(fault)
        port = int(vendor.base_url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
            conn.sendall(b"GET /v1/me HTTP/1.1\r\nHost: vendor\r\n\r\n")
            received = b""
            while chunk := conn.recv(4096):
                received += chunk
        if fault == "garbage":
            assert received and not received.startswith(b"HTTP/")
        else:
            assert received == b""  # dropped at once, or after hanging for hang_seconds
