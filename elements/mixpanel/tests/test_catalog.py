"""Mixpanel in the element catalog (contract §4), derived from its definition. (The catalog's
platform rules: tests/test_catalog.py; what every element passes: the conformance suite.)"""

import pytest
from rest_framework.test import APIClient

from elements.framework.registry import element_by_key
from elements.mixpanel import ELEMENT as MIXPANEL

pytestmark = pytest.mark.django_db

BASE = "/elements/api-v2/elements"


def test_mixpanel_is_in_the_catalog(tenant):
    assert "mixpanel" in tenant.client().get(f"{BASE}/keys").json()


@pytest.mark.parametrize("key_or_id", ["mixpanel", "13973"])
def test_element_detail_lists_configuration_and_resources(tenant, key_or_id):
    body = tenant.client().get(f"{BASE}/{key_or_id}").json()
    assert body["key"] == "mixpanel" and body["id"] == 13973
    fields = {f["key"]: f for f in body["configuration"]}
    for key in ("username", "password", "organization_id", "project_id", "project_token", "region"):
        assert set(fields[key]) >= {
            "key",
            "name",
            "type",
            "required",
            "secret",
            "defaultValue",
            "description",
        }
    assert fields["username"]["required"] is True
    assert fields["password"]["secret"] is True
    assert fields["region"]["defaultValue"] == "US"
    assert fields["event.notification.signature.key"]["secret"] is True
    resources = body["resources"]
    assert len(resources) == len(MIXPANEL.operations)
    for resource in resources:
        assert set(resource) == {
            "operationId",
            "method",
            "path",
            "vendorMethod",
            "vendorPath",
            "description",
            "parameters",
            "requiredConfiguration",
        }


def test_resources_match_the_definition(tenant):
    resources = tenant.client().get(f"{BASE}/mixpanel/resources").json()
    expected = {(op.method, op.path or op.name) for op in MIXPANEL.operations}
    got = set()
    for r in resources:
        path = r["path"]
        got.add(
            (r["method"], path.removeprefix("/hubs/general"))
            if path.startswith("/hubs/")
            else (r["method"], path.split("/")[2])
        )
    assert got == expected


def test_metadata(tenant):
    body = tenant.client().get(f"{BASE}/mixpanel/metadata").json()
    assert set(body) >= {"id", "name", "key", "description", "events", "bulk", "objects"}
    assert body["events"] == {"supported": True, "methods": ["polling"]}
    assert set(body["objects"]) >= {
        "activities",
        "users",
        "service-accounts",
        "groups",
        "privacy-requests",
    }


def test_docs_are_an_openapi_document_of_every_operation(tenant):
    doc = tenant.client().get(f"{BASE}/mixpanel/docs").json()
    assert doc["openapi"].startswith("3.")
    operation_ids = {op["operationId"] for item in doc["paths"].values() for op in item.values()}
    # Resource style by the operation's id, operation style by its name (an operation may
    # have both).
    assert operation_ids == {op.id for op in MIXPANEL.operations if op.path} | {
        op.name for op in MIXPANEL.operations if op.name
    }
    for item in doc["paths"].values():
        for op in item.values():
            assert "200" in op["responses"] and "400" in op["responses"]


def test_operation_schema_endpoints_need_no_auth():
    for op in MIXPANEL.operations:
        if not op.name:
            continue
        body = APIClient().get(f"/mixpanel/{op.name}").json()
        assert body["operation"] == op.name and body["method"] == op.method
        assert body["input_schema"]["type"] == "object"
        assert "x-in" not in repr(body)


def test_registry_finds_element_folders():
    assert element_by_key("mixpanel") is MIXPANEL
