"""Privacy requests through the platform, in both URL styles, against the simulator's GDPR v3
API (contract §5d): the instance's gdpr_token as the bearer, the project token as ?token=,
every call in the usage log and the token in no record, log line or response."""

import logging

import pytest

from conftest import SA_CONFIGURATION, SIM_PROJECT_TOKEN, SIM_SA_USERNAME
from simulators.mixpanel.state import DEFAULT_GDPR_TOKEN

pytestmark = [pytest.mark.django_db, pytest.mark.integration]

HUB = "/elements/api-v2/hubs/general"
DELETIONS = "/api/app/data-deletions/v3.0/"
RETRIEVALS = "/api/app/data-retrievals/v3.0/"


def make_instance(tenant, configuration, *, traced=False):
    response = tenant.client().post(
        "/elements/api-v2/instances",
        {
            "element": {"key": "mixpanel"},
            "name": "privacy",
            "configuration": configuration,
            "traceLoggingEnabled": traced,
        },
        format="json",
    )
    assert response.status_code == 200, response.content
    return response.json()


@pytest.fixture
def instance(tenant, sim):
    return make_instance(
        tenant, {**SA_CONFIGURATION, "gdpr_token": DEFAULT_GDPR_TOKEN}, traced=True
    )


@pytest.fixture
def element(tenant, instance):
    return tenant.element_client(instance["token"])


@pytest.fixture
def iid(instance):
    return instance["id"]


def received(sim, path, method):
    found = [r for r in sim.requests() if r["path"] == path and r["method"] == method]
    assert found, f"Mixpanel never received {method} {path}"
    return found[-1]


def gdpr_authenticated(request):
    assert request["headers"]["Authorization"] == f"Bearer {DEFAULT_GDPR_TOKEN}"
    assert request["query"]["token"] == SIM_PROJECT_TOKEN


def test_create_a_deletion_both_styles(element, sim, iid):
    sim.clear_requests()
    response = element.post(
        f"{HUB}/privacy/deletions",
        {"distinct_ids": ["u1", "u2"], "compliance_type": "GDPR"},
        format="json",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["task_id"].isdigit()
    assert body["distinct_ids"] == ["u1", "u2"] and body["compliance_type"] == "GDPR"
    request = received(sim, DELETIONS, "POST")
    gdpr_authenticated(request)
    assert request["body"] == {"distinct_ids": ["u1", "u2"], "compliance_type": "GDPR"}

    op = element.post(
        f"/mixpanel/create_privacy_deletion/{iid}", {"distinct_ids": [7]}, format="json"
    )
    assert op.status_code == 200, op.content
    assert received(sim, DELETIONS, "POST")["body"] == {
        "distinct_ids": ["7"],
        "compliance_type": "GDPR",
    }


def test_create_a_retrieval_both_styles(element, sim, iid):
    sim.clear_requests()
    response = element.post(
        f"{HUB}/privacy/retrievals",
        {"distinct_ids": ["u1"], "compliance_type": "CCPA", "disclosure_type": "Categories"},
        format="json",
    )
    assert response.status_code == 200, response.content
    request = received(sim, RETRIEVALS, "POST")
    gdpr_authenticated(request)
    assert request["body"]["disclosure_type"] == "Categories"
    op = element.post(
        f"/mixpanel/create_privacy_retrieval/{iid}", {"distinct_ids": ["u2"]}, format="json"
    )
    assert op.status_code == 200, op.content
    task = op.json()["task_id"]
    status = element.get(f"{HUB}/privacy/retrievals/{task}")
    assert status.status_code == 200, status.content
    assert status.json()["status"] == "PENDING" and status.json()["kind"] == "retrievals"
    assert status.json()["distinct_ids"] == ["u2"]


def test_read_and_cancel_a_deletion(element, sim, iid):
    task = element.post(f"{HUB}/privacy/deletions", {"distinct_ids": ["u1"]}, format="json").json()[
        "task_id"
    ]
    sim.clear_requests()
    status = element.get(f"{HUB}/privacy/deletions/{task}")
    assert status.status_code == 200, status.content
    assert status.json()["status"] == "PENDING" and status.json()["task_id"] == task
    gdpr_authenticated(received(sim, DELETIONS + task, "GET"))
    op = element.get(f"/mixpanel/get_privacy_request/{iid}?kind=deletions&taskId={task}")
    assert op.status_code == 200 and op.json()["status"] == "PENDING"

    cancelled = element.delete(f"{HUB}/privacy/deletions/{task}")
    assert cancelled.status_code == 200, cancelled.content
    assert cancelled.json() == {"id": task, "task_id": task, "cancelled": True}
    gdpr_authenticated(received(sim, DELETIONS + task, "DELETE"))
    assert element.get(f"{HUB}/privacy/deletions/{task}").json()["status"] == "REVOKED"

    # Cancelled once, it cannot be cancelled again: Mixpanel's 405 is a 409 here.
    again = element.delete(f"/mixpanel/cancel_privacy_deletion/{iid}?kind=deletions&taskId={task}")
    assert again.status_code == 409, again.content
    assert again.json()["providerStatus"] == 405


def test_a_started_deletion_cannot_be_cancelled(element, sim):
    sim.configure(privacy_task_status="STARTED")
    task = element.post(f"{HUB}/privacy/deletions", {"distinct_ids": ["u1"]}, format="json").json()[
        "task_id"
    ]
    response = element.delete(f"{HUB}/privacy/deletions/{task}")
    assert response.status_code == 409 and "no longer" in response.json()["message"]


def test_unknown_task_is_404(element, sim):
    response = element.get(f"{HUB}/privacy/deletions/123456")
    assert response.status_code == 404 and response.json()["providerStatus"] == 404


@pytest.mark.parametrize(
    "path,body,field",
    [
        ("deletions", {}, "distinct_ids"),
        ("deletions", {"distinct_ids": []}, "distinct_ids"),
        ("deletions", {"distinct_ids": [""]}, "distinct_ids.0"),
        ("deletions", {"distinct_ids": ["u"] * 2000}, "distinct_ids"),
        ("retrievals", {"distinct_ids": ["u"] * 2001}, "distinct_ids"),
        ("deletions", {"distinct_ids": ["u"], "compliance_type": "HIPAA"}, "compliance_type"),
        ("deletions", {"distinct_ids": ["u"], "disclosure_type": "Data"}, "disclosure_type"),
        ("retrievals", {"distinct_ids": ["u"], "disclosure_type": "Data"}, "disclosure_type"),
        (
            "retrievals",
            {"distinct_ids": ["u"], "compliance_type": "CCPA", "disclosure_type": "All"},
            "disclosure_type",
        ),
    ],
)
def test_bad_privacy_requests_are_400_before_any_vendor_call(element, sim, path, body, field):
    sim.clear_requests()
    response = element.post(f"{HUB}/privacy/{path}", body, format="json")
    assert response.status_code == 400, response.content
    assert field in {e["field"] for e in response.json()["errors"]}, response.json()
    assert not [r for r in sim.requests() if "data-" in r["path"]]


def test_bad_task_paths(element, sim):
    assert element.get(f"{HUB}/privacy/erasures/1").status_code == 400
    retrieval = element.delete(f"{HUB}/privacy/retrievals/1")  # only deletions can be cancelled
    assert retrieval.status_code == 400
    assert retrieval.json()["errors"][0]["field"] == "kind"
    assert element.get(f"{HUB}/privacy/deletions/a%20b").status_code == 400
    assert element.patch(f"{HUB}/privacy/deletions/1").status_code == 405


def test_without_a_gdpr_token_it_is_400_naming_it(tenant, sim):
    instance = make_instance(tenant, SA_CONFIGURATION)
    element = tenant.element_client(instance["token"])
    sim.clear_requests()
    response = element.post(f"{HUB}/privacy/deletions", {"distinct_ids": ["u1"]}, format="json")
    assert response.status_code == 400, response.content
    body = response.json()
    assert [e["field"] for e in body["errors"]] == ["configuration.gdpr_token"]
    assert (
        f"PATCH /elements/api-v2/instances/{instance['id']} "
        '{"configuration": {"gdpr_token": "<GDPR OAuth token>"}}'
    ) in body["message"]
    assert not sim.requests()


def test_a_token_mixpanel_refuses_is_401_with_its_message(tenant, sim):
    instance = make_instance(tenant, {**SA_CONFIGURATION, "gdpr_token": "expired-token"})
    element = tenant.element_client(instance["token"])
    response = element.post(f"{HUB}/privacy/deletions", {"distinct_ids": ["u1"]}, format="json")
    assert response.status_code == 401, response.content
    assert response.json()["providerStatus"] == 401
    assert "expired-token" not in response.content.decode()
    # The service account's Basic credentials never went with it.
    request = received(sim, DELETIONS, "POST")
    assert request["headers"]["Authorization"] == "Bearer expired-token"
    assert SIM_SA_USERNAME not in str(request["headers"])


def test_privacy_calls_are_in_the_usage_log_without_the_token(element, sim, iid, tenant, caplog):
    from tests.test_storage import dump_every_table
    from usage.models import UsageRecord

    caplog.set_level(logging.DEBUG)
    task = element.post(f"{HUB}/privacy/deletions", {"distinct_ids": ["u1"]}, format="json").json()[
        "task_id"
    ]
    element.get(f"{HUB}/privacy/deletions/{task}")
    element.delete(f"{HUB}/privacy/deletions/{task}")
    element.post(
        f"/mixpanel/create_privacy_retrieval/{iid}", {"distinct_ids": ["u2"]}, format="json"
    )
    records = list(UsageRecord.objects.filter(instance_id=iid).order_by("id"))
    assert [(r.operation, r.method, r.status) for r in records] == [
        ("create_privacy_deletion", "POST", 200),
        ("get_privacy_request", "GET", 200),
        ("cancel_privacy_deletion", "DELETE", 200),
        ("create_privacy_retrieval", "POST", 200),
    ]
    assert records[0].vendor_status == 201 and records[2].vendor_status == 204
    # Traced: the bodies are kept, the secrets are not.
    assert records[0].request_body == {"distinct_ids": ["u1"]}
    assert records[0].response_body["task_id"] == task
    usage = tenant.client().get("/elements/api-v2/usage")
    assert usage.status_code == 200
    logs = usage.content.decode()
    assert "create_privacy_deletion" in logs and "cancel_privacy_deletion" in logs
    for text in (dump_every_table(), caplog.text, logs):
        assert DEFAULT_GDPR_TOKEN not in text
        assert SIM_PROJECT_TOKEN not in text
    assert caplog.records


def test_mixpanels_rate_limit_is_a_429_with_retry_after(element, sim, settings):
    # Retries wait no longer than the call allows: with a short cap the 429 comes back at once.
    settings.PLATFORM = {**settings.PLATFORM, "VENDOR_MAX_RETRY_AFTER": 0.5}
    sim.configure(rate_limits={"enabled": True, "gdpr_per_second": 1})
    first = element.post(f"{HUB}/privacy/deletions", {"distinct_ids": ["u1"]}, format="json")
    assert first.status_code == 200, first.content
    second = element.post(f"{HUB}/privacy/deletions", {"distinct_ids": ["u2"]}, format="json")
    assert second.status_code == 429, second.content
    assert second["Retry-After"] == "1" and second.json()["providerStatus"] == 429
