"""The simulator's data-management endpoints (cohorts, annotations, lookup tables, identity
events) and their control API, over plain HTTP to the real simulator process."""

from __future__ import annotations

import json
import time
from urllib.parse import urlencode

import pytest

from simulators.mixpanel.testing import basic_auth

SA = basic_auth("sim-admin.a1b2c3.mp-service-account", "sim-sa-secret")
SECRET = basic_auth("sim-api-secret", "")
PROJECT = 2002
ANNOTATIONS = f"/api/app/projects/{PROJECT}/annotations"
ACCOUNTS = "55b4fb2b-7d1e-4a51-9a3c-0c2f1e6b8a01"
CSV = {"Content-Type": "text/csv"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture(autouse=True)
def sixty_profiles(fresh, sim):
    sim.configure(profiles=60)


def jcall(sim, method, path, body=None, auth=None, headers=None):
    status, _, raw = sim.request(method, path, body, auth=auth, headers=headers)
    return status, json.loads(raw) if raw else None


# --- cohorts ----------------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["/api/query", "/api/2.0"])
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_cohort_list_counts_members_from_the_profiles(sim, prefix, method):
    status, cohorts = jcall(sim, method, f"{prefix}/cohorts/list?project_id={PROJECT}", auth=SA)
    assert status == 200
    assert [c["id"] for c in cohorts] == [1001, 1002, 1003]
    assert set(cohorts[0]) == {
        "count",
        "is_visible",
        "description",
        "created",
        "project_id",
        "id",
        "name",
    }
    by_id = {c["id"]: c for c in sim.cohorts()}
    for cohort in cohorts:
        assert cohort["count"] == len(by_id[cohort["id"]]["members"]) > 0
        assert cohort["project_id"] == PROJECT
    dallas = by_id[1001]["members"]
    assert all(sim.profile(d)["$properties"]["$city"] == "Dallas" for d in dallas)


def test_cohort_list_needs_credentials_and_the_project(sim):
    status, body = jcall(sim, "POST", "/api/query/cohorts/list")
    assert status == 401 and body["error"]
    status, body = jcall(sim, "POST", "/api/query/cohorts/list", auth=SA)
    assert status == 400 and "project_id" in body["error"]
    assert jcall(sim, "POST", "/api/query/cohorts/list", auth=SECRET)[0] == 200


def test_engage_filter_by_cohort_pages_the_members(sim):
    members = next(c for c in sim.cohorts() if c["id"] == 1001)["members"]
    form = urlencode({"filter_by_cohort": json.dumps({"id": 1001}), "page_size": 2})
    status, first = jcall(
        sim, "POST", f"/api/query/engage?project_id={PROJECT}", form, auth=SA, headers=FORM
    )
    assert status == 200
    assert first["total"] == len(members)
    assert [r["$distinct_id"] for r in first["results"]] == members[:2]
    query = urlencode(
        {
            "project_id": PROJECT,
            "filter_by_cohort": '{"id": 1001}',
            "page": 1,
            "page_size": 2,
            "session_id": first["session_id"],
        }
    )
    status, second = jcall(sim, "GET", f"/api/query/engage?{query}", auth=SA)
    assert [r["$distinct_id"] for r in second["results"]] == members[2:4]


@pytest.mark.parametrize("cohort_filter", ['{"id": 1003}', {"id": 1003}])
def test_engage_takes_the_cohort_filter_in_a_json_body_as_airbyte_sends_it(sim, cohort_filter):
    body = {"filter_by_cohort": cohort_filter, "page_size": 2}
    path = f"/api/query/engage?project_id={PROJECT}&page=0"
    status, answer = jcall(sim, "POST", path, body, auth=SA)
    assert status == 200 and answer["total"] == 3
    assert [r["$distinct_id"] for r in answer["results"]] == ["user-0", "user-1"]
    status, answer = jcall(sim, "POST", path, [1], auth=SA)
    assert status == 400 and "JSON object" in answer["error"]


@pytest.mark.parametrize(
    "value,message",
    [("{", "valid JSON"), ('{"name": 1}', '{"id"'), ('{"id": 999}', "does not exist")],
)
def test_engage_refuses_a_bad_cohort_filter(sim, value, message):
    query = urlencode({"project_id": PROJECT, "filter_by_cohort": value})
    status, body = jcall(sim, "GET", f"/api/query/engage?{query}", auth=SA)
    assert status == 400 and message in body["error"]


def test_control_adds_changes_and_deletes_cohorts(sim):
    added = sim.add_cohort(name="Listed", distinct_ids=["user-5", "user-6", "nobody"])
    assert added["id"] == 1004 and added["members"] == ["user-5", "user-6"]
    assert added["count"] == 2
    changed = sim.change_cohort(1004, name="Renamed", selector='properties["age"] > 200')
    assert changed["name"] == "Renamed" and changed["members"] == ["user-5", "user-6"]
    sim.delete_cohort(1001)
    _, cohorts = jcall(sim, "GET", f"/api/query/cohorts/list?project_id={PROJECT}", auth=SA)
    assert [c["id"] for c in cohorts] == [1002, 1003, 1004]
    with pytest.raises(RuntimeError, match="400"):
        sim.add_cohort(name="bad", selector="properties[")
    with pytest.raises(RuntimeError, match="404"):
        sim.change_cohort(4242, name="x")


# --- annotations ------------------------------------------------------------------------------


def test_annotations_list_filters_by_day(sim):
    status, body = jcall(sim, "GET", ANNOTATIONS, auth=SA)
    assert status == 200 and body["status"] == "ok"
    assert [a["id"] for a in body["results"]] == [101, 102, 103]
    first = body["results"][0]
    assert set(first) == {"id", "date", "description", "user", "tags"}
    assert first["tags"] == [{"id": 1, "name": "release"}]
    path = f"{ANNOTATIONS}?fromDate=2024-05-02&toDate=2024-05-31"
    assert [a["id"] for a in jcall(sim, "GET", path, auth=SA)[1]["results"]] == [102]
    assert jcall(sim, "GET", f"{ANNOTATIONS}/?toDate=2024-05-01", auth=SA)[1]["results"][0][
        "id"
    ] == (101)


def test_annotation_create_read_update_delete(sim):
    body = {"date": "2024-07-04 10:00:00", "description": "Launch", "tags": [2]}
    status, created = jcall(sim, "POST", ANNOTATIONS, body, auth=SA)
    assert status == 201 and created["status"] == "ok"
    annotation = created["results"]
    assert annotation["tags"] == [{"id": 2, "name": "campaign"}]
    one = f"{ANNOTATIONS}/{annotation['id']}"
    assert jcall(sim, "GET", one, auth=SA)[1]["results"] == annotation
    status, patched = jcall(sim, "PATCH", one, {"description": "Launch day"}, auth=SA)
    assert status == 200 and patched["results"]["description"] == "Launch day"
    assert patched["results"]["date"] == "2024-07-04 10:00:00"
    status, deleted = jcall(sim, "DELETE", one, auth=SA)
    assert (status, deleted) == (200, {"status": "ok", "results": {"id": annotation["id"]}})
    status, missing = jcall(sim, "GET", one, auth=SA)
    assert status == 404 and missing == {"status": "error", "error": missing["error"]}


@pytest.mark.parametrize(
    "method,path,body,status,message",
    [
        ("POST", "", {"description": "x"}, 400, "date is required"),
        ("POST", "", {"date": "2024-13-01", "description": "x"}, 400, "YYYY-MM-DD"),
        ("POST", "", {"date": "2024-07-01", "description": " "}, 400, "description"),
        ("POST", "", {"date": "2024-07-01", "description": "x", "tags": [9]}, 400, "unknown tag"),
        ("PATCH", "/101", {"date": "2024-07-01"}, 400, "unknown fields: date"),
        ("GET", "?fromDate=2024/01/01", None, 400, "yyyy-mm-dd"),
        ("GET", "/999", None, 404, "not found"),
    ],
)
def test_annotation_validation(sim, method, path, body, status, message):
    got, answer = jcall(sim, method, ANNOTATIONS + path, body, auth=SA)
    assert got == status and message in answer["error"] and answer["status"] == "error"


def test_the_older_annotation_list_takes_the_api_secret(sim):
    path = "/api/2.0/annotations?from_date=2024-05-02&to_date=2024-05-31"
    status, body = jcall(sim, "GET", path, auth=SECRET)
    assert (status, body) == (
        200,
        {
            "annotations": [
                {
                    "id": 102,
                    "project_id": PROJECT,
                    "date": "2024-05-10 12:00:00",
                    "description": "Spring campaign",
                }
            ]
        },
    )
    assert jcall(sim, "GET", "/api/2.0/annotations", auth=SA)[0] == 400  # no project_id
    assert jcall(sim, "GET", "/api/2.0/annotations?from_date=May", auth=SECRET)[0] == 400


def test_annotations_take_a_member_service_account_only(sim):
    assert jcall(sim, "GET", ANNOTATIONS, auth=SECRET)[0] == 401
    assert jcall(sim, "GET", "/api/app/projects/9999/annotations", auth=SA)[0] == 403


def test_control_adds_changes_and_deletes_annotations(sim):
    added = sim.add_annotation(date="2024-08-01", description="Added", tags=[1])
    assert added["date"] == "2024-08-01 00:00:00"
    sim.change_annotation(101, date="2024-04-30 23:00:00", description="Moved")
    sim.delete_annotation(103)
    _, body = jcall(sim, "GET", ANNOTATIONS, auth=SA)
    assert [(a["id"], a["description"]) for a in body["results"]] == [
        (101, "Moved"),
        (102, "Spring campaign"),
        (added["id"], "Added"),
    ]


# --- lookup tables ----------------------------------------------------------------------------


def test_lookup_tables_list_takes_a_service_account(sim):
    status, body = jcall(sim, "GET", f"/lookup-tables?project_id={PROJECT}", auth=SA)
    assert status == 200 and (body["code"], body["status"]) == (200, "OK")
    assert body["results"][0] == {"id": ACCOUNTS, "name": "Accounts"}
    status, body = jcall(sim, "GET", "/lookup-tables", auth=SECRET)
    assert (status, body) == (
        401,
        {"code": 401, "error": "Invalid credentials", "status": "Unauthorized"},
    )


def test_lookup_table_is_replaced_from_csv(sim):
    table = b'key,name,tags\nk1,One,"[""a"",""b""]"\nk2,Two,\n'
    status, body = jcall(sim, "PUT", f"/lookup-tables/{ACCOUNTS}", table, SECRET, CSV)
    assert (status, body) == (200, {"code": 200, "status": "OK"})
    stored = next(t for t in sim.lookup_tables() if t["id"] == ACCOUNTS)
    assert stored["header"] == ["key", "name", "tags"]
    assert stored["rows"] == [["k1", "One", '["a","b"]'], ["k2", "Two", ""]]


def test_lookup_table_replacement_is_all_or_nothing(sim):
    table = b"key,name\nk1,a\nk1,b\n,c\nk4\n"
    status, body = jcall(sim, "PUT", f"/lookup-tables/{ACCOUNTS}", table, SECRET, CSV)
    assert status == 400
    assert body["error"] == "Some data points in the request failed validation."
    assert [r["index"] for r in body["failed_records"]] == [2, 3, 4]
    assert "same primary key" in body["failed_records"][0]["message"]
    stored = next(t for t in sim.lookup_tables() if t["id"] == ACCOUNTS)
    assert stored["rows"] == [["a-1", "Acme", "Gold"], ["a-2", "Globex", "Silver"]]


@pytest.mark.parametrize(
    "path,body,headers,status",
    [
        ("/lookup-tables/not-a-table", b"a,b\n1,2\n", CSV, 404),
        (f"/lookup-tables/{ACCOUNTS}", b"a,b\n1,2\n", {"Content-Type": "text/plain"}, 415),
        (f"/lookup-tables/{ACCOUNTS}", b"onlyone\nx\n", CSV, 400),
    ],
)
def test_lookup_table_errors(sim, path, body, headers, status):
    got, answer = jcall(sim, "PUT", path, body, SECRET, headers)
    assert got == status and answer["code"] == status and answer["error"]


# --- identity ---------------------------------------------------------------------------------


def _identity_event(name, **props):
    base = {"time": int(time.time()) - 10, "distinct_id": "anon-1", "$insert_id": name[1:6]}
    return {"event": name, "properties": {**base, **props}}


def test_original_id_merge_takes_merge_and_alias(sim):
    events = [
        _identity_event("$merge", **{"$distinct_ids": ["anon-1", "user-1"]}),
        _identity_event("$create_alias", alias="alias-1"),
    ]
    status, body = jcall(sim, "POST", "/import?strict=1", events, auth=SECRET)
    assert status == 200 and body["num_records_imported"] == 2
    identity = sim.identity()
    assert identity["clusters"] == [["anon-1", "user-1"]]
    assert identity["aliases"] == {"alias-1": "anon-1"}


@pytest.mark.parametrize(
    "version,event,message",
    [
        ("simplified", "$merge", "simplified identity management"),
        ("simplified", "$create_alias", "simplified identity management"),
        ("legacy", "$merge", "Original ID Merge"),
    ],
)
def test_id_management_version_refuses_identity_events(sim, version, event, message):
    assert sim.identity(version)["id_management"] == version
    ev = _identity_event(event, alias="alias-2", **{"$distinct_ids": ["a", "b"]})
    status, body = jcall(sim, "POST", "/import?strict=1", [ev], auth=SECRET)
    assert status == 400
    assert message in body["failed_records"][0]["message"]
    assert sim.identity()["clusters"] == [] and sim.identity()["aliases"] == {}


def test_merge_needs_exactly_two_ids_and_an_alias_maps_to_one_id(sim):
    ev = _identity_event("$merge", **{"$distinct_ids": ["only-one"]})
    status, body = jcall(sim, "POST", "/import?strict=1", [ev], auth=SECRET)
    assert status == 400 and body["failed_records"][0]["field"] == "properties.$distinct_ids"
    first = _identity_event("$create_alias", alias="shared")
    second = _identity_event("$create_alias", alias="shared", distinct_id="other")
    second["properties"]["$insert_id"] = "second"
    status, body = jcall(sim, "POST", "/import?strict=1", [first, second], auth=SECRET)
    assert status == 400 and body["num_records_imported"] == 1
    assert "already maps" in body["failed_records"][0]["message"]
    with pytest.raises(RuntimeError, match="400"):
        sim.identity("newest")
