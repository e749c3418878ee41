"""The platform's own settings, read through one object: ``platform_settings.NAME``.

``DEFAULTS`` names every setting, with its default and what it means; ``settings.PLATFORM`` is
built from it (an environment variable of the same name overrides a default, see
``settings.env_setting``), and tests override values with ``override_settings(PLATFORM={...})``.
"""

import ipaddress

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

DEFAULTS = {
    # Fernet keys, newest first (platform_core/keys.py reads them from CREDENTIALS_KEYS).
    "CREDENTIALS_KEYS": [],
    "VENDOR_CONNECT_TIMEOUT": 5.0,
    "VENDOR_READ_TIMEOUT": 30.0,
    "VENDOR_MAX_RETRIES": 3,
    "VENDOR_BACKOFF_FACTOR": 0.5,
    "VENDOR_MAX_RETRY_AFTER": 30.0,
    # Total time an element call may wait on its vendor: connects, retries and backoff.
    # Below gunicorn's worker timeout and graceful_timeout (gunicorn.conf.py, 30 s).
    "VENDOR_CALL_DEADLINE": 25.0,
    # Threads per gunicorn worker: gunicorn.conf.py reads the same variable (default 64 there
    # too) and hands its final number to the workers. Sizes the next setting.
    "WEB_THREADS": 64,
    # Calls one vendor host may have in flight per process (elements/framework/isolation.py);
    # 0: half of WEB_THREADS, so that a hanging host leaves the other half to everything else.
    "VENDOR_HOST_MAX_IN_FLIGHT": 0,
    # Circuit breaker per vendor host and process: this many attempts in a row without an
    # answer (timeouts, connection failures) open it for the cool-down (seconds).
    "VENDOR_BREAKER_FAILURES": 5,
    "VENDOR_BREAKER_COOLDOWN": 30.0,
    "CALLBACK_ALLOW_PRIVATE_NETWORKS": False,
    # Element-call auth cache (instances/token_cache.py; PostgreSQL only, 0 turns it off).
    "AUTH_CACHE_SECONDS": 300.0,
    "AUTH_CACHE_MAX_ENTRIES": 10000,
    "DEFAULT_PAGE_SIZE": 200,
    "MAX_PAGE_SIZE": 1000,
    # Bulk jobs (bulk/): see the README's "Bulk downloads".
    # Where result parts live: "local" (MEDIA_ROOT/bulk/) or "s3", an S3-compatible bucket
    # shared by machines (settings.py builds STORAGES["bulk"] from the AWS_* variables), and
    # the bucket's key prefix.
    "BULK_STORAGE": "local",
    "BULK_S3_PREFIX": "",
    "BULK_RESULT_RETENTION_DAYS": 3.0,
    "BULK_ENCRYPT_RESULTS": True,
    # Ask vendors for gzip-compressed exports (a 5-10x smaller transfer over a real network).
    "BULK_EXPORT_GZIP": True,
    # Records per checkpoint (and result part) of a raw export.
    "BULK_EXPORT_PAGE_RECORDS": 20_000,
    # ... or bytes of records, whichever comes first: a part's memory, whatever the records' size.
    # Each page is one transaction and one file: 8 MiB pages made a 1,000,000-event job 12 %
    # faster than 2 MiB ones, for ~8 MB more peak RSS (bench.bulk_throughput).
    "BULK_EXPORT_PAGE_BYTES": 8 * 1024 * 1024,
    # A RUNNING job whose heartbeat is older than this is handed to another worker.
    "BULK_LEASE_SECONDS": 60.0,
    # Seconds between two sweeps of each worker (bulk/worker.py): a dead worker's job resumes
    # within lease + this.
    "BULK_SWEEP_INTERVAL": 10.0,
    "BULK_REQUEUE_AFTER": 120.0,
    # Seconds a job keeps its worker while other jobs wait; then it queues itself again behind
    # them (bulk/scheduling.py). 0: a job keeps its worker to the end.
    "BULK_JOB_SLICE_SECONDS": 2.0,
    "BULK_MAX_ATTEMPTS": 10,
    # Days a dated bulk job (activities, funnels, revenue) may read, checked at submit: each day
    # is a vendor request or more, so a job over centuries would hold a worker for weeks. Ten
    # years covers any real Mixpanel project.
    "BULK_MAX_DAYS": 3660,
    "BULK_PAGE_RETRIES": 5,
    "BULK_RETRY_BACKOFF": 2.0,
    "BULK_MAX_RETRY_WAIT": 300.0,
    "BULK_CALLBACK_MAX_ATTEMPTS": 8,
    "BULK_CALLBACK_BACKOFF": 5.0,
    "BULK_CALLBACK_TIMEOUT": 10.0,
    # Seconds between two purges of expired results (celery beat, settings.CELERY_BEAT_SCHEDULE).
    "BULK_PURGE_INTERVAL": 3600.0,
    # GET /metrics (platform_core/metrics.py): the networks a scrape may come from
    # (comma-separated CIDRs, matched against the address the server sees; loopback only by
    # default, empty: nobody), and a bearer token it must carry as well when set.
    "METRICS_ALLOWED_NETWORKS": "127.0.0.0/8,::1/128",
    "METRICS_TOKEN": "",
    # Admin login lockout (django-axes, platform_core/admin_login.py): failed logins for one
    # username from one address before it is locked; minutes it stays locked (0: until an
    # operator unlocks it); reverse proxies in front that append to X-Forwarded-For (0: the
    # connection's address is the client's, and the header is never read).
    "ADMIN_LOGIN_FAILURE_LIMIT": 5,
    "ADMIN_LOGIN_COOLOFF_MINUTES": 15.0,
    "ADMIN_LOGIN_TRUSTED_PROXIES": 0,
    # Events by polling (events/; the README's "Events"). Vendor queries one vendor project's
    # polls may make per window (seconds), whatever the number of instances: Mixpanel's query
    # and export APIs allow 60 an hour per project.
    "EVENTS_PROJECT_QUERY_BUDGET": 60,
    "EVENTS_PROJECT_QUERY_WINDOW": 3600.0,
    # Seconds between two beat ticks, each of which queues the polls and deliveries that are due.
    "EVENTS_TICK_INTERVAL": 10.0,
    # A poll whose worker holds its lease longer than this is given to another worker.
    "EVENTS_POLL_LEASE_SECONDS": 120.0,
    # Notification deliveries: attempts before FAILED, backoff base (seconds, doubled each
    # attempt; the first retry comes within 30 s), timeout of one POST.
    "EVENTS_DELIVERY_MAX_ATTEMPTS": 8,
    "EVENTS_DELIVERY_BACKOFF": 5.0,
    "EVENTS_DELIVERY_TIMEOUT": 10.0,
    # Delivered events and their notifications are deleted this long after they were found;
    # failed ones stay until they are redelivered or their instance is deleted.
    "EVENTS_RETENTION_DAYS": 30.0,
}

# Read from the environment by settings.py into Django's and Celery's own settings, not through
# ``platform_settings``: Django and Celery need them before any app loads. Their defaults are
# here, with what they mean; the README's Configuration table has each.
SERVER_DEFAULTS = {
    # Seconds a process keeps its database connection between requests (0: one per request).
    "DATABASE_CONN_MAX_AGE": 600,
    # Check a kept connection before a request uses it: one round trip more per request, while
    # a dead connection is replaced after the request that finds it anyway.
    "DATABASE_CONN_HEALTH_CHECKS": False,
    # Redis broker: seconds before an unacknowledged message is handed out again. A job's row,
    # not the broker, decides who runs it, so a late redelivery is harmless.
    "CELERY_VISIBILITY_TIMEOUT": 3600,
    # Redis broker: a prefix of every key, so several platforms can share one Redis.
    "CELERY_BROKER_KEY_PREFIX": "",
}

# Read from the environment at every element call (``elements/framework/dispatch.vendor_client``),
# never from an instance's configuration: ``<KEY>_BASE_URL`` (e.g. ``MIXPANEL_BASE_URL``)
# replaces every host of the element with that key, ``<KEY>_<ALIAS>_BASE_URL`` (e.g.
# ``MIXPANEL_API_BASE_URL``) the one of that alias. At every call, not once at start-up, so that
# a test or the demo can point an element at a simulator started after the platform.


def parse_networks(text: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """``"10.0.0.0/8, ::1"`` -> networks; ImproperlyConfigured names what does not parse."""
    networks = []
    for item in text.split(","):
        if item.strip():
            try:
                networks.append(ipaddress.ip_network(item.strip(), strict=False))
            except ValueError:
                raise ImproperlyConfigured(f"Not a network (CIDR): {item.strip()!r}") from None
    return tuple(networks)


class PlatformSettings:
    def __getattr__(self, name: str):
        if name not in DEFAULTS:
            raise AttributeError(f"Unknown platform setting {name!r}")
        return getattr(settings, "PLATFORM", {}).get(name, DEFAULTS[name])


platform_settings = PlatformSettings()
