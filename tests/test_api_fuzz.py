"""schemathesis fuzzes the platform's OpenAPI document against the running platform: gunicorn
with DEBUG=0 (``tests/live_platform.py``), PostgreSQL in CI, the Mixpanel simulator as vendor.

Every operation gets valid and invalid inputs with the headers its security scheme names (a
tenant with an instance for element calls and bulk jobs, a second tenant with an instance of its
own for platform calls, so that fuzzed deletes and token rotations do not stop the element
calls), and a few calls without auth. No response may be a 5xx but the vendor's 502/504 where
the document lists them; valid inputs' answers must also match the document.

Reproducible and bounded: hypothesis derandomized, a fixed number of examples per operation
(``FUZZ_MAX_EXAMPLES``, default 25), no shrinking, no example database.
"""

import json
import os
import re
import urllib.request

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from conftest import SA_CONFIGURATION
from tests.live_platform import LivePlatform

MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "25"))
UNAUTHENTICATED_EXAMPLES = 3
VENDOR_STATUSES = {502, 504}
DOC_PATH = "/elements/api-v2/openapi.json"
CONFORMANCE_CHECKS = [
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def _settings(max_examples: int):
    return settings(
        max_examples=max_examples,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )


def _post(platform, path: str, auth: str, body=None) -> dict:
    request = urllib.request.Request(
        platform.base_url + path,
        data=json.dumps(body).encode() if body is not None else b"",
        method="POST",
        headers={"Authorization": auth, "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


@pytest.fixture(scope="module")
def platform(simulator):
    simulator.reset()  # no fault switch left by an earlier test module
    with LivePlatform(
        mixpanel_base_url=simulator.base_url, workers=1, threads=4, collect_static=True
    ) as live:
        yield live


@pytest.fixture(scope="module")
def fixtures(platform):
    """Who calls what: the live tenant's instance for element calls, a second tenant for
    platform calls, and a bulk job to fuzz the bulk paths on."""
    element_instance = platform.create_instance(SA_CONFIGURATION)
    other = json.loads(
        platform.manage("create_organization", "Fuzz", "--email", "fuzz@x.test", "--json")
    )
    platform_auth = f"User {other['user_secret']}, Organization {other['organization_secret']}"
    platform_instance = _post(
        platform,
        "/elements/api-v2/instances",
        platform_auth,
        {"element": {"key": "mixpanel"}, "name": "fuzzed", "configuration": SA_CONFIGURATION},
    )
    element_auth = platform.element_auth(element_instance["token"])
    job = _post(
        platform,
        "/elements/api-v2/bulk/query?q=select%20*%20from%20service-accounts",
        element_auth,
    )
    return {
        "auth": {"UserOrganization": platform_auth, "UserElement": element_auth},
        "element_instance": element_instance["id"],
        "platform_instance": platform_instance["id"],
        "job": job["id"],
    }


class _AuthorizationHeader:
    """The operation's Authorization header, set last on every request of the session: invalid
    (negative) cases may otherwise drop it, and then only test the authentication."""

    value: str | None = None

    def __call__(self, request):
        if self.value:
            request.headers["Authorization"] = self.value
        return request


def _scheme(operation) -> str | None:
    for requirement in operation.definition.raw.get("security", []):
        for name in requirement:
            return name
    return None


def _pinned(operation, fixtures) -> dict:
    """Path parameters that name real objects, so valid inputs reach past the 404."""
    path = operation.path
    if path.startswith("/mixpanel/"):
        return {"instanceId": fixtures["element_instance"]}
    pinned = {}
    if "{instanceId}" in path and operation.method.upper() != "DELETE":
        pinned["instanceId"] = fixtures["platform_instance"]
    if "{keyOrId}" in path:
        pinned["keyOrId"] = "mixpanel"
    if path.startswith("/elements/api-v2/bulk/{id}"):
        pinned["id"] = fixtures["job"]
    if "{objectName}" in path:
        pinned["objectName"] = "service-accounts"
    return pinned


def _server_error(operation, response) -> str | None:
    status = response.status_code
    if status < 500:
        return None
    if status in VENDOR_STATUSES and str(status) in operation.definition.raw["responses"]:
        return None
    return f"{status}: {response.text[:300]}"


def _fuzz(
    operation,
    strategy,
    *,
    headers,
    max_examples,
    checks,
    findings,
    session,
    base_url,
    negative=False,
):
    """Runs ``max_examples`` cases; appends to ``findings["server"]`` every forbidden 5xx (and
    every success of a call that needs auth and sent none) and to ``findings["conformance"]``
    every answer ``checks`` reject."""

    @_settings(max_examples)
    @given(case=strategy)
    def run(case):
        session.auth.value = headers.get("Authorization")
        response = case.call(base_url=base_url, session=session, headers=headers, timeout=30)
        findings["statuses"][response.status_code] = (
            findings["statuses"].get(response.status_code, 0) + 1
        )
        error = _server_error(operation, response)
        if not headers and _scheme(operation) and response.status_code < 300:
            error = f"{response.status_code} without authentication"
        if error:
            findings["server"].append(f"{case.method} {case.formatted_path} {case.query}: {error}")
            return
        if checks:
            try:
                case.validate_response(response, checks=checks, headers=headers)
            except (Failure, FailureGroup) as exc:  # collected: every operation still runs
                findings["conformance"].append(
                    f"{case.method} {case.formatted_path}: {str(exc)[:600]}"
                )

    try:
        run()
    except Unsatisfiable:
        if not negative:
            raise
        # An operation without inputs (GET /elements) has no invalid ones to send.


def test_fuzzing_the_document_finds_no_server_error(simulator, platform, fixtures):
    schema = schemathesis.openapi.from_url(platform.base_url + DOC_PATH)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 30
    session = requests.Session()
    session.auth = _AuthorizationHeader()
    findings = {"server": [], "conformance": [], "statuses": {}}
    for operation in operations:
        # Fuzzed deletes reach the simulator's seeded service accounts, the instance's own
        # among them: each operation starts from the seeded vendor state.
        simulator.reset()
        scheme = _scheme(operation)
        headers = {"Authorization": fixtures["auth"][scheme]} if scheme else {}
        common = {"session": session, "base_url": platform.base_url, "findings": findings}
        pinned = _pinned(operation, fixtures)
        _fuzz(
            operation,
            operation.as_strategy(GenerationMode.POSITIVE, path_parameters=pinned or None),
            headers=headers,
            max_examples=MAX_EXAMPLES,
            checks=CONFORMANCE_CHECKS,
            **common,
        )
        _fuzz(
            operation,
            operation.as_strategy(GenerationMode.NEGATIVE),
            negative=True,
            headers=headers,
            max_examples=MAX_EXAMPLES,
            checks=[],
            **common,
        )
        if scheme:
            _fuzz(
                operation,
                operation.as_strategy(GenerationMode.POSITIVE),
                headers={},
                max_examples=UNAUTHENTICATED_EXAMPLES,
                checks=[],
                **common,
            )
    print("fuzzed:", len(operations), "operations; answers by status:", findings["statuses"])
    # Each operation was called (minus the few with no invalid input), and beyond its 4xx.
    assert sum(findings["statuses"].values()) >= len(operations) * MAX_EXAMPLES
    assert sum(n for status, n in findings["statuses"].items() if status < 300) >= len(operations)
    log = (platform.tmp / "gunicorn.log").read_text(errors="replace")
    assert not findings["server"], "\n".join(findings["server"][:20])
    assert not findings["conformance"], "\n".join(findings["conformance"][:20])
    assert "Traceback" not in log and " ERROR " not in log, log[-3000:]


def test_reference_pages_and_their_assets_are_served_by_the_platform(platform):
    """Under gunicorn with DEBUG=0, after collectstatic (as the Dockerfile runs it): the pages
    and every asset they name come from the platform itself, no other host."""
    session = requests.Session()
    for page in ("/elements/api-v2/api-docs/", "/elements/api-v2/redoc/"):
        response = session.get(platform.base_url + page, timeout=30)
        assert response.status_code == 200 and response.headers["Content-Type"].startswith(
            "text/html"
        )
        assets = re.findall(r'(?:src|href)="([^"]+)"', response.text)
        assert assets and all(a.startswith("/") and not a.startswith("//") for a in assets)
        for asset in assets:
            served = session.get(platform.base_url + asset.replace("&amp;", "&"), timeout=30)
            assert served.status_code == 200, asset
            assert served.content, asset
    document = session.get(platform.base_url + DOC_PATH, timeout=30)
    assert document.status_code == 200
    assert document.json()["openapi"] == "3.1.0"
