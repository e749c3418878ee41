"""Each simulator fault switch ends in the contract's status and message (contract §2), and the
client's retry rules hold: idempotent calls retry with backoff and honour Retry-After, others
never retry blindly."""

import time

import pytest

pytestmark = [pytest.mark.django_db, pytest.mark.integration]

HUB = "/elements/api-v2/hubs/general"
SA_PATH = "/api/app/organizations/1001/service-accounts"

FAST_VENDOR = {
    "CREDENTIALS_KEYS": None,  # filled from the live settings below
    "VENDOR_CONNECT_TIMEOUT": 2.0,
    "VENDOR_READ_TIMEOUT": 1.0,
    "VENDOR_MAX_RETRIES": 2,
    "VENDOR_BACKOFF_FACTOR": 0.01,
    "VENDOR_MAX_RETRY_AFTER": 5.0,
}


@pytest.fixture
def fast_vendor(settings):
    settings.PLATFORM = {**settings.PLATFORM, **{k: v for k, v in FAST_VENDOR.items() if v}}
    return settings


@pytest.fixture
def element(tenant, sa_instance, fast_vendor):
    return tenant.element_client(sa_instance["token"])


def hits(sim, path, method="GET"):
    return len([r for r in sim.requests() if r["path"] == path and r["method"] == method])


def error_shape(response):
    body = response.json()
    assert body["requestId"] == response["Elements-Request-Id"]
    assert isinstance(body["message"], str) and body["message"]
    return body


@pytest.mark.parametrize(
    "switch,status,provider_status,message",
    [
        ({"status": 500}, 502, 500, "failed with HTTP 500"),
        ({"status": 503}, 502, 503, "failed with HTTP 503"),
        # A 200 of garbage is an answer: not retried.
        ({"malformed": True}, 502, 200, "not JSON"),
        ({"truncate": True}, 502, None, "before its answer was complete"),
        ({"drop": True}, 502, None, "without an answer"),
        ({"hang": {"seconds": 5}}, 504, None, "did not answer in time"),
    ],
)
def test_fault_maps_to_contract_status(element, sim, switch, status, provider_status, message):
    sim.clear_requests()
    sim.faults(path_prefix=SA_PATH, **switch)
    started = time.monotonic()
    response = element.get(f"{HUB}/service-accounts")
    assert response.status_code == status, response.content
    body = error_shape(response)
    if provider_status is not None:
        assert body["providerStatus"] == provider_status
    assert message in body["message"]
    assert "Traceback" not in response.content.decode()
    # Idempotent: tried 1 + VENDOR_MAX_RETRIES times, then gave up in bounded time.
    assert hits(sim, SA_PATH) == (1 if "malformed" in switch else 3)
    assert time.monotonic() - started < 10


def test_vendor_4xx_keeps_its_status_with_provider_message(element, sim):
    sim.clear_requests()
    sim.faults(
        path_prefix=SA_PATH,
        status={"status": 403, "body": {"status": "error", "error": "no access"}},
    )
    response = element.get(f"{HUB}/service-accounts")
    assert response.status_code == 403
    body = error_shape(response)
    assert body["providerMessage"] == "no access" and body["providerStatus"] == 403
    assert hits(sim, SA_PATH) == 1  # a 4xx is not retried


def test_429_with_retry_after_is_retried_after_waiting(element, sim):
    sim.clear_requests()
    sim.faults(path_prefix=SA_PATH, count=1, rate_limit={"retry_after": 1})
    started = time.monotonic()
    response = element.get(f"{HUB}/service-accounts")
    assert response.status_code == 200
    assert time.monotonic() - started >= 1.0
    assert hits(sim, SA_PATH) == 2


def test_429_without_retry_after_backs_off_then_reports_429(element, sim):
    sim.clear_requests()
    sim.faults(path_prefix=SA_PATH, rate_limit={"retry_after": None})
    response = element.get(f"{HUB}/service-accounts")
    assert response.status_code == 429
    body = error_shape(response)
    assert int(response["Retry-After"]) >= 1 and body["providerStatus"] == 429
    assert hits(sim, SA_PATH) == 3


def test_429_asking_for_longer_than_the_cap_is_returned_at_once(element, sim):
    sim.clear_requests()
    sim.faults(path_prefix=SA_PATH, rate_limit={"retry_after": 120})
    started = time.monotonic()
    response = element.get(f"{HUB}/service-accounts")
    assert response.status_code == 429 and response["Retry-After"] == "120"
    assert time.monotonic() - started < 3
    assert hits(sim, SA_PATH) == 1


def test_non_idempotent_create_is_never_retried(element, sim):
    sim.clear_requests()
    sim.faults(path_prefix=SA_PATH, method="POST", status=503)
    response = element.post(f"{HUB}/service-accounts", {"username": "once"}, format="json")
    assert response.status_code == 502
    assert hits(sim, SA_PATH, "POST") == 1
    sim.clear_faults()
    sim.faults(path_prefix=SA_PATH, method="POST", hang={"seconds": 3})
    response = element.post(f"{HUB}/service-accounts", {"username": "once"}, format="json")
    assert response.status_code == 504
    assert hits(sim, SA_PATH, "POST") == 2  # one more, not three


def test_latency_below_the_timeout_is_fine(element, sim):
    sim.faults(path_prefix=SA_PATH, latency_ms=300)
    assert element.get(f"{HUB}/service-accounts").status_code == 200


def test_import_failure_midway_reports_what_was_and_was_not_imported(element, sim, sa_instance):
    from tests.test_element_calls import events

    sim.clear_requests()
    # The second of three requests fails for good; the others get in.
    sim.faults(
        path_prefix="/import",
        status={
            "status": 401,
            "body": {"code": 401, "error": "Invalid credentials", "status": "Unauthorized"},
        },
        count=1,
    )
    response = element.post(
        f"/mixpanel/import_events/{sa_instance['id']}", {"events": events(4500)}, format="json"
    )
    assert response.status_code == 200, response.content
    body = response.json()
    failed = [r["index"] for r in body["failed_records"]]
    # Exactly one whole batch failed; everything else was imported.
    assert len(failed) in (2000, 500)
    assert body["num_records_imported"] == 4500 - len(failed)
    assert body["status"] == "PARTIAL"
    assert sim.imported()["count"] == body["num_records_imported"]
    assert "Invalid credentials" in body["failed_records"][0]["message"]


def test_import_rejected_everywhere_is_the_vendors_error(element, sim, sa_instance):
    from tests.test_element_calls import events

    sim.faults(
        path_prefix="/import",
        status={
            "status": 401,
            "body": {"code": 401, "error": "Invalid credentials", "status": "Unauthorized"},
        },
    )
    response = element.post(
        f"/mixpanel/import_events/{sa_instance['id']}", {"events": events(10)}, format="json"
    )
    assert response.status_code == 401
    assert error_shape(response)["providerMessage"] == "Invalid credentials"


def test_import_413_from_the_vendor_is_split_and_retried(element, sim, sa_instance):
    from tests.test_element_calls import events

    sim.configure(import_max_bytes=60_000)
    response = element.post(
        f"/mixpanel/import_events/{sa_instance['id']}", {"events": events(2000)}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["num_records_imported"] == 2000
    assert sim.imported()["count"] == 2000
