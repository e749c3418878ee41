"""GET /metrics in-process: who may scrape, what it counts, and that no secret is in it.
Aggregation over gunicorn's worker processes is in tests/test_live_edges.py."""

import os
import uuid

import pytest
from django.test import Client, override_settings
from kombu import Connection
from prometheus_client.parser import text_string_to_metric_families

from bulk.models import BulkJob
from conftest import SA_CONFIGURATION, SIM_API_SECRET, api_instance, make_instance
from platform_core import metrics
from platform_core.celery import app as celery_app
from platform_core.conf import platform_settings
from tests.test_bulk_live import redis_url


def scrape(**headers) -> dict:
    """{(name, labels...): value} of one scrape from loopback."""
    response = Client().get("/metrics", **headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    return samples(response.content.decode())


def samples(text: str) -> dict:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, *sorted(sample.labels.items()))] = sample.value
    return found


def with_platform(**values):
    from django.conf import settings

    return override_settings(PLATFORM={**settings.PLATFORM, **values})


def test_an_element_call_is_counted_by_element_operation_and_status(tenant, sim):
    _, token = make_instance(tenant)
    key = (
        "platform_element_calls_total",
        ("element", "mixpanel"),
        ("operation", "getServiceAccounts"),
        ("status", "200"),
    )
    before = scrape().get(key, 0)
    auth = {"HTTP_AUTHORIZATION": tenant.element_auth(token)}
    for _ in range(3):
        response = Client().get("/elements/api-v2/hubs/general/service-accounts", **auth)
        assert response.status_code == 200
    after = scrape()
    assert after[key] == before + 3
    host = f"127.0.0.1:{sim.base_url.rsplit(':', 1)[1]}"
    assert after[("platform_vendor_request_duration_seconds_count", ("host", host))] >= 3


def test_bulk_jobs_are_counted_by_status(tenant):
    instance, _ = make_instance(tenant)
    for status, count in (("CREATED", 2), ("RUNNING", 1), ("COMPLETED", 3), ("ERROR", 1)):
        for _ in range(count):
            BulkJob.objects.create(
                instance=instance,
                user=tenant.user,
                element_key="mixpanel",
                object_name="activities",
                query_text="select * from activities",
                status=status,
            )
    found = scrape()
    counts = {s: found[("platform_bulk_jobs", ("status", s))] for s in BulkJob.Status.values}
    assert counts == {"CREATED": 2, "RUNNING": 1, "COMPLETED": 3, "ERROR": 1, "CANCELLED": 0}


def test_breaker_state_is_a_gauge_per_vendor_host(db):
    metrics.record_breaker_state("https://api.example.test", "open")
    metrics.record_breaker_state("other.example.test:8443", "half_open")
    found = scrape()
    assert found[("platform_vendor_breaker_state", ("host", "api.example.test:443"))] == 2
    assert found[("platform_vendor_breaker_state", ("host", "other.example.test:8443"))] == 1
    metrics.record_breaker_state("https://api.example.test", "closed")
    assert scrape()[("platform_vendor_breaker_state", ("host", "api.example.test:443"))] == 0
    with pytest.raises(KeyError):
        metrics.record_breaker_state("https://api.example.test", "ajar")


def test_queue_depth_counts_the_messages_waiting_in_redis(db, monkeypatch):
    url = redis_url()
    prefix = f"metrics-test-{uuid.uuid4().hex[:8]}:"
    options = {"global_keyprefix": prefix}
    monkeypatch.setattr(celery_app.conf, "broker_url", url)
    monkeypatch.setattr(celery_app.conf, "broker_read_url", None)
    # As settings configure a Redis broker: the embedded broker's own transport class is unset.
    monkeypatch.setattr(celery_app.conf, "broker_transport", None)
    monkeypatch.setattr(celery_app.conf, "broker_transport_options", options)
    queue = celery_app.conf.task_default_queue
    with Connection(url, transport_options=options) as connection:
        waiting = connection.SimpleQueue(queue)
        try:
            assert scrape()[("platform_queue_messages", ("queue", queue))] == 0
            for n in range(4):
                waiting.put({"n": n})
            found = scrape()
            assert found[("platform_queue_messages", ("queue", queue))] == 4
            assert found[("platform_broker_up",)] == 1
        finally:
            waiting.clear()
            waiting.close()


def test_an_unreachable_broker_is_reported_not_fatal(db, monkeypatch):
    monkeypatch.setattr(celery_app.conf, "broker_url", "redis://127.0.0.1:1/0")
    monkeypatch.setattr(celery_app.conf, "broker_read_url", None)
    monkeypatch.setattr(celery_app.conf, "broker_transport", None)
    monkeypatch.setattr(celery_app.conf, "broker_transport_options", {})
    found = scrape()
    assert found[("platform_broker_up",)] == 0
    assert ("platform_bulk_jobs", ("status", "CREATED")) in found


def test_a_scrape_from_outside_the_allowed_networks_is_refused(db):
    response = Client().get("/metrics", REMOTE_ADDR="203.0.113.7")
    assert response.status_code == 403
    assert set(response.json()) == {"requestId", "message"}
    with with_platform(METRICS_ALLOWED_NETWORKS="10.0.0.0/8"):
        assert Client().get("/metrics").status_code == 403  # loopback not listed
        assert Client().get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200
    with with_platform(METRICS_ALLOWED_NETWORKS=""):
        assert Client().get("/metrics").status_code == 403  # nobody


def test_with_a_token_a_scrape_must_carry_it(db):
    token = "metrics-" + uuid.uuid4().hex
    with with_platform(METRICS_TOKEN=token):
        for header in (None, "Bearer wrong", f"Basic {token}", f"Bearer {token}x", "Bearer "):
            extra = {"HTTP_AUTHORIZATION": header} if header else {}
            response = Client().get("/metrics", **extra)
            assert response.status_code == 401, header
            assert response["WWW-Authenticate"] == "Bearer"
            assert token not in response.content.decode()
        response = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {token}")
        assert response.status_code == 200
        assert token not in response.content.decode()
        # The network rule holds as well.
        outside = Client().get(
            "/metrics", REMOTE_ADDR="203.0.113.7", HTTP_AUTHORIZATION=f"Bearer {token}"
        )
        assert outside.status_code == 403


def test_a_bad_network_setting_stops_start_up():
    from django.core.exceptions import ImproperlyConfigured

    from platform_core.conf import parse_networks

    assert len(parse_networks(platform_settings.METRICS_ALLOWED_NETWORKS)) == 2
    with pytest.raises(ImproperlyConfigured, match="10.0.0.0/33"):
        parse_networks("127.0.0.0/8, 10.0.0.0/33")


def test_no_secret_in_the_scrape(tenant, sim):
    token = api_instance(tenant, name="SA")["token"]
    auth = {"HTTP_AUTHORIZATION": tenant.element_auth(token)}
    Client().get("/elements/api-v2/hubs/general/service-accounts", **auth)
    Client().get("/elements/api-v2/hubs/general/users/nobody", **auth)
    text = Client().get("/metrics").content.decode()
    secrets = [tenant.user_secret, tenant.organization_secret, token, SIM_API_SECRET]
    secrets += [str(v) for v in SA_CONFIGURATION.values() if len(str(v)) > 6]
    for secret in secrets:
        assert secret not in text
    assert os.environ.get("CREDENTIALS_KEYS", "") not in text


def test_a_failing_source_leaves_the_rest_of_the_scrape(db, monkeypatch):
    class DatabaseDown:
        def collect(self):
            raise RuntimeError("connection refused")

    monkeypatch.setattr(
        metrics, "_scrape_collectors", [DatabaseDown(), *metrics._scrape_collectors]
    )
    found = scrape()
    assert ("platform_bulk_jobs", ("status", "CREATED")) in found
    response = Client().post("/metrics")
    assert response.status_code == 405 and response["Allow"] == "GET"
