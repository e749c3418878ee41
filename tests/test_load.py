"""2,000 element calls at concurrency 16 through gunicorn: no 5xx from the platform itself, and
every call reaches the usage log (written off the request path)."""

import http.client
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import SA_CONFIGURATION
from tests.live_platform import LivePlatform

pytestmark = pytest.mark.integration

CALLS = 2000
CONCURRENCY = 16


def test_2000_calls_at_concurrency_16(simulator):
    simulator.reset()
    # As shipped (gunicorn.conf.py): a healthy vendor at concurrency 16 stays inside the
    # per-host bound of in-flight calls, so no call is refused.
    with LivePlatform(mixpanel_base_url=simulator.base_url) as live:
        instance = live.create_instance(SA_CONFIGURATION)
        headers = {"Authorization": live.element_auth(instance["token"])}
        local = threading.local()

        def call(_):
            if not hasattr(local, "conn"):
                local.conn = http.client.HTTPConnection("127.0.0.1", live.port, timeout=30)
            local.conn.request(
                "GET", "/elements/api-v2/hubs/general/service-accounts", headers=headers
            )
            response = local.conn.getresponse()
            body = response.read()
            return response.status, body

        with ThreadPoolExecutor(CONCURRENCY) as pool:
            results = list(pool.map(call, range(CALLS)))
        statuses = [s for s, _ in results]
        assert statuses.count(200) == CALLS, {s: statuses.count(s) for s in set(statuses)}
        assert all(json.loads(b) for _, b in results[:10])

        # The usage log catches up within a bounded time.
        conn = http.client.HTTPConnection("127.0.0.1", live.port, timeout=30)
        deadline = time.monotonic() + 20
        count = 0
        while time.monotonic() < deadline:
            count, token = 0, None
            while True:
                path = "/elements/api-v2/usage?pageSize=1000" + (
                    f"&nextPage={token}" if token else ""
                )
                conn.request("GET", path, headers={"Authorization": live.platform_auth})
                response = conn.getresponse()
                count += len(json.loads(response.read()))
                token = response.getheader("Elements-Next-Page-Token")
                if not token:
                    break
            if count >= CALLS:
                break
            time.sleep(0.5)
        assert count == CALLS
