"""A bulk job is refused at submission (400, before any vendor call, no job stored) when the
instance lacks configuration its object needs, with the same answer as an element call: each
missing field named, and the PATCH that adds it. The needs are in /objects/{name}/metadata."""

from urllib.parse import quote

import pytest

from bulk import services
from bulk.models import BulkJob
from conftest import SA_CONFIGURATION, SIM_API_SECRET, completed_bulk_job

pytestmark = [pytest.mark.django_db, pytest.mark.integration]

BULK = "/elements/api-v2/bulk"
HUB = "/elements/api-v2/hubs/general"
INSTANCES = "/elements/api-v2/instances"
# Every bulk object that reads Mixpanel's query, export or app API with the instance's project.
PROJECT_OBJECTS = [
    "activities",
    "users",
    "cohorts",
    "cohort-members",
    "annotations",
    "funnels",
    "revenue",
]


@pytest.fixture(autouse=True)
def queued(monkeypatch, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    monkeypatch.setattr(services, "enqueue_job", lambda job_id: None)
    monkeypatch.setattr(services, "enqueue_callback", lambda job_id, countdown=None: None)


def element_client(tenant, configuration):
    response = tenant.client().post(
        INSTANCES,
        {"element": {"key": "mixpanel"}, "name": "Needs", "configuration": configuration},
        format="json",
    )
    assert response.status_code == 200, response.content
    return tenant.element_client(response.json()["token"]), response.json()["id"]


def refused(client, sim, q: str) -> dict:
    sim.clear_requests()
    response = client.post(f"{BULK}/query?q={quote(q)}")
    assert response.status_code == 400, response.content
    assert not BulkJob.objects.exists()
    assert not sim.requests(), "a refused job asked Mixpanel something"
    return response.json()


@pytest.mark.parametrize("name", PROJECT_OBJECTS)
def test_a_service_account_without_project_id_is_refused(tenant, sim, name):
    configuration = {k: v for k, v in SA_CONFIGURATION.items() if k != "project_id"}
    client, instance_id = element_client(tenant, configuration)
    body = refused(client, sim, f"select * from {name}")
    assert [e["field"] for e in body["errors"]] == ["configuration.project_id"]
    assert body["message"].startswith(f"A bulk job of {name} needs configuration")
    assert f"PATCH {INSTANCES}/{instance_id} " in body["message"]
    assert '"project_id": "<Project id>"' in body["errors"][0]["message"]


def test_groups_without_data_groups_is_refused_with_an_example(tenant, sim):
    client, instance_id = element_client(tenant, SA_CONFIGURATION)
    body = refused(client, sim, "select * from groups")
    assert [e["field"] for e in body["errors"]] == ["configuration.data_groups"]
    assert (
        f'PATCH {INSTANCES}/{instance_id} {{"configuration": {{"data_groups": '
        '{"<group key>": "<data_group_id>"}}}' in body["message"]
    )


def test_groups_without_data_groups_nor_project_id_names_both(tenant, sim):
    configuration = {k: v for k, v in SA_CONFIGURATION.items() if k != "project_id"}
    client, _ = element_client(tenant, configuration)
    body = refused(client, sim, "select * from groups")
    assert [e["field"] for e in body["errors"]] == [
        "configuration.data_groups",
        "configuration.project_id",
    ]


def test_service_accounts_need_a_service_account_and_an_organization(tenant, sim):
    secret_only, _ = element_client(tenant, {"username": SIM_API_SECRET})
    body = refused(secret_only, sim, "select * from service-accounts")
    assert [e["field"] for e in body["errors"]] == [
        "configuration.password",
        "configuration.organization_id",
    ]
    configuration = {k: v for k, v in SA_CONFIGURATION.items() if k != "organization_id"}
    no_organization, _ = element_client(tenant, configuration)
    body = refused(no_organization, sim, "select * from service-accounts")
    assert [e["field"] for e in body["errors"]] == ["configuration.organization_id"]


def test_the_query_is_checked_before_the_configuration(tenant, sim):
    client, _ = element_client(tenant, {"username": SIM_API_SECRET})
    body = refused(client, sim, "select * from service-accounts where username = 'x'")
    assert [e["field"] for e in body["errors"]] == ["q"]


def test_an_instance_with_what_the_object_needs_is_not_refused(tenant, sim):
    # The API secret alone names its project: the project objects need nothing more.
    client, _ = element_client(tenant, {"username": SIM_API_SECRET})
    job_id = completed_bulk_job(client, "select * from cohorts")
    assert BulkJob.objects.get(pk=job_id).status == "COMPLETED"


def test_a_transformed_object_is_refused_as_its_vendor_object(tenant, sim):
    org = tenant.client()
    definition = org.post(
        "/elements/api-v2/organizations/objects/company/definitions",
        {"fields": [{"path": "name", "type": "string"}]},
        format="json",
    )
    assert definition.status_code == 200, definition.content
    transformation = org.post(
        "/elements/api-v2/organizations/elements/mixpanel/transformations/company",
        {"vendorName": "groups", "fields": [{"path": "name", "vendorPath": "$properties.name"}]},
        format="json",
    )
    assert transformation.status_code == 200, transformation.content
    client, _ = element_client(tenant, SA_CONFIGURATION)
    body = refused(client, sim, "select * from company")
    assert [e["field"] for e in body["errors"]] == ["configuration.data_groups"]
    metadata = client.get(f"{HUB}/objects/company/metadata").json()
    assert [n["fields"] for n in metadata["bulkRequiredConfiguration"]] == [
        ["data_groups"],
        ["project_id"],
    ]


def test_the_metadata_shows_what_a_bulk_job_needs(tenant, sim):
    client, _ = element_client(tenant, SA_CONFIGURATION)
    groups = client.get(f"{HUB}/objects/groups/metadata").json()
    assert [n["fields"] for n in groups["bulkRequiredConfiguration"]] == [
        ["data_groups"],
        ["project_id"],
    ]
    assert all(n["description"] for n in groups["bulkRequiredConfiguration"])
    accounts = client.get(f"{HUB}/objects/service-accounts/metadata").json()
    assert [n["fields"] for n in accounts["bulkRequiredConfiguration"]] == [
        ["password"],
        ["organization_id"],
    ]
    element = tenant.client().get("/elements/api-v2/elements/mixpanel/metadata").json()
    assert (
        element["objects"]["groups"]["bulkRequiredConfiguration"]
        == (groups["bulkRequiredConfiguration"])
    )
    assert "bulkRequiredConfiguration" not in element["objects"]["privacy-requests"]


def test_configuration_removed_after_submission_ends_the_job_before_any_vendor_call(tenant, sim):
    from bulk import runner

    client, instance_id = element_client(tenant, SA_CONFIGURATION)
    job_id = client.post(f"{BULK}/query?q={quote('select * from annotations')}").json()["id"]
    without_project = {k: v for k, v in SA_CONFIGURATION.items() if k != "project_id"}
    replaced = tenant.client().put(
        f"{INSTANCES}/{instance_id}",
        {"element": {"key": "mixpanel"}, "name": "Needs", "configuration": without_project},
        format="json",
    )
    assert replaced.status_code == 200, replaced.content
    sim.clear_requests()
    assert runner.run_job(job_id, heartbeat=False, pipelined=False) == "ERROR"
    message = client.get(f"{BULK}/{job_id}/status").json()["statusMessage"]
    assert "A bulk job of annotations needs configuration" in message, message
    assert f"PATCH {INSTANCES}/{instance_id} " in message and "project_id" in message
    assert not sim.requests()
