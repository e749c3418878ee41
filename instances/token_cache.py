"""Per-process cache of the token lookup that authenticates every element call.

The lookup (token hash -> instance, user, organization) is the one database round trip an
element call would otherwise pay. Here its row is kept in memory, and PostgreSQL tells every
process when to forget it: triggers (migration ``instances.0002``) ``NOTIFY`` on every update
or delete of an instance, an API user or an organization, and each process has a thread that
``LISTEN``s and evicts. A disabled, deleted or re-tokened instance, or a rotated secret, is
therefore refused by every process as soon as PostgreSQL delivers the notification. It signals
the listeners at commit, and on one host the notification is nearly always in their sockets
before the committing statement has returned, so well before the change's own HTTP response
reaches its caller; under load a listener's backend can take a few milliseconds longer.

Safety rules, because a stale entry would let a dead token in:
- Nothing is cached unless the listener is connected; when its connection drops, the cache is
  emptied and bypassed until it is back (a notification may have been missed meanwhile).
- Every notification bumps a generation number. A row read from the database is stored only if
  no notification arrived while it was being read, so a read that raced a change is never kept.
- A notification that has reached this process but is not applied yet (still in the
  listener's socket, or being read by its thread, which a busy process may not schedule for a
  while) makes every lookup skip the cache: the lookup never races the listener thread.
- Entries also expire after ``AUTH_CACHE_SECONDS`` (a bound that holds even if PostgreSQL
  never delivered a notification), and at most ``AUTH_CACHE_MAX_ENTRIES`` are kept (LRU).

Only on PostgreSQL: other databases (SQLite on a developer's machine) have no notifications,
so every call reads the database, as before.
"""

from __future__ import annotations

import logging
import os
import select
import threading
import time
from collections import OrderedDict

from django.db import connection

from platform_core.conf import platform_settings

logger = logging.getLogger(__name__)

CHANNEL = "platform_auth_changed"
# A notification's payload: one instance's token hash, or this for "forget everything" (an
# API user's or organization's secret changed, or one of them was deleted).
EVERYTHING = "*"
RECONNECT_DELAYS = (0.1, 0.5, 1.0, 5.0)


class TokenCache:
    def __init__(self, *, max_age: float, max_entries: int):
        self.max_age = max_age
        self.max_entries = max_entries
        self._entries: OrderedDict[str, tuple[float, tuple]] = OrderedDict()
        self._lock = threading.Lock()
        self._generation = 0
        self._listening = False
        # The listener's socket (None: no socket to watch), and whether its thread is reading
        # notifications that it has not applied yet.
        self._socket: int | None = None
        self._receiving = False

    # --- used by the lookup ------------------------------------------------------------------

    def _notification_pending(self) -> bool:
        if self._receiving:
            return True
        if self._socket is None:
            return False
        readable, _, _ = select.select([self._socket], [], [], 0)
        return bool(readable)

    def get(self, token_hash: str) -> tuple | None:
        with self._lock:
            if not self._listening or self._notification_pending():
                return None
            found = self._entries.get(token_hash)
            if found is None:
                return None
            stored_at, row = found
            if time.monotonic() - stored_at > self.max_age:
                del self._entries[token_hash]
                return None
            self._entries.move_to_end(token_hash)
            return row

    def generation(self) -> int | None:
        """Take this before reading the database; ``None``: do not cache now."""
        with self._lock:
            return self._generation if self._listening else None

    def put(self, token_hash: str, row: tuple, generation: int | None) -> None:
        with self._lock:
            if generation is None or generation != self._generation or not self._listening:
                return  # a change was notified meanwhile, or notifications are not flowing
            self._entries[token_hash] = (time.monotonic(), row)
            self._entries.move_to_end(token_hash)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    # --- used by the listener ------------------------------------------------------------------

    def changed(self, payload: str) -> None:
        with self._lock:
            self._generation += 1
            if payload == EVERYTHING:
                self._entries.clear()
            else:
                self._entries.pop(payload, None)

    def set_listening(self, listening: bool, socket: int | None = None) -> None:
        """Connected (or lost): either way, forget everything; notifications may have been
        missed while no connection was listening."""
        with self._lock:
            self._generation += 1
            self._entries.clear()
            self._listening = listening
            self._socket = socket if listening else None
            self._receiving = False

    def receiving(self, receiving: bool) -> None:
        with self._lock:
            self._receiving = receiving

    def __len__(self) -> int:
        return len(self._entries)


class Listener(threading.Thread):
    """``LISTEN`` on its own PostgreSQL connection and feed notifications to the cache."""

    def __init__(self, cache: TokenCache, connection_params: dict):
        super().__init__(name="auth-cache-listener", daemon=True)
        self.cache = cache
        self.connection_params = connection_params
        self.stopping = threading.Event()

    def run(self) -> None:
        import psycopg

        failures = 0
        while not self.stopping.is_set():
            try:
                with psycopg.connect(**self.connection_params, autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    pgconn = conn.pgconn
                    self.cache.set_listening(True, pgconn.socket)
                    failures = 0
                    while not self.stopping.is_set():
                        self._receive(pgconn)
            except Exception as exc:  # noqa: BLE001 (any failure: stop caching, reconnect)
                logger.warning("auth cache listener disconnected (%s)", type(exc).__name__)
            self.cache.set_listening(False)
            self.stopping.wait(RECONNECT_DELAYS[min(failures, len(RECONNECT_DELAYS) - 1)])
            failures += 1

    def _receive(self, pgconn) -> None:
        """Wait up to a second for notifications and apply them. libpq's own calls, not
        ``conn.notifies()``: the cache must know when a notification is read but not applied."""
        readable, _, _ = select.select([pgconn.socket], [], [], 1.0)
        if not readable:
            return
        self.cache.receiving(True)
        try:
            pgconn.consume_input()  # raises when the connection is gone
            while (notification := pgconn.notifies()) is not None:
                self.cache.changed(notification.extra.decode())
        finally:
            self.cache.receiving(False)

    def stop(self) -> None:
        self.stopping.set()
        self.join()


_cache: TokenCache | None = None
_cache_pid: int | None = None
_start_lock = threading.Lock()


def _listener_params() -> dict:
    params = connection.get_connection_params()
    # Django's cursor factory and adapters serve its own connection, not a bare listener.
    for key in ("cursor_factory", "context", "prepare_threshold"):
        params.pop(key, None)
    return params


def token_cache() -> TokenCache | None:
    """This process's cache, its listener started on first use; ``None`` where there is no
    cache (not PostgreSQL, or ``AUTH_CACHE_SECONDS`` is 0)."""
    global _cache, _cache_pid
    if _cache_pid == os.getpid():
        return _cache
    with _start_lock:
        if _cache_pid != os.getpid():  # first use in this process (or in a forked child)
            cache = None
            max_age = platform_settings.AUTH_CACHE_SECONDS
            if connection.vendor == "postgresql" and max_age > 0:
                cache = TokenCache(
                    max_age=max_age, max_entries=platform_settings.AUTH_CACHE_MAX_ENTRIES
                )
                Listener(cache, _listener_params()).start()
            _cache, _cache_pid = cache, os.getpid()
    return _cache
