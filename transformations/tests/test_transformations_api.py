"""Transformations at organization level (per element, by key or id) and instance level
(contract §9): CRUD, the whole set, every error, the refused script, tenants kept apart."""

import pytest

from conftest import make_instance

pytestmark = pytest.mark.django_db

API = "/elements/api-v2"
CUSTOMER = {"fields": [{"path": "id", "type": "string"}, {"path": "email", "type": "string"}]}
MAPPING = {
    "vendorName": "users",
    "fields": [
        {"path": "id", "vendorPath": "id"},
        {
            "path": "email",
            "vendorPath": "$properties.$email",
            "type": "string",
            "configuration": [{"type": "remove", "properties": {"toVendor": True}}],
        },
        {
            "path": "since",
            "vendorPath": "$properties.$created",
            "configuration": [{"type": "transformDate", "properties": {"pattern": "dd/MM/yyyy"}}],
        },
    ],
    "configuration": [{"type": "passThrough", "properties": {"fromVendor": False}}],
}


def json_client(tenant):
    client = tenant.client()
    client.default_format = "json"
    return client


@pytest.fixture
def client(tenant):
    client = json_client(tenant)
    response = client.post(f"{API}/organizations/objects/customer/definitions", CUSTOMER)
    assert response.status_code == 200, response.content
    return client


@pytest.fixture
def instance(tenant):
    return make_instance(tenant)[0]


def _levels(instance):
    return [
        (f"{API}/organizations/elements/mixpanel/transformations", "organization"),
        (f"{API}/organizations/elements/13973/transformations", "organization"),
        (f"{API}/instances/{instance.pk}/transformations", "instance"),
    ]


def test_transformation_crud_at_both_levels(client, instance):
    for base, level in _levels(instance):
        url = f"{base}/customer"
        assert client.get(url).status_code == 404
        created = client.post(url, MAPPING, format="json")
        assert created.status_code == 200, created.content
        body = created.json()
        assert body["objectName"] == "customer" and body["level"] == level
        assert body["vendorName"] == "users" and body["element"] == {"key": "mixpanel"}
        assert body["fields"] == MAPPING["fields"]
        assert body["configuration"] == MAPPING["configuration"]
        assert body["isLegacy"] is False and body["startDate"]
        assert client.get(url).json() == body

        assert client.post(url, MAPPING, format="json").status_code == 409

        replaced = client.put(
            url, {"vendorName": "activities", "fields": [{"path": "id", "vendorPath": "id"}]}
        )
        assert replaced.status_code == 200, replaced.content
        assert client.get(url).json()["vendorName"] == "activities"
        assert client.get(url).json()["configuration"] == []

        assert sorted(client.get(base).json()) == ["customer"]
        assert client.delete(url).json() == {"deleted": 1}
        assert client.get(url).status_code == 404
        assert client.delete(url).status_code == 404
        assert client.put(url, MAPPING, format="json").status_code == 404


def test_the_whole_set_read_and_deleted(client, instance, tenant):
    for base, _ in _levels(instance)[1:]:
        client.post(f"{base}/customer", MAPPING, format="json")
        client.post(f"{API}/organizations/objects/lead/definitions", CUSTOMER, format="json")
        assert client.post(f"{base}/lead", MAPPING, format="json").status_code == 200
        listed = client.get(base).json()
        assert sorted(listed) == ["customer", "lead"]
        assert listed["lead"]["objectName"] == "lead"
        assert client.delete(base).json() == {"deleted": 2}
        assert client.get(base).json() == {}
        assert client.delete(base).status_code == 404


def test_definition_must_exist_first(tenant, instance):
    client = json_client(tenant)
    for base, _ in _levels(instance):
        response = client.post(f"{base}/customer", MAPPING, format="json")
        assert response.status_code == 400
        assert "Define the object 'customer' first" in response.json()["message"]
    # An instance definition serves the instance's transformations only.
    client.post(f"{API}/instances/{instance.pk}/objects/customer/definitions", CUSTOMER)
    assert (
        client.post(
            f"{API}/instances/{instance.pk}/transformations/customer", MAPPING, format="json"
        )
    ).status_code == 200
    org = client.post(
        f"{API}/organizations/elements/mixpanel/transformations/customer", MAPPING, format="json"
    )
    assert org.status_code == 400
    # An organization definition serves both levels.
    client.post(f"{API}/organizations/objects/customer/definitions", CUSTOMER)
    assert (
        client.post(
            f"{API}/organizations/elements/mixpanel/transformations/customer",
            MAPPING,
            format="json",
        ).status_code
        == 200
    )


def test_a_definition_in_use_cannot_be_deleted(client, instance):
    client.post(f"{API}/instances/{instance.pk}/transformations/customer", MAPPING, format="json")
    response = client.delete(f"{API}/organizations/objects/customer/definitions")
    assert response.status_code == 409
    assert "used by a transformation" in response.json()["message"]
    client.delete(f"{API}/instances/{instance.pk}/transformations/customer")
    assert client.delete(f"{API}/organizations/objects/customer/definitions").status_code == 200


@pytest.mark.parametrize("script", [None, "", {"body": ""}, {"body": None}])
def test_an_empty_script_counts_as_none(client, script):
    response = client.post(
        f"{API}/organizations/elements/mixpanel/transformations/customer",
        {**MAPPING, "script": script, "isLegacy": False},
        format="json",
    )
    assert response.status_code == 200, response.content


@pytest.mark.parametrize(
    "script",
    [
        {"body": "done(transformedObject);"},
        "done(transformedObject);",
        {"body": "", "filterEmptyResponse": True},
        {"body": "x", "isLegacy": True},
    ],
)
def test_a_script_is_refused_offering_the_declarative_options(client, instance, script):
    for base, _ in _levels(instance):
        # Refused before anything else, whether or not the transformation exists.
        for write in (client.post, client.put):
            response = write(f"{base}/customer", {**MAPPING, "script": script}, format="json")
            assert response.status_code == 400, response.content
        response = client.post(f"{base}/customer", {**MAPPING, "script": script}, format="json")
        message = response.json()["message"]
        assert "never runs tenant code" in message
        for option in ("passThrough", "inherit", "remove", "transformDate", "[*]"):
            assert option in message
        assert response.json()["errors"] == [{"field": "script", "message": "is not supported"}]
    client.post(f"{API}/organizations/elements/mixpanel/transformations/customer", MAPPING)
    replaced = client.put(
        f"{API}/organizations/elements/mixpanel/transformations/customer",
        {**MAPPING, "script": script},
        format="json",
    )
    assert replaced.status_code == 400


@pytest.mark.parametrize(
    "body, field",
    [
        ({"fields": []}, "vendorName"),
        ({"vendorName": "users"}, "fields"),
        ({**MAPPING, "vendorName": "contacts"}, "vendorName"),
        ({**MAPPING, "fields": [{"path": "id"}]}, "fields.0.vendorPath"),
        ({**MAPPING, "fields": [{"path": "id", "vendorPath": "a[0]"}]}, "fields.0.vendorPath"),
        (
            {**MAPPING, "fields": [{"path": "id", "vendorPath": "id", "type": "int"}]},
            "fields.0.type",
        ),
        (
            {
                **MAPPING,
                "fields": [{"path": "x", "vendorPath": "x", "configuration": [{"type": "js"}]}],
            },
            "fields.0.configuration.0",
        ),
        (
            {
                **MAPPING,
                "fields": [
                    {
                        "path": "x",
                        "vendorPath": "x",
                        "configuration": [{"type": "transformDate", "properties": {}}],
                    }
                ],
            },
            "fields.0.configuration.0",
        ),
        (
            {
                **MAPPING,
                "configuration": [{"type": "passThrough", "properties": {"fromVendor": "no"}}],
            },
            "configuration.0",
        ),
        ({**MAPPING, "configuration": [{"type": "filter"}]}, "configuration.0"),
        (
            {
                **MAPPING,
                "fields": [{"path": "id", "vendorPath": "id"}, {"path": "id", "vendorPath": "x"}],
            },
            "fields",
        ),
        ({**MAPPING, "other": 1}, "other"),
        ("users", "body"),
    ],
)
def test_bad_transformations_are_400_naming_the_field(client, body, field):
    response = client.post(
        f"{API}/organizations/elements/mixpanel/transformations/customer", body, format="json"
    )
    assert response.status_code == 400, response.content
    assert field in [e["field"] for e in response.json()["errors"]], response.json()


def test_a_native_resource_name_is_refused(client):
    client.post(f"{API}/organizations/objects/users/definitions", CUSTOMER)
    response = client.post(
        f"{API}/organizations/elements/mixpanel/transformations/users", MAPPING, format="json"
    )
    assert response.status_code == 400
    assert "own resources" in response.json()["message"]


def test_unknown_element_or_instance_is_404(client):
    assert client.get(f"{API}/organizations/elements/nope/transformations").status_code == 404
    assert (
        client.post(f"{API}/organizations/elements/nope/transformations/customer", MAPPING)
    ).status_code == 404
    assert client.get(f"{API}/instances/999999/transformations").status_code == 404
    assert client.get(f"{API}/instances/abc/transformations/customer").status_code == 404
    assert client.get(f"{API}/accounts/elements/mixpanel/transformations").status_code == 404
    assert client.get(f"{API}/accounts/1/elements/mixpanel/transformations/x").status_code == 404


def test_tenants_never_see_each_others_transformations(client, instance, other_tenant):
    client.post(
        f"{API}/organizations/elements/mixpanel/transformations/customer", MAPPING, format="json"
    )
    client.post(f"{API}/instances/{instance.pk}/transformations/customer", MAPPING, format="json")
    theirs = json_client(other_tenant)
    assert theirs.get(f"{API}/organizations/elements/mixpanel/transformations").json() == {}
    org_url = f"{API}/organizations/elements/mixpanel/transformations/customer"
    assert theirs.get(org_url).status_code == 404
    assert theirs.delete(org_url).status_code == 404
    assert (
        theirs.delete(f"{API}/organizations/elements/mixpanel/transformations").status_code == 404
    )
    # Without their own definition they cannot create one either.
    assert theirs.post(org_url, MAPPING, format="json").status_code == 400
    for url in (
        f"{API}/instances/{instance.pk}/transformations",
        f"{API}/instances/{instance.pk}/transformations/customer",
    ):
        assert theirs.get(url).status_code == 404
        assert theirs.delete(url).status_code == 404
    assert client.get(org_url).status_code == 200
