"""Hostile input (contract §1, §2, §3, §5): no input, however malformed, is a 500 or a stack trace.

Every case below sends one bad request and checks that the answer is a 4xx (the exact status where
the contract fixes it) in the error shape of §2, that ``requestId`` equals the
``Elements-Request-Id`` header, and that nothing was written. No case needs the Mixpanel simulator:
instances are created with ``?validate=false`` and every element call fails before any vendor call.
"""

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from django.test import Client, override_settings

from instances.models import Instance
from tenants.models import TenantUser

pytestmark = pytest.mark.django_db

BASE = "/elements/api-v2"
INSTANCES = f"{BASE}/instances"
CREATE = f"{INSTANCES}?validate=false"
HUB = f"{BASE}/hubs/general"

ERROR_KEYS = {"requestId", "message", "errors", "providerMessage", "providerStatus"}
MAX_ERROR_BODY = 16_000  # an error never echoes a huge input back
MB = 1024 * 1024

# The instances' own configuration: its secrets must never come back in an error either.
INSTANCE_PASSWORD = "instance-password-do-not-echo-7f3a9c"
CONFIGURATION = {
    "username": "svc.user-do-not-echo-41d2",
    "password": INSTANCE_PASSWORD,
    "organization_id": 1001,
}


# --- the world every case runs in ------------------------------------------------------------


@dataclass
class World:
    tenant: object
    other: object
    iid: int
    token: str
    other_iid: int
    other_token: str
    disabled_iid: int
    disabled_token: str

    @property
    def secrets(self) -> list[str]:
        return [
            self.tenant.user_secret,
            self.tenant.organization_secret,
            self.other.user_secret,
            self.other.organization_secret,
            self.token,
            self.other_token,
            self.disabled_token,
            INSTANCE_PASSWORD,
            CONFIGURATION["username"],
        ]


def _create_instance(tenant, name: str) -> dict:
    response = tenant.client().post(
        CREATE,
        {"element": {"key": "mixpanel"}, "name": name, "configuration": CONFIGURATION},
        format="json",
    )
    assert response.status_code == 200, response.content
    return response.json()


@pytest.fixture
def world(tenant, other_tenant) -> World:
    mine = _create_instance(tenant, "Mine")
    theirs = _create_instance(other_tenant, "Theirs")
    disabled = _create_instance(tenant, "Disabled")
    response = tenant.client().delete(f"{INSTANCES}/{disabled['id']}/enabled")
    assert response.status_code == 200, response.content
    return World(
        tenant=tenant,
        other=other_tenant,
        iid=mine["id"],
        token=mine["token"],
        other_iid=theirs["id"],
        other_token=theirs["token"],
        disabled_iid=disabled["id"],
        disabled_token=disabled["token"],
    )


# --- cases -----------------------------------------------------------------------------------

Auth = str | Callable[[World], str | None]


@dataclass(frozen=True)
class Case:
    id: str
    method: str
    path: str  # may name {iid}, {other_iid}, {disabled_iid}
    status: int | tuple[int, ...]
    body: bytes | None = None
    content_type: str = "application/json"
    auth: Auth = "platform"  # "platform", "element", "none", or a function of the world
    extra: dict = field(default_factory=dict)  # WSGI environ overrides (headers as HTTP_*)
    settings: dict = field(default_factory=dict)


def j(value) -> bytes:
    return json.dumps(value).encode()


_DROP = object()


def create_body(**changes) -> bytes:
    """A valid create body with ``changes`` applied (``_DROP`` removes a key)."""
    body = {"element": {"key": "mixpanel"}, "name": "ok", "configuration": dict(CONFIGURATION)}
    for key, value in changes.items():
        if value is _DROP:
            body.pop(key, None)
        else:
            body[key] = value
    return j(body)


def config_body(**changes) -> bytes:
    configuration = dict(CONFIGURATION)
    configuration.update(changes)
    return create_body(configuration=configuration)


def post(id, body, status=400, **kw) -> Case:
    return Case(id, "POST", CREATE, status, body=body, **kw)


def auth_case(id, header: Auth, path=INSTANCES, status=401, **kw) -> Case:
    return Case(id, "GET", path, status, auth=header, **kw)


def element_get(id, path, status, **kw) -> Case:
    kw.setdefault("auth", "element")
    return Case(id, "GET", path, status, **kw)


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


HEADER_CASES = [
    auth_case("auth-missing", "none"),
    auth_case("auth-empty", lambda w: ""),
    auth_case("auth-only-user", lambda w: "User x"),
    auth_case("auth-only-real-user", lambda w: f"User {w.tenant.user_secret}"),
    auth_case("auth-unknown-scheme", lambda w: "Token abc123"),
    auth_case("auth-bearer-bare", lambda w: "Bearer"),
    auth_case("auth-bearer", lambda w: "Bearer eyJhbGciOiJub25lIn0.e30."),
    auth_case("auth-basic", lambda w: "Basic dXNlcjpwYXNz"),
    auth_case("auth-commas-only", lambda w: " , ,, "),
    auth_case(
        "auth-duplicate-user",
        lambda w: (
            f"User {w.tenant.user_secret}, User x, Organization {w.tenant.organization_secret}"
        ),
    ),
    auth_case(
        "auth-duplicate-scheme-case",
        lambda w: (
            f"user {w.tenant.user_secret}, USER {w.tenant.user_secret}, "
            f"Organization {w.tenant.organization_secret}"
        ),
    ),
    auth_case("auth-5000-chars", lambda w: "User " + "a" * 5000 + ", Organization b"),
    auth_case("auth-100k-chars", lambda w: "x" * 100_000),
    auth_case("auth-latin1-e-acute", lambda w: "User \u00e9\u00e9, Organization \u00e9"),
    auth_case("auth-mojibake-bytes", lambda w: "User \xc3\xa9\xff\xfe, Organization \x80"),
    auth_case("auth-line-separator", lambda w: "User a\u2028b, Organization c"),
    auth_case("auth-emoji", lambda w: "User \U0001f600, Organization \U0001f4a9"),
    auth_case("auth-nul", lambda w: f"User {w.tenant.user_secret}\x00, Organization x\x00y"),
    auth_case("auth-tabs-newlines", lambda w: "User\ta,\r\nOrganization\tb"),
    auth_case(
        "auth-header-injection",
        lambda w: (
            f"User {w.tenant.user_secret}\r\nX-Evil: 1, Organization {w.tenant.organization_secret}"
        ),
    ),
    auth_case(
        "auth-wrong-org",
        lambda w: f"User {w.tenant.user_secret}, Organization {w.other.organization_secret}",
    ),
    auth_case(
        "auth-secrets-swapped",
        lambda w: f"User {w.tenant.organization_secret}, Organization {w.tenant.user_secret}",
    ),
    auth_case("auth-element-token-on-platform", lambda w: w.tenant.element_auth(w.token)),
    auth_case("auth-semicolons", lambda w: f"User {w.tenant.user_secret}; Organization x"),
    auth_case("auth-surrogate", lambda w: "User \ud800, Organization \udfff"),
    # Content-Length the middleware must refuse before reading anything.
    Case("content-length-abc", "POST", CREATE, 400, body=b"{}", extra={"CONTENT_LENGTH": "abc"}),
    Case(
        "content-length-negative", "POST", CREATE, 400, body=b"{}", extra={"CONTENT_LENGTH": "-1"}
    ),
    Case("content-length-float", "POST", CREATE, 400, body=b"{}", extra={"CONTENT_LENGTH": "1e3"}),
    Case(
        "content-length-huge",
        "POST",
        CREATE,
        413,
        body=b"{}",
        extra={"CONTENT_LENGTH": "99999999999999999999999"},
    ),
    Case(
        "content-length-unauthenticated-huge",
        "POST",
        CREATE,
        413,
        body=b"{}",
        auth="none",
        extra={"CONTENT_LENGTH": str(10**12)},
    ),
    # Content-Type other than JSON.
    post("content-type-text", create_body(), 415, content_type="text/plain"),
    post(
        "content-type-xml",
        b"<instance><name>x</name></instance>",
        415,
        content_type="application/xml",
    ),
    post(
        "content-type-multipart",
        b'--x\r\nContent-Disposition: form-data; name="name"\r\n\r\nx\r\n--x--\r\n',
        415,
        content_type="multipart/form-data; boundary=x",
    ),
    post(
        "content-type-form", b"name=x&tags=a", 415, content_type="application/x-www-form-urlencoded"
    ),
    post("content-type-octet", create_body(), 415, content_type="application/octet-stream"),
    post("content-type-empty", create_body(), 415, content_type=""),
    post("content-type-1000-chars", create_body(), 415, content_type="application/" + "j" * 1000),
    # An unknown charset is ignored by Django (the body is read as UTF-8): success is fine.
    post("charset-bogus", b'{"name": 1}', 400, content_type="application/json; charset=nope"),
    Case(
        "charset-rot13-no-query",
        "POST",
        INSTANCES,
        (400, 415),
        body=b"{",
        content_type="application/json; charset=rot13",
    ),
    post(
        "charset-utf16-on-utf8-body",
        create_body(),
        400,
        content_type="application/json; charset=utf-16",
    ),
    # A browser's Accept never turns an error into an HTML page, nor into a 406.
    auth_case("accept-html-on-error", "none", extra={"HTTP_ACCEPT": "text/html"}),
    post("accept-html-on-bad-body", b"{", extra={"HTTP_ACCEPT": "text/html"}),
    post("accept-xml-on-bad-field", create_body(name=5), extra={"HTTP_ACCEPT": "application/xml"}),
    auth_case("host-not-allowed", "platform", status=400, extra={"HTTP_HOST": "evil.example"}),
]

JSON_CASES = [
    post("json-empty-body", b""),
    post("json-whitespace-body", b"  \n\t "),
    post("json-truncated", b'{"element": {"key": "mixpanel"}, "name": "x'),
    post("json-trailing-garbage", create_body() + b" garbage"),
    post("json-two-documents", create_body() + create_body()),
    post("json-single-quotes", b"{'element': {'key': 'mixpanel'}, 'name': 'x'}"),
    post("json-unquoted-keys", b'{element: {key: "mixpanel"}}'),
    post("json-trailing-comma", b'{"name": "x",}'),
    post("json-comment", b'{"name": "x" /* hi */}'),
    post("json-nan", create_body(name="__NAN__").replace(b'"__NAN__"', b"NaN")),
    post("json-infinity", create_body(name="__INF__").replace(b'"__INF__"', b"Infinity")),
    post(
        "json-minus-infinity",
        create_body(traceLoggingEnabled="__I__").replace(b'"__I__"', b"-Infinity"),
    ),
    post("json-1e999", create_body(name="__BIG__").replace(b'"__BIG__"', b"1e999")),
    post("json-5000-digit-int", create_body(element="__BIG__").replace(b'"__BIG__"', b"9" * 5000)),
    post("json-invalid-utf8", b'{"name": "\xff\xfe\xc3\x28", "element": {"key": "mixpanel"}}'),
    post("json-overlong-utf8", b'{"name": "\xc0\xaf"}'),
    post("json-utf16-bom", create_body().decode().encode("utf-16")),
    post("json-utf32", create_body().decode().encode("utf-32-le")),
    post("json-utf8-bom", b"\xef\xbb\xbf" + create_body(), (200, 400)),
    post("json-raw-control-char", b'{"name": "a\x01b"}'),
    post("json-bad-escape", b'{"name": "\\x41"}'),
    post("json-top-level-array", b"[]"),
    post("json-top-level-array-of-body", b"[" + create_body() + b"]"),
    post("json-top-level-string", b'"instance"'),
    post("json-top-level-number", b"42"),
    post("json-top-level-null", b"null"),
    post("json-top-level-true", b"true"),
    post("json-empty-object", b"{}"),
    post("json-nested-10000-arrays", nested(10_000).encode()),
    post("json-nested-10000-objects", ('{"a":' * 10_000 + "1" + "}" * 10_000).encode()),
    post(
        "json-nested-100000-in-name",
        create_body(name="__N__").replace(b'"__N__"', nested(100_000).encode()),
    ),
    post(
        "json-nested-900-in-name",
        create_body(name="__N__").replace(b'"__N__"', nested(900).encode()),
    ),
    post(
        "json-nested-990-in-config",
        config_body(username="__N__").replace(b'"__N__"', nested(990).encode()),
    ),
    post(
        "json-duplicate-keys-bad-last",
        b'{"element": {"key": "mixpanel"}, "name": "ok", "name": 5, "configuration": {}}',
    ),
]

FIELD_CASES = [
    post("name-int", create_body(name=5)),
    post("name-float", create_body(name=1.5)),
    post("name-list", create_body(name=["a"])),
    post("name-object", create_body(name={"a": 1})),
    post("name-null", create_body(name=None)),
    post("name-true", create_body(name=True)),
    post("name-empty", create_body(name="")),
    post("name-whitespace", create_body(name=" \t\n\u3000 ")),
    post("name-only-markup", create_body(name="<script></script>")),
    post("name-256-chars", create_body(name="n" * 256)),
    post("name-1mb", create_body(name="n" * MB)),
    post("name-nul", create_body(name="\u0000")),
    post("name-embedded-nul", create_body(name="abc\u0000def")),
    post("name-missing", create_body(name=_DROP)),
    post("tags-string", create_body(tags="a,b")),
    post("tags-object", create_body(tags={"a": 1})),
    post("tags-null", create_body(tags=None)),
    post("tags-ints", create_body(tags=[1, 2])),
    post("tags-nested", create_body(tags=[["a"]])),
    post("tags-null-item", create_body(tags=[None])),
    post("tags-empty-string", create_body(tags=[""])),
    post("tags-1000", create_body(tags=[f"t{i}" for i in range(1000)])),
    post("tags-1mb-tag", create_body(tags=["t" * MB])),
    post("tags-nul", create_body(tags=["a\u0000"])),
    post("configuration-list", create_body(configuration=[CONFIGURATION])),
    post("configuration-string", create_body(configuration=json.dumps(CONFIGURATION))),
    post("configuration-null", create_body(configuration=None)),
    post("configuration-int", create_body(configuration=1)),
    post("configuration-missing", create_body(configuration=_DROP)),
    post("configuration-empty", create_body(configuration={})),
    post("config-username-int", config_body(username=5)),
    post("config-username-list", config_body(username=["a"])),
    post("config-username-object", config_body(username={"a": "b"})),
    post("config-username-empty", config_body(username="")),
    post("config-username-mask", config_body(username="********")),
    post("config-username-nul", config_body(username="a\u0000b")),
    post("config-username-1mb", config_body(username="u" * MB)),
    post("config-password-bool", config_body(password=True)),
    post("config-org-id-string", config_body(organization_id="abc")),
    post("config-org-id-float", config_body(organization_id=1.5)),
    post("config-org-id-bool", config_body(organization_id=True)),
    post("config-org-id-negative-string", config_body(organization_id="-5")),
    post("config-org-id-huge-string", config_body(organization_id="9" * 40)),
    # Arabic-Indic digits are digits to int(): accepting "١٢" as 12 is fine, crashing is not.
    post("config-org-id-arabic-digits", config_body(organization_id="\u0661\u0662"), (200, 400)),
    post("config-org-id-superscript", config_body(organization_id="\u00b2")),
    post("config-org-id-circled", config_body(organization_id="12\u2460")),
    post("config-project-id-list", config_body(project_id=[1])),
    post("config-region-unknown", config_body(region="MARS")),
    post("config-region-int", config_body(region=1)),
    post("config-region-nul", config_body(region="US\u0000")),
    post("config-unknown-key", config_body(nope="x")),
    post("config-unknown-key-1mb", config_body(**{"k" * MB: "x"})),
    post("config-unknown-key-surrogate", config_body(**{"\ud800": "x"})),
    post("config-101-keys", create_body(configuration={f"k{i}": "v" for i in range(101)})),
    post("unknown-top-level-field", create_body(nope=1)),
    post("unknown-top-level-field-1mb-name", create_body(**{"f" * MB: 1})),
    post("read-only-field-on-create", create_body(token="mine")),
    post("element-missing", create_body(element=_DROP)),
    post("element-string", create_body(element="mixpanel")),
    post("element-null", create_body(element=None)),
    post("element-list", create_body(element=["mixpanel"])),
    post("element-empty-object", create_body(element={})),
    post("element-key-int", create_body(element={"key": 5})),
    post("element-key-empty", create_body(element={"key": ""})),
    post("element-key-1mb", create_body(element={"key": "m" * MB})),
    post("element-id-string", create_body(element={"id": "x"})),
    post("element-id-bool", create_body(element={"id": True})),
    post("element-id-float", create_body(element={"id": 13973.5})),
    post("element-unknown-key", create_body(element={"key": "nope"}), 404),
    post("element-key-traversal", create_body(element={"key": "../../etc/passwd"}), 404),
    post("element-unknown-id", create_body(element={"id": 1}), 404),
    post("element-negative-id", create_body(element={"id": -13973}), 404),
    post("element-huge-id", create_body(element={"id": 99999999999999999999999}), 404),
    post("element-neither-key-nor-id", create_body(element={"name": "mixpanel"}), (400, 404)),
    post("trace-logging-yes", create_body(traceLoggingEnabled="yes")),
    post("trace-logging-int", create_body(traceLoggingEnabled=1)),
    post("trace-logging-null", create_body(traceLoggingEnabled=None)),
    post("validate-maybe", create_body(), extra={"QUERY_STRING": "validate=maybe"}),
    post("validate-empty", create_body(), extra={"QUERY_STRING": "validate="}),
    post("validate-nul", create_body(), extra={"QUERY_STRING": "validate=%00"}),
    Case(
        "under-element-url-other-element",
        "POST",
        f"{BASE}/elements/mixpanel/instances?validate=false",
        (400, 404),
        body=create_body(element={"key": "nope"}),
    ),
    Case(
        "under-unknown-element-url",
        "POST",
        f"{BASE}/elements/nope/instances?validate=false",
        404,
        body=create_body(),
    ),
    # Updates that fail leave the row exactly as it was.
    Case("patch-name-int", "PATCH", f"{INSTANCES}/{{iid}}", 400, body=j({"name": 5})),
    Case(
        "patch-name-then-bad-config",
        "PATCH",
        f"{INSTANCES}/{{iid}}?validate=false",
        400,
        body=j({"name": "renamed", "tags": ["x"], "configuration": {"region": "MARS"}}),
    ),
    Case(
        "patch-unknown-config-key",
        "PATCH",
        f"{INSTANCES}/{{iid}}?validate=false",
        400,
        body=j({"configuration": {"nope": 1}}),
    ),
    Case(
        "patch-validate-maybe",
        "PATCH",
        f"{INSTANCES}/{{iid}}?validate=maybe",
        400,
        body=j({"name": "renamed"}),
    ),
    Case("patch-array-body", "PATCH", f"{INSTANCES}/{{iid}}", 400, body=j([{"name": "x"}])),
    Case("patch-invalid-json", "PATCH", f"{INSTANCES}/{{iid}}", 400, body=b'{"name": '),
    Case(
        "patch-other-element",
        "PATCH",
        f"{INSTANCES}/{{iid}}",
        (400, 404),
        body=j({"element": {"key": "nope"}}),
    ),
    Case(
        "put-missing-configuration",
        "PUT",
        f"{INSTANCES}/{{iid}}?validate=false",
        400,
        body=j({"name": "replaced"}),
    ),
    Case(
        "put-tags-ints",
        "PUT",
        f"{INSTANCES}/{{iid}}?validate=false",
        400,
        body=j({"name": "replaced", "configuration": CONFIGURATION, "tags": [1]}),
    ),
    Case(
        "patch-other-tenants-instance",
        "PATCH",
        f"{INSTANCES}/{{other_iid}}?validate=false",
        404,
        body=j({"name": "stolen"}),
    ),
    Case("delete-other-tenants-instance", "DELETE", f"{INSTANCES}/{{other_iid}}", 404),
    Case("token-other-tenants-instance", "PUT", f"{INSTANCES}/{{other_iid}}/token", 404),
    Case("enable-other-tenants-instance", "PUT", f"{INSTANCES}/{{other_iid}}/enabled", 404),
]

SIZE_CASES = [
    post(
        "body-over-configured-limit",
        create_body(name="n" * 4096),
        413,
        settings={"MAX_REQUEST_BYTES": 2048, "DATA_UPLOAD_MAX_MEMORY_SIZE": 2048},
    ),
    Case(
        "element-call-body-over-configured-limit",
        "GET",
        f"{HUB}/ping",
        413,
        body=j({"x": "y" * 4096}),
        auth="element",
        settings={"MAX_REQUEST_BYTES": 2048, "DATA_UPLOAD_MAX_MEMORY_SIZE": 2048},
    ),
    Case(
        "patch-body-over-configured-limit",
        "PATCH",
        f"{INSTANCES}/{{iid}}",
        413,
        body=j({"name": "n" * 4096}),
        settings={"MAX_REQUEST_BYTES": 2048, "DATA_UPLOAD_MAX_MEMORY_SIZE": 2048},
    ),
]

# A NUL anywhere in the URL is refused (400) before routing: PostgreSQL text cannot hold it.
BAD_IDS = [
    "abc",
    "-1",
    "0",
    "99999999999999999999999",
    "1.5",
    "1e3",
    "0x10",
    "%20",
    "%E2%80%AE1",
]


INVALID_UTF8 = b"\xff\xfe"


def _cursor(value) -> str:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


PATH_CASES = [
    *(Case(f"instance-id-{i}", "GET", f"{INSTANCES}/{bad}", 404) for i, bad in enumerate(BAD_IDS)),
    Case("instance-id-nul", "GET", f"{INSTANCES}/%00", 400),
    Case("instance-id-nul-suffix", "DELETE", f"{INSTANCES}/{{iid}}%00", 400),
    Case("instance-id-other-tenant", "GET", f"{INSTANCES}/{{other_iid}}", 404),
    Case("delete-instance-id-abc", "DELETE", f"{INSTANCES}/abc", 404),
    Case(
        "patch-instance-id-huge", "PATCH", f"{INSTANCES}/99999999999999999999999", 404, body=b"{}"
    ),
    Case("enabled-instance-id-negative", "PUT", f"{INSTANCES}/-1/enabled", 404),
    Case("token-instance-id-nul", "PUT", f"{INSTANCES}/%00/token", 400),
    Case("under-element-instance-id-bad", "GET", f"{BASE}/elements/mixpanel/instances/abc", 404),
    Case("unknown-root-url", "GET", "/nope", 404),
    Case("unknown-deep-root-url", "GET", "/a/b/c/d/e", 404),
    Case("unknown-root-url-uppercase", "GET", "/NOPE/x", 404),
    Case("unknown-root-url-unauthenticated", "GET", "/nope/x/y/z", 404, auth="none"),
    Case("api-base-without-slash", "GET", BASE, 404),
    Case("api-base-with-slash", "GET", f"{BASE}/", 404),
    Case("unknown-element", "GET", f"{BASE}/elements/nope", 404),
    Case("unknown-element-huge-id", "GET", f"{BASE}/elements/99999999999999999999999", 404),
    Case("unknown-element-nul", "GET", f"{BASE}/elements/%00/resources", 400),
    Case("unknown-element-docs", "GET", f"{BASE}/elements/{'x' * 5000}/docs", 404),
    Case("unknown-element-instances", "GET", f"{BASE}/elements/nope/instances", 404),
    # Any other path under the base may be a resource (§5a), so it wants the Element header.
    Case("unknown-api-url-as-platform-user", "GET", f"{BASE}/nope", (401, 404)),
    Case("unknown-api-url", "GET", f"{BASE}/nope", 404, auth="element"),
    Case("unknown-hub-resource", "GET", f"{HUB}/nope", 404, auth="element"),
    Case("unknown-hub-resource-deep", "GET", f"{HUB}/a/b/c/d/e/f", 404, auth="element"),
    Case("unknown-hub-resource-traversal", "GET", f"{HUB}/../../etc/passwd", 404, auth="element"),
    Case("delete-instances-collection", "DELETE", INSTANCES, 405),
    Case("put-instances-collection", "PUT", INSTANCES, 405, body=create_body()),
    Case("post-instance-detail", "POST", f"{INSTANCES}/{{iid}}", 405, body=b"{}"),
    Case("get-instance-token", "GET", f"{INSTANCES}/{{iid}}/token", 405),
    Case("patch-instance-enabled", "PATCH", f"{INSTANCES}/{{iid}}/enabled", 405, body=b"{}"),
    Case("post-element-keys", "POST", f"{BASE}/elements/keys", 405, body=b"{}"),
    Case("delete-elements", "DELETE", f"{BASE}/elements", 405),
    Case("put-element-detail", "PUT", f"{BASE}/elements/mixpanel", 405, body=b"{}"),
    Case("method-made-up", "FROB", INSTANCES, 405),
    Case("method-trace", "TRACE", INSTANCES, 405),
    Case("page-size-abc", "GET", f"{INSTANCES}?pageSize=abc", 400),
    Case("page-size-negative", "GET", f"{INSTANCES}?pageSize=-5", 400),
    Case("page-size-zero", "GET", f"{INSTANCES}?pageSize=0", 400),
    Case("page-size-100000", "GET", f"{INSTANCES}?pageSize=100000", 400),
    Case("page-size-float", "GET", f"{INSTANCES}?pageSize=1.5", 400),
    Case("page-size-5000-digits", "GET", f"{INSTANCES}?pageSize={'9' * 5000}", 400),
    Case("page-size-nul", "GET", f"{INSTANCES}?pageSize=%00", 400),
    Case("next-page-garbage", "GET", f"{INSTANCES}?nextPage=@@@", 400),
    Case("next-page-not-json", "GET", f"{INSTANCES}?nextPage={_cursor(b'hello there')}", 400),
    Case("next-page-invalid-utf8", "GET", f"{INSTANCES}?nextPage={_cursor(INVALID_UTF8)}", 400),
    Case("next-page-json-list", "GET", f"{INSTANCES}?nextPage={_cursor([1])}", 400),
    Case("next-page-after-string", "GET", f"{INSTANCES}?nextPage={_cursor({'after': 'x'})}", 400),
    Case("next-page-after-negative", "GET", f"{INSTANCES}?nextPage={_cursor({'after': -1})}", 400),
    Case("next-page-after-bool", "GET", f"{INSTANCES}?nextPage={_cursor({'after': True})}", 400),
    Case("next-page-after-float", "GET", f"{INSTANCES}?nextPage={_cursor({'after': 1.5})}", 400),
    Case(
        "next-page-after-huge",
        "GET",
        f"{INSTANCES}?nextPage={_cursor({'after': 10**30})}",
        400,
    ),
    Case("next-page-non-ascii", "GET", f"{INSTANCES}?nextPage=%C3%A9%C3%A9", 400),
    Case("next-page-nul", "GET", f"{INSTANCES}?nextPage=%00", 400),
    Case("search-text-nul", "GET", f"{INSTANCES}?searchText=a%00b", 400),
    Case("element-key-filter-nul", "GET", f"{INSTANCES}?elementKey=%00", 400),
    Case("tags-filter-nul", "GET", f"{INSTANCES}?tags[]=%00", 400),
    Case("query-key-nul", "GET", f"{INSTANCES}?a%00b=1", 400),
    Case("query-2000-fields", "GET", f"{INSTANCES}?{'&'.join(['a=1'] * 2000)}", 400),
    Case(
        "query-2000-fields-element-call", "GET", f"{HUB}/ping?{'a=1&' * 2000}", 400, auth="element"
    ),
    Case("search-text-100k", "GET", f"{INSTANCES}?searchText={'x' * 100_000}", 400),
]

ELEMENT_CASES = [
    element_get("element-unknown-resource", f"{HUB}/nope", 404),
    element_get("element-unknown-resource-no-hub", f"{BASE}/nope/1/2", 404),
    Case("element-wrong-method", "DELETE", f"{HUB}/ping", 405, auth="element"),
    Case(
        "element-wrong-method-put",
        "PUT",
        f"{HUB}/service-accounts",
        405,
        auth="element",
        body=b"{}",
    ),
    element_get("element-unknown-query-param", f"{HUB}/ping?foo=1", 400),
    element_get("element-unknown-query-param-1mb", f"{HUB}/ping?{'q' * MB}=1", 400),
    element_get("element-org-id-abc", f"{HUB}/service-accounts?organization_id=abc", 400),
    element_get("element-org-id-zero", f"{HUB}/service-accounts?organization_id=0", 400),
    element_get("element-org-id-negative", f"{HUB}/service-accounts?organization_id=-3", 400),
    element_get("element-org-id-float", f"{HUB}/service-accounts?organization_id=1.5", 400),
    element_get(
        "element-org-id-5000-digits", f"{HUB}/service-accounts?organization_id={'9' * 5000}", 400
    ),
    element_get("element-org-id-nul", f"{HUB}/service-accounts?organization_id=%00", 400),
    element_get("element-body-on-get", f"{HUB}/ping", 400, body=j({"x": 1})),
    element_get("element-array-body-on-get", f"{HUB}/ping", 400, body=b"[1, 2]"),
    element_get("element-string-body-on-get", f"{HUB}/ping", 400, body=b'"x"'),
    element_get("element-invalid-json-body", f"{HUB}/ping", 400, body=b"{nope"),
    element_get("element-nested-json-body", f"{HUB}/ping", 400, body=nested(10_000).encode()),
    element_get(
        "element-nan-body", f"{HUB}/service-accounts", 400, body=b'{"organization_id": NaN}'
    ),
    element_get("element-text-body", f"{HUB}/ping", 415, body=b"hello", content_type="text/plain"),
    element_get(
        "element-body-and-query-org-id",
        f"{HUB}/service-accounts?organization_id=1",
        400,
        body=j({"organization_id": 2, "extra": 1}),
    ),
    element_get("element-no-auth", f"{HUB}/ping", 401, auth="none"),
    element_get("element-platform-auth", f"{HUB}/ping", 401, auth="platform"),
    element_get(
        "element-bogus-token", f"{HUB}/ping", 401, auth=lambda w: w.tenant.element_auth("x")
    ),
    element_get(
        "element-other-users-token",
        f"{HUB}/ping",
        401,
        auth=lambda w: w.tenant.element_auth(w.other_token),
    ),
    element_get(
        "element-token-wrong-user",
        f"{HUB}/ping",
        401,
        auth=lambda w: w.other.element_auth(w.token),
    ),
    element_get(
        "element-token-wrong-org",
        f"{HUB}/ping",
        401,
        auth=lambda w: (
            w.tenant.element_auth(w.token) + f", Organization {w.other.organization_secret}"
        ),
    ),
    element_get(
        "element-token-only",
        f"{HUB}/ping",
        401,
        auth=lambda w: f"Element {w.token}",
    ),
    element_get(
        "element-disabled-instance",
        f"{HUB}/ping",
        403,
        auth=lambda w: w.tenant.element_auth(w.disabled_token),
    ),
    element_get("op-other-instance-id", "/mixpanel/get_service_accounts/{other_iid}", 404),
    element_get("op-instance-id-abc", "/mixpanel/get_service_accounts/abc", 404),
    element_get(
        "op-instance-id-huge", "/mixpanel/get_service_accounts/99999999999999999999999", 404
    ),
    element_get("op-unknown-operation", "/mixpanel/nope/{iid}", 404),
    element_get("op-unknown-operation-literal-1", "/mixpanel/nope/1", 404),
    element_get("op-unknown-element", "/nope/x", 404),
    element_get("op-unknown-element-with-id", "/nope/get_service_accounts/{iid}", 404),
    element_get("op-schema-unknown-operation", "/mixpanel/nope", 404, auth="none"),
    Case("op-wrong-method", "POST", "/mixpanel/get_service_accounts/{iid}", 405, auth="element"),
    element_get("op-org-id-abc", "/mixpanel/get_service_accounts/{iid}?organization_id=abc", 400),
    element_get("op-unknown-query-param", "/mixpanel/get_service_accounts/{iid}?nope=1", 400),
    element_get("op-no-auth", "/mixpanel/get_service_accounts/{iid}", 401, auth="none"),
]

CASES = HEADER_CASES + JSON_CASES + FIELD_CASES + SIZE_CASES + PATH_CASES + ELEMENT_CASES


def _params(cases):
    return [pytest.param(case, id=case.id) for case in cases]


# --- sending and checking --------------------------------------------------------------------


def _header(world: World, auth: Auth) -> str | None:
    if auth == "platform":
        return world.tenant.platform_auth
    if auth == "element":
        return world.tenant.element_auth(world.token)
    if auth == "none":
        return None
    return auth(world)


def send(world: World, case: Case):
    path = case.path.format(
        iid=world.iid, other_iid=world.other_iid, disabled_iid=world.disabled_iid
    )
    extra = {}
    header = _header(world, case.auth)
    if header is not None:
        extra["HTTP_AUTHORIZATION"] = header
    extra.update(case.extra)
    with override_settings(**case.settings):
        # A fresh client builds its middleware now, under the settings above.
        client = Client(raise_request_exception=False)
        # CONTENT_TYPE through the environ: the test client would re-encode the body to a
        # charset named in content_type.
        environ = {"CONTENT_TYPE": case.content_type, **extra}
        return client.generic(case.method, path, data=case.body or b"", **environ)


def state() -> tuple:
    rows = Instance.objects.order_by("pk").values_list(
        "pk",
        "user_id",
        "name",
        "tags",
        "encrypted_configuration",
        "token_hash",
        "disabled",
        "valid",
        "trace_logging_enabled",
        "updated_at",
    )
    return tuple(rows), TenantUser.objects.count()


def assert_error_shape(response) -> dict:
    assert response.get("Content-Type", "").startswith("application/json"), response.content[:300]
    assert len(response.content) <= MAX_ERROR_BODY, response.content[:300]
    body = json.loads(response.content)
    assert isinstance(body, dict), body
    assert {"requestId", "message"} <= set(body) <= ERROR_KEYS, body
    assert isinstance(body["requestId"], str) and body["requestId"]
    assert body["requestId"] == response["Elements-Request-Id"]
    assert isinstance(body["message"], str) and body["message"]
    if "errors" in body:
        assert isinstance(body["errors"], list) and body["errors"], body
        for error in body["errors"]:
            assert set(error) == {"field", "message"}, error
            assert isinstance(error["field"], str) and isinstance(error["message"], str)
    if "providerStatus" in body:
        assert isinstance(body["providerStatus"], int)
    if "providerMessage" in body:
        assert isinstance(body["providerMessage"], str)
    return body


def _leaks(world: World, response) -> list[str]:
    text = response.content.decode("utf-8", "replace")
    headers = " ".join(f"{k}: {v}" for k, v in response.items())
    found = [
        marker
        for marker in ("Traceback", '.py"', ".py:", 'File "', "site-packages", "/work/")
        if marker in text
    ]
    found += ["a secret" for secret in world.secrets if secret in text or secret in headers]
    return found


@pytest.mark.parametrize("case", _params(CASES))
def test_malformed_input_is_a_clean_4xx(world, case):
    before = state()
    response = send(world, case)
    expected = case.status if isinstance(case.status, tuple) else (case.status,)
    assert response.status_code in expected, (response.status_code, response.content[:500])
    if response.status_code < 400:
        # Tolerated success (e.g. a UTF-8 BOM): still JSON, and nothing else is asserted.
        json.loads(response.content)
        return
    assert_error_shape(response)
    assert not _leaks(world, response)
    assert state() == before, "a refused request changed stored state"


def test_case_ids_are_unique_and_enough():
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids))
    assert len(ids) >= 60


def test_no_error_body_leaks_anything(world):
    """One sweep over every case: no traceback, source path, tenant secret or instance
    token or credential in any answer, and never a 5xx."""
    problems = []
    for case in CASES:
        response = send(world, case)
        if response.status_code >= 500:
            problems.append((case.id, response.status_code))
        leaks = _leaks(world, response)
        if leaks:
            problems.append((case.id, leaks))
    assert not problems


# --- the Accept header -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "accept",
    ["text/html", "text/html,application/xhtml+xml;q=0.9", "image/png", "*/*", "application/*"],
)
def test_any_accept_header_gets_json(world, accept):
    """406 is for bulk downloads only (§2): a browser's Accept still gets the JSON answer."""
    response = send(world, Case("accept", "GET", INSTANCES, 200, extra={"HTTP_ACCEPT": accept}))
    assert response.status_code == 200, response.content[:300]
    assert response["Content-Type"].startswith("application/json")
    assert isinstance(json.loads(response.content), list)


# --- nesting right around the interpreter's recursion limit ----------------------------------


@pytest.mark.parametrize("depth", [500, 850, 900, 905, 910, 915, 920, 925, 950, 1000, 5000])
@pytest.mark.parametrize(
    "where", ["name", "tags", "configuration", "element", "patch", "element-call"]
)
def test_deep_nesting_is_400_at_every_depth(world, where, depth):
    deep = nested(depth)
    bodies = {
        "name": (CREATE, "POST", f'{{"element": {{"key": "mixpanel"}}, "name": {deep}}}'),
        "tags": (CREATE, "POST", f'{{"name": "a", "tags": [{deep}], "configuration": {{}}}}'),
        "configuration": (
            CREATE,
            "POST",
            f'{{"name": "a", "configuration": {{"username": {deep}}}}}',
        ),
        "element": (CREATE, "POST", f'{{"element": {{"key": {deep}}}, "name": "a"}}'),
        "patch": (f"{INSTANCES}/{{iid}}", "PATCH", f'{{"tags": {deep}}}'),
        "element-call": (f"{HUB}/service-accounts", "GET", f'{{"organization_id": {deep}}}'),
    }
    path, method, body = bodies[where]
    auth = "element" if where == "element-call" else "platform"
    before = state()
    response = send(world, Case("deep", method, path, 400, body=body.encode(), auth=auth))
    assert response.status_code == 400, response.content[:300]
    assert_error_shape(response)
    assert state() == before


# --- Django's own pages, with DEBUG off and on -----------------------------------------------

DEBUG_CASES = [
    Case("root-404", "GET", "/nope", 404),
    Case("root-404-unauthenticated", "GET", "/definitely/not/a/route/here", 404, auth="none"),
    Case("api-base-404", "GET", f"{BASE}/", 404),
    Case("api-unknown-resource-404", "GET", f"{HUB}/nope", 404, auth="element"),
    Case("api-405", "DELETE", INSTANCES, 405),
    Case("api-bad-json", "POST", CREATE, 400, body=b"{nope"),
    Case("api-bad-host", "GET", INSTANCES, 400, extra={"HTTP_HOST": "evil.example"}),
    Case("api-instance-404", "GET", f"{INSTANCES}/abc", 404),
]


@pytest.mark.parametrize("debug", [False, True], ids=["debug-off", "debug-on"])
@pytest.mark.parametrize("case", DEBUG_CASES, ids=[c.id for c in DEBUG_CASES])
def test_errors_are_json_with_debug_on_and_off(world, settings, debug, case):
    settings.DEBUG = debug
    response = send(world, case)
    assert response.status_code == case.status, response.content[:300]
    body = assert_error_shape(response)
    assert "<html" not in response.content.decode("utf-8", "replace").lower()
    assert body["message"]
    assert not _leaks(world, response)


# --- odd Unicode: valid text may be stored, nothing may crash ---------------------------------

ODD_NAMES = {
    "rtl-override": "\u202eevil.exe\u202c",
    "zero-width-joiners": "a\u200db\u200cc\u2060d\ufeff",
    "combining-marks": "Z\u0351\u0300\u0301\u0302\u0303\u0304\u0305\u0306\u0307a\u0308\u0309lgo",
    "emoji": "\U0001f600 \U0001f468\u200d\U0001f469\u200d\U0001f467 \U0001f1fa\U0001f1f8",
    "non-characters": "a\ufffe\uffffb",
    "private-use": "\ue000\U000f0000",
    "astral-cjk": "\U00020000\u4e2d\u6587",
    "right-to-left": "\u05e9\u05dc\u05d5\u05dd \u0645\u0631\u062d\u0628\u0627",
    "line-separators": "a\u2028b\u2029c",
    "escaped-pair": "\ud83d\ude00",  # a valid pair, sent escaped by json.dumps
}
LONE_SURROGATES = {
    "lone-high-surrogate": "\ud800",
    "lone-low-surrogate": "\udfff",
    "reversed-pair": "\ude00\ud83d",
    "surrogate-in-text": "ok\udbffok",
}


@pytest.mark.parametrize("name", list(ODD_NAMES.values()), ids=list(ODD_NAMES))
def test_odd_but_valid_unicode_names_are_stored_as_text(world, name):
    before = Instance.objects.count()
    response = send(world, post("odd-name", create_body(name=name), 200))
    assert response.status_code == 200, response.content[:300]
    response.content.decode("utf-8")  # strict: the answer is real UTF-8
    created = json.loads(response.content)
    assert Instance.objects.count() == before + 1
    sent = json.loads(json.dumps(name))  # an escaped surrogate pair arrives as one character
    assert created["name"] == " ".join(sent.split())
    again = send(world, Case("read", "GET", f"{INSTANCES}/{created['id']}", 200))
    assert again.status_code == 200
    assert json.loads(again.content)["name"] == created["name"]
    listed = send(world, Case("list", "GET", f"{INSTANCES}?searchText=%E2%80%AE", 200))
    assert listed.status_code == 200


def _surrogate_requests(name):
    """Lone surrogates (valid JSON escapes, not Unicode text) in every kind of field."""
    return [
        post("name", create_body(name=name), 400),
        post("tag", create_body(tags=[name]), 400),
        post("config-username", config_body(username=name), 400),
        post("config-region", config_body(region=name), 400),
        post("config-key", config_body(**{name: "x"}), 400),
        post("element-key", create_body(element={"key": name}), 400),
        Case("patch-name", "PATCH", f"{INSTANCES}/{{iid}}", 400, body=j({"name": name})),
        Case(
            "patch-password",
            "PATCH",
            f"{INSTANCES}/{{iid}}?validate=false",
            400,
            body=j({"configuration": {"password": name}}),
        ),
        Case(
            "element-call-body",
            "GET",
            f"{HUB}/service-accounts",
            400,
            body=j({"organization_id": name}),
            auth="element",
        ),
        Case("element-call-body-key", "GET", f"{HUB}/ping", 400, body=j({name: 1}), auth="element"),
    ]


@pytest.mark.parametrize("name", list(LONE_SURROGATES.values()), ids=list(LONE_SURROGATES))
def test_lone_surrogates_are_refused_everywhere(world, name):
    for case in _surrogate_requests(name):
        before = state()
        response = send(world, case)
        assert response.status_code == 400, (case.id, response.content[:300])
        assert_error_shape(response)
        assert state() == before, case.id


@pytest.mark.parametrize(
    "method,query,charset",
    [("GET", "pageSize=1", "base64"), ("POST", "x=1", "rot13"), ("GET", "a=b", "hex")],
)
def test_non_text_charset_is_415_through_the_real_wsgi_app(method, query, charset):
    """Django's request object decodes the query string with the Content-Type charset before
    any middleware runs (the test client cannot even build such a request), so this goes
    through the WSGI application gunicorn serves."""
    import io

    from platform_core.wsgi import application

    seen = {}

    def start_response(status, headers):
        seen["status"], seen["headers"] = status, dict(headers)

    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": INSTANCES,
        "QUERY_STRING": query,
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "wsgi.input": io.BytesIO(b"{}"),
        "wsgi.url_scheme": "http",
        "wsgi.errors": io.StringIO(),
        "CONTENT_TYPE": f"application/json; charset={charset}",
        "CONTENT_LENGTH": "2",
    }
    body = json.loads(b"".join(application(environ, start_response)))
    assert seen["status"].startswith("415")
    assert body["requestId"] == seen["headers"]["Elements-Request-Id"] and body["message"]
