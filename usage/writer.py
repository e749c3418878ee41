"""Getting usage records into the database without making the caller wait for it.

Each record is appended to a per-process spool file (one ``write``, microseconds) and queued in
memory; a background thread inserts the queue in batches and empties the spool once everything
in it is committed. If the process dies, its spool survives, and the next process to start a
writer on the same machine imports the spool files of processes that are gone. The request id
is unique, so a record imported twice is stored once.

``USAGE_LOG_MODE = "sync"`` writes in the caller's thread instead (in-process unit tests).
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import queue
import threading
import uuid
from functools import cache
from pathlib import Path

import orjson
from django.conf import settings
from django.db import (
    DatabaseError,
    DataError,
    InterfaceError,
    OperationalError,
    close_old_connections,
)

logger = logging.getLogger(__name__)

FLUSH_INTERVAL = 0.2  # seconds
MAX_BATCH = 500


def _insert(records: list[dict]) -> None:
    """Store a batch; a record whose request id is already stored is skipped."""
    from django.db import connection

    if connection.vendor == "postgresql":
        _insert_postgresql(connection, records)
    else:
        _insert_orm(records)


def _insert_orm(records: list[dict]) -> None:
    from django.utils.dateparse import parse_datetime

    from usage.models import UsageRecord

    rows = []
    for r in records:
        r = dict(r)
        r["created_at"] = parse_datetime(r["created_at"])
        rows.append(UsageRecord(**r))
    UsageRecord.objects.bulk_create(rows, ignore_conflicts=True)


@cache
def _postgresql_insert_sql() -> str:
    from django.db import connection

    from usage.models import UsageRecord

    quote = connection.ops.quote_name
    table = quote(UsageRecord._meta.db_table)
    columns = ", ".join(
        quote(f.column) for f in UsageRecord._meta.concrete_fields if not f.primary_key
    )
    return (
        f"INSERT INTO {table} ({columns}) "
        f"SELECT {columns} FROM jsonb_populate_recordset(NULL::{table}, %s::jsonb) "
        "ON CONFLICT (request_id) DO NOTHING"
    )


def _insert_postgresql(connection, records: list[dict]) -> None:
    """The whole batch as one JSON parameter that PostgreSQL unpacks: the ORM's bulk_create
    spent about 60 µs of this process's CPU per record building models and SQL, time the
    web threads then waited for the GIL (it showed in the proxy's p50 and p99)."""
    try:
        batch = orjson.dumps(records, default=str).decode()
    except TypeError as exc:  # a lone surrogate (JSONEncodeError), too deep: unstorable
        raise DataError(str(exc)) from exc
    with connection.cursor() as cursor:
        cursor.execute(_postgresql_insert_sql(), [batch])


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class SpoolWriter:
    def __init__(self, directory: Path, *, background: bool = True):
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / f"{os.getpid()}-{uuid.uuid4().hex[:8]}.jsonl"
        self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self.queue: queue.SimpleQueue[dict] = queue.SimpleQueue()
        self.lock = threading.Lock()  # guards the spool file and ``pending``
        self.flush_lock = threading.Lock()  # one flush at a time (thread and atexit)
        self.pending = 0  # records spooled but not yet committed
        self.held: list[dict] = []  # taken off the queue, not yet stored (database down)
        self.wake = threading.Event()
        if background:
            self.thread = threading.Thread(target=self._run, name="usage-writer", daemon=True)
            self.thread.start()
        atexit.register(self.flush)

    def record(self, record: dict) -> None:
        try:
            line = orjson.dumps(record, default=str) + b"\n"
        except TypeError:  # a lone surrogate (JSONEncodeError): stored as escaped text, like before
            line = (json.dumps(record, separators=(",", ":"), default=str) + "\n").encode()
        with self.lock:
            os.write(self.fd, line)
            self.pending += 1
            self.queue.put(record)

    def flush(self) -> None:
        with self.flush_lock:
            batch, self.held = self.held, []
            while True:
                try:
                    batch.append(self.queue.get_nowait())
                except queue.Empty:
                    break
                if len(batch) >= MAX_BATCH:
                    self._commit(batch)
                    batch = []
            if batch:
                self._commit(batch)

    def _commit(self, batch: list[dict]) -> None:
        try:
            _insert(batch)
        except (OperationalError, InterfaceError):
            # The database is unreachable: keep the records for the next round.
            self.held = batch + self.held
            raise
        except DatabaseError:
            # One unstorable record must not hold back the rest, nor grow the spool forever.
            for record in batch:
                try:
                    _insert([record])
                except DatabaseError:
                    logger.error(
                        "dropped an unstorable usage record request_id=%s",
                        record.get("request_id"),
                    )
        with self.lock:
            self.pending -= len(batch)
            if self.pending == 0:
                os.ftruncate(self.fd, 0)  # everything spooled is in the database

    def _run(self) -> None:
        self._recover_dead_spools()
        while True:
            self.wake.wait(FLUSH_INTERVAL)
            self.wake.clear()
            try:
                self.flush()
            except Exception:  # keep the spool; the next round or a later process retries
                logger.exception("usage log flush failed; records stay spooled")
            finally:
                close_old_connections()

    def _recover_dead_spools(self) -> None:
        for path in self.directory.glob("*.jsonl"):
            if path == self.path:
                continue
            try:
                pid = int(path.name.split("-", 1)[0])
            except ValueError:
                continue
            if _pid_alive(pid):
                continue
            try:
                records = []
                for line in path.read_text().splitlines():
                    try:
                        records.append(json.loads(line))
                    except ValueError:
                        continue  # a line cut short by the crash
                for start in range(0, len(records), MAX_BATCH):
                    _insert(records[start : start + MAX_BATCH])
                path.unlink()
                if records:
                    logger.info("recovered %d usage records from %s", len(records), path.name)
            except Exception:
                logger.exception("could not recover usage spool %s", path.name)
            finally:
                close_old_connections()


_writer: SpoolWriter | None = None
_writer_pid: int | None = None
_writer_lock = threading.Lock()


def _spool_writer() -> SpoolWriter:
    global _writer, _writer_pid
    if _writer is None or _writer_pid != os.getpid():  # a forked child needs its own
        with _writer_lock:
            if _writer is None or _writer_pid != os.getpid():
                _writer = SpoolWriter(Path(settings.USAGE_SPOOL_DIR))
                _writer_pid = os.getpid()
    return _writer


def write(record: dict) -> None:
    if settings.USAGE_LOG_MODE == "sync":
        _insert([record])
    else:
        _spool_writer().record(record)


def flush() -> None:
    """Write out what this process has queued (shutdown hooks, tests)."""
    if _writer is not None and _writer_pid == os.getpid():
        _writer.flush()
