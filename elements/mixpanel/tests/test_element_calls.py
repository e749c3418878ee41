"""Every Mixpanel operation through the platform, in both URL styles, against the simulator,
with what Mixpanel received asserted (contract §5)."""

import base64
import logging
import time

import pytest

from conftest import (
    SIM_PROJECT_ID,
    SIM_PROJECT_TOKEN,
    SIM_SA_SECRET,
    SIM_SA_USERNAME,
    api_instance,
)

pytestmark = [pytest.mark.django_db, pytest.mark.integration]

HUB = "/elements/api-v2/hubs/general"
BARE = "/elements/api-v2"
SA_BASIC = "Basic " + base64.b64encode(f"{SIM_SA_USERNAME}:{SIM_SA_SECRET}".encode()).decode()


def last(sim, path_part, method=None):
    matching = [
        r
        for r in sim.requests()
        if path_part in r["path"] and (method is None or r["method"] == method)
    ]
    assert matching, f"Mixpanel never received {method or ''} {path_part}"
    return matching[-1]


def only_platform_headers(request):
    """Outbound calls carry none of the caller's headers or secrets."""
    headers = {k.lower(): v for k, v in request["headers"].items()}
    assert "elements-request-id" not in headers
    assert not headers.get("authorization", "").startswith(("User", "Element", "Organization"))


@pytest.mark.parametrize("base", [HUB, BARE, "/elements/api-v2/hubs/crm"])
def test_list_service_accounts_resource_style(element, sim, base):
    response = element.get(f"{base}/service-accounts")
    assert response.status_code == 200, response.content
    accounts = response.json()
    assert any(a["username"] == SIM_SA_USERNAME for a in accounts)
    assert response["Elements-Element-Instance-Id"]
    received = last(sim, "/api/app/organizations/1001/service-accounts", "GET")
    assert received["headers"]["Authorization"] == SA_BASIC
    only_platform_headers(received)


def test_trailing_slash_is_tolerated(element, sim):
    response = element.get(f"{HUB}/service-accounts/")
    assert response.status_code == 200


def test_get_service_accounts_operation_style(element, sim, iid):
    response = element.get(f"/mixpanel/get_service_accounts/{iid}")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["total"] == len(body["service_accounts"]) >= 1
    other_org = element.get(f"/mixpanel/get_service_accounts/{iid}?organization_id=1001")
    assert other_org.status_code == 200


def test_operation_style_needs_the_tokens_own_instance(element, sim, iid):
    assert element.get(f"/mixpanel/get_service_accounts/{iid + 1000}").status_code == 404
    assert element.post(f"/mixpanel/get_service_accounts/{iid}").status_code == 405


def test_create_service_account_both_styles_and_the_secret_is_never_stored(
    element, sim, iid, tenant, caplog
):
    from usage.models import UsageRecord

    caplog.set_level(logging.DEBUG)
    resource = element.post(
        f"{HUB}/service-accounts", {"username": "etl-bot", "role": "admin"}, format="json"
    )
    assert resource.status_code == 200, resource.content
    created = resource.json()
    assert created["username"].startswith("etl-bot.") and created["secret"]
    received = last(sim, "/service-accounts", "POST")
    assert received["body"] == {"username": "etl-bot", "role": "admin"}

    op = element.post(
        f"/mixpanel/create/{iid}",
        {
            "username": "bot2",
            "role": "analyst",
            "projects": [{"id": SIM_PROJECT_ID, "role": "analyst"}],
        },
        format="json",
    )
    assert op.status_code == 200, op.content
    body = op.json()
    assert set(body) == {"service_account_created", "id", "username", "secret"}
    assert body["service_account_created"] is True

    # The one-time secrets are in no database row.
    from tests.test_storage import dump_every_table

    dump = dump_every_table()
    assert created["secret"] not in dump and body["secret"] not in dump
    # ... and in no log line, at any level.
    assert created["secret"] not in caplog.text and body["secret"] not in caplog.text
    assert caplog.records  # the capture was live
    assert UsageRecord.objects.filter(operation="create").exists()


def test_get_and_delete_one_service_account(element, sim):
    created = element.post(f"{HUB}/service-accounts", {"username": "temp"}, format="json").json()
    got = element.get(f"{HUB}/service-accounts/{created['id']}")
    assert got.status_code == 200 and got.json()["id"] == created["id"]
    assert element.delete(f"{HUB}/service-accounts/{created['id']}").status_code == 200
    assert last(sim, f"/service-accounts/{created['id']}", "DELETE")
    missing = element.get(f"{HUB}/service-accounts/{created['id']}")
    assert missing.status_code == 404 and missing.json()["providerMessage"]


def test_create_service_account_validates_input(element, sim):
    for body in ({}, {"username": ""}, {"username": "x", "role": "king"}, {"username": 5}):
        response = element.post(f"{HUB}/service-accounts", body, format="json")
        assert response.status_code == 400, body
        assert response.json()["errors"]
    assert not [r for r in sim.requests() if r["method"] == "POST"]


def seed_profiles(sim, count=30):
    sim.configure(profiles={"count": count})


def test_users_query_ceql_and_paging(element, sim):
    seed_profiles(sim, 25)
    everyone = element.get(f"{HUB}/users?pageSize=10")
    assert everyone.status_code == 200, everyone.content
    assert len(everyone.json()) == 10
    seen = [p["$distinct_id"] for p in everyone.json()]
    token = everyone["Elements-Next-Page-Token"]
    while token:
        page = element.get(f"{HUB}/users?pageSize=10&nextPage={token}")
        assert page.status_code == 200, page.content
        seen += [p["$distinct_id"] for p in page.json()]
        token = page.get("Elements-Next-Page-Token")
    assert len(seen) == len(set(seen)) == 25
    received = last(sim, "/engage", "POST")
    assert received["query"]["project_id"] == str(SIM_PROJECT_ID)
    assert received["body"]["page"] == "2" and received["body"]["session_id"]

    dallas = element.get(f"{HUB}/users", {"where": "\"$city\"='Dallas'"})
    assert dallas.status_code == 200
    assert dallas.json() and all(p["$properties"]["$city"] == "Dallas" for p in dallas.json())
    assert last(sim, "/engage")["body"]["where"] == 'properties["$city"] == "Dallas"'

    raw = element.get(f"{HUB}/users", {"where": 'query=\'(properties["$city"] == "Dallas")\''})
    assert sorted(p["$distinct_id"] for p in raw.json()) == sorted(
        p["$distinct_id"] for p in dallas.json()
    )


def test_users_where_parse_error_names_the_position(element, sim):
    response = element.get(f"{HUB}/users", {"where": "\"$city\" = 'Dallas' AND"})
    assert response.status_code == 400
    assert "position" in response.json()["errors"][0]["message"]
    assert not [r for r in sim.requests() if "engage" in r["path"]]


def test_query_profiles_operation_style(element, sim, iid):
    seed_profiles(sim, 1500)
    first = element.post(f"/mixpanel/query_profiles/{iid}", {}, format="json")
    assert first.status_code == 200, first.content
    body = first.json()
    assert body["page"] == 0 and body["total"] == 1500 and body["has_more"] is True
    assert len(body["results"]) == 1000 and body["session_id"]
    second = element.post(
        f"/mixpanel/query_profiles/{iid}",
        {"page": 1, "session_id": body["session_id"], "output_properties": ["$email"]},
        format="json",
    ).json()
    assert second["page"] == 1 and len(second["results"]) == 500 and second["has_more"] is False
    assert set(second["results"][0]["$properties"]) <= {"$email"}
    filtered = element.post(
        f"/mixpanel/query_profiles/{iid}",
        {"where": 'properties["$city"] == "Paris"'},
        format="json",
    ).json()
    assert all(p["$properties"]["$city"] == "Paris" for p in filtered["results"])


def test_profile_create_get_patch_delete(element, sim):
    created = element.post(
        f"{HUB}/users",
        {"$distinct_id": "12157", "$set": {"$email": "a@b.test", "$city": "Dallas"}},
        format="json",
    )
    assert created.status_code == 200, created.content
    assert created.json()["$distinct_id"] == "12157"
    update = last(sim, "/engage", "POST")
    assert update["path"] == "/engage"
    assert update["body"][0]["$token"] == SIM_PROJECT_TOKEN
    assert update["body"][0]["$set"] == {"$email": "a@b.test", "$city": "Dallas"}

    got = element.get(f"{HUB}/users/12157")
    assert got.status_code == 200 and got.json()["$properties"]["$city"] == "Dallas"

    patched = element.patch(f"{HUB}/users/12157", {"$set": {"$city": "Austin"}}, format="json")
    assert patched.status_code == 200
    assert element.get(f"{HUB}/users/12157").json()["$properties"]["$city"] == "Austin"

    assert element.delete(f"{HUB}/users/12157").status_code == 200
    assert element.delete(f"{HUB}/users/other", data="null", content_type="application/json")
    assert element.get(f"{HUB}/users/12157").status_code == 404


def test_track_activity_both_styles(element, sim, iid):
    response = element.post(
        f"{HUB}/activities",
        {"event": "Signed Up", "properties": {"distinct_id": "12157", "Referred By": "Friend"}},
        format="json",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == 1 and body["properties"]["$insert_id"]
    assert "token" not in body["properties"]
    sent = last(sim, "/track", "POST")
    assert sent["body"][0]["properties"]["token"] == SIM_PROJECT_TOKEN
    assert sent["body"][0]["properties"]["Referred By"] == "Friend"

    op = element.post(
        f"/mixpanel/track_event/{iid}?strict=1&project_id={SIM_PROJECT_ID}",
        {
            "event": "Purchase",
            "properties": {"time": int(time.time()), "distinct_id": "u1", "$insert_id": "abc-123"},
        },
        format="json",
    )
    assert op.status_code == 200, op.content
    assert op.json() == {"status": 1, "error": None}
    assert last(sim, "/track", "POST")["query"]["project_id"] == str(SIM_PROJECT_ID)


def test_element_calls_need_no_csrf_token_even_where_csrf_is_enforced(tenant, sa_instance, sim):
    # Element calls are authenticated by their header, never by a cookie: Django's CSRF check
    # (which the admin needs) must not apply to them. The test client skips it unless told.
    from rest_framework.test import APIClient

    client = APIClient(enforce_csrf_checks=True)
    client.credentials(HTTP_AUTHORIZATION=tenant.element_auth(sa_instance["token"]))
    response = client.post(
        f"{HUB}/activities", {"event": "Signed Up", "properties": {"distinct_id": "1"}}, "json"
    )
    assert response.status_code == 200, response.content


def test_track_event_requires_the_seed_fields(element, sim, iid):
    response = element.post(
        f"/mixpanel/track_event/{iid}", {"event": "x", "properties": {}}, format="json"
    )
    assert response.status_code == 400
    fields = {e["field"] for e in response.json()["errors"]}
    assert {"properties.time", "properties.distinct_id", "properties.$insert_id"} <= fields


def events(n, start=0, bad=()):
    out = []
    for i in range(start, start + n):
        props = {"time": 1700000000 + i, "distinct_id": f"u{i}", "$insert_id": f"id-{i}"}
        if i in bad:
            del props["time"]
        out.append({"event": "Imported", "properties": props})
    return out


def test_import_5001_events_is_three_requests_with_reindexed_failures(element, sim, iid):
    bad = {7, 2500, 4999}
    sim.clear_requests()
    response = element.post(
        f"/mixpanel/import_events/{iid}",
        {"strict": "1", "events": events(5001, bad=bad), "properties": {"source": "test"}},
        format="json",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["num_records_imported"] == 5001 - len(bad)
    assert body["status"] == "PARTIAL"
    assert sorted(r["index"] for r in body["failed_records"]) == sorted(bad)
    imports = [r for r in sim.requests() if r["path"] == "/import"]
    assert len(imports) == 3
    assert sorted(r["body_size"] > 0 for r in imports) == [True, True, True]
    for r in imports:
        assert r["query"]["strict"] == "1" and r["query"]["project_id"] == str(SIM_PROJECT_ID)
        assert r["headers"]["Authorization"] == SA_BASIC
    assert sim.imported()["count"] == 5001 - len(bad)
    assert all(e["properties"]["source"] == "test" for e in sim.imported()["events"][:50])


def test_import_resource_style_takes_a_bare_array(element, sim):
    response = element.post(f"{HUB}/activities/import", events(10), format="json")
    assert response.status_code == 200, response.content
    assert response.json() == {"status": "OK", "num_records_imported": 10, "failed_records": []}


def test_event_properties_win_over_common_properties(element, sim, iid):
    batch = events(1)
    batch[0]["properties"]["plan"] = "own"
    element.post(
        f"/mixpanel/import_events/{iid}",
        {"events": batch, "properties": {"plan": "common", "extra": 1}},
        format="json",
    )
    sent = sim.imported()["events"][-1]["properties"]
    assert sent["plan"] == "own" and sent["extra"] == 1


def test_top_activities(element, sim):
    response = element.get(f"{HUB}/activities/top", {"where": "type='general'"})
    assert response.status_code == 200, response.content
    assert response.json() and {"event", "amount"} <= set(response.json()[0])
    assert last(sim, "/events/top")["query"]["type"] == "general"
    assert element.get(f"{HUB}/activities/top", {"where": "type='weird'"}).status_code == 400


def test_ping_objects_and_metadata(element, sim):
    ping = element.get(f"{HUB}/ping").json()
    assert set(ping) == {"dateTime", "endpoint", "valid"} and ping["valid"] is True
    assert set(element.get(f"{HUB}/objects").json()) >= {
        "activities",
        "users",
        "service-accounts",
        "groups",
        "privacy-requests",
    }
    meta = element.get(f"{HUB}/objects/users/metadata").json()
    assert meta["name"] == "users" and meta["fields"]
    assert element.get(f"{HUB}/objects/nope/metadata").status_code == 404


def test_api_secret_instance_cannot_manage_service_accounts(tenant, sim):
    created = api_instance(tenant, {"username": "sim-api-secret"}, name="secret")
    response = tenant.element_client(created["token"]).get(f"{HUB}/service-accounts")
    assert response.status_code == 400 and "service-account" in response.json()["message"]


def test_region_selects_the_host_but_base_url_overrides_it(tenant, sim):
    import os

    from elements.framework.dispatch import vendor_client
    from elements.mixpanel import ELEMENT

    saved = os.environ.pop("MIXPANEL_BASE_URL")
    try:
        assert (
            vendor_client(ELEMENT, {"region": "EU"}).hosts["api"] == "https://api-eu.mixpanel.com"
        )
        assert (
            vendor_client(ELEMENT, {"region": "IN"}).hosts["data"] == "https://data-in.mixpanel.com"
        )
        assert vendor_client(ELEMENT, {}).hosts["app"] == "https://mixpanel.com"
    finally:
        os.environ["MIXPANEL_BASE_URL"] = saved
    assert set(vendor_client(ELEMENT, {"region": "EU"}).hosts.values()) == {sim.base_url}


def test_usage_log_records_each_call_scoped_to_the_caller(element, sim, tenant, other_tenant, iid):
    response = element.get(f"{HUB}/service-accounts")
    request_id = response["Elements-Request-Id"]
    element.delete(f"{HUB}/activities/top")  # an element call the instance refuses: logged
    element.get(f"{HUB}/nope")  # names no resource: not an element call, not logged
    listed = tenant.client().get("/elements/api-v2/usage").json()
    assert [r["status"] for r in listed] == [200, 405]
    record = tenant.client().get(f"/elements/api-v2/usage/{request_id}").json()
    assert record["operation"] == "getServiceAccounts" and record["vendorStatus"] == 200
    assert record["instanceId"] == iid and record["durationMs"] > 0
    assert "requestBody" not in record
    assert other_tenant.client().get(f"/elements/api-v2/usage/{request_id}").status_code == 404
    assert other_tenant.client().get("/elements/api-v2/usage").json() == []
    filtered = tenant.client().get("/elements/api-v2/usage?status=405").json()
    assert [r["status"] for r in filtered] == [405]
    assert tenant.client().get(f"/elements/api-v2/usage?instanceId={iid + 1}").json() == []


def test_trace_logging_keeps_bodies_with_secrets_redacted(tenant, traced_instance):
    created = traced_instance
    element = tenant.element_client(created["token"])
    made = element.post(f"{HUB}/service-accounts", {"username": "traced-bot"}, format="json")
    secret = made.json()["secret"]
    record = tenant.client().get(f"/elements/api-v2/usage/{made['Elements-Request-Id']}").json()
    assert record["requestBody"] == {"username": "traced-bot"}
    assert record["responseBody"]["secret"] == "********"
    from tests.test_storage import dump_every_table

    assert secret not in dump_every_table()
