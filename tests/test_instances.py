"""Instances end to end (contract §3) against the running Mixpanel simulator."""

import pytest
from rest_framework.test import APIClient

from conftest import SA_CONFIGURATION, SIM_API_SECRET, add_user
from instances.models import Instance

pytestmark = [pytest.mark.django_db, pytest.mark.integration]

BASE = "/elements/api-v2"

# Seed 002's request body, verbatim but for the secret the simulator knows.
SEED_002_BODY = {
    "element": {"key": "mixpanel"},
    "configuration": {"username": SIM_API_SECRET},
    "tags": ["Docs"],
    "name": "API Instance",
}

# Seed 002's example response: every key and the type it has there.
SEED_002_TYPES = {
    "id": int,
    "name": str,
    "createdDate": str,
    "token": str,
    "element": dict,
    "elementId": int,
    "tags": list,
    "provisionInteractions": list,
    "valid": bool,
    "disabled": bool,
    "maxCacheSize": int,
    "cacheTimeToLive": int,
    "configuration": dict,
    "eventsEnabled": bool,
    "traceLoggingEnabled": bool,
    "cachingEnabled": bool,
    "externalAuthentication": str,
    "user": dict,
}
SEED_002_ELEMENT_TYPES = {
    "id": int,
    "name": str,
    "key": str,
    "description": str,
    "image": str,
    "active": bool,
    "deleted": bool,
    "typeOauth": bool,
    "trialAccount": bool,
    "resources": list,
    "transformationsEnabled": bool,
    "bulkDownloadEnabled": bool,
    "bulkUploadEnabled": bool,
    "cloneable": bool,
    "extendable": bool,
    "beta": bool,
    "authentication": dict,
    "extended": bool,
    "hub": str,
    "protocolType": str,
    "parameters": list,
    "private": bool,
}


def create(tenant, body=None, **query):
    path = f"{BASE}/instances"
    if query:
        path += "?" + "&".join(f"{k}={v}" for k, v in query.items())
    return tenant.client().post(path, body or SEED_002_BODY, format="json")


def test_seed_002_request_creates_an_instance_shaped_like_the_seed_response(tenant, sim):
    client = APIClient()
    # The headers exactly as the seed's curl sends them (lower-case names).
    response = client.post(
        f"{BASE}/instances",
        SEED_002_BODY,
        format="json",
        HTTP_AUTHORIZATION=f"User {tenant.user_secret}, Organization {tenant.organization_secret}",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    for key, kind in SEED_002_TYPES.items():
        assert isinstance(body[key], kind), key
    for key, kind in SEED_002_ELEMENT_TYPES.items():
        assert isinstance(body["element"][key], kind), key
    assert body["element"]["authentication"] == {"type": "basic"}
    assert body["element"]["key"] == "mixpanel" and body["elementId"] == body["element"]["id"]
    assert body["name"] == "API Instance" and body["tags"] == ["Docs"]
    assert body["createdDate"].endswith("Z")
    assert body["user"]["id"] == tenant.user.pk
    assert body["configuration"]["username"] == "********"
    assert len(body["token"]) >= 43
    assert response["Elements-Request-Id"]
    # The verification call reached Mixpanel with the API secret as Basic username.
    calls = [r for r in sim.requests() if "events/top" in r["path"]]
    assert calls and calls[-1]["headers"]["Authorization"].startswith("Basic ")


def test_service_account_configuration_is_verified_with_the_account_listing(tenant, sim):
    response = create(
        tenant, {"element": {"key": "mixpanel"}, "name": "SA", "configuration": SA_CONFIGURATION}
    )
    assert response.status_code == 200, response.content
    paths = [r["path"] for r in sim.requests()]
    assert "/api/app/organizations/1001/service-accounts" in paths
    config = response.json()["configuration"]
    assert config["password"] == "********" and config["username"] == "********"
    assert config["organization_id"] == 1001 and config["region"] == "US"


def test_create_under_element_path_by_key_and_by_id(tenant, sim):
    body = {k: v for k, v in SEED_002_BODY.items() if k != "element"}
    by_key = tenant.client().post(f"{BASE}/elements/mixpanel/instances", body, format="json")
    by_id = tenant.client().post(f"{BASE}/elements/13973/instances", body, format="json")
    assert by_key.status_code == 200 and by_id.status_code == 200
    assert by_key.json()["element"]["key"] == by_id.json()["element"]["key"] == "mixpanel"


def test_rejected_credentials_leave_no_instance(tenant, sim):
    body = {**SEED_002_BODY, "configuration": {"username": "wrong-secret"}}
    response = create(tenant, body)
    assert response.status_code == 400
    data = response.json()
    assert data["providerMessage"] and data["requestId"] == response["Elements-Request-Id"]
    assert "wrong-secret" not in response.content.decode()
    assert Instance.objects.count() == 0


def test_validate_false_skips_the_vendor_call(tenant, sim):
    sim.clear_requests()
    body = {**SEED_002_BODY, "configuration": {"username": "anything"}}
    response = create(tenant, body, validate="false")
    assert response.status_code == 200
    assert sim.requests() == []


def test_configuration_is_checked_against_the_element_fields(tenant, sim):
    cases = [
        {"username": 42},
        {"password": "x"},  # username missing
        {"username": "a", "unknown": "b"},
        {"username": "a", "region": "MARS"},
        {"username": "a", "project_id": "abc"},
        {"username": "a", "organization_id": True},
    ]
    for configuration in cases:
        response = create(tenant, {**SEED_002_BODY, "configuration": configuration})
        assert response.status_code == 400, configuration
        assert response.json()["errors"], configuration
    assert Instance.objects.count() == 0


def test_get_list_patch_put_delete(tenant, sim):
    created = create(tenant).json()
    client = tenant.client()
    url = f"{BASE}/instances/{created['id']}"

    got = client.get(url).json()
    assert got["token"] == created["token"] and got["configuration"]["username"] == "********"

    patched = client.patch(url, {"tags": ["a", "b"], "name": "Renamed"}, format="json").json()
    assert patched["tags"] == ["a", "b"] and patched["name"] == "Renamed"
    patched = client.patch(url, {"tags": ["c"]}, format="json").json()
    assert patched["tags"] == ["c"]  # replaced whole

    # A PATCH of the configuration is re-verified; the vendor's refusal changes nothing.
    refused = client.patch(url, {"configuration": {"username": "bad"}}, format="json")
    assert refused.status_code == 400
    assert client.get(url).json()["name"] == "Renamed"

    put = client.put(
        url, {"name": "Put", "configuration": SA_CONFIGURATION, "tags": []}, format="json"
    )
    assert put.status_code == 200, put.content
    assert put.json()["configuration"]["organization_id"] == 1001
    assert put.json()["tags"] == []

    listed = client.get(f"{BASE}/instances").json()
    assert [i["id"] for i in listed] == [created["id"]]

    deleted = client.delete(url)
    assert deleted.status_code == 200
    assert client.get(url).status_code == 404
    assert Instance.objects.count() == 0


def test_a_get_response_can_be_put_back_unchanged(tenant, sim):
    created = create(
        tenant, {"element": {"key": "mixpanel"}, "name": "SA", "configuration": SA_CONFIGURATION}
    ).json()
    url = f"{BASE}/instances/{created['id']}"
    client = tenant.client()
    again = client.put(url, client.get(url).json(), format="json")
    assert again.status_code == 200, again.content
    # The masked secrets kept their stored values: element calls still work.
    calls = tenant.element_client(created["token"]).get(f"{BASE}/hubs/general/ping")
    assert calls.status_code == 200, calls.content


def test_list_filters_and_paging(tenant, sim):
    client = tenant.client()
    ids = []
    for i in range(5):
        body = {**SEED_002_BODY, "name": f"inst-{i}", "tags": ["even" if i % 2 == 0 else "odd"]}
        ids.append(create(tenant, body, validate="false").json()["id"])
    assert [i["id"] for i in client.get(f"{BASE}/instances?tags[]=even").json()] == ids[0::2]
    assert [i["name"] for i in client.get(f"{BASE}/instances?searchText=inst-3").json()] == [
        "inst-3"
    ]
    assert len(client.get(f"{BASE}/instances?elementKey=mixpanel").json()) == 5
    assert client.get(f"{BASE}/instances?elementKey=other").json() == []

    seen, token = [], None
    while True:
        url = f"{BASE}/instances?pageSize=2" + (f"&nextPage={token}" if token else "")
        response = client.get(url)
        seen += [i["id"] for i in response.json()]
        token = response.get("Elements-Next-Page-Token")
        if not token:
            break
    assert seen == ids
    assert client.get(f"{BASE}/instances?pageSize=0").status_code == 400
    assert client.get(f"{BASE}/instances?nextPage=garbage!").status_code == 400


def test_names_are_plain_text(tenant, sim):
    body = {**SEED_002_BODY, "name": '<a href="x">churros-xss</a><script>alert(1)</script>'}
    response = create(tenant, body)
    assert response.status_code == 200
    assert response.json()["name"] == "churros-xssalert(1)"


def test_disable_enable_and_element_calls(tenant, sim):
    created = create(tenant).json()
    client = tenant.client()
    element = tenant.element_client(created["token"])
    ping = f"{BASE}/hubs/general/ping"
    assert element.get(ping).status_code == 200

    disabled = client.delete(f"{BASE}/instances/{created['id']}/enabled")
    assert disabled.status_code == 200 and disabled.json()["disabled"] is True
    forbidden = element.get(ping)
    assert forbidden.status_code == 403 and forbidden.json()["message"]
    # The refusal is the instance's: it names it, and it is in the owner's usage log.
    assert forbidden["Elements-Element-Instance-Id"] == str(created["id"])
    logged = client.get(f"{BASE}/usage/{forbidden['Elements-Request-Id']}")
    assert logged.status_code == 200 and logged.json()["status"] == 403

    enabled = client.put(f"{BASE}/instances/{created['id']}/enabled")
    assert enabled.json()["disabled"] is False
    assert element.get(ping).status_code == 200


def test_rotated_token_kills_the_old_one(tenant, sim):
    created = create(tenant).json()
    rotated = tenant.client().put(f"{BASE}/instances/{created['id']}/token")
    assert rotated.status_code == 200
    new_token = rotated.json()["token"]
    assert new_token != created["token"]
    assert tenant.element_client(created["token"]).get(f"{BASE}/ping").status_code == 401
    assert tenant.element_client(new_token).get(f"{BASE}/ping").status_code == 200
    assert tenant.client().get(f"{BASE}/instances/{created['id']}").json()["token"] == new_token


def test_deleted_instance_token_is_401(tenant, sim):
    created = create(tenant).json()
    tenant.client().delete(f"{BASE}/instances/{created['id']}")
    response = tenant.element_client(created["token"]).get(f"{BASE}/hubs/general/ping")
    assert response.status_code == 401 and response.json()["requestId"]


def instance_endpoints(instance_id):
    base = f"{BASE}/instances/{instance_id}"
    return [
        ("get", base, None),
        ("patch", base, {"tags": ["x"]}),
        ("put", base, {"name": "x", "configuration": {"username": "x"}}),
        ("delete", base, None),
        ("put", f"{base}/enabled", None),
        ("delete", f"{base}/enabled", None),
        ("put", f"{base}/token", None),
        ("get", f"{BASE}/elements/mixpanel/instances/{instance_id}", None),
    ]


@pytest.mark.parametrize("who", ["other_user", "other_organization"])
def test_other_tenants_get_404_on_every_instance_endpoint(tenant, other_tenant, sim, who):
    created = create(tenant).json()
    intruder = add_user(tenant) if who == "other_user" else other_tenant
    for method, url, body in instance_endpoints(created["id"]):
        response = getattr(intruder.client(), method)(url, body, format="json")
        assert response.status_code == 404, (method, url, response.content)
        assert response.json()["message"]
    # Same answer as an id that does not exist.
    for method, url, body in instance_endpoints(987654):
        assert getattr(tenant.client(), method)(url, body, format="json").status_code == 404
    assert intruder.client().get(f"{BASE}/instances").json() == []
    # The instance is untouched.
    got = tenant.client().get(f"{BASE}/instances/{created['id']}").json()
    assert got["token"] == created["token"] and got["disabled"] is False


@pytest.mark.parametrize("spelling", ["0{}", "00{}", "+{}", "%20{}", "{}%0A", "{}.0", "{}%20"])
def test_an_instance_has_one_id_in_its_urls(tenant, sim, spelling):
    """int() would read " 3", "+3" or "003" as 3: one instance would answer to many paths."""
    created = create(tenant).json()
    other = spelling.format(created["id"])
    for method, url, body in instance_endpoints(other):
        response = getattr(tenant.client(), method)(url, body, format="json")
        assert response.status_code == 404, (method, url, response.content)
    assert tenant.client().get(f"{BASE}/instances/{created['id']}").status_code == 200


def test_a_token_works_only_with_its_own_users_secret(tenant, other_tenant, sim):
    created = create(tenant).json()
    colleague = add_user(tenant)
    for stranger in (colleague, other_tenant):
        response = stranger.element_client(created["token"]).get(f"{BASE}/ping")
        assert response.status_code == 401
    assert tenant.element_client(created["token"]).get(f"{BASE}/ping").status_code == 200


def test_element_call_organization_must_match_when_given(tenant, other_tenant, sim):
    created = create(tenant).json()
    client = APIClient()
    good = f"User {tenant.user_secret}, Organization {tenant.organization_secret}, Element "
    bad = f"User {tenant.user_secret}, Organization {other_tenant.organization_secret}, Element "
    assert client.get(f"{BASE}/ping", HTTP_AUTHORIZATION=good + created["token"]).status_code == 200
    assert client.get(f"{BASE}/ping", HTTP_AUTHORIZATION=bad + created["token"]).status_code == 401


def test_platform_calls_need_user_and_organization(tenant, sim):
    created = create(tenant).json()
    client = APIClient()
    for header in (
        None,
        f"User {tenant.user_secret}",
        f"User {tenant.user_secret}, Element {created['token']}",
        f"User {tenant.user_secret}, Organization wrong",
        f"User wrong, Organization {tenant.organization_secret}",
    ):
        kwargs = {"HTTP_AUTHORIZATION": header} if header else {}
        response = client.get(f"{BASE}/instances", **kwargs)
        assert response.status_code == 401, header
        assert set(response.json()) == {"requestId", "message"}


def test_token_lookup_builds_the_same_objects_as_the_orm(tenant, sa_instance):
    """instance_by_token is hand-written SQL on the hot path; it must equal the ORM's result."""
    from instances.selectors import instance_by_token

    fast = instance_by_token(sa_instance["token"])
    orm = Instance.objects.select_related("user__organization").get(pk=fast.pk)
    for obj_fast, obj_orm in (
        (fast, orm),
        (fast.user, orm.user),
        (fast.user.organization, orm.user.organization),
    ):
        for field in type(obj_orm)._meta.concrete_fields:
            got, want = getattr(obj_fast, field.attname), getattr(obj_orm, field.attname)
            assert got == want and type(got) is type(want), field.name
        assert not obj_fast._state.adding and obj_fast._state.db == obj_orm._state.db
    assert instance_by_token("not-a-token") is None
    # Built as loaded, not new: saving it updates its row.
    fast.name = "Renamed"
    fast.save(update_fields=["name"])
    assert Instance.objects.get(pk=fast.pk).name == "Renamed"
    assert Instance.objects.count() == 1


def test_token_lookup_runs_model_init_when_something_listens_to_it(tenant, sa_instance):
    """The lookup builds its models without ``Model.__init__``, unless a receiver of
    ``pre_init`` or ``post_init`` would miss it."""
    from django.db.models.signals import post_init

    from instances.selectors import instance_by_token

    seen = []

    def receiver(sender, instance, **kwargs):
        seen.append(instance)

    post_init.connect(receiver, sender=Instance)
    try:
        fast = instance_by_token(sa_instance["token"])
    finally:
        post_init.disconnect(receiver, sender=Instance)
    assert seen == [fast]
    assert fast.name == Instance.objects.get(pk=fast.pk).name
