"""Cohorts, annotations, identities and lookup tables through the platform, in both URL styles,
against the simulator, with what Mixpanel received asserted (contract §5d)."""

import json

import pytest
from rest_framework.test import APIClient

from conftest import SIM_API_SECRET, SIM_PROJECT_ID, SIM_SA_SECRET, SIM_SA_USERNAME, make_instance
from simulators.mixpanel.testing import basic_auth

pytestmark = [pytest.mark.django_db, pytest.mark.integration]

HUB = "/elements/api-v2/hubs/general"
NEXT = "Elements-Next-Page-Token"
SA_BASIC = basic_auth(SIM_SA_USERNAME, SIM_SA_SECRET)
SECRET_BASIC = basic_auth(SIM_API_SECRET)
ACCOUNTS = "55b4fb2b-7d1e-4a51-9a3c-0c2f1e6b8a01"
MISSING_TABLE = "00000000-0000-4000-8000-000000000000"


@pytest.fixture
def sim(sim):
    sim.configure(profiles=60)
    sim.clear_requests()
    return sim


@pytest.fixture
def element(tenant, sa_instance):
    return tenant.element_client(sa_instance["token"])


@pytest.fixture
def iid(sa_instance):
    return sa_instance["id"]


@pytest.fixture
def secret_only(tenant, sim):
    """An instance holding the project's API secret alone (as in the seed's example)."""
    _, token = make_instance(tenant, name="secret", configuration={"username": SIM_API_SECRET})
    return tenant.element_client(token)


def received(sim, path, method=None):
    return [
        r
        for r in sim.requests()
        if r["path"].rstrip("/") == path and (method is None or r["method"] == method)
    ]


def last(sim, path, method=None):
    matching = received(sim, path, method)
    assert matching, f"Mixpanel never received {method or ''} {path}"
    return matching[-1]


def errors_of(response, status=400):
    assert response.status_code == status, response.content
    body = response.json()
    assert body["requestId"] == response["Elements-Request-Id"]
    return body


def fields_of(response):
    return {e["field"] for e in errors_of(response).get("errors", [])}


# --- cohorts ----------------------------------------------------------------------------------


def test_cohorts_in_both_url_styles(element, sim, iid):
    resource = element.get(f"{HUB}/cohorts")
    assert resource.status_code == 200, resource.content
    cohorts = resource.json()
    assert [c["id"] for c in cohorts] == [1001, 1002, 1003]
    counts = {c["id"]: c["count"] for c in sim.cohorts()}
    assert {c["id"]: c["count"] for c in cohorts} == counts
    request = last(sim, "/api/query/cohorts/list", "POST")
    assert request["query"] == {"project_id": str(SIM_PROJECT_ID)}
    assert request["headers"]["Authorization"] == SA_BASIC

    operation = element.get(f"/mixpanel/list_cohorts/{iid}")
    assert operation.status_code == 200, operation.content
    assert operation.json() == cohorts
    assert len(received(sim, "/api/query/cohorts/list")) == 2


def test_cohorts_are_paged(element, sim):
    first = element.get(f"{HUB}/cohorts?pageSize=2")
    assert [c["id"] for c in first.json()] == [1001, 1002]
    second = element.get(f"{HUB}/cohorts", {"pageSize": 2, "nextPage": first[NEXT]})
    assert [c["id"] for c in second.json()] == [1003]
    assert NEXT not in second


def test_cohort_members_in_both_url_styles_paged_like_users(element, sim, iid):
    members = next(c for c in sim.cohorts() if c["id"] == 1001)["members"]
    assert len(members) > 3
    first = element.get(f"{HUB}/cohorts/1001/users?pageSize=3")
    assert first.status_code == 200, first.content
    assert [p["$distinct_id"] for p in first.json()] == members[:3]
    assert all(p["$properties"]["$city"] == "Dallas" for p in first.json())
    request = last(sim, "/api/query/engage", "POST")
    assert json.loads(request["body"]["filter_by_cohort"]) == {"id": 1001}
    assert request["body"]["page_size"] == "3" and request["body"]["page"] == "0"

    ids = [p["$distinct_id"] for p in first.json()]
    token = first[NEXT]
    while token:
        page = element.get(f"{HUB}/cohorts/1001/users", {"pageSize": 3, "nextPage": token})
        assert page.status_code == 200, page.content
        ids += [p["$distinct_id"] for p in page.json()]
        token = page.get(NEXT)
    assert ids == members
    assert last(sim, "/api/query/engage", "POST")["body"]["session_id"]

    operation = element.get(f"/mixpanel/get_cohort_members/{iid}?cohortId=1003")
    assert operation.status_code == 200, operation.content
    assert [p["$distinct_id"] for p in operation.json()] == ["user-0", "user-1", "user-2"]
    assert json.loads(last(sim, "/api/query/engage")["body"]["filter_by_cohort"]) == {"id": 1003}


@pytest.mark.parametrize(
    "url,field",
    [
        ("/cohorts/abc/users", "cohortId"),
        ("/cohorts/0/users", "cohortId"),
        ("/cohorts/1001/users?pageSize=0", "pageSize"),
        ("/cohorts/1001/users?pageSize=1001", "pageSize"),
        ("/cohorts/1001/users?nextPage=garbage", "nextPage"),
        ("/cohorts?nextPage=eyJvIjotMX0", "nextPage"),
        ("/cohorts?where=x", "where"),
    ],
)
def test_cohort_inputs_are_checked_before_any_vendor_call(element, sim, url, field):
    assert field in fields_of(element.get(HUB + url))
    assert not received(sim, "/api/query/engage") and not received(sim, "/api/query/cohorts/list")


def test_operation_style_cohort_members_need_the_cohort_id(element, sim, iid):
    assert fields_of(element.get(f"/mixpanel/get_cohort_members/{iid}")) == {"cohortId"}


def test_an_unknown_cohort_is_mixpanels_400(element, sim):
    body = errors_of(element.get(f"{HUB}/cohorts/4242/users"))
    assert body["providerStatus"] == 400 and "does not exist" in body["providerMessage"]


# --- annotations ------------------------------------------------------------------------------

ANNOTATIONS = f"/api/app/projects/{SIM_PROJECT_ID}/annotations"


def test_annotations_listed_in_both_url_styles_between_two_days(element, sim, iid):
    response = element.get(f"{HUB}/annotations?from_date=2024-05-02&to_date=2024-06-30")
    assert response.status_code == 200, response.content
    assert [a["id"] for a in response.json()] == [102, 103]
    request = last(sim, ANNOTATIONS, "GET")
    assert request["query"] == {"fromDate": "2024-05-02", "toDate": "2024-06-30"}
    assert request["headers"]["Authorization"] == SA_BASIC

    operation = element.get(f"/mixpanel/list_annotations/{iid}")
    assert [a["id"] for a in operation.json()] == [101, 102, 103]
    assert last(sim, ANNOTATIONS, "GET")["query"] == {}


def test_annotation_create_read_update_delete_in_both_url_styles(element, sim, iid):
    created = element.post(
        f"{HUB}/annotations",
        {"date": "2024-07-04", "description": "Launch", "tags": [1]},
        format="json",
    )
    assert created.status_code == 200, created.content
    annotation = created.json()
    assert annotation["date"] == "2024-07-04 00:00:00"
    assert annotation["tags"] == [{"id": 1, "name": "release"}]
    assert last(sim, ANNOTATIONS, "POST")["body"] == {
        "date": "2024-07-04 00:00:00",
        "description": "Launch",
        "tags": [1],
    }
    made = element.post(
        f"/mixpanel/create_annotation/{iid}",
        {"date": "2024-07-05T09:30:00Z", "description": "Second"},
        format="json",
    )
    assert made.status_code == 200, made.content
    assert last(sim, ANNOTATIONS, "POST")["body"]["date"] == "2024-07-05 09:30:00"

    one = f"{ANNOTATIONS}/{annotation['id']}"
    read = element.get(f"{HUB}/annotations/{annotation['id']}")
    assert read.json() == annotation
    assert element.get(f"/mixpanel/get_annotation/{iid}?id={annotation['id']}").json() == (
        annotation
    )
    assert len(received(sim, one, "GET")) == 2

    patched = element.patch(
        f"{HUB}/annotations/{annotation['id']}", {"description": "Launch day"}, format="json"
    )
    assert patched.status_code == 200, patched.content
    assert patched.json()["description"] == "Launch day"
    assert last(sim, one, "PATCH")["body"] == {"description": "Launch day"}
    patched = element.patch(
        f"/mixpanel/update_annotation/{iid}", {"id": annotation["id"], "tags": [2]}, format="json"
    )
    assert patched.status_code == 200, patched.content
    assert last(sim, one, "PATCH")["body"] == {"tags": [2]}

    deleted = element.delete(f"{HUB}/annotations/{annotation['id']}")
    assert deleted.status_code == 200, deleted.content
    assert deleted.json() == {"id": annotation["id"], "deleted": True}
    assert received(sim, one, "DELETE")
    other = made.json()["id"]
    assert element.delete(f"/mixpanel/delete_annotation/{iid}?id={other}").status_code == 200
    assert [a["id"] for a in sim.annotations()] == [101, 102, 103]

    gone = errors_of(element.get(f"{HUB}/annotations/{annotation['id']}"), 404)
    assert gone["providerStatus"] == 404


@pytest.mark.parametrize(
    "method,url,body,field",
    [
        ("get", "/annotations?from_date=2024-13-01", None, "from_date"),
        ("get", "/annotations?to_date=yesterday", None, "to_date"),
        ("get", "/annotations?from_date=2024-06-02&to_date=2024-06-01", None, "from_date"),
        ("post", "/annotations", {"description": "x"}, "date"),
        ("post", "/annotations", {"date": "2024-02-30", "description": "x"}, "date"),
        ("post", "/annotations", {"date": "2024-07-01"}, "description"),
        ("post", "/annotations", {"date": "2024-07-01", "description": "  "}, "description"),
        (
            "post",
            "/annotations",
            {"date": "2024-07-01", "description": "x", "tags": ["a"]},
            "tags.0",
        ),
        ("post", "/annotations", {"date": "2024-07-01", "description": "x", "user": 1}, "user"),
        ("patch", "/annotations/101", {}, "description"),
        ("patch", "/annotations/101", {"date": "2024-07-01"}, "date"),
        ("get", "/annotations/abc", None, "id"),
    ],
)
def test_annotation_inputs_are_checked_before_any_vendor_call(
    element, sim, method, url, body, field
):
    response = getattr(element, method)(HUB + url, body, format="json")
    assert field in fields_of(response)
    assert not [r for r in sim.requests() if "/annotations" in r["path"]]


def test_a_secret_only_instance_lists_annotations_through_the_older_list(secret_only, sim):
    response = secret_only.get(f"{HUB}/annotations?from_date=2024-05-02")
    assert response.status_code == 200, response.content
    assert [(a["id"], a["description"]) for a in response.json()] == [
        (102, "Spring campaign"),
        (103, "Pricing page redesign"),
    ]
    request = last(sim, "/api/2.0/annotations", "GET")
    assert request["query"] == {"from_date": "2024-05-02"}
    assert request["headers"]["Authorization"] == SECRET_BASIC


def test_changing_annotations_needs_service_account_credentials(secret_only, sim):
    body = errors_of(
        secret_only.post(
            f"{HUB}/annotations", {"date": "2024-07-01", "description": "x"}, format="json"
        )
    )
    assert [e["field"] for e in body["errors"]] == [
        "configuration.password",
        "configuration.project_id",
    ]
    assert "PATCH /elements/api-v2/instances/" in body["message"]
    assert not sim.requests()


# --- identities -------------------------------------------------------------------------------


def test_merge_in_both_url_styles(element, sim, iid):
    response = element.post(
        f"{HUB}/identities/merge", {"distinct_ids": ["anon-7", "user-7"]}, format="json"
    )
    assert response.status_code == 200, response.content
    request = last(sim, "/import", "POST")
    assert request["query"] == {"strict": "1", "project_id": str(SIM_PROJECT_ID)}
    [event] = request["body"]
    assert event["event"] == "$merge"
    assert event["properties"]["$distinct_ids"] == ["anon-7", "user-7"]
    assert event["properties"]["token"] and event["properties"]["$insert_id"]
    # The record is the identity event: its id is the event's $insert_id.
    assert response.json() == {
        "id": event["properties"]["$insert_id"],
        "merged": True,
        "distinct_ids": ["anon-7", "user-7"],
    }

    operation = element.post(
        f"/mixpanel/merge_identities/{iid}", {"distinct_ids": ["user-7", "phone-7"]}, format="json"
    )
    assert operation.status_code == 200, operation.content
    assert sim.identity()["clusters"] == [["anon-7", "phone-7", "user-7"]]


def test_alias_in_both_url_styles(element, sim, iid):
    response = element.post(
        f"{HUB}/identities/alias", {"distinct_id": "user-3", "alias": "u3@x.test"}, format="json"
    )
    assert response.status_code == 200, response.content
    [event] = last(sim, "/import", "POST")["body"]
    assert response.json() == {
        "id": event["properties"]["$insert_id"],
        "aliased": True,
        "distinct_id": "user-3",
        "alias": "u3@x.test",
    }
    assert event["event"] == "$create_alias"
    assert (event["properties"]["distinct_id"], event["properties"]["alias"]) == (
        "user-3",
        "u3@x.test",
    )
    operation = element.post(
        f"/mixpanel/create_alias/{iid}", {"distinct_id": "user-4", "alias": "four"}, format="json"
    )
    assert operation.status_code == 200, operation.content
    assert sim.identity()["aliases"] == {"u3@x.test": "user-3", "four": "user-4"}


def test_a_secret_only_instance_can_merge(secret_only, sim):
    response = secret_only.post(
        f"{HUB}/identities/merge", {"distinct_ids": ["a-1", "b-1"]}, format="json"
    )
    assert response.status_code == 200, response.content
    request = last(sim, "/import", "POST")
    assert request["headers"]["Authorization"] == SECRET_BASIC
    assert "token" not in request["body"][0]["properties"]


@pytest.mark.parametrize(
    "version,url,body,words",
    [
        (
            "simplified",
            "/identities/merge",
            {"distinct_ids": ["a", "b"]},
            "simplified identity management",
        ),
        (
            "simplified",
            "/identities/alias",
            {"distinct_id": "a", "alias": "b"},
            "simplified identity management",
        ),
        ("legacy", "/identities/merge", {"distinct_ids": ["a", "b"]}, "Original ID Merge"),
    ],
)
def test_a_refused_identity_event_is_mixpanels_answer(element, sim, version, url, body, words):
    sim.identity(version)
    error = errors_of(element.post(HUB + url, body, format="json"))
    assert error["providerStatus"] == 400
    assert words in error["providerMessage"]
    assert error["message"].startswith("Mixpanel refused")


def test_legacy_projects_still_alias(element, sim):
    sim.identity("legacy")
    response = element.post(
        f"{HUB}/identities/alias", {"distinct_id": "a", "alias": "b"}, format="json"
    )
    assert response.status_code == 200, response.content


@pytest.mark.parametrize(
    "url,body,field",
    [
        ("/identities/merge", {"distinct_ids": ["only"]}, "distinct_ids"),
        ("/identities/merge", {"distinct_ids": ["a", "b", "c"]}, "distinct_ids"),
        ("/identities/merge", {"distinct_ids": ["same", "same"]}, "distinct_ids"),
        ("/identities/merge", {"distinct_ids": ["a", 2]}, "distinct_ids.1"),
        ("/identities/merge", {}, "distinct_ids"),
        ("/identities/alias", {"distinct_id": "a"}, "alias"),
        ("/identities/alias", {"distinct_id": "a", "alias": "a"}, "alias"),
        ("/identities/alias", {"distinct_id": "", "alias": "b"}, "distinct_id"),
    ],
)
def test_identity_inputs_are_checked_before_any_vendor_call(element, sim, url, body, field):
    assert field in fields_of(element.post(HUB + url, body, format="json"))
    assert not received(sim, "/import")


# --- lookup tables ----------------------------------------------------------------------------


def test_lookup_tables_listed_in_both_url_styles(element, sim, iid):
    response = element.get(f"{HUB}/lookup-tables")
    assert response.status_code == 200, response.content
    assert response.json()[0] == {"id": ACCOUNTS, "name": "Accounts"}
    request = last(sim, "/lookup-tables", "GET")
    assert request["query"] == {"project_id": str(SIM_PROJECT_ID)}
    assert request["headers"]["Authorization"] == SA_BASIC
    assert element.get(f"/mixpanel/list_lookup_tables/{iid}").json() == response.json()


def test_lookup_table_replaced_from_csv_in_both_url_styles(element, sim, iid):
    table = 'account_id,name,since\na-9,"Initech, Inc.",2026-01-01\na-10,Hooli,\n'
    response = element.put(f"{HUB}/lookup-tables/{ACCOUNTS}", table, content_type="text/csv")
    assert response.status_code == 200, response.content
    assert response.json() == {"id": ACCOUNTS, "replaced": True, "rows": 2}
    request = last(sim, f"/lookup-tables/{ACCOUNTS}", "PUT")
    assert request["headers"]["Content-Type"] == "text/csv"
    assert request["body"] == table
    assert request["query"] == {"project_id": str(SIM_PROJECT_ID)}
    stored = next(t for t in sim.lookup_tables() if t["id"] == ACCOUNTS)
    assert stored["rows"] == [["a-9", "Initech, Inc.", "2026-01-01"], ["a-10", "Hooli", ""]]

    operation = element.put(
        f"/mixpanel/replace_lookup_table/{iid}?id={ACCOUNTS}",
        "k,v\n1,one\n",
        content_type="text/csv; charset=utf-8",
    )
    assert operation.status_code == 200, operation.content
    assert next(t for t in sim.lookup_tables() if t["id"] == ACCOUNTS)["rows"] == [["1", "one"]]


def test_lookup_table_csv_in_another_charset_reaches_mixpanel_as_utf8(element, sim):
    table = "city,name\nzrh,Zürich\n".encode("latin-1")
    response = element.put(
        f"{HUB}/lookup-tables/{ACCOUNTS}", table, content_type="text/csv; charset=latin-1"
    )
    assert response.status_code == 200, response.content
    assert last(sim, f"/lookup-tables/{ACCOUNTS}", "PUT")["body"] == "city,name\nzrh,Zürich\n"


@pytest.mark.parametrize(
    "body,content_type,status,field",
    [
        ('{"a": 1}', "application/json", 415, None),
        ("a,b\n1,2\n", "text/plain", 415, None),
        ("a,b\n1,2\n", "application/octet-stream", 415, None),
        ("", "text/csv", 400, "csv"),
        ("onlyone\nx\n", "text/csv", 400, "csv"),
        ("k,v\n1,a\n1,b\n", "text/csv", 400, "csv"),
        ("k,v\n,a\n", "text/csv", 400, "csv"),
        ("k,v\n1,a,extra\n", "text/csv", 400, "csv"),
        ("k,k\n1,a\n", "text/csv", 400, "csv"),
        ('k,v\n1,"open\n', "text/csv", 400, "csv"),
        (b"k,v\n1,\xff\n", "text/csv", 400, "csv"),
        ("k,v\n1,\x00\n", "text/csv", 400, "csv"),
        ("k,v\n1,a\n", "text/csv; charset=nonsense", 400, "csv"),
    ],
)
def test_lookup_table_bodies_are_checked_before_any_vendor_call(
    element, sim, body, content_type, status, field
):
    response = element.put(f"{HUB}/lookup-tables/{ACCOUNTS}", body, content_type=content_type)
    error = errors_of(response, status)
    if field:
        assert {e["field"] for e in error["errors"]} == {field}
    assert not received(sim, f"/lookup-tables/{ACCOUNTS}")


def test_bad_rows_are_each_named(element, sim):
    table = "k,v\n1,a\n1,b\n,c\n4\n"
    error = errors_of(
        element.put(f"{HUB}/lookup-tables/{ACCOUNTS}", table, content_type="text/csv")
    )
    messages = [e["message"] for e in error["errors"]]
    assert [m.split(":")[0] for m in messages] == ["row 2", "row 3", "row 4"]


def test_lookup_table_id_is_checked(element, sim, iid):
    assert fields_of(
        element.put(f"{HUB}/lookup-tables/nope", "a,b\n", content_type="text/csv")
    ) == {"id"}
    missing = element.put(
        f"/mixpanel/replace_lookup_table/{iid}", "a,b\n1,2\n", content_type="text/csv"
    )
    assert fields_of(missing) == {"id"}
    assert not [r for r in sim.requests() if r["path"].startswith("/lookup-tables")]


def test_an_unknown_lookup_table_is_mixpanels_404(element, sim):
    error = errors_of(
        element.put(f"{HUB}/lookup-tables/{MISSING_TABLE}", "a,b\n1,2\n", content_type="text/csv"),
        404,
    )
    assert error["providerStatus"] == 404 and MISSING_TABLE in error["providerMessage"]


def test_a_csv_over_the_body_limit_is_413(tenant, sa_instance, sim, settings):
    settings.MAX_REQUEST_BYTES = 1024
    client = APIClient()  # a new client: its middleware reads the limit
    client.credentials(HTTP_AUTHORIZATION=tenant.element_auth(sa_instance["token"]))
    table = "k,v\n" + "".join(f"{i},{'x' * 20}\n" for i in range(100))
    response = client.put(f"{HUB}/lookup-tables/{ACCOUNTS}", table, content_type="text/csv")
    errors_of(response, 413)
    assert not received(sim, f"/lookup-tables/{ACCOUNTS}")


def test_listing_lookup_tables_needs_a_service_account(secret_only, sim):
    assert fields_of(secret_only.get(f"{HUB}/lookup-tables")) == {
        "configuration.password",
        "configuration.project_id",
    }
    assert not sim.requests()
    # Replacing one takes the API secret too, which names its project: no project_id.
    response = secret_only.put(
        f"{HUB}/lookup-tables/{ACCOUNTS}", "a,b\n1,2\n", content_type="text/csv"
    )
    assert response.status_code == 200, response.content
    request = last(sim, f"/lookup-tables/{ACCOUNTS}", "PUT")
    assert request["headers"]["Authorization"] == SECRET_BASIC
    assert request["query"] == {}
    assert next(t for t in sim.lookup_tables() if t["id"] == ACCOUNTS)["rows"] == [["1", "2"]]


# --- documents --------------------------------------------------------------------------------


def test_documents_show_the_csv_body_and_where_operation_style_takes_the_path_parameters(tenant):
    doc = tenant.client().get("/elements/api-v2/elements/mixpanel/docs").json()
    resource = doc["paths"]["/hubs/general/lookup-tables/{id}"]["put"]
    assert list(resource["requestBody"]["content"]) == ["text/csv"]
    assert resource["requestBody"]["content"]["text/csv"]["schema"]["type"] == "string"
    assert [(p["name"], p["in"]) for p in resource["parameters"]] == [("id", "path")]
    assert {"413", "415"} <= set(resource["responses"])
    operation = doc["paths"]["/mixpanel/replace_lookup_table/{instanceId}"]["put"]
    assert list(operation["requestBody"]["content"]) == ["text/csv"]
    assert [(p["name"], p["in"]) for p in operation["parameters"]] == [
        ("instanceId", "path"),
        ("id", "query"),
    ]
    update = doc["paths"]["/mixpanel/update_annotation/{instanceId}"]["patch"]
    assert "id" in update["requestBody"]["content"]["application/json"]["schema"]["properties"]
    members = doc["paths"]["/mixpanel/get_cohort_members/{instanceId}"]["get"]
    assert ("cohortId", "query") in [(p["name"], p["in"]) for p in members["parameters"]]

    schema = APIClient().get("/mixpanel/replace_lookup_table").json()
    assert schema["method"] == "PUT"
    assert set(schema["input_schema"]["properties"]) == {"id", "csv"}
    assert "x-in" not in json.dumps(schema)


def test_a_traced_csv_upload_is_logged_with_its_inputs(tenant, traced_instance, sim):
    from usage.models import UsageRecord

    client = tenant.element_client(traced_instance["token"])
    response = client.put(f"{HUB}/lookup-tables/{ACCOUNTS}", "k,v\n1,a\n", content_type="text/csv")
    assert response.status_code == 200, response.content
    record = UsageRecord.objects.get(request_id=response["Elements-Request-Id"])
    assert record.operation == "replace_lookup_table"
    assert record.request_body == {"id": ACCOUNTS, "csv": "k,v\n1,a\n"}


def test_mixpanels_query_rate_limit_on_cohorts_is_429_with_retry_after(element, sim):
    sim.configure(rate_limits={"enabled": True, "query_per_hour": 0})
    response = element.get(f"{HUB}/cohorts")
    body = errors_of(response, 429)
    assert body["providerStatus"] == 429 and "rate limit" in body["providerMessage"]
    assert int(response["Retry-After"]) > 0
