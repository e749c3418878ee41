"""Prometheus metrics (``GET /metrics``): what an operator watches to see trouble.

Counted where it happens (cheap: a dict lookup and an add per call), read at scrape time:

- ``platform_element_calls_total{element, operation, status}``: every element call that
  reached an instance (the calls in the usage log), by the platform's answer.
- ``platform_vendor_request_duration_seconds{host}``: each request to a vendor host, retries
  one by one, timeouts included (``elements/framework/transport.py``).
- ``platform_vendor_breaker_state{host}``: 0 closed, 1 half-open, 2 open; the worst state
  over the live web processes (each process has its own breaker).
- Scrape-time collectors registered by the apps (``register_scrape_collector``): bulk jobs
  by status (``bulk/metrics.py``), and here the broker's queue depth.

gunicorn runs several worker processes, each counting its own calls. With
``PROMETHEUS_MULTIPROC_DIR`` set (``gunicorn.conf.py`` sets and wipes it), every process
writes its values to memory-mapped files there and a scrape, whichever process answers it,
adds them up. Without it (tests, ``manage.py`` commands) the values are this process's.

The endpoint is open only to ``METRICS_ALLOWED_NETWORKS`` (loopback by default) and, when
``METRICS_TOKEN`` is set, to ``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
from collections.abc import Iterable
from functools import cache
from urllib.parse import urlsplit

from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from platform_core.conf import parse_networks, platform_settings
from platform_core.exceptions import error_response

logger = logging.getLogger(__name__)

# This process's own metrics; in multiprocess mode a scrape reads the files of every process
# instead.
_registry = CollectorRegistry(auto_describe=True)

ELEMENT_CALLS = Counter(
    "platform_element_calls",
    "Element calls answered, by element, operation and the platform's HTTP status.",
    ["element", "operation", "status"],
    registry=_registry,
)
VENDOR_REQUEST_SECONDS = Histogram(
    "platform_vendor_request_duration_seconds",
    "Time from sending a request to a vendor host to having its whole answer (or failing).",
    ["host"],
    # Up to the read timeout and beyond: a hanging vendor shows in the top buckets.
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
    registry=_registry,
)
BREAKER_STATE = Gauge(
    "platform_vendor_breaker_state",
    "Circuit breaker of a vendor host: 0 closed, 1 half-open, 2 open (worst over processes).",
    ["host"],
    multiprocess_mode="livemax",
    registry=_registry,
)
BREAKER_STATES = {"closed": 0, "half_open": 1, "half-open": 1, "open": 2}

# Label children by label values: ``labels()`` takes a lock and checks its arguments on every
# call; a dict lookup is a fraction of that on the element-call path.
_call_counters: dict[tuple[str, str, str], Counter] = {}
_latency_histograms: dict[str, Histogram] = {}


def count_element_call(element: str, operation: str, status: int) -> None:
    key = (element, operation, str(status))
    child = _call_counters.get(key)
    if child is None:
        child = _call_counters.setdefault(key, ELEMENT_CALLS.labels(*key))
    child.inc()


def observe_vendor_request(host: str, seconds: float) -> None:
    child = _latency_histograms.get(host)
    if child is None:
        child = _latency_histograms.setdefault(host, VENDOR_REQUEST_SECONDS.labels(host))
    child.observe(seconds)


def vendor_host_label(base_url: str) -> str:
    """``https://api.mixpanel.com`` -> ``api.mixpanel.com:443``: the ``host`` label of the
    vendor metrics (no scheme, path or credentials)."""
    parts = urlsplit(base_url)
    return f"{parts.hostname or ''}:{parts.port or (443 if parts.scheme == 'https' else 80)}"


def record_breaker_state(host: str, state: str) -> None:
    """For the circuit breaker of a vendor host (a base URL or a ``host:port`` label):
    ``state`` is ``closed``, ``half_open`` or ``open``."""
    label = vendor_host_label(host) if "://" in host else host
    BREAKER_STATE.labels(label).set(BREAKER_STATES[state])


# --- scrape-time collectors -------------------------------------------------------------------

_scrape_collectors: list = []


def register_scrape_collector(collector) -> None:
    """``collector.collect()`` yields metric families, computed when /metrics is read (by the
    process that answers the scrape, so from shared state: the database, the broker)."""
    _scrape_collectors.append(collector)


class QueueDepthCollector:
    """Messages waiting in the broker's task queues. Redis: the queue lists' lengths (LLEN,
    over kombu's priority lists); the embedded filesystem broker: its message files."""

    def collect(self) -> Iterable[GaugeMetricFamily]:
        from platform_core.celery import app

        depth = GaugeMetricFamily(
            "platform_queue_messages", "Task messages waiting in a broker queue.", labels=["queue"]
        )
        up = GaugeMetricFamily(
            "platform_broker_up", "1 when the broker answered this scrape, else 0."
        )
        queues = sorted(app.amqp.queues) or [app.conf.task_default_queue]
        try:
            with app.connection_for_read() as connection:
                connection.ensure_connection(max_retries=1, timeout=2)
                channel = connection.default_channel
                for name in queues:
                    depth.add_metric([name], _waiting(channel, name))
        except Exception as exc:  # any broker failure: the scrape still answers
            logger.warning("metrics: broker unreachable (%s)", type(exc).__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield depth


def _waiting(channel, queue: str) -> int:
    from kombu.exceptions import ChannelError
    from kombu.transport.virtual import Channel as VirtualChannel

    if isinstance(channel, VirtualChannel):
        # Redis and the filesystem broker: declaring only books the queue in this channel, and
        # the count is LLEN of the queue's lists (its message files). Not passive: kombu's
        # passive check asks Redis EXISTS without the key prefix, and an empty queue has no key.
        return channel.queue_declare(queue=queue).message_count
    try:  # a real AMQP broker: never declare (the queue's arguments are the worker's business)
        return channel.queue_declare(queue=queue, passive=True).message_count
    except ChannelError:  # no such queue yet: nothing waits in it
        return 0


register_scrape_collector(QueueDepthCollector())


class _Scrape:
    """What one scrape reads: every process's counters and the scrape-time collectors."""

    def collect(self):
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client.multiprocess import MultiProcessCollector

            registry = CollectorRegistry()
            MultiProcessCollector(registry)
            yield from registry.collect()
        else:
            yield from _registry.collect()
        for collector in _scrape_collectors:
            try:  # one source failing (the database down) leaves the others readable
                families = list(collector.collect())
            except Exception as exc:
                logger.warning(
                    "metrics: %s failed (%s)", type(collector).__name__, type(exc).__name__
                )
                continue
            yield from families


# --- the endpoint -----------------------------------------------------------------------------


@cache
def _allowed_networks(text: str):
    return parse_networks(text)


def _refusal(request):
    """An error response when this client may not scrape, else None."""
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        address = None
    networks = _allowed_networks(platform_settings.METRICS_ALLOWED_NETWORKS)
    if address is None or not any(address in network for network in networks):
        return error_response(request, 403, "Metrics are not available from this address.")
    token = platform_settings.METRICS_TOKEN
    if token:
        scheme, _, given = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode(), token.encode()
        ):
            return error_response(
                request,
                401,
                "Metrics need 'Authorization: Bearer <METRICS_TOKEN>'.",
                headers={"WWW-Authenticate": "Bearer"},
            )
    return None


@csrf_exempt  # read-only, no cookies: a POST gets 405, not the CSRF refusal
def metrics_view(request):
    if request.method not in ("GET", "HEAD"):
        return error_response(request, 405, "Metrics are read with GET.", headers={"Allow": "GET"})
    refusal = _refusal(request)
    if refusal is not None:
        return refusal
    return HttpResponse(generate_latest(_Scrape()), content_type=CONTENT_TYPE_LATEST)
