"""Tests for the Mixpanel HTTP API simulator.

Runs the real simulator as a subprocess (module-scoped) and talks plain HTTP to it with
``urllib.request`` / ``http.client``.  No mocks, no Django database.
"""

from __future__ import annotations

import base64
import gzip
import http.client
import json
import re
import socket
import time
import zlib
from urllib.parse import quote, urlencode, urlsplit

import pytest

from simulators.mixpanel import datagen
from simulators.mixpanel.testing import SimulatorProcess, basic_auth

SA_USER = "sim-admin.a1b2c3.mp-service-account"
SA_SECRET = "sim-sa-secret"
API_SECRET = "sim-api-secret"
TOKEN = "sim-project-token"
ORG = 1001
PROJECT = 2002

SA = basic_auth(SA_USER, SA_SECRET)
SECRET = basic_auth(API_SECRET, "")
TOKEN_AUTH = basic_auth(TOKEN, "")
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


# ------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------


def call(sim, method, path, body=None, auth=None, headers=None, timeout=30):
    status, hdrs, raw = sim.request(method, path, body, auth=auth, headers=headers, timeout=timeout)
    return status, hdrs, raw


def jcall(sim, method, path, body=None, auth=None, headers=None):
    status, _, raw = call(sim, method, path, body, auth, headers)
    return status, json.loads(raw)


def conn(sim, timeout=30):
    parts = urlsplit(sim.base_url)
    return http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)


def raw_request(sim, method, path, body=None, headers=None, timeout=30):
    """http.client request that lets connection-level failures surface as exceptions."""
    c = conn(sim, timeout)
    try:
        c.request(method, path, body=body, headers=headers or {})
        resp = c.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        c.close()


def now():
    return int(time.time())


def ev(i, **props):
    base = {"time": now() - 60, "distinct_id": f"d{i}", "$insert_id": f"iid-{i}"}
    base.update(props)
    return {"event": "Imported", "properties": base}


def engage(sim, auth=SA, **params):
    params.setdefault("project_id", PROJECT)
    return jcall(sim, "GET", "/api/query/engage?" + urlencode(params), auth=auth)


def export_path(**params):
    params.setdefault("project_id", PROJECT)
    return "/api/2.0/export?" + urlencode(params)


# ------------------------------------------------------------------------------------------
# auth
# ------------------------------------------------------------------------------------------


def test_service_account_auth_base64_and_plain_text(sim):
    status, body = jcall(sim, "GET", "/api/app/me", auth=SA)
    assert status == 200
    assert body["status"] == "ok"
    assert body["results"]["id"] == 1
    assert body["results"]["name"] == SA_USER
    assert "permissions" in body["results"]["projects"][str(PROJECT)]
    plain = f"Basic {SA_USER}:{SA_SECRET}"
    assert jcall(sim, "GET", "/api/app/me", auth=plain)[0] == 200
    status, body = engage(sim, auth=plain)
    assert status == 200 and body["status"] == "ok"


def test_bad_credentials_use_each_api_family_envelope(sim):
    bad = basic_auth(SA_USER, "wrong")
    status, body = jcall(sim, "GET", "/api/app/me", auth=bad)
    assert status == 401
    assert body["status"] == "error" and body["error"]
    status, body = jcall(sim, "POST", f"/import?project_id={PROJECT}", [ev(1)], auth=bad)
    assert (status, body) == (
        401,
        {"code": 401, "error": "Invalid credentials", "status": "Unauthorized"},
    )
    path = f"/api/query/engage?project_id={PROJECT}"
    status, body = jcall(sim, "GET", path, auth=bad)
    assert status == 401
    assert body == {"request": path, "error": "Unable to authenticate request"}
    path = export_path(from_date="2024-01-01", to_date="2024-01-01")
    status, body = jcall(sim, "GET", path)  # no Authorization header at all
    assert status == 401 and body["request"] == path
    # [I] the query-API status/message are configurable (Airbyte expects 400 for expiry)
    sim.configure(query_auth_error_status=400)
    assert engage(sim, auth=bad)[0] == 400


def test_api_secret_alone_works_on_query_export_import(sim):
    sim.configure(events_per_day=2, profiles={"count": 3})
    status, body = jcall(sim, "GET", "/api/2.0/engage", auth=SECRET)
    assert status == 200 and body["total"] == 3
    status, _, raw = call(
        sim, "GET", "/api/2.0/export?from_date=2024-01-01&to_date=2024-01-01", auth=SECRET
    )
    assert status == 200 and raw.count(b"\n") == 2
    status, body = jcall(sim, "POST", "/import", [ev(1)], auth=SECRET)
    assert status == 200 and body["num_records_imported"] == 1
    # the app API only takes service accounts
    assert jcall(sim, "GET", "/api/app/me", auth=SECRET)[0] == 401


def test_project_id_required_and_checked_for_service_accounts(sim):
    status, body = jcall(sim, "GET", "/api/query/engage", auth=SA)
    assert status == 400
    assert body["request"] == "/api/query/engage" and "project_id" in body["error"]
    path = "/api/2.0/export?from_date=2024-01-01&to_date=2024-01-01"
    status, body = jcall(sim, "GET", path, auth=SA)
    assert status == 400 and body["request"] == path
    status, body = jcall(sim, "POST", "/import", [ev(1)], auth=SA)
    assert status == 400 and body["code"] == 400 and body["status"] == "Bad Request"
    status, body = engage(sim, project_id=9999)
    assert status == 403 and "error" in body and "request" in body
    # /import never answers 403
    status, body = jcall(sim, "POST", "/import?project_id=9999", [ev(1)], auth=SA)
    assert status == 401 and body["error"] == "Invalid credentials"


def test_project_token_authenticates_import_only(sim):
    status, body = jcall(sim, "POST", "/import", [ev(1)], auth=TOKEN_AUTH)
    assert (status, body["num_records_imported"]) == (200, 1)
    status, _ = jcall(sim, "POST", f"/import?project_id={PROJECT}", [ev(2)], auth=TOKEN_AUTH)
    assert status == 200
    assert engage(sim, auth=TOKEN_AUTH)[0] == 401


def test_expired_service_account_is_rejected(sim):
    sim.configure(
        service_accounts=[
            {"username": SA_USER, "secret": SA_SECRET},
            {
                "username": "old.abc123.mp-service-account",
                "secret": "s",
                "expires": "2020-01-01T00:00:00Z",
            },
        ]
    )
    assert jcall(sim, "GET", "/api/app/me", auth=SA)[0] == 200
    old = basic_auth("old.abc123.mp-service-account", "s")
    assert jcall(sim, "GET", "/api/app/me", auth=old)[0] == 401


# ------------------------------------------------------------------------------------------
# service accounts
# ------------------------------------------------------------------------------------------


def test_service_account_lifecycle(sim):
    base = f"/api/app/organizations/{ORG}/service-accounts"
    status, body = jcall(sim, "GET", base, auth=SA)
    assert status == 200 and body["status"] == "ok"
    assert [sa["username"] for sa in body["results"]] == [SA_USER]
    assert set(body["results"][0]) == {
        "id",
        "username",
        "last_used",
        "expires",
        "creator",
        "created",
        "user",
    }

    create = {
        "username": "etl-bot",
        "role": "admin",
        "expires": None,
        "projects": [{"id": PROJECT, "role": "admin"}],
    }
    status, body = jcall(sim, "POST", base, create, auth=SA)
    assert status == 201 and body["status"] == "ok"
    new = body["results"]
    assert re.fullmatch(r"etl-bot\.[0-9a-f]{6}\.mp-service-account", new["username"])
    assert new["token"] and new["expires"] is None and new["last_used"] is None
    assert new["creator"] == 1
    new_auth = basic_auth(new["username"], new["token"])
    assert jcall(sim, "GET", "/api/app/me", auth=new_auth)[0] == 200
    assert engage(sim, auth=new_auth)[0] == 200

    status, body = jcall(sim, "GET", f"{base}/{new['id']}", auth=SA)
    assert status == 200 and body["status"] == "ok"
    assert body["results"]["username"] == new["username"]
    assert "token" not in body["results"]
    assert body["results"]["last_used"] is not None
    listed = jcall(sim, "GET", base, auth=SA)[1]["results"]
    assert {sa["id"] for sa in listed} == {1, new["id"]}
    assert all("token" not in sa for sa in listed)
    assert any(sa["secret"] == new["token"] for sa in sim.service_accounts())

    status, body = jcall(sim, "DELETE", f"{base}/{new['id']}", auth=SA)
    assert (status, body) == (200, {"status": "ok"})
    status, body = jcall(sim, "GET", f"{base}/{new['id']}", auth=SA)
    assert status == 404 and body["status"] == "error"
    assert jcall(sim, "DELETE", f"{base}/{new['id']}", auth=SA)[0] == 404
    assert jcall(sim, "GET", "/api/app/me", auth=new_auth)[0] == 401


def test_service_account_create_validation_and_permissions(sim):
    base = f"/api/app/organizations/{ORG}/service-accounts"
    for payload in (
        {},
        {"username": ""},
        {"username": 5},
        {"username": "x", "role": "superuser"},
        {"username": "x", "expires": "tomorrow"},
        {"username": "x", "projects": {"id": 1}},
        {"username": "x", "projects": [{"id": "p", "role": "admin"}]},
        {"username": "x", "projects": [{"id": 1, "role": "boss"}]},
    ):
        status, body = jcall(sim, "POST", base, payload, auth=SA)
        assert status == 400, payload
        assert body["status"] == "error" and body["error"]
    status, body = jcall(
        sim, "POST", base, "not json", auth=SA, headers={"Content-Type": "application/json"}
    )
    assert status == 400
    # another organization
    status, body = jcall(sim, "GET", "/api/app/organizations/4242/service-accounts", auth=SA)
    assert status == 403 and body["status"] == "error"
    # the API secret is not accepted on the app API
    assert jcall(sim, "GET", base, auth=SECRET)[0] == 401
    # an analyst can list but not create/delete
    status, body = jcall(
        sim,
        "POST",
        base,
        {"username": "reader", "role": "analyst", "projects": [{"id": PROJECT, "role": "analyst"}]},
        auth=SA,
    )
    analyst = basic_auth(body["results"]["username"], body["results"]["token"])
    assert jcall(sim, "GET", base, auth=analyst)[0] == 200
    assert jcall(sim, "POST", base, {"username": "y"}, auth=analyst)[0] == 403
    assert jcall(sim, "DELETE", f"{base}/1", auth=analyst)[0] == 403
    # analysts can query but cannot import
    assert engage(sim, auth=analyst)[0] == 200
    assert jcall(sim, "POST", f"/import?project_id={PROJECT}", [ev(1)], auth=analyst)[0] == 401


def test_service_account_project_membership(sim):
    base = f"/api/app/organizations/{ORG}/service-accounts"
    status, body = jcall(sim, "POST", base, {"username": "nomember", "role": "admin"}, auth=SA)
    sa_id = body["results"]["id"]
    creds = basic_auth(body["results"]["username"], body["results"]["token"])
    assert engage(sim, auth=creds)[0] == 403
    payload = {"service_account_ids": [sa_id], "projects": [{"id": PROJECT, "role": "analyst"}]}
    assert jcall(sim, "POST", f"{base}/add-to-project", payload, auth=SA) == (200, {"status": "ok"})
    assert engage(sim, auth=creds)[0] == 200
    status, body = jcall(sim, "GET", f"/api/app/projects/{PROJECT}/service-accounts", auth=SA)
    roles = {row["id"]: row["role"] for row in body["results"]}
    assert roles == {1: "owner", sa_id: "analyst"}
    assert body["results"][0]["target_type"] == "individual"
    payload = {"projects": [{"id": PROJECT, "service_account_ids": [sa_id]}]}
    assert jcall(sim, "POST", f"{base}/remove-from-project", payload, auth=SA)[0] == 200
    assert engage(sim, auth=creds)[0] == 403
    assert jcall(sim, "POST", f"{base}/add-to-project", {"projects": []}, auth=SA)[0] == 400
    # [I] GET by id can be configured to answer un-enveloped
    sim.configure(sa_get_enveloped=False)
    status, body = jcall(sim, "GET", f"{base}/1", auth=SA)
    assert status == 200 and body["username"] == SA_USER


# ------------------------------------------------------------------------------------------
# engage query
# ------------------------------------------------------------------------------------------


def test_engage_paging_with_session_and_total(sim):
    sim.configure(profiles={"count": 2500})
    status, first = engage(sim)
    assert status == 200
    assert set(first) == {"page", "page_size", "session_id", "status", "total", "results"}
    assert (first["page"], first["page_size"], first["total"]) == (0, 1000, 2500)
    assert first["results"][0] == {
        "$distinct_id": "user-0",
        "$properties": datagen.profile_properties(0),
    }
    ids = [r["$distinct_id"] for r in first["results"]]
    sid = first["session_id"]
    for page, expected in ((1, 1000), (2, 500)):
        status, body = engage(sim, page=page, session_id=sid)
        assert status == 200
        assert (body["page"], body["total"], body["session_id"], len(body["results"])) == (
            page,
            2500,
            sid,
            expected,
        )
        ids += [r["$distinct_id"] for r in body["results"]]
    assert ids == [f"user-{i}" for i in range(2500)]
    status, body = engage(sim, page=3, session_id=sid)
    assert status == 200 and body["results"] == [] and body["total"] == 2500
    sim.configure(engage_total_on_later_pages=False)  # [I] switch
    assert "total" not in engage(sim, page=1, session_id=engage(sim)[1]["session_id"])[1]
    # page_size is honoured up to 1000
    status, body = engage(sim, page_size=10)
    assert len(body["results"]) == 10 and body["page_size"] == 10
    status, body = engage(sim, page_size=5000)
    assert body["page_size"] == 1000


def test_engage_page_without_session_is_400(sim):
    sim.configure(profiles={"count": 10})
    status, body = engage(sim, page=1)
    assert (
        status == 400
        and "session_id" in body["error"]
        and body["request"].startswith("/api/query/engage?")
    )
    status, body = engage(sim, page=1, session_id="1234567890-NOPE00")
    assert status == 400
    sim.configure(engage_unknown_session="recompute")
    assert engage(sim, page=0, session_id="1234567890-NOPE00")[0] == 200


def test_engage_session_caches_matches(sim):
    sim.configure(profiles={"count": 1500})
    status, first = engage(sim, where='properties["plan"] == "pro"')
    total = first["total"]
    # a profile changing after page 0 doesn't move the session's membership
    update = [{"$token": TOKEN, "$distinct_id": "user-1499", "$set": {"plan": "pro"}}]
    assert call(sim, "POST", "/engage", update)[2] == b"1"
    status, again = engage(
        sim, where='properties["plan"] == "pro"', page=0, session_id=first["session_id"]
    )
    assert again["total"] == total
    status, fresh_query = engage(sim, where='properties["plan"] == "pro"')
    assert fresh_query["total"] in (total, total + 1)
    assert fresh_query["session_id"] != first["session_id"]


def test_engage_post_form_merges_query_string_and_body(sim):
    sim.configure(profiles={"count": 50})
    form = urlencode(
        {"where": 'properties["$city"] == "Paris"', "output_properties": '["$email", "$city"]'}
    )
    status, body = jcall(
        sim, "POST", f"/api/2.0/engage?project_id={PROJECT}", form, auth=SA, headers=FORM
    )
    assert status == 200
    expected = [
        f"user-{i}" for i in range(50) if datagen.profile_properties(i).get("$city") == "Paris"
    ]
    assert expected and [r["$distinct_id"] for r in body["results"]] == expected
    for row in body["results"]:
        assert set(row["$properties"]) <= {"$email", "$city"}
        assert row["$properties"]["$city"] == "Paris"


def test_engage_distinct_id_filters(sim):
    sim.configure(profiles={"count": 20})
    status, body = engage(sim, distinct_id="user-7")
    assert body["total"] == 1 and body["results"][0] == datagen.profile(7)
    status, body = engage(sim, distinct_ids=json.dumps(["user-3", "user-99", "user-1", "user-3"]))
    assert [r["$distinct_id"] for r in body["results"]] == ["user-3", "user-1"]
    status, body = engage(sim, distinct_ids="not json")
    assert status == 400


N_PROFILES = 300
_PROFILES = [datagen.profile_properties(i) for i in range(N_PROFILES)]

WHERE_CASES = [
    ('properties["$city"] == "Paris"', lambda p: p.get("$city") == "Paris"),
    ('properties["$city"] != "Paris"', lambda p: p.get("$city") != "Paris"),
    ('properties["age"] > 40', lambda p: p["age"] > 40),
    ('properties["age"] < 30', lambda p: p["age"] < 30),
    ('properties["age"] >= 50', lambda p: p["age"] >= 50),
    ('properties["age"] <= 20', lambda p: p["age"] <= 20),
    ('properties["age"] > -1', lambda p: True),
    ('properties["score"] >= 50.5', lambda p: p["score"] >= 50.5),
    (
        'properties["$created"] >= "2023-06-01T00:00:00"',
        lambda p: p["$created"] >= "2023-06-01T00:00:00",
    ),
    (
        'properties["$last_seen"] < datetime("2023-09-01T00:00:00")',
        lambda p: p["$last_seen"] < "2023-09-01T00:00:00",
    ),
    (
        'properties["$created"] > datetime(1690000000)',
        lambda p: p["$created"] > "2023-07-22T04:26:40",
    ),
    ('"example.com" in properties["$email"]', lambda p: "$email" in p),
    ('"user1" in properties["$email"]', lambda p: "user1" in p.get("$email", "")),
    ('"beta" in properties["tags"]', lambda p: "beta" in p["tags"]),
    ('not "beta" in properties["tags"]', lambda p: "beta" not in p["tags"]),
    ('defined(properties["plan"])', lambda p: "plan" in p),
    ('not defined(properties["$city"])', lambda p: "$city" not in p),
    (
        'properties["plan"] == "pro" and properties["age"] > 30',
        lambda p: p.get("plan") == "pro" and p["age"] > 30,
    ),
    (
        'properties["plan"] == "free" or '
        '(properties["$city"] == "Austin" and not properties["vip"] == true)',
        lambda p: p.get("plan") == "free" or (p.get("$city") == "Austin" and p["vip"] is not True),
    ),
    ('properties["vip"] == true', lambda p: p["vip"] is True),
    ('properties["vip"] == false', lambda p: p["vip"] is False),
    ('properties["Account Tier"] == "Gold"', lambda p: p["Account Tier"] == "Gold"),
    ('properties["age"] == "30"', lambda p: False),  # mixed types never equal
    ('properties["age"] != "30"', lambda p: True),
    ('properties["nope"] == null', lambda p: False),  # undefined compares false...
    ('properties["nope"] != null', lambda p: True),  # ...except !=
    ('properties["nope"] > 1', lambda p: False),
    ('properties["$name"] != "a\\"b"', lambda p: True),  # escaped quote in a literal
    (
        '(properties["age"] > 60 or properties["age"] < 20) and defined(properties["$email"])',
        lambda p: (p["age"] > 60 or p["age"] < 20) and "$email" in p,
    ),
]


@pytest.mark.parametrize(("where", "predicate"), WHERE_CASES, ids=[c[0] for c in WHERE_CASES])
def test_engage_where_operators(sim, where, predicate):
    sim.configure(profiles={"count": N_PROFILES})
    status, body = jcall(
        sim,
        "POST",
        f"/api/query/engage?project_id={PROJECT}",
        urlencode({"where": where}),
        auth=SA,
        headers=FORM,
    )
    assert status == 200, body
    expected = [f"user-{i}" for i, p in enumerate(_PROFILES) if predicate(p)]
    assert [r["$distinct_id"] for r in body["results"]] == expected
    assert body["total"] == len(expected)


def test_where_cases_are_discriminating():
    """Guard the table above: most cases must select a proper, non-empty subset."""
    proper = sum(1 for _, pred in WHERE_CASES if 0 < sum(map(pred, _PROFILES)) < N_PROFILES)
    assert proper >= 18


def test_engage_property_names_with_dots_and_escapes(sim):
    sim.configure(profiles={"count": 3})
    update = [
        {"$token": TOKEN, "$distinct_id": "user-1", "$set": {"account.id": 7, 'quo"te': "yes"}},
    ]
    assert call(sim, "POST", "/engage", update)[2] == b"1"
    status, body = engage(sim, where='properties["account.id"] == 7')
    assert [r["$distinct_id"] for r in body["results"]] == ["user-1"]
    status, body = engage(sim, where='properties["quo\\"te"] == "yes"')
    assert [r["$distinct_id"] for r in body["results"]] == ["user-1"]


@pytest.mark.parametrize(
    "where",
    [
        'properties["x" == 1',
        "properties[x] == 1",
        '"a" ==',
        'properties["a"] == 1 and',
        'properties["a"] === 1',
        'foo("a")',
        '"unterminated',
        "datetime(true)",
        '(properties["a"] == 1',
    ],
)
def test_engage_invalid_where_is_400(sim, where):
    sim.configure(profiles={"count": 3})
    status, body = engage(sim, where=where)
    assert status == 400
    assert body["error"].startswith("invalid where expression")
    assert body["request"].startswith("/api/query/engage?")


# ------------------------------------------------------------------------------------------
# profile updates (/engage)
# ------------------------------------------------------------------------------------------


def test_engage_set_then_query_and_delete(sim):
    sim.configure(profiles={"count": 10})
    updates = [
        {
            "$token": TOKEN,
            "$distinct_id": "user-5",
            "$set": {"plan": "vip-plan", "$email": "five@x.io"},
        },
        {"$token": TOKEN, "$distinct_id": "brand-new", "$set": {"plan": "vip-plan"}},
    ]
    status, _, raw = call(sim, "POST", "/engage", updates)
    assert (status, raw) == (200, b"1")
    status, body = engage(sim, where='properties["plan"] == "vip-plan"')
    assert [r["$distinct_id"] for r in body["results"]] == ["user-5", "brand-new"]
    assert body["results"][0]["$properties"]["$email"] == "five@x.io"
    assert body["results"][0]["$properties"]["age"] == datagen.profile_properties(5)["age"]
    assert engage(sim)[1]["total"] == 11
    status, _, raw = call(
        sim, "POST", "/engage", [{"$token": TOKEN, "$distinct_id": "user-5", "$delete": ""}]
    )
    assert raw == b"1"
    status, body = engage(sim)
    assert body["total"] == 10
    assert "user-5" not in [r["$distinct_id"] for r in body["results"]]
    assert sim.profile("user-5")["exists"] is False


def test_engage_update_operations(sim):
    sim.configure(profiles={"count": 2})
    updates = [
        {"$token": TOKEN, "$distinct_id": "u", "$set": {"a": 1, "list": ["x"]}},
        {"$token": TOKEN, "$distinct_id": "u", "$set_once": {"a": 99, "b": 2}},
        {"$token": TOKEN, "$distinct_id": "u", "$add": {"a": 5, "n": 1.5}},
        {"$token": TOKEN, "$distinct_id": "u", "$union": {"list": ["x", "y"]}},
        {"$token": TOKEN, "$distinct_id": "u", "$append": {"list": "z", "other": 1}},
        {"$token": TOKEN, "$distinct_id": "u", "$remove": {"list": "x"}},
        {"$token": TOKEN, "$distinct_id": "u", "$unset": ["b"]},
    ]
    # form data=<base64 json>, the legacy SDK encoding
    data = base64.b64encode(json.dumps(updates).encode()).decode()
    status, _, raw = call(sim, "POST", "/engage", urlencode({"data": data}), headers=FORM)
    assert raw == b"1"
    props = sim.profile("u")["$properties"]
    assert props == {"a": 6, "n": 1.5, "list": ["y", "z"], "other": [1]}
    # form data=<plain json>, verbose
    form = urlencode(
        {
            "data": json.dumps({"$token": TOKEN, "$distinct_id": "u", "$set": {"c": 3}}),
            "verbose": "1",
        }
    )
    status, body = jcall(sim, "POST", "/engage", form, headers=FORM)
    assert (status, body) == (200, {"error": None, "status": 1})
    assert sim.profile("u")["$properties"]["c"] == 3


def test_engage_update_validation_is_http_200(sim):
    no_token = [{"$distinct_id": "u", "$set": {"a": 1}}]
    status, _, raw = call(sim, "POST", "/engage", no_token)
    assert (status, raw) == (200, b"0")
    status, body = jcall(sim, "POST", "/engage?verbose=1", no_token)
    assert (status, body) == (200, {"error": "token, missing or empty", "status": 0})
    status, body = jcall(sim, "POST", "/engage?verbose=1", [{"$token": TOKEN, "$set": {"a": 1}}])
    assert body["status"] == 0 and "$distinct_id" in body["error"]
    status, body = jcall(
        sim,
        "POST",
        "/engage?verbose=1",
        [{"$token": TOKEN, "$distinct_id": "u", "$add": {"a": "x"}}],
    )
    assert body["status"] == 0
    status, body = jcall(sim, "POST", "/engage?verbose=1", [])
    assert body == {"error": "data, missing or empty", "status": 0}
    too_many = [{"$token": TOKEN, "$distinct_id": f"u{i}", "$set": {"a": 1}} for i in range(2001)]
    status, body = jcall(sim, "POST", "/engage?verbose=1", too_many)
    assert status == 200 and body["status"] == 0
    # service-account auth + project_id can replace $token
    status, body = jcall(sim, "POST", f"/engage?verbose=1&project_id={PROJECT}", no_token, auth=SA)
    assert body == {"error": None, "status": 1}


# ------------------------------------------------------------------------------------------
# import
# ------------------------------------------------------------------------------------------


def test_import_json_array(sim):
    events = [ev(i) for i in range(5)]
    status, body = jcall(sim, "POST", f"/import?strict=1&project_id={PROJECT}", events, auth=SA)
    assert (status, body) == (200, {"code": 200, "num_records_imported": 5, "status": "OK"})
    imported = sim.imported()
    assert imported["count"] == 5 and imported["events"] == events


def test_import_ndjson_and_gzip(sim):
    events = [ev(i) for i in range(3)]
    ndjson = "\n".join(json.dumps(e) for e in events) + "\n"
    headers = {"Content-Type": "application/x-ndjson"}
    status, body = jcall(
        sim, "POST", f"/import?project_id={PROJECT}", ndjson, auth=SA, headers=headers
    )
    assert (status, body["num_records_imported"]) == (200, 3)
    gz = gzip.compress(json.dumps(events).encode())
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    status, body = jcall(sim, "POST", f"/import?project_id={PROJECT}", gz, auth=SA, headers=headers)
    assert (status, body["num_records_imported"]) == (200, 3)
    headers = {"Content-Type": "application/x-ndjson", "Content-Encoding": "gzip"}
    status, body = jcall(
        sim,
        "POST",
        f"/import?project_id={PROJECT}",
        gzip.compress(ndjson.encode()),
        auth=SA,
        headers=headers,
    )
    assert (status, body["num_records_imported"]) == (200, 3)
    assert sim.imported()["count"] == 9
    status, body = jcall(
        sim,
        "POST",
        f"/import?project_id={PROJECT}",
        b"\x1f\x8bnot gzip",
        auth=SA,
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert status == 400 and body["code"] == 400


def test_import_strict_partial_failure_itemised(sim):
    t = now() - 100
    events = [
        ev(0),
        {"event": "", "properties": {"time": t, "distinct_id": "a", "$insert_id": "x1"}},
        {"event": "e", "properties": {"distinct_id": "a", "$insert_id": "x2"}},
        ev(3),
        {"event": "e", "properties": {"time": t, "$insert_id": "x4"}},
        {"event": "e", "properties": {"time": t, "distinct_id": "a"}},
        {"event": "e", "properties": {"time": 5, "distinct_id": "a", "$insert_id": "x6"}},
        {
            "event": "e",
            "properties": {"time": now() + 7200, "distinct_id": "a", "$insert_id": "x7"},
        },
        {"event": "e", "properties": {"time": t, "distinct_id": "anonymous", "$insert_id": "x8"}},
        {"event": "e", "properties": {"time": t, "distinct_id": "a", "$insert_id": "has space"}},
        {"event": "e", "properties": {"time": t, "distinct_id": "a", "$insert_id": "a" * 37}},
        {"event": "e", "properties": {"time": t * 1000, "distinct_id": "", "$insert_id": "ms-ok"}},
        "not an object",
        {"event": "e", "properties": {"time": t, "distinct_id": "a", "$insert_id": "null"}},
    ]
    status, body = jcall(sim, "POST", f"/import?strict=1&project_id={PROJECT}", events, auth=SA)
    assert status == 400
    assert body["code"] == 400 and body["status"] == "Bad Request"
    assert body["error"] == "some data points in the request failed validation"
    assert body["num_records_imported"] == 3
    failed = {f["index"]: f for f in body["failed_records"]}
    assert list(failed) == [1, 2, 4, 5, 6, 7, 8, 9, 10, 12, 13]
    assert failed[1]["field"] == "event"
    assert failed[2]["field"] == "properties.time"
    assert failed[2]["insert_id"] == "x2"
    assert failed[4]["field"] == "properties.distinct_id"
    assert failed[5]["field"] == "properties.$insert_id" and failed[5]["insert_id"] is None
    assert failed[6]["field"] == failed[7]["field"] == "properties.time"
    assert failed[8]["field"] == "properties.distinct_id"
    assert (
        failed[9]["field"] == failed[10]["field"] == failed[13]["field"] == "properties.$insert_id"
    )
    assert all(set(f) == {"index", "insert_id", "field", "message"} for f in body["failed_records"])
    assert sim.imported()["count"] == 3
    # strict=0: valid events are ingested, invalid ones silently dropped
    status, body = jcall(sim, "POST", f"/import?strict=0&project_id={PROJECT}", events, auth=SA)
    assert (status, body) == (200, {"code": 200, "num_records_imported": 4, "status": "OK"})


def test_import_limits_are_413(sim):
    events = [ev(i) for i in range(2001)]
    status, body = jcall(sim, "POST", f"/import?project_id={PROJECT}", events, auth=SA)
    assert status == 413 and body["code"] == 413 and body["status"] == "Request Entity Too Large"
    assert jcall(sim, "POST", f"/import?project_id={PROJECT}", events[:2000], auth=SA)[0] == 200
    sim.configure(import_max_bytes=2000)
    big = [ev(i) for i in range(40)]
    status, body = jcall(sim, "POST", f"/import?project_id={PROJECT}", big, auth=SA)
    assert (status, body) == (
        413,
        {
            "code": 413,
            "error": "request exceeds max limit of 2000 bytes",
            "status": "Request Entity Too Large",
        },
    )
    # the limit applies to the uncompressed size
    gz = gzip.compress(json.dumps(big).encode())
    assert len(gz) < 2000
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    status, body = jcall(sim, "POST", f"/import?project_id={PROJECT}", gz, auth=SA, headers=headers)
    assert status == 413 and body["error"] == "request exceeds max limit of 2000 bytes"


def test_import_body_not_json_is_400(sim):
    status, body = jcall(
        sim,
        "POST",
        f"/import?project_id={PROJECT}",
        "{nope",
        auth=SA,
        headers={"Content-Type": "application/json"},
    )
    assert status == 400 and body["code"] == 400 and body["status"] == "Bad Request"
    status, body = jcall(
        sim,
        "POST",
        f"/import?project_id={PROJECT}",
        "42",
        auth=SA,
        headers={"Content-Type": "application/json"},
    )
    assert status == 400


def test_import_chunked_request_body(sim):
    payload = json.dumps([ev(i) for i in range(10)]).encode()
    c = conn(sim)
    try:
        c.putrequest("POST", f"/import?project_id={PROJECT}")
        c.putheader("Authorization", SA)
        c.putheader("Content-Type", "application/json")
        c.putheader("Transfer-Encoding", "chunked")
        c.endheaders()
        for i in range(0, len(payload), 100):
            piece = payload[i : i + 100]
            c.send(b"%x\r\n%s\r\n" % (len(piece), piece))
        c.send(b"0\r\n\r\n")
        resp = c.getresponse()
        assert resp.status == 200
        assert json.loads(resp.read())["num_records_imported"] == 10
    finally:
        c.close()


def test_import_legacy_form_answers_like_track(sim):
    form = urlencode({"data": json.dumps([ev(1)]), "verbose": "1"})
    status, body = jcall(sim, "POST", f"/import?project_id={PROJECT}", form, auth=SA, headers=FORM)
    assert (status, body) == (200, {"error": None, "status": 1})
    form = urlencode({"data": "[{}]", "verbose": "1"})
    status, body = jcall(sim, "POST", "/import?strict=0", form, auth=SECRET, headers=FORM)
    assert body == {"error": "data, missing or empty", "status": 0}


# ------------------------------------------------------------------------------------------
# track
# ------------------------------------------------------------------------------------------


def test_track_plain_verbose_and_encodings(sim):
    event = {"event": "Clicked", "properties": {"token": "any-token-at-all", "distinct_id": "x"}}
    status, hdrs, raw = call(
        sim, "POST", "/track", urlencode({"data": json.dumps(event)}), headers=FORM
    )
    assert (status, raw) == (200, b"1")
    assert hdrs["Content-Type"].startswith("text/plain")
    b64 = base64.b64encode(json.dumps([event, event]).encode()).decode()
    assert call(sim, "POST", "/track", urlencode({"data": b64}), headers=FORM)[2] == b"1"
    assert call(sim, "GET", "/track?" + urlencode({"data": b64}))[2] == b"1"
    assert call(sim, "POST", "/track", [event])[2] == b"1"
    status, body = jcall(sim, "POST", "/track?verbose=1", [event])
    assert (status, body) == (200, {"error": None, "status": 1})
    assert sim.tracked()["count"] == 7


def test_track_errors_are_http_200(sim):
    no_token = {"event": "Clicked", "properties": {"distinct_id": "x"}}
    status, _, raw = call(
        sim, "POST", "/track", urlencode({"data": json.dumps(no_token)}), headers=FORM
    )
    assert (status, raw) == (200, b"0")
    status, body = jcall(
        sim, "POST", "/track?verbose=1", urlencode({"data": json.dumps(no_token)}), headers=FORM
    )
    assert (status, body) == (200, {"error": "token, missing or empty", "status": 0})
    status, body = jcall(sim, "POST", "/track?verbose=1", "", headers=FORM)
    assert (status, body) == (200, {"error": "data, missing or empty", "status": 0})
    status, body = jcall(sim, "POST", "/track?verbose=1", urlencode({"data": "%%%"}), headers=FORM)
    assert status == 200 and body["status"] == 0
    status, body = jcall(sim, "POST", "/track?verbose=1", [{"properties": {"token": "t"}}])
    assert body["status"] == 0
    assert sim.tracked()["count"] == 0
    status, _, raw = call(
        sim, "POST", "/track?callback=cb", [{"event": "e", "properties": {"token": "t"}}]
    )
    assert raw == b"cb(1)"


# ------------------------------------------------------------------------------------------
# raw export
# ------------------------------------------------------------------------------------------


def _lines(raw: bytes) -> list[bytes]:
    return raw.splitlines(keepends=True)


def test_export_lines_match_datagen_exactly(sim):
    sim.configure(events_per_day=50)
    status, hdrs, raw = call(
        sim, "GET", export_path(from_date="2024-01-01", to_date="2024-01-03"), auth=SA
    )
    assert status == 200
    assert hdrs["Transfer-Encoding"] == "chunked"
    expected = list(datagen.export_lines("2024-01-01", "2024-01-03", 50))
    assert len(expected) == 150  # inclusive of both dates
    assert _lines(raw) == expected
    for line in expected:
        row = json.loads(line)
        assert set(row) == {"event", "properties"}
        assert row["event"] in datagen.EVENT_NAMES
        assert re.fullmatch(r"[0-9a-f]{32}", row["properties"]["$insert_id"])
    day_times = [json.loads(line)["properties"]["time"] for line in expected[:50]]
    assert min(day_times) >= 1704067200 and max(day_times) < 1704067200 + 86400
    assert datagen.event("2024-01-02", 3, 50) == json.loads(expected[53])
    # the /api/query and bare /export aliases serve the same stream
    for alias in ("/api/query/export", "/export"):
        path = alias + "?" + urlencode({"from_date": "2024-01-01", "to_date": "2024-01-03"})
        assert _lines(call(sim, "GET", path, auth=SECRET)[2]) == expected


def test_export_event_filter_where_and_limit(sim):
    sim.configure(events_per_day=200)
    names = ["Purchase", "Login"]
    path = export_path(from_date="2024-02-01", to_date="2024-02-02", event=json.dumps(names))
    raw = call(sim, "GET", path, auth=SA)[2]
    expected = list(datagen.export_lines("2024-02-01", "2024-02-02", 200, names))
    assert expected and _lines(raw) == expected
    assert {json.loads(line)["event"] for line in expected} == set(names)
    where = 'properties["$city"] == "Paris" and "beta" in properties["nested"]["tags"]'
    assert (
        call(
            sim,
            "GET",
            export_path(from_date="2024-02-01", to_date="2024-02-01", where=where),
            auth=SA,
        )[0]
        == 400
    )
    where = 'properties["$city"] == "Paris" and properties["$time"] >= datetime(1706788800)'
    raw = call(
        sim, "GET", export_path(from_date="2024-02-01", to_date="2024-02-02", where=where), auth=SA
    )[2]
    expected = list(datagen.export_lines("2024-02-01", "2024-02-02", 200, where=where))
    assert expected and _lines(raw) == expected
    assert all(json.loads(line)["properties"]["$city"] == "Paris" for line in expected)
    raw = call(
        sim, "GET", export_path(from_date="2024-02-01", to_date="2024-02-02", limit=7), auth=SA
    )[2]
    assert _lines(raw) == list(datagen.export_lines("2024-02-01", "2024-02-02", 200))[:7]
    # empty range of events -> 200 with an empty body
    sim.configure(events_per_day=0)
    assert call(sim, "GET", export_path(from_date="2024-02-01", to_date="2024-02-02"), auth=SA)[
        :3:2
    ] == (200, b"")


def test_export_gzip(sim):
    sim.configure(events_per_day=300)
    status, hdrs, raw = raw_request(
        sim,
        "GET",
        export_path(from_date="2024-03-01", to_date="2024-03-02"),
        headers={"Authorization": SA, "Accept-Encoding": "gzip"},
    )
    assert status == 200 and hdrs["Content-Encoding"] == "gzip"
    assert gzip.decompress(raw) == b"".join(datagen.export_lines("2024-03-01", "2024-03-02", 300))


def test_export_parameter_errors(sim):
    for params in (
        {"to_date": "2024-01-01"},
        {"from_date": "2024-01-01"},
        {"from_date": "2024/01/01", "to_date": "2024-01-01"},
        {"from_date": "2024-01-05", "to_date": "2024-01-01"},
        {"from_date": "2024-01-01", "to_date": "2024-01-01", "event": "Purchase"},
        {"from_date": "2024-01-01", "to_date": "2024-01-01", "limit": "x"},
        {"from_date": "2024-01-01", "to_date": "2024-01-01", "limit": 100001},
        {"from_date": "2024-01-01", "to_date": "2024-01-01", "where": "properties["},
    ):
        path = export_path(**params)
        status, body = jcall(sim, "GET", path, auth=SA)
        assert status == 400, params
        assert body == {"request": path, "error": body["error"]} and body["error"]
    sim.configure(export_reject_future_to_date=True)
    status, body = jcall(
        sim, "GET", export_path(from_date="2024-01-01", to_date="2999-01-01"), auth=SA
    )
    assert (status, body["error"]) == (400, "to_date cannot be later than today")


def test_export_stream_faults(sim):
    sim.configure(events_per_day=100)
    expected = list(datagen.export_lines("2024-01-01", "2024-01-01", 100))
    path = export_path(from_date="2024-01-01", to_date="2024-01-01")
    sim.faults(export_terminate_after=10, count=1)
    status, _, raw = call(sim, "GET", path, auth=SA)
    assert status == 200
    assert _lines(raw) == [*expected[:10], b"terminated early\n"]
    assert _lines(call(sim, "GET", path, auth=SA)[2]) == expected  # count=1 consumed
    sim.faults(export_garble_line=3, count=1)
    lines = _lines(call(sim, "GET", path, auth=SA)[2])
    assert len(lines) == 100 and lines[:3] == expected[:3] and lines[4:] == expected[4:]
    with pytest.raises(ValueError):
        json.loads(lines[3])
    sim.faults(export_fail_after=20, count=1)
    c = conn(sim)
    try:
        c.request("GET", path, headers={"Authorization": SA})
        resp = c.getresponse()
        assert resp.status == 200
        with pytest.raises(http.client.IncompleteRead) as info:
            resp.read()
        assert info.value.partial.count(b"\n") == 20
    finally:
        c.close()


def test_export_of_a_million_events_streams_in_constant_memory(sim):
    sim.configure(events_per_day=1_000_000)
    c = conn(sim, timeout=120)
    lines = 0
    tail = b""
    started = time.monotonic()
    try:
        c.request(
            "GET",
            export_path(from_date="2024-05-01", to_date="2024-05-01"),
            headers={"Authorization": SA},
        )
        resp = c.getresponse()
        assert resp.status == 200
        while True:
            block = resp.read(1 << 20)
            if not block:
                break
            lines += block.count(b"\n")
            tail = (tail + block)[-2048:]
    finally:
        c.close()
    elapsed = time.monotonic() - started
    assert lines == 1_000_000
    last = tail.rstrip(b"\n").rsplit(b"\n", 1)[-1] + b"\n"
    assert json.loads(last) == datagen.event("2024-05-01", 999_999, 1_000_000)
    peak_mb = sim.memory_kb()["VmHWM"] / 1024
    assert peak_mb < 150, f"simulator peak RSS {peak_mb:.0f} MB"
    assert elapsed < 60


# ------------------------------------------------------------------------------------------
# top events
# ------------------------------------------------------------------------------------------


def test_top_events(sim):
    sim.configure(events_per_day=1000)
    status, body = jcall(
        sim, "GET", f"/api/query/events/top?project_id={PROJECT}&type=general&limit=3", auth=SA
    )
    assert status == 200
    assert body == datagen.top_events(1000, "general", 3)
    assert body["type"] == "general" and len(body["events"]) == 3
    amounts = [e["amount"] for e in body["events"]]
    assert amounts == sorted(amounts, reverse=True) and all(isinstance(a, int) for a in amounts)
    assert all(set(e) == {"amount", "event", "percent_change"} for e in body["events"])
    assert {e["event"] for e in body["events"]} <= set(datagen.EVENT_NAMES)
    status, again = jcall(
        sim, "GET", f"/api/2.0/events/top?project_id={PROJECT}&type=general&limit=3", auth=SA
    )
    assert again == body
    status, body = jcall(sim, "GET", "/api/2.0/events/top?type=unique", auth=SECRET)
    assert body["type"] == "unique" and len(body["events"]) == len(datagen.EVENT_NAMES)
    assert jcall(sim, "GET", "/api/2.0/events/top?type=weird", auth=SECRET)[0] == 400


# ------------------------------------------------------------------------------------------
# fault switches
# ------------------------------------------------------------------------------------------


def test_fault_latency(sim):
    sim.faults(latency_ms=300, count=1)
    started = time.monotonic()
    assert jcall(sim, "GET", "/api/app/me", auth=SA)[0] == 200
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    assert jcall(sim, "GET", "/api/app/me", auth=SA)[0] == 200
    assert time.monotonic() - started < 0.25


def test_fault_status_with_count_and_path_prefix(sim):
    sim.faults(status=503, count=2, path_prefix="/import")
    assert jcall(sim, "GET", "/api/app/me", auth=SA)[0] == 200
    for _ in range(2):
        status, body = jcall(sim, "POST", f"/import?project_id={PROJECT}", [ev(1)], auth=SA)
        assert (status, body) == (503, {"error": "simulated failure"})
    assert jcall(sim, "POST", f"/import?project_id={PROJECT}", [ev(1)], auth=SA)[0] == 200
    sim.faults(status={"status": 502, "count": 1})
    assert jcall(sim, "GET", "/api/app/me", auth=SA)[0] == 502
    assert jcall(sim, "GET", "/api/app/me", auth=SA)[0] == 200


def test_fault_rate_limit_with_and_without_retry_after(sim):
    sim.faults(rate_limit={"retry_after": 7}, count=1)
    path = f"/api/query/engage?project_id={PROJECT}"
    status, hdrs, raw = call(sim, "GET", path, auth=SA)
    body = json.loads(raw)
    assert status == 429 and hdrs["Retry-After"] == "7"
    assert body["request"] == path and body["error"].startswith(
        "Query rate limit exceeded for project_id: 2002."
    )
    sim.faults(rate_limit={"retry_after": None}, count=1)
    status, hdrs, raw = call(sim, "POST", f"/import?project_id={PROJECT}", [ev(1)], auth=SA)
    assert status == 429 and "Retry-After" not in hdrs
    assert json.loads(raw) == {
        "code": 429,
        "error": "Project exceeded rate limits. Please retry the request with exponential backoff.",
        "status": "Too Many Requests",
    }


def test_fault_hang_until_client_gives_up(sim):
    sim.faults(hang=True, count=1)
    started = time.monotonic()
    with pytest.raises((TimeoutError, socket.timeout)):
        raw_request(sim, "GET", "/api/app/me", headers={"Authorization": SA}, timeout=0.5)
    assert 0.45 <= time.monotonic() - started < 5
    assert jcall(sim, "GET", "/api/app/me", auth=SA)[0] == 200


def test_fault_drop(sim):
    sim.faults(drop=True, count=1)
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
        raw_request(
            sim, "POST", f"/import?project_id={PROJECT}", json.dumps([ev(1)]), {"Authorization": SA}
        )
    assert jcall(sim, "GET", "/api/app/me", auth=SA)[0] == 200


def test_fault_truncate(sim):
    sim.faults(truncate=True, count=1)
    with pytest.raises(http.client.IncompleteRead):
        raw_request(sim, "GET", "/api/app/me", headers={"Authorization": SA})
    assert jcall(sim, "GET", "/api/app/me", auth=SA)[0] == 200


def test_fault_malformed(sim):
    sim.faults(malformed=True, count=1)
    status, hdrs, raw = call(sim, "GET", "/api/app/me", auth=SA)
    assert status == 200 and raw.startswith(b"<html>oops")
    with pytest.raises(ValueError):
        json.loads(raw)
    listed = sim.faults(malformed={"body": "{broken", "content_type": "application/json"})
    assert listed[-1]["kind"] == "malformed"
    assert call(sim, "GET", "/api/app/me", auth=SA)[2] == b"{broken"
    sim.clear_faults()
    assert jcall(sim, "GET", "/api/app/me", auth=SA)[0] == 200


def statuses(sim, n, path="/api/app/me"):
    return [jcall(sim, "GET", path, auth=SA)[0] for _ in range(n)]


def test_fault_probability_fires_on_that_share_of_requests(sim):
    listed = sim.faults(status={"status": 503, "probability": 0.25}, seed=7)
    assert listed[-1]["probability"] == 0.25
    seen = statuses(sim, 400)
    failed = seen.count(503)
    assert 60 <= failed <= 140  # 100 expected; far outside this is not a 25 % draw
    assert set(seen) == {200, 503}
    assert sim.faults()[0]["hits"] == failed  # counted only where it fired


def test_fault_probability_is_repeatable_with_a_seed(sim):
    sim.faults(status=503, probability=0.5, seed=42)
    first = statuses(sim, 40)
    sim.clear_faults()
    sim.faults(status=503, probability=0.5, seed=42)
    assert statuses(sim, 40) == first


def test_fault_probability_bounds_and_count(sim):
    sim.faults(status=503, probability=0)
    assert set(statuses(sim, 30)) == {200}
    sim.clear_faults()
    sim.faults(status=503, probability=1)
    assert set(statuses(sim, 5)) == {503}
    sim.clear_faults()
    # count: the next 3 requests it fires on, however many it lets through meanwhile
    sim.faults(status={"status": 502, "probability": 0.5, "count": 3})
    assert statuses(sim, 60).count(502) == 3


def test_fault_probability_mix_of_hangs_and_errors(sim):
    # "1 % hang, 10 % 5xx": the hang switch is added first, so it draws first.
    sim.faults(hang={"seconds": 5, "probability": 0.05}, seed=3)
    sim.faults(status={"status": 500, "probability": 0.2})
    outcomes = {"ok": 0, "error": 0, "hang": 0}
    for _ in range(200):
        try:
            status = raw_request(
                sim, "GET", "/api/app/me", headers={"Authorization": SA}, timeout=0.3
            )[0]
        except TimeoutError:
            outcomes["hang"] += 1
            continue
        outcomes["error" if status == 500 else "ok"] += 1
    assert 2 <= outcomes["hang"] <= 25  # 10 expected
    assert 15 <= outcomes["error"] <= 70  # 38 expected
    assert outcomes["ok"] + outcomes["error"] + outcomes["hang"] == 200


def test_fault_probability_validation(sim):
    for bad in (1.5, -0.1, "half", True):
        status, body = jcall(sim, "POST", "/__sim__/faults", {"status": 503, "probability": bad})
        assert status == 400 and "probability" in body["error"]
    status, body = jcall(sim, "POST", "/__sim__/faults", {"status": 503, "seed": "x"})
    assert status == 400 and "seed" in body["error"]
    assert sim.faults() == []


def test_fault_and_config_validation(sim):
    status, body = jcall(sim, "POST", "/__sim__/faults", {"explode": True})
    assert status == 400 and "explode" in body["error"]
    status, body = jcall(sim, "POST", "/__sim__/config", {"not_a_setting": 1})
    assert status == 400 and "not_a_setting" in body["error"]
    status, body = jcall(sim, "POST", "/__sim__/config", {"events_per_day": "many"})
    assert status == 400


# ------------------------------------------------------------------------------------------
# rate limits
# ------------------------------------------------------------------------------------------


def test_rate_limits_off_by_default(sim):
    for _ in range(70):
        assert jcall(sim, "GET", "/api/2.0/events/top", auth=SECRET)[0] == 200


def test_query_rate_limit_per_hour(sim):
    sim.configure(rate_limits={"enabled": True, "query_per_hour": 3})
    for _ in range(3):
        assert engage(sim)[0] == 200
    status, body = engage(sim)
    assert status == 429
    assert body["request"].startswith("/api/query/engage?")
    assert body["error"].startswith("Query rate limit exceeded for project_id: 2002. ")
    assert "4/3 queries running in the last hour" in body["error"]


def test_export_concurrency_limit(sim):
    sim.configure(
        events_per_day=1_000_000,
        rate_limits={"enabled": True, "export_concurrent": 1, "export_per_second": 100},
    )
    path = export_path(from_date="2024-01-01", to_date="2024-01-01")
    first = conn(sim)
    try:
        first.request("GET", path, headers={"Authorization": SA})
        resp = first.getresponse()
        assert resp.status == 200
        resp.read(1000)
        status, body = jcall(sim, "GET", path + "&limit=5", auth=SA)
        assert status == 429 and body["request"] == path + "&limit=5"
    finally:
        first.close()
    deadline = time.monotonic() + 10
    while True:
        status, _, raw = call(sim, "GET", path + "&limit=5", auth=SA)
        if status == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert status == 200 and raw.count(b"\n") == 5


def test_ingestion_rate_limit(sim):
    sim.configure(rate_limits={"enabled": True, "ingest_events_per_minute": 5})
    assert (
        jcall(sim, "POST", f"/import?project_id={PROJECT}", [ev(i) for i in range(3)], auth=SA)[0]
        == 200
    )
    status, body = jcall(
        sim, "POST", f"/import?project_id={PROJECT}", [ev(i) for i in range(3)], auth=SA
    )
    assert status == 429 and body["code"] == 429 and body["status"] == "Too Many Requests"
    status, body = jcall(sim, "POST", "/track", [{"event": "e", "properties": {"token": "t"}}] * 3)
    assert status == 429 and body["code"] == 429


def test_cli_flags_standalone_entry_and_clean_shutdown():
    # standalone=True runs `python simulators/mixpanel ...` (no parent-package imports)
    proc = SimulatorProcess(
        "--rate-limits",
        "--events-per-day",
        "7",
        "--profiles",
        "12",
        "--project-id",
        "3003",
        "--api-secret",
        "other-secret",
        "--import-max-bytes",
        "5000",
        standalone=True,
    )
    with proc:
        cfg = proc.config()
        assert cfg["rate_limits"]["enabled"] is True
        assert (cfg["events_per_day"], cfg["profiles"], cfg["project_id"]) == (
            7,
            {"count": 12},
            3003,
        )
        assert cfg["import_max_bytes"] == 5000
        status, _, raw = proc.request("GET", "/api/2.0/engage", auth=basic_auth("other-secret"))
        assert status == 200 and json.loads(raw)["total"] == 12
        status, _, _ = proc.request(
            "GET", "/api/2.0/engage?project_id=3003", auth=basic_auth(SA_USER, SA_SECRET)
        )
        assert status == 200
        proc.reset()  # reset goes back to the startup configuration
        assert proc.config()["events_per_day"] == 7
        popen = proc.proc
        assert "elements.mixpanel" not in proc.stderr_text()
    assert popen.returncode == 0


# ------------------------------------------------------------------------------------------
# control API, HTTP plumbing
# ------------------------------------------------------------------------------------------


def test_requests_are_recorded(sim):
    sim.clear_requests()
    form = urlencode({"data": json.dumps({"event": "e", "properties": {"token": "t"}})})
    call(sim, "POST", "/track?verbose=1", form, headers=FORM)
    gz = gzip.compress(json.dumps([ev(1)]).encode())
    call(
        sim,
        "POST",
        f"/import?project_id={PROJECT}",
        gz,
        auth=SA,
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    big = [ev(i, pad="x" * 600) for i in range(150)]
    call(sim, "POST", f"/import?project_id={PROJECT}", big, auth=SA)
    call(sim, "GET", "/nowhere?a=1&a=2")
    recorded = sim.requests()
    assert [r["path"] for r in recorded] == ["/track", "/import", "/import", "/nowhere"]
    track, small, large, nowhere = recorded
    assert [r["status"] for r in recorded] == [200, 200, 200, 404]
    assert track["method"] == "POST" and track["query"] == {"verbose": "1"}
    assert track["headers"]["Content-Type"] == FORM["Content-Type"]
    assert json.loads(track["body"]["data"]) == {"event": "e", "properties": {"token": "t"}}
    assert small["headers"]["Authorization"] == SA
    assert small["headers"]["Content-Encoding"] == "gzip"
    assert small["query"] == {"project_id": str(PROJECT)}
    assert small["body"][0]["properties"]["$insert_id"] == "iid-1"
    assert large["body"]["count"] == 150 and len(large["body"]["items"]) == 100
    assert large["body"]["items"][0]["properties"]["$insert_id"] == "iid-0"
    assert nowhere["query"] == {"a": ["1", "2"]}
    sim.clear_requests()
    assert sim.requests() == []


def test_reset_restores_defaults(sim):
    sim.configure(events_per_day=5, profiles={"count": 9}, project_id=7777)
    call(sim, "POST", "/import", [ev(1)], auth=SECRET)
    sim.faults(status=500)
    sim.reset()
    cfg = sim.config()
    assert (cfg["events_per_day"], cfg["profiles"], cfg["project_id"]) == (0, {"count": 0}, PROJECT)
    assert cfg["import_max_bytes"] == 10485760
    assert sim.imported() == {"count": 0, "events": []}
    assert jcall(sim, "GET", "/api/app/me", auth=SA)[0] == 200


def test_unknown_paths_are_json_404(sim):
    for method, path in (
        ("GET", "/"),
        ("GET", "/api/query/nope"),
        ("POST", "/decide"),
        ("GET", "/api/app/nope"),
    ):
        status, hdrs, raw = call(sim, method, path)
        assert status == 404 and hdrs["Content-Type"] == "application/json"
        assert json.loads(raw)["error"]
    status, _, raw = call(sim, "GET", "/__sim__/nope")
    assert status == 404
    assert call(sim, "GET", "/import", auth=SA)[0] == 405


def test_keep_alive_connection_survives_mixed_requests(sim):
    sim.configure(events_per_day=20, profiles={"count": 5})
    c = conn(sim)
    try:
        for _ in range(2):
            c.request(
                "GET", f"/api/query/engage?project_id={PROJECT}", headers={"Authorization": SA}
            )
            r = c.getresponse()
            assert r.status == 200 and json.loads(r.read())["total"] == 5
            c.request(
                "POST",
                f"/import?project_id={PROJECT}",
                body=json.dumps([ev(1)]),
                headers={"Authorization": SA, "Content-Type": "application/json"},
            )
            r = c.getresponse()
            assert r.status == 200 and json.loads(r.read())["num_records_imported"] == 1
            c.request(
                "GET",
                export_path(from_date="2024-01-01", to_date="2024-01-01"),
                headers={"Authorization": SA, "Accept-Encoding": "gzip"},
            )
            r = c.getresponse()
            assert r.status == 200 and zlib.decompress(r.read(), 47).count(b"\n") == 20
            c.request("GET", "/missing")
            r = c.getresponse()
            assert r.status == 404 and r.read()
            c.request(
                "POST",
                "/track",
                body=json.dumps([{"event": "e", "properties": {"token": "t"}}]),
                headers={"Content-Type": "application/json"},
            )
            r = c.getresponse()
            assert r.status == 200 and r.read() == b"1"
            c.request("GET", "/api/app/me", headers={"Authorization": basic_auth("x", "y")})
            r = c.getresponse()
            assert r.status == 401 and r.read()
    finally:
        c.close()


def test_quoted_distinct_id_profile_view(sim):
    call(sim, "POST", "/engage", [{"$token": TOKEN, "$distinct_id": "a b/c", "$set": {"k": 1}}])
    assert sim.profile("a b/c") == {
        "$distinct_id": "a b/c",
        "exists": True,
        "$properties": {"k": 1},
    }
    assert quote("a b/c", safe="") == "a%20b%2Fc"


def test_simulator_logged_no_internal_errors(sim):
    """Runs last: no request in this module made the simulator print a traceback."""
    assert "Traceback" not in sim.stderr_text()
