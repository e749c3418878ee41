"""Isolation under gunicorn: a vendor host that hangs holds at most its share of each web
process's threads (VENDOR_HOST_MAX_IN_FLIGHT), the calls past it are refused at once with 503 +
Retry-After, every stuck call ends at VENDOR_CALL_DEADLINE, and meanwhile the platform's own
endpoints and calls to a healthy vendor host answer as usual. And a web process's circuit
breaker opens, fails fast and closes again.

Two simulators: Mixpanel's "app" host (service accounts, queries) hangs, its "api" host
(tracking, imports) stays healthy (``MIXPANEL_API_BASE_URL`` points that alias elsewhere)."""

import http.client
import json
import re
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import SA_CONFIGURATION
from simulators.mixpanel.testing import SimulatorProcess
from tests.live_platform import LivePlatform

pytestmark = pytest.mark.integration

WORKERS, THREADS = 2, 4  # a bound of 2 in-flight calls per host and worker
DEADLINE = 6.0
STUCK_CALLS = 3 * WORKERS * THREADS  # more than the web tier has threads
HUB = "/elements/api-v2/hubs/general"


@pytest.fixture(scope="module")
def app_host():
    with SimulatorProcess() as sim:
        yield sim


@pytest.fixture(scope="module")
def api_host():
    with SimulatorProcess() as sim:
        yield sim


@pytest.fixture(scope="module")
def live(app_host, api_host):
    env = {
        "MIXPANEL_API_BASE_URL": api_host.base_url,
        "VENDOR_CALL_DEADLINE": str(DEADLINE),
        # Only the bulkhead here: the breaker has its own tests (tests/test_vendor_faults.py).
        "VENDOR_BREAKER_FAILURES": "1000",
    }
    with LivePlatform(
        mixpanel_base_url=app_host.base_url, workers=WORKERS, threads=THREADS, extra_env=env
    ) as platform:
        platform.instance = platform.create_instance(SA_CONFIGURATION)
        yield platform


def timed(live, method, path, auth, body=None) -> tuple[int, dict, dict, float]:
    """(status, headers, JSON body, seconds) of one call on a connection of its own."""
    connection = http.client.HTTPConnection("127.0.0.1", live.port, timeout=60)
    headers = {"Authorization": auth}
    if body is not None:
        body = json.dumps(body)
        headers["Content-Type"] = "application/json"
    started = time.monotonic()
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        data = response.read()
    finally:
        connection.close()
    return (
        response.status,
        dict(response.getheaders()),
        json.loads(data),
        time.monotonic() - started,
    )


def test_a_hanging_vendor_host_holds_only_its_share_of_the_web_tier(live, app_host, api_host):
    element_auth = live.element_auth(live.instance["token"])
    app_host.faults(path_prefix="/api/app", hang={"seconds": 60})
    with ThreadPoolExecutor(STUCK_CALLS) as pool:
        calls = [
            pool.submit(timed, live, "GET", f"{HUB}/service-accounts", element_auth)
            for _ in range(STUCK_CALLS)
        ]
        time.sleep(1.0)  # every call has arrived: the bound's worth wait, the others are refused

        # The platform's own endpoints: instances, catalog, usage, bulk status.
        for path, auth in (
            ("/elements/api-v2/instances", live.platform_auth),
            ("/elements/api-v2/elements/keys", live.platform_auth),
            ("/elements/api-v2/usage?pageSize=10", live.platform_auth),
            ("/elements/api-v2/bulk/jobs", element_auth),
        ):
            for _ in range(3):
                status, _, _, seconds = timed(live, "GET", path, auth)
                assert status == 200, path
                assert seconds < 1.0, (path, seconds)

        # A healthy vendor host (tracking goes to the "api" host).
        event = {"event": "Signed up", "properties": {"distinct_id": "u1"}}
        for _ in range(3):
            status, _, body, seconds = timed(live, "POST", f"{HUB}/activities", element_auth, event)
            assert status == 200, body
            assert seconds < 2.0

        results = [call.result() for call in calls]

    statuses = [status for status, *_ in results]
    stuck = [r for r in results if r[0] == 504]
    refused = [r for r in results if r[0] == 503]
    assert len(stuck) + len(refused) == STUCK_CALLS, statuses
    # At most the bound in each worker waited (both workers, or one, took calls).
    assert 1 <= len(stuck) <= WORKERS * 2, statuses
    for _, headers, body, seconds in refused:
        assert headers["Retry-After"] == "1"
        assert "Too many calls" in body["message"] and body["requestId"]
        assert seconds < 2.0
    for _, _, body, seconds in stuck:
        waited = re.fullmatch(r"The vendor did not answer within (\d+\.\d) s\.", body["message"])
        # The vendor gets the deadline less the platform's share (0.25 s) to answer.
        assert waited and DEADLINE - 0.3 <= float(waited.group(1)) < DEADLINE + 1, body
        assert seconds < DEADLINE + 2
    assert [r for r in api_host.requests() if r["path"] == "/track"]

    # The host answers again: so do its calls, at once.
    app_host.clear_faults()
    status, _, _, seconds = timed(live, "GET", f"{HUB}/service-accounts", element_auth)
    assert status == 200 and seconds < 2.0


def test_the_breaker_of_a_web_process_opens_fails_fast_and_closes_again(app_host):
    # One worker, so that every call meets the same breaker (each process has its own).
    env = {
        "VENDOR_BREAKER_FAILURES": "2",
        "VENDOR_BREAKER_COOLDOWN": "2",
        "VENDOR_MAX_RETRIES": "0",
    }
    with LivePlatform(
        mixpanel_base_url=app_host.base_url, workers=1, threads=THREADS, extra_env=env
    ) as platform:
        auth = platform.element_auth(platform.create_instance(SA_CONFIGURATION)["token"])
        app_host.reset()
        app_host.faults(path_prefix="/api/app", drop=True)
        for _ in range(2):
            assert timed(platform, "GET", f"{HUB}/service-accounts", auth)[0] == 502
        vendor_calls = len(app_host.requests())

        status, headers, body, seconds = timed(platform, "GET", f"{HUB}/service-accounts", auth)
        assert status == 503 and seconds < 1.0
        assert 1 <= int(headers["Retry-After"]) <= 2 and "not answering" in body["message"]
        assert len(app_host.requests()) == vendor_calls  # failed fast: the vendor was not called

        app_host.clear_faults()
        time.sleep(2.2)
        assert timed(platform, "GET", f"{HUB}/service-accounts", auth)[0] == 200  # the probe
        assert timed(platform, "GET", f"{HUB}/service-accounts", auth)[0] == 200  # closed
