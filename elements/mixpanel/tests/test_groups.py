"""Group profiles through the platform, in both URL styles, against the simulator, with what
Mixpanel received asserted (contract §5d: POST/GET /groups/{groupKey},
GET/PATCH/DELETE /groups/{groupKey}/{groupId})."""

import pytest

from conftest import SA_CONFIGURATION, SIM_PROJECT_ID, SIM_PROJECT_TOKEN
from simulators.mixpanel.state import DEFAULT_GROUP_KEYS

pytestmark = [pytest.mark.django_db, pytest.mark.integration]

HUB = "/elements/api-v2/hubs/general"
COMPANY_GROUP_ID = DEFAULT_GROUP_KEYS["company_id"]


@pytest.fixture
def instance(tenant, sim):
    response = tenant.client().post(
        "/elements/api-v2/instances",
        {
            "element": {"key": "mixpanel"},
            "name": "groups",
            "configuration": {**SA_CONFIGURATION, "data_groups": {"company_id": COMPANY_GROUP_ID}},
        },
        format="json",
    )
    assert response.status_code == 200, response.content
    return response.json()


@pytest.fixture
def element(tenant, instance):
    return tenant.element_client(instance["token"])


@pytest.fixture
def iid(instance):
    return instance["id"]


def sent(sim, path, method="POST"):
    found = [r for r in sim.requests() if r["path"] == path and r["method"] == method]
    assert found, f"Mixpanel never received {method} {path}"
    return found


def group_updates(sim):
    return [update for request in sent(sim, "/groups") for update in request["body"]]


def add_group(element, group_id, **operations):
    response = element.post(
        f"{HUB}/groups/company_id", {"$group_id": group_id, **operations}, format="json"
    )
    assert response.status_code == 200, response.content
    return response.json()


def test_create_sends_one_update_per_operation(element, sim):
    sim.clear_requests()
    body = add_group(
        element, "Acme", **{"$set": {"plan": "Pro", "seats": 40}, "$union": {"products": ["A"]}}
    )
    assert body == {
        "id": "company_id:Acme",
        "$group_key": "company_id",
        "$group_id": "Acme",
        "$set": {"plan": "Pro", "seats": 40},
        "$union": {"products": ["A"]},
    }
    (request,) = sent(sim, "/groups")
    assert request["query"]["verbose"] == "1"
    assert "Authorization" not in request["headers"]  # the token in each update authenticates
    assert request["body"] == [
        {
            "$token": SIM_PROJECT_TOKEN,
            "$group_key": "company_id",
            "$group_id": "Acme",
            "$set": {"plan": "Pro", "seats": 40},
        },
        {
            "$token": SIM_PROJECT_TOKEN,
            "$group_key": "company_id",
            "$group_id": "Acme",
            "$union": {"products": ["A"]},
        },
    ]


def test_create_in_operation_style(element, sim, iid):
    sim.clear_requests()
    response = element.post(
        f"/mixpanel/create_group/{iid}",
        {"groupKey": "company_id", "$group_id": 42, "$set_once": {"founded": 1999}},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert response.json()["$group_id"] == "42"
    (update,) = group_updates(sim)
    assert update["$group_id"] == "42" and update["$set_once"] == {"founded": 1999}
    assert update["$group_key"] == "company_id"


def test_query_groups_both_styles_and_paging(element, sim, iid):
    for name, plan in (("Acme", "Pro"), ("Globex", "Free"), ("Initech", "Pro")):
        add_group(element, name, **{"$set": {"plan": plan}})
    sim.clear_requests()
    first = element.get(f"{HUB}/groups/company_id", {"pageSize": 2})
    assert first.status_code == 200, first.content
    assert [g["$group_id"] for g in first.json()] == ["Acme", "Globex"]
    assert first.json()[0] == {
        "id": "company_id:Acme",
        "$group_key": "company_id",
        "$group_id": "Acme",
        "$distinct_id": "Acme",
        "$properties": {"plan": "Pro"},
    }
    (engage,) = sent(sim, "/api/query/engage")
    assert engage["body"]["data_group_id"] == str(COMPANY_GROUP_ID)
    assert engage["query"]["project_id"] == str(SIM_PROJECT_ID)
    cursor = first["Elements-Next-Page-Token"]
    second = element.get(f"{HUB}/groups/company_id", {"pageSize": 2, "nextPage": cursor})
    assert [g["$group_id"] for g in second.json()] == ["Initech"]
    assert "Elements-Next-Page-Token" not in second

    pros = element.get(f"{HUB}/groups/company_id", {"where": "plan = 'Pro'"}).json()
    assert {g["$group_id"] for g in pros} == {"Acme", "Initech"}
    assert 'properties["plan"]' in sent(sim, "/api/query/engage")[-1]["body"]["where"]

    op = element.get(f"/mixpanel/query_groups/{iid}?groupKey=company_id&where=plan%3D'Free'")
    assert op.status_code == 200, op.content
    assert [g["$group_id"] for g in op.json()] == ["Globex"]


def test_get_one_group_both_styles(element, sim, iid):
    add_group(element, "Acme", **{"$set": {"plan": "Pro"}})
    sim.clear_requests()
    got = element.get(f"{HUB}/groups/company_id/Acme")
    assert got.status_code == 200, got.content
    assert got.json()["$properties"] == {"plan": "Pro"}
    engage = sent(sim, "/api/query/engage")[-1]
    assert engage["body"]["distinct_id"] == "Acme"
    assert engage["body"]["data_group_id"] == str(COMPANY_GROUP_ID)
    op = element.get(f"/mixpanel/get_group/{iid}?groupKey=company_id&groupId=Acme")
    assert op.status_code == 200 and op.json() == got.json()
    assert element.get(f"{HUB}/groups/company_id/Nobody").status_code == 404


def test_patch_may_repeat_the_groups_ids(element, sim, iid):
    add_group(element, "Acme", **{"$set": {"plan": "Pro", "seats": 3}})
    sim.clear_requests()
    response = element.patch(
        f"{HUB}/groups/company_id/Acme",
        {
            "$group_key": "company_id",
            "$group_id": "Acme",
            "$set": {"plan": "Enterprise"},
            "$unset": ["seats"],
        },
        format="json",
    )
    assert response.status_code == 200, response.content
    updates = group_updates(sim)
    assert [set(u) - {"$token", "$group_key", "$group_id"} for u in updates] == [
        {"$set"},
        {"$unset"},
    ]
    got = element.get(f"{HUB}/groups/company_id/Acme").json()
    assert got["$properties"] == {"plan": "Enterprise"}

    op = element.patch(
        f"/mixpanel/update_group/{iid}",
        {"groupKey": "company_id", "groupId": "Acme", "$remove": {"tags": "x"}},
        format="json",
    )
    assert op.status_code == 200, op.content


@pytest.mark.parametrize(
    "body,field",
    [
        ({"$group_id": "Globex", "$set": {"a": 1}}, "$group_id"),
        ({"$group_key": "team_id", "$set": {"a": 1}}, "$group_key"),
    ],
)
def test_patch_with_other_ids_is_400_saying_so(element, sim, body, field):
    sim.clear_requests()
    response = element.patch(f"{HUB}/groups/company_id/Acme", body, format="json")
    assert response.status_code == 400, response.content
    assert "differs" in response.json()["message"]
    assert response.json()["errors"][0]["field"] == field
    assert not [r for r in sim.requests() if r["path"] == "/groups"]


def test_create_with_another_group_key_in_the_body_is_400(element, sim):
    response = element.post(
        f"{HUB}/groups/company_id",
        {"$group_key": "team_id", "$group_id": "A", "$set": {"a": 1}},
        format="json",
    )
    assert response.status_code == 400 and "differs" in response.json()["message"]


def test_delete_both_styles(element, sim, iid):
    add_group(element, "Acme", **{"$set": {"plan": "Pro"}})
    add_group(element, "Globex", **{"$set": {"plan": "Free"}})
    sim.clear_requests()
    response = element.delete(f"{HUB}/groups/company_id/Acme")
    assert response.status_code == 200, response.content
    assert response.json() == {
        "id": "company_id:Acme",
        "$group_key": "company_id",
        "$group_id": "Acme",
        "deleted": True,
    }
    (update,) = group_updates(sim)
    assert update["$delete"] == "" and update["$group_id"] == "Acme"
    assert element.get(f"{HUB}/groups/company_id/Acme").status_code == 404
    op = element.delete(f"/mixpanel/delete_group/{iid}?groupKey=company_id&groupId=Globex")
    assert op.status_code == 200, op.content
    assert element.get(f"{HUB}/groups/company_id").json() == []


@pytest.mark.parametrize("value", [None, ""])
def test_post_may_delete_as_mixpanels_batch_form(element, sim, value):
    add_group(element, "Acme", **{"$set": {"plan": "Pro"}})
    sim.clear_requests()
    response = element.post(
        f"{HUB}/groups/company_id", {"$group_id": "Acme", "$delete": value}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["deleted"] is True
    (update,) = group_updates(sim)
    assert update["$delete"] == "" and set(update) == {
        "$token",
        "$group_key",
        "$group_id",
        "$delete",
    }
    assert element.get(f"{HUB}/groups/company_id/Acme").status_code == 404


def test_a_group_key_missing_from_data_groups_is_400_naming_data_groups(element, sim, iid):
    sim.clear_requests()
    for response in (
        element.get(f"{HUB}/groups/team_id"),
        element.get(f"{HUB}/groups/team_id/t1"),
        element.get(f"/mixpanel/query_groups/{iid}?groupKey=team_id"),
    ):
        assert response.status_code == 400, response.content
        body = response.json()
        assert [e["field"] for e in body["errors"]] == ["configuration.data_groups"]
        # The hint keeps the instance's entries: a PATCH replaces data_groups whole.
        assert (
            f'PATCH /elements/api-v2/instances/{iid} {{"configuration": {{"data_groups": '
            f'{{"company_id": {COMPANY_GROUP_ID}, "team_id": "<data_group_id>"}}}}}}'
        ) in body["message"]
    assert not [r for r in sim.requests() if "engage" in r["path"]]


def test_an_instance_without_data_groups_is_400_naming_it(tenant, sim):
    response = tenant.client().post(
        "/elements/api-v2/instances",
        {"element": {"key": "mixpanel"}, "name": "x", "configuration": SA_CONFIGURATION},
        format="json",
    )
    element = tenant.element_client(response.json()["token"])
    answer = element.get(f"{HUB}/groups/company_id")
    assert answer.status_code == 400
    assert answer.json()["errors"][0]["field"] == "configuration.data_groups"


@pytest.mark.parametrize(
    "body,field",
    [
        ({"$set": {"a": 1}}, "$group_id"),
        ({"$group_id": "A"}, "$set"),
        ({"$group_id": "A", "$unset": []}, "$unset"),
        ({"$group_id": "A", "$union": {"products": "A"}}, "$union.products"),
        ({"$group_id": "A", "$union": {"products": []}}, "$union.products"),
        ({"$group_id": "A", "$set": ["a"]}, "$set"),
        ({"$group_id": "A", "$delete": "", "$set": {"a": 1}}, "$delete"),
        ({"$group_id": "A", "$delete": "x"}, "$delete"),
        ({"$group_id": "A", "$add": {"n": 1}}, "$add"),
        ({"$group_id": "", "$set": {"a": 1}}, "$group_id"),
    ],
)
def test_bad_group_updates_are_400_before_any_vendor_call(element, sim, body, field):
    sim.clear_requests()
    response = element.post(f"{HUB}/groups/company_id", body, format="json")
    assert response.status_code == 400, response.content
    assert field in {e["field"] for e in response.json()["errors"]}, response.json()
    assert not [r for r in sim.requests() if r["path"] == "/groups"]


def test_bad_group_queries_are_400(element, sim, iid):
    assert element.get(f"{HUB}/groups/company_id", {"pageSize": 0}).status_code == 400
    assert element.get(f"{HUB}/groups/company_id", {"where": "plan = "}).status_code == 400
    assert element.get(f"{HUB}/groups/company_id", {"nextPage": "garbage"}).status_code == 400
    missing_key = element.get(f"/mixpanel/query_groups/{iid}")
    assert missing_key.status_code == 400
    assert {"field": "groupKey", "message": "is required"} in missing_key.json()["errors"]
