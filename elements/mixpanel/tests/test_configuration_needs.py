"""What each operation needs of the instance's configuration (contract §5c, §5d): the 400 that
names the missing field with the PATCH that adds it, before any vendor call; the catalog and
metadata saying it; seed 002's secret-only instance tracking through /import; the
data_groups and gdpr_token fields; updates that repeat the record's id."""

import base64
import json
import time

import pytest

from conftest import (
    SA_CONFIGURATION,
    SIM_API_SECRET,
    SIM_PROJECT_ID,
    SIM_PROJECT_TOKEN,
)

pytestmark = [pytest.mark.django_db, pytest.mark.integration]

HUB = "/elements/api-v2/hubs/general"
INSTANCES = "/elements/api-v2/instances"
LOOKUP_TABLE = "55b4fb2b-7d1e-4a51-9a3c-0c2f1e6b8a01"
SECRET_BASIC = "Basic " + base64.b64encode(f"{SIM_API_SECRET}:".encode()).decode()
SA_BASIC = (
    "Basic "
    + base64.b64encode(
        f"{SA_CONFIGURATION['username']}:{SA_CONFIGURATION['password']}".encode()
    ).decode()
)


def create_instance(tenant, configuration, name="instance"):
    response = tenant.client().post(
        INSTANCES,
        {"element": {"key": "mixpanel"}, "name": name, "configuration": configuration},
        format="json",
    )
    assert response.status_code == 200, response.content
    return response.json()


@pytest.fixture
def secret_instance(tenant, sim):
    """Seed 002's instance: the project API secret alone, as username."""
    return create_instance(tenant, {"username": SIM_API_SECRET}, name="API Instance")


@pytest.fixture
def secret_element(tenant, secret_instance):
    return tenant.element_client(secret_instance["token"])


def received(sim, path, method="POST"):
    return [r for r in sim.requests() if r["path"].rstrip("/") == path and r["method"] == method]


# --- seed 002: the API secret alone ---------------------------------------------------------


def test_secret_only_instance_tracks_an_event_through_import(secret_element, sim):
    sim.clear_requests()
    response = secret_element.post(
        f"{HUB}/activities",
        {"event": "Signed Up", "properties": {"distinct_id": "12157", "plan": "pro"}},
        format="json",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == 1 and body["event"] == "Signed Up"
    assert body["properties"]["$insert_id"] and body["properties"]["time"]
    assert not received(sim, "/track")
    (sent,) = received(sim, "/import")
    assert sent["headers"]["Authorization"] == SECRET_BASIC
    assert sent["query"]["strict"] == "1"
    event = sent["body"][0]
    assert event["event"] == "Signed Up"
    assert event["properties"]["distinct_id"] == "12157" and event["properties"]["plan"] == "pro"
    assert "token" not in event["properties"]
    imported = sim.imported()["events"]
    assert any(
        e["properties"].get("$insert_id") == body["properties"]["$insert_id"] for e in imported
    )


def test_secret_only_instance_tracks_in_operation_style(secret_element, secret_instance, sim):
    sim.clear_requests()
    response = secret_element.post(
        f"/mixpanel/track_event/{secret_instance['id']}?strict=1",
        {
            "event": "Purchase",
            "properties": {"time": int(time.time()), "distinct_id": "u1", "$insert_id": "abc-123"},
        },
        format="json",
    )
    assert response.status_code == 200, response.content
    assert response.json() == {"status": 1, "error": None}
    (sent,) = received(sim, "/import")
    assert sent["body"][0]["properties"]["$insert_id"] == "abc-123"
    assert sent["headers"]["Authorization"] == SECRET_BASIC


def test_service_account_without_project_token_tracks_through_import(tenant, sim):
    config = {k: v for k, v in SA_CONFIGURATION.items() if k != "project_token"}
    element = tenant.element_client(create_instance(tenant, config)["token"])
    sim.clear_requests()
    response = element.post(f"{HUB}/activities", {"event": "Signed Up"}, format="json")
    assert response.status_code == 200, response.content
    (sent,) = received(sim, "/import")
    assert sent["query"]["project_id"] == str(SIM_PROJECT_ID)
    assert sent["headers"]["Authorization"] == SA_BASIC
    assert sent["body"][0]["properties"]["distinct_id"] == ""  # anonymous, as /track allows


def test_an_event_mixpanel_refuses_on_import_is_a_400_with_its_reason(secret_element, sim):
    response = secret_element.post(
        f"{HUB}/activities",
        {"event": "Old", "properties": {"distinct_id": "u1", "time": 10}},  # before 1971
        format="json",
    )
    assert response.status_code == 400, response.content
    assert "time" in response.json()["providerMessage"]


def test_profile_update_without_project_token_is_400_naming_it_with_the_patch(
    secret_element, secret_instance, sim, tenant
):
    sim.clear_requests()
    response = secret_element.patch(
        f"{HUB}/users/12157", {"$set": {"$city": "Austin"}}, format="json"
    )
    assert response.status_code == 400, response.content
    body = response.json()
    iid = secret_instance["id"]
    hint = f'PATCH /elements/api-v2/instances/{iid} {{"configuration": {{"project_token": '
    assert "project_token" in body["message"] and hint in body["message"]
    assert [e["field"] for e in body["errors"]] == ["configuration.project_token"]
    assert hint in body["errors"][0]["message"]
    assert not received(sim, "/engage"), "checked before any vendor call"

    # The PATCH the hint shows fixes it.
    patched = tenant.client().patch(
        f"{INSTANCES}/{iid}", {"configuration": {"project_token": SIM_PROJECT_TOKEN}}, format="json"
    )
    assert patched.status_code == 200, patched.content
    response = secret_element.patch(
        f"{HUB}/users/12157", {"$set": {"$city": "Austin"}}, format="json"
    )
    assert response.status_code == 200, response.content
    (sent,) = received(sim, "/engage")
    assert sent["body"][0]["$token"] == SIM_PROJECT_TOKEN


def test_every_style_and_update_gets_the_same_400(secret_element, secret_instance, sim):
    iid = secret_instance["id"]
    answers = [
        secret_element.post(f"{HUB}/users", {"$distinct_id": "1", "$set": {}}, format="json"),
        secret_element.delete(f"{HUB}/users/1"),
        secret_element.post(
            f"{HUB}/groups/company_id", {"$group_id": "A", "$set": {}}, format="json"
        ),
    ]
    for response in answers:
        assert response.status_code == 400, response.content
        assert f"/elements/api-v2/instances/{iid}" in response.json()["message"]
        assert "configuration.project_token" in {e["field"] for e in response.json()["errors"]}


def test_service_account_calls_on_a_secret_instance_name_password_and_organization(
    secret_element, secret_instance, sim
):
    response = secret_element.get(f"/mixpanel/get_service_accounts/{secret_instance['id']}")
    assert response.status_code == 400, response.content
    fields = [e["field"] for e in response.json()["errors"]]
    assert fields == ["configuration.password", "configuration.organization_id"]
    # organization_id given by the call is enough for that need.
    response = secret_element.get(
        f"/mixpanel/get_service_accounts/{secret_instance['id']}?organization_id=1001"
    )
    assert [e["field"] for e in response.json()["errors"]] == ["configuration.password"]


def test_service_account_without_project_id_is_400_naming_it(tenant, sim):
    config = {k: v for k, v in SA_CONFIGURATION.items() if k != "project_id"}
    instance = create_instance(tenant, config)
    element = tenant.element_client(instance["token"])
    sim.clear_requests()
    dates = "from_date=2024-05-01&to_date=2024-05-07"
    for response in (
        element.get(f"{HUB}/users"),
        element.get(f"{HUB}/activities/top"),
        element.post(f"{HUB}/activities/import", [{"event": "e"}], format="json"),
        # The Query API, in both URL styles.
        element.get(f"{HUB}/segmentation?event=Login&{dates}"),
        element.get(f"{HUB}/funnels"),
        element.get(f"/mixpanel/revenue/{instance['id']}?{dates}"),
        # Data management.
        element.get(f"{HUB}/cohorts"),
        element.get(f"{HUB}/annotations"),
        element.delete(f"{HUB}/annotations/101"),
        element.post(f"{HUB}/identities/alias", {"distinct_id": "a", "alias": "b"}, format="json"),
        element.get(f"{HUB}/lookup-tables"),
        element.put(f"{HUB}/lookup-tables/{LOOKUP_TABLE}", "a,b\n1,2\n", content_type="text/csv"),
    ):
        assert response.status_code == 400, response.content
        assert [e["field"] for e in response.json()["errors"]] == ["configuration.project_id"]
        assert f"PATCH /elements/api-v2/instances/{instance['id']} " in response.json()["message"]
    assert not [r for r in sim.requests() if not r["path"].startswith("/api/app/organizations")]
    # Tracking has the project token: it needs no project_id.
    tracked = element.post(f"{HUB}/activities", {"event": "e"}, format="json")
    assert tracked.status_code == 200, tracked.content


def test_the_secret_instance_may_query_without_project_id(secret_element, sim):
    assert secret_element.get(f"{HUB}/users").status_code == 200
    assert secret_element.get(f"{HUB}/activities/top").status_code == 200


# --- the catalog and the metadata say it ----------------------------------------------------


def _needs(resource):
    return {field for need in resource["requiredConfiguration"] for field in need["fields"]}


def test_catalog_and_metadata_state_each_operations_needs(tenant, secret_element):
    detail = tenant.client().get("/elements/api-v2/elements/mixpanel").json()
    by_id = {r["operationId"]: r for r in detail["resources"]}
    assert _needs(by_id["updateUser"]) == {"project_token"}
    assert _needs(by_id["getServiceAccounts"]) == {"password", "organization_id"}
    assert _needs(by_id["getUsers"]) == {"project_id"}
    assert "service account" in by_id["getUsers"]["requiredConfiguration"][0]["description"]
    assert _needs(by_id["createActivity"]) == {"project_token", "project_id"}
    assert _needs(by_id["query_groups"]) == {"data_groups", "project_id"}
    assert _needs(by_id["create_privacy_deletion"]) == {"gdpr_token", "project_token"}
    assert by_id["ping"]["requiredConfiguration"] == []

    metadata = tenant.client().get("/elements/api-v2/elements/mixpanel/metadata").json()
    users = {o["operationId"]: o for o in metadata["objects"]["users"]["operations"]}
    assert _needs(users["deleteUser"]) == {"project_token"}

    objects = secret_element.get(f"{HUB}/objects/users/metadata").json()
    ops = {o["operationId"]: o for o in objects["operations"]}
    assert _needs(ops["createUser"]) == {"project_token"}
    assert _needs(ops["query_profiles"]) == {"project_id"}

    docs = tenant.client().get("/elements/api-v2/elements/mixpanel/docs").json()
    patch_user = docs["paths"]["/hubs/general/users/{id}"]["patch"]
    assert _needs({"requiredConfiguration": patch_user["x-required-configuration"]}) == {
        "project_token"
    }


# One operation of each module of the Query API and data management: (catalog key, object,
# OpenAPI path and method, the fields it needs).
QUERY_AND_DATA_MANAGEMENT = [
    ("segmentation", None, ("/hubs/general/segmentation", "get"), {"project_id"}),
    ("event_counts", "activities", ("/hubs/general/activities/count", "get"), {"project_id"}),
    ("list_cohorts", "cohorts", ("/hubs/general/cohorts", "get"), {"project_id"}),
    (
        "create_annotation",
        "annotations",
        ("/hubs/general/annotations", "post"),
        {"password", "project_id"},
    ),
    ("list_annotations", "annotations", ("/hubs/general/annotations", "get"), {"project_id"}),
    ("merge_identities", "identities", ("/hubs/general/identities/merge", "post"), {"project_id"}),
    (
        "list_lookup_tables",
        "lookup-tables",
        ("/hubs/general/lookup-tables", "get"),
        {"password", "project_id"},
    ),
    (
        "replace_lookup_table",
        "lookup-tables",
        ("/mixpanel/replace_lookup_table/{instanceId}", "put"),
        {"project_id"},
    ),
]


def test_catalog_metadata_and_openapi_state_query_and_data_management_needs(tenant, secret_element):
    catalog = tenant.client().get("/elements/api-v2/elements/mixpanel").json()
    by_id = {r["operationId"]: r for r in catalog["resources"]}
    metadata = tenant.client().get("/elements/api-v2/elements/mixpanel/metadata").json()
    docs = tenant.client().get("/elements/api-v2/elements/mixpanel/docs").json()
    for operation_id, object_name, (path, method), fields in QUERY_AND_DATA_MANAGEMENT:
        assert _needs(by_id[operation_id]) == fields, operation_id
        documented = docs["paths"][path][method]["x-required-configuration"]
        assert _needs({"requiredConfiguration": documented}) == fields, operation_id
        if object_name is None:
            continue
        listed = {o["operationId"]: o for o in metadata["objects"][object_name]["operations"]}
        assert _needs(listed[operation_id]) == fields, operation_id
        objects = secret_element.get(f"{HUB}/objects/{object_name}/metadata").json()
        listed = {o["operationId"]: o for o in objects["operations"]}
        assert _needs(listed[operation_id]) == fields, operation_id
    # Each need says when it applies: project_id with a service account only.
    (need,) = by_id["segmentation"]["requiredConfiguration"]
    assert "service account" in need["description"]


def test_the_secret_instance_queries_without_project_id(secret_element, sim):
    sim.clear_requests()
    response = secret_element.get(
        f"{HUB}/segmentation?event=Login&from_date=2024-05-01&to_date=2024-05-07"
    )
    assert response.status_code == 200, response.content
    (sent,) = received(sim, "/api/query/segmentation", method="GET")
    assert sent["headers"]["Authorization"] == SECRET_BASIC
    assert "project_id" not in sent["query"]


# --- the new configuration fields -----------------------------------------------------------


def test_data_groups_is_an_object_of_integers_or_its_json_text(tenant, sim):
    as_text = create_instance(
        tenant, {**SA_CONFIGURATION, "data_groups": '{"company_id": "-1405123841946871899"}'}
    )
    assert as_text["configuration"]["data_groups"] == {"company_id": -1405123841946871899}
    as_object = create_instance(tenant, {**SA_CONFIGURATION, "data_groups": {"team_id": 7}})
    read = tenant.client().get(f"{INSTANCES}/{as_object['id']}").json()
    assert read["configuration"]["data_groups"] == {"team_id": 7}


@pytest.mark.parametrize(
    "value,field",
    [
        ({"company_id": "abc"}, "configuration.data_groups.company_id"),
        ({"company_id": 1.5}, "configuration.data_groups.company_id"),
        ({"company_id": True}, "configuration.data_groups.company_id"),
        ("not json", "configuration.data_groups"),
        ("[1, 2]", "configuration.data_groups"),
        (["company_id"], "configuration.data_groups"),
        (12, "configuration.data_groups"),
        ({"": 1}, "configuration.data_groups"),
    ],
)
def test_bad_data_groups_are_400(tenant, sim, value, field):
    response = tenant.client().post(
        f"{INSTANCES}?validate=false",
        {
            "element": {"key": "mixpanel"},
            "name": "bad",
            "configuration": {**SA_CONFIGURATION, "data_groups": value},
        },
        format="json",
    )
    assert response.status_code == 400, response.content
    assert field in {e["field"] for e in response.json()["errors"]}


def test_gdpr_token_is_a_masked_secret(tenant, sim):
    created = create_instance(tenant, {**SA_CONFIGURATION, "gdpr_token": "gdpr-oauth-secret-1"})
    assert created["configuration"]["gdpr_token"] == "********"
    read = tenant.client().get(f"{INSTANCES}/{created['id']}")
    assert "gdpr-oauth-secret-1" not in read.content.decode()


# --- updates that repeat the record's id ----------------------------------------------------


@pytest.fixture
def element(tenant, sa_instance):
    return tenant.element_client(sa_instance["token"])


@pytest.mark.parametrize("repeated", ["12157", 12157])
def test_update_may_repeat_the_profiles_id(element, sim, repeated):
    sim.clear_requests()
    response = element.patch(
        f"{HUB}/users/12157",
        {"$distinct_id": repeated, "$set": {"$city": "Austin"}},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert response.json()["$distinct_id"] == "12157"
    (sent,) = received(sim, "/engage")
    assert sent["body"][0]["$distinct_id"] == "12157"
    assert sent["body"][0]["$set"] == {"$city": "Austin"}
    assert sim.profile("12157")["$properties"]["$city"] == "Austin"


def test_update_with_another_id_is_400_saying_so(element, sim):
    sim.clear_requests()
    response = element.patch(
        f"{HUB}/users/12157", {"$distinct_id": "99", "$set": {"$city": "Austin"}}, format="json"
    )
    assert response.status_code == 400, response.content
    body = response.json()
    assert "differs" in body["message"] and "12157" in body["message"]
    assert body["errors"] == [
        {"field": "$distinct_id", "message": "must be the URL's id, or left out"}
    ]
    assert not received(sim, "/engage")


def test_the_check_runs_after_input_validation(element, sim):
    # Unknown fields are still unknown (the id is the only addition).
    response = element.patch(
        f"{HUB}/users/12157", {"$distinct_id": "12157", "$city": "Austin"}, format="json"
    )
    assert response.status_code == 400
    assert {"field": "$city", "message": "unknown field"} in response.json()["errors"]


def test_hint_is_json_a_client_can_send(secret_element, secret_instance, sim):
    body = secret_element.post(
        f"{HUB}/users", {"$distinct_id": "1", "$set": {"a": 1}}, format="json"
    ).json()
    hint = body["message"].split("Add it with: ")[1]
    method, path, payload = hint.split(" ", 2)
    assert (method, path) == ("PATCH", f"/elements/api-v2/instances/{secret_instance['id']}")
    assert json.loads(payload) == {"configuration": {"project_token": "<Project token>"}}
    assert str(SIM_PROJECT_ID) not in hint
