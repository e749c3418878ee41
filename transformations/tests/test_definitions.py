"""Object definitions at organization and instance level (contract §9): CRUD, the map, every
error, and tenants kept apart."""

import pytest

from conftest import add_user, make_instance

pytestmark = pytest.mark.django_db

API = "/elements/api-v2"
CUSTOMER = {
    "fields": [
        {"path": "id", "type": "string"},
        {"path": "email", "type": "string"},
        {"path": "age", "type": "number"},
        {"path": "vip", "type": "boolean"},
        {"path": "since", "type": "date"},
        {"path": "tags", "type": "array"},
    ]
}


@pytest.fixture
def client(tenant):
    return tenant.client()


@pytest.fixture
def instance(tenant):
    return make_instance(tenant)[0]


def _levels(instance):
    return [
        (f"{API}/organizations/objects", "organization"),
        (f"{API}/instances/{instance.pk}/objects", "instance"),
    ]


def test_definition_crud_at_both_levels(client, instance):
    for base, level in _levels(instance):
        url = f"{base}/customer/definitions"
        assert client.get(url).status_code == 404
        created = client.post(url, CUSTOMER, format="json")
        assert created.status_code == 200, created.content
        assert created.json() == {"name": "customer", "level": level, **CUSTOMER}
        assert client.get(url).json()["fields"] == CUSTOMER["fields"]

        again = client.post(url, CUSTOMER, format="json")
        assert again.status_code == 409
        assert "already exists" in again.json()["message"]

        replaced = client.put(url, {"fields": [{"path": "id", "type": "string"}]}, format="json")
        assert replaced.status_code == 200
        assert client.get(url).json()["fields"] == [{"path": "id", "type": "string"}]

        assert client.delete(url).json() == {"deleted": 1}
        assert client.get(url).status_code == 404
        assert client.delete(url).status_code == 404
        assert client.put(url, CUSTOMER, format="json").status_code == 404


def test_the_map_of_definitions_by_name(client, instance):
    assert client.get(f"{API}/organizations/objects/definitions").json() == {}
    client.post(f"{API}/organizations/objects/customer/definitions", CUSTOMER, format="json")
    client.post(
        f"{API}/organizations/objects/order/definitions",
        {"fields": [{"path": "total", "type": "number"}]},
        format="json",
    )
    client.post(f"{API}/instances/{instance.pk}/objects/lead/definitions", CUSTOMER, format="json")
    org_map = client.get(f"{API}/organizations/objects/definitions").json()
    assert sorted(org_map) == ["customer", "order"]
    assert org_map["order"] == {
        "name": "order",
        "level": "organization",
        "fields": [{"path": "total", "type": "number"}],
    }
    # Each level reads back only its own.
    assert list(client.get(f"{API}/instances/{instance.pk}/objects/definitions").json()) == ["lead"]


@pytest.mark.parametrize(
    "body, field",
    [
        ({}, "fields"),
        ({"fields": []}, "fields"),
        ({"fields": [{"path": "id"}]}, "fields.0.type"),
        ({"fields": [{"path": "id", "type": "text"}]}, "fields.0.type"),
        ({"fields": [{"path": "id", "type": "string", "colour": 1}]}, "fields.0.colour"),
        ({"fields": [{"path": "a..b", "type": "string"}]}, "fields.0.path"),
        ({"fields": [{"path": "", "type": "string"}]}, "fields.0.path"),
        ({"fields": "id"}, "fields"),
        ({"fields": [{"path": "id", "type": "string"}], "extra": True}, "extra"),
        ([1, 2], "body"),
    ],
)
def test_bad_definitions_are_400_naming_the_field(client, body, field):
    response = client.post(f"{API}/organizations/objects/customer/definitions", body, format="json")
    assert response.status_code == 400, response.content
    assert field in [e["field"] for e in response.json()["errors"]], response.json()
    assert "requestId" in response.json()


def test_bad_names_and_bodies_are_400_never_500(client):
    too_long = "x" * 101
    response = client.post(
        f"{API}/organizations/objects/{too_long}/definitions", CUSTOMER, format="json"
    )
    assert response.status_code == 400
    not_json = client.post(
        f"{API}/organizations/objects/customer/definitions",
        data=b"{nope",
        content_type="application/json",
    )
    assert not_json.status_code == 400


def test_accounts_answer_404(client):
    for url in (
        f"{API}/accounts/objects/customer/definitions",
        f"{API}/accounts/7/objects/customer/definitions",
        f"{API}/accounts/objects/definitions",
    ):
        assert client.get(url).status_code == 404
        assert client.post(url, CUSTOMER, format="json").status_code == 404


def test_headers_user_and_organization_are_required(tenant, instance):
    from rest_framework.test import APIClient

    anonymous = APIClient()
    assert anonymous.get(f"{API}/organizations/objects/definitions").status_code == 401
    url = f"{API}/instances/{instance.pk}/objects/customer/definitions"
    assert anonymous.post(url, CUSTOMER, format="json").status_code == 401


def test_tenants_never_see_each_others_definitions(tenant, other_tenant, instance):
    mine = tenant.client()
    theirs = other_tenant.client()
    mine.post(f"{API}/organizations/objects/customer/definitions", CUSTOMER, format="json")
    mine.post(f"{API}/instances/{instance.pk}/objects/lead/definitions", CUSTOMER, format="json")

    assert theirs.get(f"{API}/organizations/objects/definitions").json() == {}
    assert theirs.get(f"{API}/organizations/objects/customer/definitions").status_code == 404
    # Their own definition of the same name is theirs alone.
    assert (
        theirs.post(
            f"{API}/organizations/objects/customer/definitions",
            {"fields": [{"path": "x", "type": "string"}]},
            format="json",
        ).status_code
        == 200
    )
    assert (
        mine.get(f"{API}/organizations/objects/customer/definitions").json()["fields"]
        == (CUSTOMER["fields"])
    )
    # Another tenant's instance is 404 at every verb, as if it did not exist.
    url = f"{API}/instances/{instance.pk}/objects/lead/definitions"
    assert theirs.get(url).status_code == 404
    assert theirs.put(url, CUSTOMER, format="json").status_code == 404
    assert theirs.delete(url).status_code == 404
    assert theirs.get(f"{API}/instances/{instance.pk}/objects/definitions").status_code == 404
    assert mine.get(url).status_code == 200


def test_a_second_user_of_the_organization_shares_its_definitions(tenant):
    tenant.client().post(
        f"{API}/organizations/objects/customer/definitions", CUSTOMER, format="json"
    )
    colleague = add_user(tenant).client()
    assert colleague.get(f"{API}/organizations/objects/customer/definitions").status_code == 200
