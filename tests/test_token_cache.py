"""The element-call auth cache (instances/token_cache.py): its rules in isolation, then on a real
PostgreSQL that notifies it, then through gunicorn, where a change made by one process (or by
SQL that bypasses Django entirely) must be refused by every process on the very next call."""

from __future__ import annotations

import http.client
import json
import socket
import time

import psycopg
import pytest
from django.db import connection

from conftest import SA_CONFIGURATION, make_instance, make_tenant
from instances import selectors, token_cache
from instances.token_cache import EVERYTHING, Listener, TokenCache
from tenants.secrets import hash_secret
from tests.live_platform import LivePlatform
from tests.test_bulk_live import require

ROW = ("a row",)


def listening_cache(**kwargs) -> TokenCache:
    cache = TokenCache(max_age=kwargs.get("max_age", 60), max_entries=kwargs.get("max_entries", 10))
    cache.set_listening(True)
    return cache


# --- the rules ------------------------------------------------------------------------------


def test_nothing_is_cached_while_notifications_are_not_flowing():
    cache = TokenCache(max_age=60, max_entries=10)
    assert cache.generation() is None
    cache.put("h", ROW, cache.generation())
    cache.set_listening(True)
    assert cache.get("h") is None


def test_a_notification_not_yet_applied_bypasses_the_cache():
    """The listener thread may be slow to run in a busy process: a notification waiting in its
    socket, or read but not applied, must already keep lookups off the cache."""
    listener_end, server_end = socket.socketpair()
    with listener_end, server_end:
        cache = TokenCache(max_age=60, max_entries=10)
        cache.set_listening(True, listener_end.fileno())
        cache.put("h", ROW, cache.generation())
        assert cache.get("h") == ROW
        server_end.sendall(b"N")  # PostgreSQL has sent a notification
        assert cache.get("h") is None
        cache.receiving(True)  # the listener thread reads it
        listener_end.recv(1)
        assert cache.get("h") is None
        cache.changed("h")
        cache.receiving(False)
        assert cache.get("h") is None  # applied: evicted
        cache.put("h", ROW, cache.generation())
        assert cache.get("h") == ROW


def test_a_stored_row_is_served_until_its_token_hash_is_notified():
    cache = listening_cache()
    cache.put("h1", ROW, cache.generation())
    cache.put("h2", ("other",), cache.generation())
    assert cache.get("h1") == ROW
    cache.changed("h1")
    assert cache.get("h1") is None
    assert cache.get("h2") == ("other",)


def test_a_user_or_organization_change_forgets_everything():
    cache = listening_cache()
    cache.put("h1", ROW, cache.generation())
    cache.put("h2", ROW, cache.generation())
    cache.changed(EVERYTHING)
    assert cache.get("h1") is None and cache.get("h2") is None


def test_a_row_read_while_a_change_was_notified_is_not_kept():
    cache = listening_cache()
    before_read = cache.generation()
    cache.changed("some other hash")  # arrives while the row is being read
    cache.put("h", ROW, before_read)
    assert cache.get("h") is None


def test_losing_the_listener_empties_and_bypasses_the_cache():
    cache = listening_cache()
    generation = cache.generation()
    cache.put("h", ROW, generation)
    cache.set_listening(False)
    assert cache.get("h") is None
    cache.put("h", ROW, generation)
    cache.set_listening(True)  # back: anything stored before may have missed a notification
    assert cache.get("h") is None and len(cache) == 0


def test_entries_expire_after_max_age(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(token_cache.time, "monotonic", lambda: now[0])
    cache = listening_cache(max_age=5)
    cache.put("h", ROW, cache.generation())
    now[0] += 4.9
    assert cache.get("h") == ROW
    now[0] += 0.2
    assert cache.get("h") is None


def test_the_least_recently_used_entry_goes_first():
    cache = listening_cache(max_entries=2)
    for key in ("a", "b"):
        cache.put(key, (key,), cache.generation())
    cache.get("a")
    cache.put("c", ("c",), cache.generation())
    assert cache.get("b") is None
    assert cache.get("a") == ("a",) and cache.get("c") == ("c",)


# --- on PostgreSQL --------------------------------------------------------------------------


@pytest.fixture
def pg_cache(transactional_db, monkeypatch):
    """A listening cache on the test database, used by ``instance_by_token``."""
    require(connection.vendor == "postgresql", "the auth cache needs PostgreSQL")
    cache = TokenCache(max_age=60, max_entries=100)
    listener = Listener(cache, token_cache._listener_params())
    listener.start()
    deadline = time.monotonic() + 10
    while cache.generation() is None:
        assert time.monotonic() < deadline, "the listener did not connect"
        time.sleep(0.01)
    monkeypatch.setattr(selectors, "token_cache", lambda: cache)
    yield cache
    listener.stop()  # its connection would keep the test database from being dropped


def wait_until(condition, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.005)


def test_a_cached_token_costs_no_query_and_a_raw_sql_write_evicts_it(
    pg_cache, django_assert_num_queries
):
    tenant = make_tenant()
    instance, token = make_instance(tenant)
    token_hash = hash_secret(token)

    with django_assert_num_queries(1):
        first = selectors.instance_by_token(token)
    with django_assert_num_queries(0):
        again = selectors.instance_by_token(token)
    assert again.pk == first.pk and again.user.organization.pk == tenant.organization.pk
    assert again is not first and again.user is not first.user  # no shared mutable objects

    # Bypasses Django (no signals, no save()): only the trigger can tell the cache.
    with connection.cursor() as cursor:
        cursor.execute("UPDATE instances_instance SET disabled = true WHERE id = %s", [instance.pk])
    wait_until(lambda: pg_cache.get(token_hash) is None)
    assert selectors.instance_by_token(token).disabled is True


def test_rotating_a_users_secret_evicts_every_entry(pg_cache):
    tenant = make_tenant()
    instance, token = make_instance(tenant)
    selectors.instance_by_token(token)
    assert len(pg_cache) == 1
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE tenants_tenantuser SET secret_hash = %s WHERE id = %s",
            [hash_secret("new secret"), tenant.user.pk],
        )
    wait_until(lambda: len(pg_cache) == 0)


# --- through gunicorn -----------------------------------------------------------------------


def test_every_web_process_refuses_a_changed_instance_on_the_next_call(simulator):
    """Two gunicorn workers, both holding the instances in their caches; each change is made by
    one request, and the very next calls, on fresh connections spread over both workers, see
    it. A change made by raw SQL is seen once its notification arrives, and from then on."""
    require(
        (connection.settings_dict.get("ENGINE") or "").endswith("postgresql"),
        "the auth cache needs PostgreSQL",
    )
    simulator.reset()
    with LivePlatform(mixpanel_base_url=simulator.base_url, workers=2, threads=4) as live:
        instances = [live.create_instance(SA_CONFIGURATION) for _ in range(4)]

        def call(method, path, auth):
            conn = http.client.HTTPConnection("127.0.0.1", live.port, timeout=30)
            try:
                conn.request(method, path, headers={"Authorization": auth})
                response = conn.getresponse()
                return response.status, response.read()
            finally:
                conn.close()

        ping = "/elements/api-v2/hubs/general/ping"

        def element_statuses(token, calls=16):
            auth = live.element_auth(token)
            answers = [call("GET", ping, auth) for _ in range(calls)]
            statuses = {status for status, _ in answers}
            if len(statuses) > 1:  # say which call broke the rule, and how
                print("mixed answers:", sorted(set(answers))[:4])
            return statuses

        for instance in instances:  # warm both workers' caches
            assert element_statuses(instance["token"]) == {200}

        disabled, rotated, deleted, raw = instances
        status, _ = call(
            "DELETE", f"/elements/api-v2/instances/{disabled['id']}/enabled", live.platform_auth
        )
        assert status == 200
        assert element_statuses(disabled["token"]) == {403}

        status, body = call(
            "PUT", f"/elements/api-v2/instances/{rotated['id']}/token", live.platform_auth
        )
        assert status == 200
        assert element_statuses(rotated["token"]) == {401}
        assert element_statuses(json.loads(body)["token"]) == {200}

        status, _ = call(
            "DELETE", f"/elements/api-v2/instances/{deleted['id']}", live.platform_auth
        )
        assert status == 200
        assert element_statuses(deleted["token"]) == {401}

        # SQL that bypasses the platform: PostgreSQL signals the listeners at commit, but their
        # backends send the notification on their own schedule, so on a loaded machine a call
        # made the instant the UPDATE returns can still come first. Refused within a bound, and
        # never served again once refused.
        with psycopg.connect(live.database_url, autocommit=True) as conn:
            conn.execute("UPDATE instances_instance SET disabled = true WHERE id = %s", [raw["id"]])
        auth = live.element_auth(raw["token"])
        deadline = time.monotonic() + 2
        while call("GET", ping, auth)[0] == 200:
            assert time.monotonic() < deadline, "a raw-SQL disable was not seen within 2 s"
        assert element_statuses(raw["token"]) == {403}


def test_a_lost_listener_connection_empties_the_cache_and_comes_back(pg_cache):
    tenant = make_tenant()
    instance, token = make_instance(tenant)
    selectors.instance_by_token(token)
    assert len(pg_cache) == 1
    before = pg_cache.generation()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND query = %s",
            [f"LISTEN {token_cache.CHANNEL}"],
        )
        assert cursor.fetchone() == (True,)
    # Dropped (nothing kept: a notification may be missed), then listening again.
    wait_until(lambda: (pg_cache.generation() or 0) >= before + 2)
    assert len(pg_cache) == 0
    selectors.instance_by_token(token)
    assert len(pg_cache) == 1
