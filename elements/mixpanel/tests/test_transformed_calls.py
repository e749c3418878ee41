"""Transformed calls (contract §9): ``/hubs/general/customer`` for an instance whose
organization maps ``customer`` onto Mixpanel users, against the simulator, asserting what the
simulator received: list, one record, create, update, delete, a ``where`` on a transformed
field, passThrough false, remove, inherit and transformDate."""

import pytest

from conftest import SIM_PROJECT_TOKEN
from elements.mixpanel import ELEMENT as MIXPANEL

pytestmark = [pytest.mark.django_db, pytest.mark.integration]

API = "/elements/api-v2"
HUB = f"{API}/hubs/general"
ORG_TRANSFORMATIONS = f"{API}/organizations/elements/mixpanel/transformations"
CUSTOMER = {
    "fields": [
        {"path": "id", "type": "string"},
        {"path": "email", "type": "string"},
        {"path": "town", "type": "string"},
        {"path": "since", "type": "date"},
        {"path": "age", "type": "number"},
    ]
}
MAPPING = {
    "vendorName": "users",
    "fields": [
        {"path": "id", "vendorPath": "id"},
        {"path": "email", "vendorPath": "$properties.$email"},
        {"path": "town", "vendorPath": "$properties.$city"},
        {
            "path": "since",
            "vendorPath": "$properties.$created",
            "configuration": [{"type": "transformDate", "properties": {"pattern": "dd/MM/yyyy"}}],
        },
        {"path": "age", "vendorPath": "$properties.age", "type": "number"},
    ],
}


@pytest.fixture
def platform(tenant):
    client = tenant.client()
    client.default_format = "json"
    response = client.post(f"{API}/organizations/objects/customer/definitions", CUSTOMER)
    assert response.status_code == 200, response.content
    return client


@pytest.fixture
def element(tenant, sa_instance):
    return tenant.element_client(sa_instance["token"])


def _transform(platform, body=MAPPING, url=f"{ORG_TRANSFORMATIONS}/customer"):
    response = platform.post(url, body)
    assert response.status_code == 200, response.content


def _received(sim, path_part):
    found = [r for r in sim.requests() if path_part in r["path"]]
    assert found, f"the simulator never received {path_part}"
    return found[-1]


def test_create_get_update_delete_through_a_transformation(platform, element, sim):
    _transform(platform)
    created = element.post(
        f"{HUB}/customer",
        {"id": "c-1", "email": "ann@example.test", "town": "Dallas", "since": "05/01/2024"},
        format="json",
    )
    assert created.status_code == 200, created.content
    sent = _received(sim, "/engage")["body"][0]
    assert sent["$distinct_id"] == "c-1" and sent["$token"] == SIM_PROJECT_TOKEN
    assert sent["$set"] == {
        "$email": "ann@example.test",
        "$city": "Dallas",
        "$created": "2024-01-05T00:00:00",
    }
    assert created.json()["id"] == "c-1"
    assert created.json()["email"] == "ann@example.test"
    assert created.json()["since"] == "05/01/2024"

    one = element.get(f"{HUB}/customer/c-1")
    assert one.status_code == 200, one.content
    assert _received(sim, "/engage")["body"]["distinct_id"] == "c-1"
    record = one.json()
    assert record["id"] == "c-1"
    assert record["email"] == "ann@example.test"
    assert record["town"] == "Dallas"
    assert record["since"] == "05/01/2024"
    # Unmapped fields pass through; the mapped vendor keys are not echoed beside them.
    assert record["$distinct_id"] == "c-1"
    assert "$email" not in record.get("$properties", {})

    updated = element.patch(f"{HUB}/customer/c-1", {"town": "Austin"}, format="json")
    assert updated.status_code == 200, updated.content
    assert _received(sim, "/engage")["body"][0]["$set"] == {"$city": "Austin"}
    assert updated.json()["town"] == "Austin"
    assert sim.profile("c-1")["$properties"]["$city"] == "Austin"

    deleted = element.delete(f"{HUB}/customer/c-1")
    assert deleted.status_code == 200, deleted.content
    sent = _received(sim, "/engage")["body"][0]
    assert sent["$distinct_id"] == "c-1" and "$delete" in sent
    assert deleted.json()["id"] == "c-1"
    assert element.get(f"{HUB}/customer/c-1").status_code == 404


def test_list_with_a_where_on_a_transformed_field(platform, element, sim):
    sim.configure(profiles={"count": 40})
    _transform(platform)
    response = element.get(f"{HUB}/customer", {"where": "town = 'Dallas' and age >= 21"})
    assert response.status_code == 200, response.content
    where = _received(sim, "/api/query/engage")["body"]["where"]
    assert where == '(properties["$city"] == "Dallas" and properties["age"] >= 21)'
    records = response.json()
    assert records
    for record in records:
        assert record["town"] == "Dallas" and record["age"] >= 21
        assert record["id"] == record["$distinct_id"]
        day, month, year = record["since"].split("/")
        assert len(day) == 2 and len(month) == 2 and len(year) == 4
    # Paging goes on as for the element's own resource.
    paged = element.get(f"{HUB}/customer", {"pageSize": 5})
    assert len(paged.json()) == 5 and paged["Elements-Next-Page-Token"]


def test_pass_through_false_keeps_only_mapped_fields_both_ways(platform, element, sim):
    sim.configure(profiles={"count": 5})
    _transform(
        platform,
        {
            **MAPPING,
            "configuration": [
                {"type": "passThrough", "properties": {"fromVendor": False, "toVendor": False}}
            ],
        },
    )
    records = element.get(f"{HUB}/customer").json()
    assert records
    for record in records:
        assert set(record) <= {"id", "email", "town", "since", "age"}
        assert "id" in record
    created = element.post(
        f"{HUB}/customer", {"id": "c-2", "town": "Paris", "$set": {"plan": "x"}}, format="json"
    )
    assert created.status_code == 200, created.content
    sent = _received(sim, "/engage")["body"][0]
    assert sent["$set"] == {"$city": "Paris"}  # the unmapped $set did not go through


def test_remove_drops_a_field_in_the_direction_it_names(platform, element, sim):
    body = {
        **MAPPING,
        "fields": [
            {"path": "id", "vendorPath": "id"},
            {
                "path": "email",
                "vendorPath": "$properties.$email",
                "configuration": [{"type": "remove", "properties": {"toVendor": True}}],
            },
            {
                "path": "town",
                "vendorPath": "$properties.$city",
                "configuration": [
                    {"type": "remove", "properties": {"fromVendor": True, "toVendor": False}}
                ],
            },
        ],
    }
    _transform(platform, body)
    element.post(
        f"{HUB}/customer", {"id": "c-3", "email": "x@y.test", "town": "Oslo"}, format="json"
    )
    assert _received(sim, "/engage")["body"][0]["$set"] == {"$city": "Oslo"}
    record = element.get(f"{HUB}/customer/c-3").json()
    assert "town" not in record and "email" not in record
    assert sim.profile("c-3")["$properties"]["$city"] == "Oslo"


def test_instance_level_overrides_unless_it_inherits(platform, element, sim, sa_instance):
    _transform(platform)  # organization: id, email, town, since, age
    instance_url = f"{API}/instances/{sa_instance['id']}/transformations/customer"
    only_city = {
        "vendorName": "users",
        "fields": [{"path": "city", "vendorPath": "$properties.$city"}],
        "configuration": [{"type": "passThrough", "properties": {"fromVendor": False}}],
    }
    _transform(platform, only_city, instance_url)
    element.post(
        f"{HUB}/customer",
        {"id": "c-4", "email": "c4@x.test", "town": "Rome"},
        format="json",
    )
    sim.clear_requests()
    native = element.post(
        f"{HUB}/users", {"$distinct_id": "c-4", "$set": {"$city": "Rome"}}, format="json"
    )
    assert native.status_code == 200, native.content
    record = element.get(f"{HUB}/customer/c-4").json()
    assert record == {"city": "Rome"}  # the instance level replaced the organization's

    replaced = platform.put(
        instance_url,
        {**only_city, "configuration": [*only_city["configuration"], {"type": "inherit"}]},
    )
    assert replaced.status_code == 200, replaced.content
    record = element.get(f"{HUB}/customer/c-4").json()
    assert record["city"] == "Rome" and record["town"] == "Rome"
    assert record["id"] == "c-4"
    assert set(record) <= {"id", "email", "town", "since", "age", "city"}


def test_transform_date_both_ways_with_a_vendor_pattern(platform, element, sim):
    _transform(
        platform,
        {
            "vendorName": "users",
            "fields": [
                {"path": "id", "vendorPath": "id"},
                {
                    "path": "joined",
                    "vendorPath": "$properties.joined",
                    "configuration": [
                        {
                            "type": "transformDate",
                            "properties": {
                                "pattern": "yyyy/MM/dd HH:mm",
                                "vendorPattern": "yyyyMMdd'T'HHmm",
                            },
                        }
                    ],
                },
            ],
        },
    )
    element.post(f"{HUB}/customer", {"id": "c-5", "joined": "2023/12/31 23:59"}, format="json")
    assert _received(sim, "/engage")["body"][0]["$set"] == {"joined": "20231231T2359"}
    assert element.get(f"{HUB}/customer/c-5").json()["joined"] == "2023/12/31 23:59"


def test_objects_and_metadata_show_the_transformed_object(platform, element, sim):
    _transform(platform)
    # The element's own objects, then the instance's transformed ones.
    own = [o.name for o in MIXPANEL.objects]
    assert element.get(f"{HUB}/objects").json() == [*own, "customer"]
    metadata = element.get(f"{HUB}/objects/customer/metadata")
    assert metadata.status_code == 200, metadata.content
    body = metadata.json()
    assert body["name"] == "customer" and body["vendorName"] == "users"
    assert {"path": "town", "type": "string", "vendorPath": "$properties.$city"} in body["fields"]
    assert element.get(f"{HUB}/objects/nothing/metadata").status_code == 404


def test_an_instance_without_the_transformation_gets_404(platform, tenant, other_tenant, sim):
    _transform(platform)
    from conftest import element_client_for

    theirs = element_client_for(other_tenant)
    assert theirs.get(f"{HUB}/customer").status_code == 404
    assert "customer" not in theirs.get(f"{HUB}/objects").json()
    assert theirs.get(f"{HUB}/objects/customer/metadata").status_code == 404
    # Without an element token the path names nothing: 404, telling nothing of the names other
    # tenants use; with a bad token it could have been an element call: 401.
    from rest_framework.test import APIClient

    assert APIClient().get(f"{HUB}/customer").status_code == 404
    assert platform.get(f"{HUB}/customer").status_code == 404
    bad_token = APIClient(HTTP_AUTHORIZATION=tenant.element_auth("not-a-token"))
    assert bad_token.get(f"{HUB}/customer").status_code == 401
    assert bad_token.get(f"{HUB}/customer/1/2").status_code == 404


def test_bad_where_on_a_transformed_object_is_400(platform, element, sim):
    _transform(platform)
    response = element.get(f"{HUB}/customer", {"where": "town = "})
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "where"
    assert (
        element.post(f"{HUB}/customer", data=b"{x", content_type="application/json").status_code
        == 400
    )
    assert element.put(f"{HUB}/customer/c-1", {"town": "x"}, format="json").status_code == 405


def test_the_elements_openapi_document_shows_the_transformed_object(platform, other_tenant):
    from openapi_spec_validator import validate

    _transform(platform)
    document = platform.get(f"{API}/elements/mixpanel/docs").json()
    validate(document)
    paths = document["paths"]
    assert set(paths["/hubs/general/customer"]) == {"get", "post"}
    assert set(paths["/hubs/general/customer/{id}"]) == {"get", "patch", "delete"}
    listed = paths["/hubs/general/customer"]["get"]
    assert listed["operationId"] == "customer.getUsers" and listed["tags"] == ["customer"]
    record = listed["responses"]["200"]["content"]["application/json"]["schema"]["items"]
    assert record["properties"]["town"] == {"type": "string"}
    assert record["properties"]["age"] == {"type": "number"}
    assert "where" in [p["name"] for p in listed["parameters"]]
    # The element's own paths stay; another organization sees none of this one's objects.
    assert "/hubs/general/users" in paths
    theirs = other_tenant.client().get(f"{API}/elements/mixpanel/docs").json()
    assert "/hubs/general/customer" not in theirs["paths"]


def test_arrays_map_element_wise_both_ways(platform, element, sim):
    definition = platform.post(
        f"{API}/organizations/objects/basket/definitions",
        {
            "fields": [
                {"path": "id", "type": "string"},
                {"path": "items[*].code", "type": "string"},
                {"path": "items[*].count", "type": "number"},
            ]
        },
    )
    assert definition.status_code == 200, definition.content
    _transform(
        platform,
        {
            "vendorName": "users",
            "fields": [
                {"path": "id", "vendorPath": "id"},
                {"path": "items[*].code", "vendorPath": "$properties.orders[*].sku"},
                {
                    "path": "items[*].count",
                    "vendorPath": "$properties.orders[*].qty",
                    "type": "number",
                },
            ],
            "configuration": [{"type": "passThrough", "properties": {"fromVendor": False}}],
        },
        f"{ORG_TRANSFORMATIONS}/basket",
    )
    created = element.post(
        f"{HUB}/basket",
        {"id": "b-1", "items": [{"code": "a", "count": 2}, {"code": "b", "count": 1}]},
        format="json",
    )
    assert created.status_code == 200, created.content
    assert _received(sim, "/engage")["body"][0]["$set"] == {
        "orders": [{"sku": "a", "qty": 2}, {"sku": "b", "qty": 1}]
    }
    assert element.get(f"{HUB}/basket/b-1").json() == {
        "id": "b-1",
        "items": [{"code": "a", "count": 2}, {"code": "b", "count": 1}],
    }


def test_without_the_hub_and_an_id_in_an_update_body(platform, element, sim):
    _transform(platform)
    created = element.post(f"{API}/customer", {"id": "c-6", "town": "Lima"}, format="json")
    assert created.status_code == 200, created.content
    # The id travels in the path; the same id in the body is not sent again.
    updated = element.patch(f"{API}/customer/c-6", {"id": "c-6", "town": "Cusco"}, format="json")
    assert updated.status_code == 200, updated.content
    sent = _received(sim, "/engage")["body"][0]
    assert sent["$distinct_id"] == "c-6" and sent["$set"] == {"$city": "Cusco"}
