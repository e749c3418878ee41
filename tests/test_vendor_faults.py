"""Each simulator fault switch ends in the contract's status and message (contract §2), and the
client's retry rules hold: idempotent calls retry with backoff and honour Retry-After, others
never retry blindly; every element call ends within VENDOR_CALL_DEADLINE; a vendor host that
stops answering opens its circuit breaker. (Isolation under gunicorn, with threads stuck on a
hanging vendor: tests/test_vendor_isolation.py.)"""

import re
import time

import pytest

from conftest import SA_CONFIGURATION

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
        # 3 tries of VENDOR_READ_TIMEOUT each; the message says how long the call waited.
        ({"hang": {"seconds": 5}}, 504, None, "did not answer within"),
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
    from elements.mixpanel.tests.test_element_calls import events

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
    from elements.mixpanel.tests.test_element_calls import events

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
    from elements.mixpanel.tests.test_element_calls import events

    sim.configure(import_max_bytes=60_000)
    response = element.post(
        f"/mixpanel/import_events/{sa_instance['id']}", {"events": events(2000)}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["num_records_imported"] == 2000
    assert sim.imported()["count"] == 2000


# --- the deadline --------------------------------------------------------------------------


def vendor_share(deadline: float) -> float:
    """The part of VENDOR_CALL_DEADLINE the vendor gets; the platform keeps the rest to answer."""
    from elements.framework.vendor import answer_margin

    return deadline - answer_margin(deadline)


def waited_seconds(body) -> float:
    """The wait the 504's message states ("The vendor did not answer within 2.5 s.")."""
    match = re.fullmatch(r"The vendor did not answer within (\d+\.\d) s\.", body["message"])
    assert match, body["message"]
    return float(match.group(1))


def with_vendor_settings(settings, **values):
    settings.PLATFORM = {**settings.PLATFORM, **values}


def test_a_hanging_vendor_ends_an_idempotent_call_at_the_deadline(element, sim, settings):
    # The read timeout alone would wait 30 s; the deadline cuts the one attempt at 2 s (less
    # the platform's share for its answer), and leaves no room for a retry.
    with_vendor_settings(settings, VENDOR_CALL_DEADLINE=2.0, VENDOR_READ_TIMEOUT=30.0)
    sim.clear_requests()
    sim.faults(path_prefix=SA_PATH, hang={"seconds": 30})
    started = time.monotonic()
    response = element.get(f"{HUB}/service-accounts")
    elapsed = time.monotonic() - started
    assert response.status_code == 504
    assert vendor_share(2.0) - 0.05 <= waited_seconds(error_shape(response)) < 3.5
    assert vendor_share(2.0) <= elapsed < 4.0
    assert hits(sim, SA_PATH) == 1


def test_retries_of_an_idempotent_call_stay_inside_the_deadline(element, sim, settings):
    # Each attempt may wait 0.8 s, and there may be 5 retries: the deadline of 2 s allows two
    # whole attempts and a third cut to what is left.
    with_vendor_settings(
        settings, VENDOR_CALL_DEADLINE=2.0, VENDOR_READ_TIMEOUT=0.8, VENDOR_MAX_RETRIES=5
    )
    sim.clear_requests()
    sim.faults(path_prefix=SA_PATH, hang={"seconds": 30})
    started = time.monotonic()
    response = element.get(f"{HUB}/service-accounts")
    assert response.status_code == 504
    assert vendor_share(2.0) - 0.05 <= waited_seconds(error_shape(response)) < 3.5
    assert time.monotonic() - started < 4.0
    assert hits(sim, SA_PATH) == 3


def test_a_read_timeout_of_a_non_idempotent_call_is_never_retried(element, sim, settings):
    with_vendor_settings(
        settings, VENDOR_CALL_DEADLINE=10.0, VENDOR_READ_TIMEOUT=0.8, VENDOR_MAX_RETRIES=5
    )
    sim.clear_requests()
    sim.faults(path_prefix=SA_PATH, method="POST", hang={"seconds": 30})
    started = time.monotonic()
    response = element.post(f"{HUB}/service-accounts", {"username": "once"}, format="json")
    assert response.status_code == 504
    assert 0.8 <= waited_seconds(error_shape(response)) < 2.5
    assert time.monotonic() - started < 3.0
    assert hits(sim, SA_PATH, "POST") == 1


def test_a_non_idempotent_call_to_a_hanging_vendor_ends_at_the_deadline(element, sim, settings):
    with_vendor_settings(settings, VENDOR_CALL_DEADLINE=1.5, VENDOR_READ_TIMEOUT=30.0)
    sim.clear_requests()
    sim.faults(path_prefix=SA_PATH, method="POST", hang={"seconds": 30})
    started = time.monotonic()
    response = element.post(f"{HUB}/service-accounts", {"username": "once"}, format="json")
    assert response.status_code == 504
    assert vendor_share(1.5) - 0.05 <= waited_seconds(error_shape(response)) < 3.0
    assert time.monotonic() - started < 3.5
    assert hits(sim, SA_PATH, "POST") == 1


def test_a_retry_after_longer_than_the_deadline_left_is_passed_on_at_once(element, sim, settings):
    with_vendor_settings(settings, VENDOR_CALL_DEADLINE=2.0, VENDOR_MAX_RETRY_AFTER=30.0)
    sim.clear_requests()
    sim.faults(path_prefix=SA_PATH, rate_limit={"retry_after": 3})
    started = time.monotonic()
    response = element.get(f"{HUB}/service-accounts")
    assert response.status_code == 429 and response["Retry-After"] == "3"
    assert time.monotonic() - started < 1.5
    assert hits(sim, SA_PATH) == 1


def test_the_deadline_covers_every_vendor_request_of_an_element_call(
    element, sim, sa_instance, settings
):
    from elements.mixpanel.tests.test_element_calls import events

    # Five batches (2000, 2000, 2000, 2000, 1000 events), four at a time, each answered after
    # 1.2 s: the fifth starts with 0.8 s of the 2 s left, is cut at the deadline and reported
    # as not imported, and the call ends there.
    with_vendor_settings(settings, VENDOR_CALL_DEADLINE=2.0, VENDOR_READ_TIMEOUT=30.0)
    sim.faults(path_prefix="/import", latency_ms=1200)
    started = time.monotonic()
    response = element.post(
        f"/mixpanel/import_events/{sa_instance['id']}", {"events": events(9000)}, format="json"
    )
    elapsed = time.monotonic() - started
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "PARTIAL"
    assert body["num_records_imported"] == 8000
    assert [r["index"] for r in body["failed_records"]] == list(range(8000, 9000))
    assert "did not answer within" in body["failed_records"][0]["message"]
    assert vendor_share(2.0) <= elapsed < 4.0


def test_a_deadline_used_up_by_earlier_requests_sends_nothing_more(sim, settings):
    from elements.framework.vendor import Deadline, VendorClient, VendorTimeout

    with_vendor_settings(settings, VENDOR_CALL_DEADLINE=0.3)
    client = VendorClient({"app": sim.base_url}, deadline=Deadline())
    sim.faults(path_prefix="/api/app/me", latency_ms=400)
    sim.clear_requests()
    with pytest.raises(VendorTimeout):
        client.request("GET", "app", "/api/app/me", auth=sim.sa_auth(), idempotent=True)
    with pytest.raises(VendorTimeout) as late:
        client.request("GET", "app", "/api/app/me", auth=sim.sa_auth(), idempotent=True)
    assert late.value.status_code == 504 and "did not answer within" in late.value.message
    assert hits(sim, "/api/app/me") == 1


# --- the circuit breaker -------------------------------------------------------------------


@pytest.fixture
def breaker_settings(settings):
    # One attempt per call, so that each call is one failure of the host.
    with_vendor_settings(
        settings,
        VENDOR_MAX_RETRIES=0,
        VENDOR_BREAKER_FAILURES=2,
        VENDOR_BREAKER_COOLDOWN=1.5,
        VENDOR_READ_TIMEOUT=0.5,
    )


def breaker_state(sim) -> str:
    from elements.framework.isolation import breaker_states

    return breaker_states()[sim.base_url]


def test_the_breaker_opens_fails_fast_and_closes_again(element, sim, breaker_settings):
    sim.clear_requests()
    sim.faults(path_prefix=SA_PATH, drop=True)
    for _ in range(2):
        assert element.get(f"{HUB}/service-accounts").status_code == 502
    assert breaker_state(sim) == "open"

    started = time.monotonic()
    refused = element.get(f"{HUB}/service-accounts")
    assert time.monotonic() - started < 0.5
    assert refused.status_code == 503
    assert "not answering" in error_shape(refused)["message"]
    assert 1 <= int(refused["Retry-After"]) <= 2  # the cool-down left
    assert hits(sim, SA_PATH) == 2  # the vendor was not called

    sim.clear_faults()
    time.sleep(1.6)
    assert element.get(f"{HUB}/service-accounts").status_code == 200  # the probe
    assert breaker_state(sim) == "closed"
    assert element.get(f"{HUB}/service-accounts").status_code == 200
    assert hits(sim, SA_PATH) == 4


def test_a_failed_probe_opens_the_breaker_again(element, sim, breaker_settings):
    sim.faults(path_prefix=SA_PATH, hang={"seconds": 10})
    for _ in range(2):
        assert element.get(f"{HUB}/service-accounts").status_code == 504
    time.sleep(1.6)
    sim.clear_requests()
    assert element.get(f"{HUB}/service-accounts").status_code == 504  # the probe times out
    assert breaker_state(sim) == "open"
    refused = element.get(f"{HUB}/service-accounts")
    assert refused.status_code == 503 and int(refused["Retry-After"]) >= 1
    assert hits(sim, SA_PATH) == 1


def test_vendor_answers_never_open_the_breaker(element, sim, breaker_settings):
    # 5xx and 4xx are the vendor answering: retried or passed on, but the host is up.
    sim.faults(path_prefix=SA_PATH, status=503)
    for _ in range(4):
        assert element.get(f"{HUB}/service-accounts").status_code == 502
    sim.clear_faults()
    sim.faults(path_prefix=SA_PATH, status={"status": 403, "body": {"error": "no"}})
    for _ in range(4):
        assert element.get(f"{HUB}/service-accounts").status_code == 403
    assert breaker_state(sim) == "closed"


def test_credential_verification_goes_through_the_breaker(tenant, sim, breaker_settings):
    sim.faults(path_prefix=SA_PATH, drop=True)
    create = {"element": {"key": "mixpanel"}, "name": "x", "configuration": SA_CONFIGURATION}
    client = tenant.client()
    for _ in range(2):
        assert client.post("/elements/api-v2/instances", create, format="json").status_code == 502
    refused = client.post("/elements/api-v2/instances", create, format="json")
    assert refused.status_code == 503 and int(refused["Retry-After"]) >= 1
    error_shape(refused)


def test_credential_verification_ends_at_the_deadline(tenant, sim, settings):
    with_vendor_settings(settings, VENDOR_CALL_DEADLINE=1.5, VENDOR_READ_TIMEOUT=30.0)
    sim.faults(path_prefix=SA_PATH, hang={"seconds": 30})
    create = {"element": {"key": "mixpanel"}, "name": "x", "configuration": SA_CONFIGURATION}
    started = time.monotonic()
    response = tenant.client().post("/elements/api-v2/instances", create, format="json")
    assert response.status_code == 504
    assert vendor_share(1.5) - 0.05 <= waited_seconds(error_shape(response)) < 3.0
    assert time.monotonic() - started < 3.5
