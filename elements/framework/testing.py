"""The element test kit: what an element's tests are built from, and the tests it gets for free.

- ``FakeVendor``: a small real HTTP server on loopback that a test scripts: routes with canned
  answers, and the faults a vendor has (hang, 5xx, 429 with Retry-After, a dropped connection,
  bytes that are not HTTP). It records every request it was sent.
- ``vendor_pointed_at``/``element_simulator``: point an element's hosts at a fake vendor or at the
  element's simulator (``<KEY>_BASE_URL``); ``element_simulator`` makes the session fixture that
  runs a simulator process for a whole test session.
- ``ElementConformance``: the conformance suite. A test class that subclasses it and provides an
  ``element`` fixture runs, for that element: the catalog and metadata endpoints, valid JSON
  Schemas, an OpenAPI document that passes openapi-spec-validator, both URL styles reaching each
  operation, each vendor fault mapped to the contract's status, configuration validation and the
  masking of secret configuration fields. ``tests/test_element_conformance.py`` runs it for every
  element in the registry.
- ``registered_element_folders``: the registry with extra element folders (an element that lives
  in tests only, such as ``elements/framework/tests/example_element/``).

What the suite needs from an element is in ``elements/<key>/conformance.py``:
``CONFIGURATION``, a valid configuration with every secret field filled (never verified against
the vendor: the suite's instances are created with ``?validate=false``).

Test code only: not in the production image (``.dockerignore``), and nothing in the platform
imports it. See docs/adding-an-element.md.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

import elements
from elements.framework.definition import Element

__all__ = [
    "FAULTS",
    "ElementConformance",
    "FakeVendor",
    "conformance_declaration",
    "element_simulator",
    "registered_element_folders",
    "vendor_pointed_at",
]

# The vendor faults and the status the contract (§2) gives each.
FAULTS = ("hang", "5xx", "429", "drop", "garbage")

API = "/elements/api-v2"


# --- the fake vendor -------------------------------------------------------------------------


@dataclass
class Answer:
    """A canned answer, or a fault (``fault`` set: the other fields are not used)."""

    status: int = 200
    json: Any = None
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    fault: str | None = None
    retry_after: int | None = None


@dataclass(frozen=True)
class Sent:
    """One request the fake vendor received."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes


class FakeVendor:
    """A real HTTP server on 127.0.0.1 (a free port) that answers as a test scripts it.

    with FakeVendor() as vendor:
        vendor.answer("GET", "/v1/me", json={"id": 1})
        vendor.fail("429", retry_after=120)           # every request, until vendor.reset()
        vendor.fail("hang", path="/v1/widgets/1")     # one path only
        vendor.requests                                # what was sent, in order

    A request that matches no scripted route is answered 404 with a JSON body. Faults win over
    routes. ``hang`` holds the request until the vendor stops (or ``hang_seconds``).
    """

    def __init__(self, *, hang_seconds: float = 60.0):
        self.hang_seconds = hang_seconds
        self.requests: list[Sent] = []
        self._routes: dict[tuple[str, str], Answer] = {}
        self._faults: dict[str | None, Answer] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self.base_url = ""

    # scripting
    def answer(
        self,
        method: str,
        path: str,
        *,
        status: int = 200,
        json: Any = None,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
    ) -> None:
        with self._lock:
            self._routes[(method.upper(), path)] = Answer(status, json, body, dict(headers or {}))

    def fail(self, fault: str, *, path: str | None = None, retry_after: int = 1) -> None:
        """Answer every request (or those for ``path``) with ``fault``, one of ``FAULTS``."""
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; one of {', '.join(FAULTS)}")
        with self._lock:
            self._faults[path] = Answer(fault=fault, retry_after=retry_after)

    def reset(self) -> None:
        with self._lock:
            self._routes.clear()
            self._faults.clear()
            self.requests.clear()

    def _answer_for(self, method: str, path: str) -> Answer:
        with self._lock:
            fault = self._faults.get(path) or self._faults.get(None)
            if fault is not None:
                return fault
            return self._routes.get((method, path)) or Answer(
                404, {"error": f"no answer scripted for {method} {path}"}
            )

    # lifecycle
    def start(self) -> FakeVendor:
        vendor = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet: tests read vendor.requests instead
                pass

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                url = urlsplit(self.path)
                with vendor._lock:
                    vendor.requests.append(
                        Sent(self.command, url.path, url.query, dict(self.headers.items()), body)
                    )
                answer = vendor._answer_for(self.command, url.path)
                if answer.fault:
                    return self._fault(answer)
                payload = answer.body
                headers = dict(answer.headers)
                if answer.json is not None:
                    payload = json.dumps(answer.json).encode()
                    headers.setdefault("Content-Type", "application/json")
                self.send_response(answer.status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def _fault(self, answer: Answer):
                self.close_connection = True
                if answer.fault == "hang":
                    vendor._stopping.wait(vendor.hang_seconds)
                elif answer.fault == "drop":
                    self.connection.shutdown(socket.SHUT_RDWR)
                elif answer.fault == "garbage":
                    self.wfile.write(b"\x00\x01 this is not HTTP \xff\r\n\r\n")
                    self.wfile.flush()
                else:
                    status = 503 if answer.fault == "5xx" else 429
                    payload = json.dumps({"error": f"fake vendor {answer.fault}"}).encode()
                    self.send_response(status)
                    if status == 429:
                        self.send_header("Retry-After", str(answer.retry_after))
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}"
        return self

    def stop(self) -> None:
        self._stopping.set()  # hanging answers end
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeVendor:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


# --- pointing an element at a vendor ---------------------------------------------------------


@contextlib.contextmanager
def vendor_pointed_at(element_key: str, base_url: str) -> Iterator[None]:
    """Every host of the element goes to ``base_url`` (``<KEY>_BASE_URL``) while inside."""
    name = f"{element_key.upper()}_BASE_URL"
    previous = os.environ.get(name)
    os.environ[name] = base_url
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = previous


def element_simulator(element_key: str, start: Callable[[], Any]):
    """A session fixture that runs the element's simulator and points the element at it.

    ``start()`` returns a context manager whose value has ``base_url`` (e.g. a
    ``simulators.<key>.testing.SimulatorProcess``, which waits for the simulator's
    ``LISTENING <url>`` line). In a conftest.py::

        simulator = element_simulator("mixpanel", SimulatorProcess)
    """

    @pytest.fixture(scope="session")
    def simulator():
        with start() as sim, vendor_pointed_at(element_key, sim.base_url):
            yield sim

    return simulator


# --- the registry, with element folders that live in tests -----------------------------------


def _clear_registry_caches() -> None:
    # The registry and what is derived from it (routes, documents) are cached per process.
    for name, module in list(sys.modules.items()):
        if name.startswith("elements.framework.") and name != __name__:
            for value in list(vars(module).values()):
                if callable(getattr(value, "cache_clear", None)) and getattr(
                    value, "__module__", ""
                ).startswith("elements.framework."):
                    value.cache_clear()


@contextlib.contextmanager
def registered_element_folders(parent: Path) -> Iterator[None]:
    """The registry also finds the element folders in ``parent`` while inside (each becomes
    ``elements.<folder>``, as if it were under ``elements/``)."""
    parent = str(Path(parent).resolve())
    before = set(sys.modules)
    elements.__path__.append(parent)
    _clear_registry_caches()
    try:
        yield
    finally:
        elements.__path__.remove(parent)
        for name in set(sys.modules) - before:
            if (getattr(sys.modules[name], "__file__", None) or "").startswith(parent):
                del sys.modules[name]
                if name.count(".") == 1:  # elements.<folder>: the package's attribute too
                    vars(elements).pop(name.split(".")[1], None)
        _clear_registry_caches()


# --- the conformance suite -------------------------------------------------------------------


def element_package(element: Element) -> str:
    """The package of the element folder that defines ``element``."""
    for name, module in list(sys.modules.items()):
        if getattr(module, "ELEMENT", None) is element:
            return name
    raise LookupError(f"no loaded package defines the {element.key} element")


@dataclass(frozen=True)
class Declaration:
    configuration: dict
    # For the record checks (contract §9: every record carries its primary key as ``id``):
    # what the fake vendor answers so that every list operation and bulk object has records,
    # as ``(method, path, JSON value or bytes)``; configuration those calls need beyond
    # ``configuration``; path parameters (default "1"); and the list operations whose answer is
    # the vendor's body unchanged (query answers, not records), which are exempt.
    vendor_records: tuple[tuple[str, str, Any], ...] = ()
    record_configuration: dict = field(default_factory=dict)
    path_parameters: dict = field(default_factory=dict)
    query_answers: frozenset[str] = frozenset()


def conformance_declaration(element: Element) -> Declaration:
    """What ``elements/<key>/conformance.py`` declares for the suite."""
    package = element_package(element)
    try:
        module = importlib.import_module(f"{package}.conformance")
    except ModuleNotFoundError as exc:
        if exc.name != f"{package}.conformance":
            raise
        raise AssertionError(
            f"{package} has no conformance.py: declare CONFIGURATION there "
            "(docs/adding-an-element.md)"
        ) from None
    return Declaration(
        configuration=dict(module.CONFIGURATION),
        vendor_records=tuple(getattr(module, "VENDOR_RECORDS", ())),
        record_configuration=dict(getattr(module, "RECORD_CONFIGURATION", {})),
        path_parameters=dict(getattr(module, "PATH_PARAMETERS", {})),
        query_answers=frozenset(getattr(module, "QUERY_ANSWERS", ())),
    )


def list_operations(element: Element, declaration: Declaration) -> list:
    """The resource-style GETs that answer a list of records (an array of objects), but those
    the element declares query answers."""
    return [
        op
        for op in element.operations
        if op.path
        and op.method == "GET"
        and op.output_schema.get("type") == "array"
        and (op.output_schema.get("items") or {}).get("type") == "object"
        and op.id not in declaration.query_answers
    ]


def _record_path(op, declaration: Declaration) -> str:
    import re

    return re.sub(
        r"\{([^}]+)\}", lambda m: str(declaration.path_parameters.get(m.group(1), 1)), op.path
    )


def bulk_records(element: Element, obj, configuration: dict) -> list[dict]:
    """Every record a bulk job of ``obj`` writes, read from its source as the job runner reads
    it (a first run: no checkpoint, no ``where``)."""
    from elements.framework.bulk import BulkQuery
    from elements.framework.dispatch import make_call, vendor_client

    call = make_call(
        element,
        instance_id=0,
        configuration=configuration,
        vendor=vendor_client(element, configuration, idempotent=True),
    )
    query = BulkQuery(object_name=obj.name)
    validate = getattr(obj.bulk, "validate", None)
    if validate is not None:
        validate(query)
    return [json.loads(line) for page in obj.bulk.pages(call, query, None) for line in page.lines()]


def _tenant_headers() -> dict[str, str]:
    from tenants.services import organization_create

    org, user = organization_create(name="Conformance", email="conformance@example.test")
    return {"HTTP_AUTHORIZATION": f"User {user.secret}, Organization {org.secret}"}


def _filled_path(path: str) -> str:
    import re

    return re.sub(r"\{[^}]+\}", "1", path)


def _operation_style_call(op) -> tuple[str, dict | None]:
    """The query string and JSON body that carry an operation's path parameters in operation
    style (where they have no path), filled as ``_filled_path`` fills the path."""
    from urllib.parse import urlencode

    query, body = {}, {}
    for name in op.path_params:
        spec = op.input_schema.get("properties", {}).get(name, {})
        if op.location_of(name, operation_style=True) == "query":
            query[name] = "1"
        else:
            body[name] = 1 if spec.get("type") == "integer" else "1"
    return ("?" + urlencode(query) if query else ""), (body or None)


def _caller(platform, instance: dict):
    """``call(method, url, body=None)`` as the user of ``platform`` with the instance's token."""
    from django.test import Client

    user = platform.defaults["HTTP_AUTHORIZATION"].split(",")[0]
    client = Client(HTTP_AUTHORIZATION=f"{user}, Element {instance['token']}")

    def call(method: str, url: str, body: Any = None):
        kwargs = {} if body is None else {"data": body, "content_type": "application/json"}
        return getattr(client, method.lower())(url, **kwargs)

    return call


def _error_shape(response) -> dict:
    body = response.json()
    assert body["requestId"] == response["Elements-Request-Id"], body
    assert isinstance(body["message"], str) and body["message"], body
    assert "Traceback" not in response.content.decode()
    return body


class ElementConformance:
    """The tests every element passes. Subclass it in a test module and give it an ``element``
    fixture (the Element to test); ``tests/test_element_conformance.py`` does so for every
    element in the registry."""

    # Vendor settings that keep the fault tests short (the deadline's test sets its own).
    FAST_VENDOR = {
        "VENDOR_CONNECT_TIMEOUT": 2.0,
        "VENDOR_READ_TIMEOUT": 1.0,
        "VENDOR_MAX_RETRIES": 1,
        "VENDOR_BACKOFF_FACTOR": 0.01,
        "VENDOR_MAX_RETRY_AFTER": 5.0,
    }
    DEADLINE = 2.0

    # fixtures
    @pytest.fixture
    def declaration(self, element) -> Declaration:
        return conformance_declaration(element)

    @pytest.fixture
    def fake_vendor(self, element):
        with FakeVendor() as vendor, vendor_pointed_at(element.key, vendor.base_url):
            yield vendor

    @pytest.fixture
    def platform(self, db, settings):
        """A Django test client with a new organization's user as the caller."""
        from django.test import Client

        settings.PLATFORM = {**settings.PLATFORM, **self.FAST_VENDOR}
        client = Client()
        client.defaults.update(_tenant_headers())
        return client

    @pytest.fixture
    def instance(self, element, declaration, platform, fake_vendor) -> dict:
        response = platform.post(
            f"{API}/instances?validate=false",
            {
                "element": {"key": element.key},
                "name": "Conformance",
                "configuration": declaration.configuration,
            },
            content_type="application/json",
        )
        assert response.status_code == 200, response.content
        return response.json()

    @pytest.fixture
    def element_call(self, platform, instance):
        """``element_call(method, url, body=None)`` with the instance's token."""
        return _caller(platform, instance)

    @pytest.fixture
    def record_configuration(self, declaration) -> dict:
        return {**declaration.configuration, **declaration.record_configuration}

    @pytest.fixture
    def record_call(self, element, platform, record_configuration, fake_vendor):
        """``element_call`` for an instance that has what the record checks need."""
        response = platform.post(
            f"{API}/instances?validate=false",
            {
                "element": {"key": element.key},
                "name": "Records",
                "configuration": record_configuration,
            },
            content_type="application/json",
        )
        assert response.status_code == 200, response.content
        return _caller(platform, response.json())

    # the catalog
    def test_catalog_lists_the_element(self, element, platform):
        assert element.key in platform.get(f"{API}/elements/keys").json()
        assert element.key in [e["key"] for e in platform.get(f"{API}/elements").json()]
        for key_or_id in (element.key, str(element.id)):
            detail = platform.get(f"{API}/elements/{key_or_id}")
            assert detail.status_code == 200, detail.content
            body = detail.json()
            assert (body["key"], body["id"]) == (element.key, element.id)
            fields = {f["key"]: f for f in body["configuration"]}
            assert set(fields) == {f.key for f in element.configuration}
            assert {k for k, f in fields.items() if f["secret"]} == set(element.secret_keys)

    def test_resources_list_every_operation(self, element, platform):
        resources = platform.get(f"{API}/elements/{element.key}/resources").json()
        assert len(resources) == len(element.operations)
        ids = {r["operationId"] for r in resources}
        assert ids == {op.name or op.id for op in element.operations}

    def test_metadata_and_objects(self, element, platform, element_call, instance):
        metadata = platform.get(f"{API}/elements/{element.key}/metadata")
        assert metadata.status_code == 200, metadata.content
        assert metadata.json()["key"] == element.key
        names = element_call("GET", f"{API}/hubs/{element.hub}/objects").json()
        assert names == [o.name for o in element.objects]
        for name in names:
            response = element_call("GET", f"{API}/hubs/{element.hub}/objects/{name}/metadata")
            assert response.status_code == 200, response.content
            assert response.json()["name"] == name
        # Every bulk object can be synced incrementally: it declares its key and its cursor.
        for obj in element.bulk_objects:
            response = element_call("GET", f"{API}/hubs/{element.hub}/objects/{obj.name}/metadata")
            body = response.json()
            assert body["primaryKey"] and body["cursorField"], (obj.name, body)
            assert (body["primaryKey"], body["cursorField"]) == (obj.primary_key, obj.cursor_field)
            assert obj.cursor_granularity in ("second", "day"), obj.name

    # every record carries its primary key as ``id`` (contract §9)
    def _script_records(self, element, declaration, fake_vendor) -> None:
        needed = list_operations(element, declaration) or element.bulk_objects
        assert declaration.vendor_records or not needed, (
            f"{element.key}: declare VENDOR_RECORDS in conformance.py, the vendor answers that "
            "give each list operation and bulk object records (docs/adding-an-element.md)"
        )
        for method, path, answer in declaration.vendor_records:
            if isinstance(answer, bytes):
                fake_vendor.answer(method, path, body=answer)
            else:
                fake_vendor.answer(method, path, json=answer)

    def test_every_listed_record_carries_its_id(
        self, element, declaration, record_call, fake_vendor
    ):
        self._script_records(element, declaration, fake_vendor)
        for op in list_operations(element, declaration):
            response = record_call(
                "GET", f"{API}/hubs/{element.hub}{_record_path(op, declaration)}"
            )
            assert response.status_code == 200, (op.id, response.content[:300])
            records = response.json()
            assert records, f"{op.id}: no records; script some in VENDOR_RECORDS"
            for record in records:
                assert record.get("id") not in (None, ""), (op.id, record)

    def test_every_bulk_record_carries_its_primary_key_as_id(
        self, element, declaration, record_configuration, fake_vendor
    ):
        from elements.framework.record_ids import primary_key_id

        self._script_records(element, declaration, fake_vendor)
        for obj in element.bulk_objects:
            records = bulk_records(element, obj, record_configuration)
            assert records, f"{obj.name}: no records; script some in VENDOR_RECORDS"
            for record in records:
                key = primary_key_id(record, obj.primary_key)
                assert record.get("id") not in (None, ""), (obj.name, record)
                # A record may lack a key part (an event without $insert_id gets a stable id).
                assert key is None or record["id"] == key, (obj.name, obj.primary_key, record)

    # schemas and documents
    def test_operation_schemas_are_valid_json_schema(self, element):
        from jsonschema.validators import validator_for

        for op in element.operations:
            for schema in (op.input_schema, op.output_schema):
                validator_for(schema).check_schema(schema)

    def test_operation_style_schema_endpoints(self, element, client):
        from jsonschema.validators import validator_for

        for op in element.operations:
            if not op.name:
                continue
            response = client.get(f"/{element.key}/{op.name}")
            assert response.status_code == 200, (op.name, response.content)
            body = response.json()
            assert (body["operation"], body["method"]) == (op.name, op.method)
            for key in ("input_schema", "output_schema"):
                validator_for(body[key]).check_schema(body[key])

    def test_openapi_document_is_valid(self, element, platform):
        from openapi_spec_validator import validate

        doc = platform.get(f"{API}/elements/{element.key}/docs").json()
        validate(doc)
        operation_ids = {o["operationId"] for item in doc["paths"].values() for o in item.values()}
        # Resource style by the operation's id, operation style by its name.
        assert operation_ids == {op.id for op in element.operations if op.path} | {
            op.name for op in element.operations if op.name
        }

    # both URL styles
    def test_both_url_styles_reach_every_operation(
        self, element, element_call, instance, fake_vendor
    ):
        # Whatever the element asks its vendor, the vendor refuses: a call that reached its
        # operation ends in the operation's answer, its input validation (400 with errors), its
        # own 404 (the path's route is confirmed by a 405 naming the operation's method) or the
        # vendor's refusal (providerStatus); never in the router's 404 or 405.
        fake_vendor.fail("5xx")
        methods = {"GET", "POST", "PUT", "PATCH", "DELETE"}
        for op in element.operations:
            answers = []
            routed = False
            query, body = _operation_style_call(op)
            if op.path:
                url = f"{API}/hubs/{element.hub}{_filled_path(op.path)}"
                # A JSON body where operation style sends one, so both are read the same way.
                answers.append(element_call(op.method, url, {} if body else None))
                taken = {o.method for o in element.operations if o.path == op.path}
                other = sorted(methods - taken)
                if other:
                    refused = element_call(other[0], url)
                    assert refused.status_code == 405, (op.id, refused.content)
                    assert op.method in refused["Allow"], (op.id, refused["Allow"])
                    routed = True
            if op.name:
                url = f"/{element.key}/{op.name}/{instance['id']}{query}"
                answers.append(element_call(op.method, url, body))
            for response in answers:
                assert response.status_code != 405, (op.id, response.content)
                if response.status_code >= 400:
                    body = _error_shape(response)
                    if response.status_code == 404:
                        assert routed or "providerStatus" in body, (op.id, body)
                    if response.status_code == 400:
                        assert body.get("errors") or "providerStatus" in body, (op.id, body)
            assert len({r.status_code for r in answers}) == 1, (
                op.id,
                [(r.status_code, r.content[:200]) for r in answers],
            )

    # vendor faults (probed with /ping, which every element has: one cheap vendor call)
    @pytest.mark.parametrize(
        "fault,status",
        [("5xx", 502), ("429", 429), ("garbage", 502), ("drop", 502)],
    )
    def test_vendor_fault_maps_to_contract_status(
        self, element, element_call, fake_vendor, fault, status
    ):
        fake_vendor.fail(fault, retry_after=120)  # longer than the cap: answered at once
        started = time.monotonic()
        response = element_call("GET", f"{API}/hubs/{element.hub}/ping")
        assert response.status_code == status, response.content
        body = _error_shape(response)
        if fault == "5xx":
            assert body["providerStatus"] == 503
        if fault == "429":
            assert body["providerStatus"] == 429 and response["Retry-After"] == "120"
        assert fake_vendor.requests, "the element never called its vendor"
        assert time.monotonic() - started < 15

    def test_hanging_vendor_ends_at_the_deadline(
        self, element, element_call, fake_vendor, settings
    ):
        settings.PLATFORM = {
            **settings.PLATFORM,
            "VENDOR_CALL_DEADLINE": self.DEADLINE,
            "VENDOR_READ_TIMEOUT": 30.0,
        }
        fake_vendor.fail("hang")
        started = time.monotonic()
        response = element_call("GET", f"{API}/hubs/{element.hub}/ping")
        elapsed = time.monotonic() - started
        assert response.status_code == 504, response.content
        _error_shape(response)
        # Within the deadline, and a generous margin for a loaded machine.
        assert self.DEADLINE * 0.8 <= elapsed < self.DEADLINE + 2.0

    # configuration
    def test_configuration_is_validated(self, element, declaration, platform, fake_vendor):
        def create(configuration):
            return platform.post(
                f"{API}/instances?validate=false",
                {"element": {"key": element.key}, "name": "Bad", "configuration": configuration},
                content_type="application/json",
            )

        required = {f.key for f in element.configuration if f.required}
        if required:
            response = create({})
            assert response.status_code == 400, response.content
            named = {e["field"] for e in _error_shape(response)["errors"]}
            assert named >= {f"configuration.{k}" for k in required}
        response = create({**declaration.configuration, "no.such.key": "x"})
        assert response.status_code == 400, response.content
        assert "configuration.no.such.key" in {e["field"] for e in response.json()["errors"]}
        for config_field in element.configuration:
            # An object with a list in it is a valid value of no configuration field, whatever
            # its type (an integer_map's error names the key inside it).
            response = create({**declaration.configuration, config_field.key: {"not": ["x"]}})
            assert response.status_code == 400, (config_field.key, response.content)
            named = {e["field"] for e in _error_shape(response)["errors"]}
            field_name = f"configuration.{config_field.key}"
            assert field_name in named or f"{field_name}.not" in named, (field_name, named)
        response = create("not an object")
        assert response.status_code == 400 and response.json()["errors"]

    def test_secret_configuration_is_masked(self, element, declaration, platform, instance):
        secrets = {
            key: value
            for key, value in declaration.configuration.items()
            if key in element.secret_keys and value
        }
        assert secrets, "CONFIGURATION in conformance.py should fill the secret fields"
        for response in (
            platform.get(f"{API}/instances/{instance['id']}"),
            platform.get(f"{API}/instances"),
        ):
            assert response.status_code == 200, response.content
            text = response.content.decode()
            for value in secrets.values():
                assert str(value) not in text
        for body in (instance, platform.get(f"{API}/instances/{instance['id']}").json()):
            for key in secrets:
                assert body["configuration"][key] == "********"
