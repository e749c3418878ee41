"""Runs one bulk job: claim it, read pages from the element's source, commit each page.

The runner knows nothing about any vendor: it asks the object's ``BulkSource`` for pages from
the last committed checkpoint and, for each page,

1. writes the page's records as a new result part (``storage.write_part``), then
2. in ONE transaction, and only while this worker still holds the job's lease and the job is
   still RUNNING: stores the page's checkpoint, the counts, the part row and the error rows.

A worker that dies between 1 and 2 leaves a part no row points at; the next worker deletes it
and starts from the committed checkpoint, so every record is in the result exactly once.

Commits run in order in a second thread (``Committer``) while this one reads the next page,
and a ``Heartbeat`` thread renews the lease; each has its own database connection.

Before each page is committed (in the committer's thread), before each vendor call and while
waiting to retry, the runner reads its job's row: a job that was cancelled or handed to another
worker stops, and a job whose instance was disabled or deleted ends CANCELLED
(``services.instance_stop_reason``), so no vendor call is made with the credentials of an
instance that is no longer enabled.

Vendor rate limits, 5xx answers and broken streams are retried from the committed checkpoint
with backoff (``Retry-After`` honoured); a vendor refusal (4xx) or too many retries ends the job
in ERROR with the provider's message.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import queue
import socket
import threading
import time
import uuid
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import timedelta

from django.db import DatabaseError, connection, transaction
from django.db.models import Case, F, Q, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from bulk import scheduling, services, storage
from bulk.callbacks import CALLBACK_NOT_SENT
from bulk.models import BulkJob, BulkJobError, BulkPart
from bulk.queries import bulk_object, query_of
from bulk.transformed import bulk_source, vendor_object
from elements.framework import retry
from elements.framework.bulk import BulkQueryError, Page
from elements.framework.ceql import CeqlError, parse_select
from elements.framework.configuration import mask_secrets, secret_values
from elements.framework.dispatch import make_call, vendor_client
from elements.framework.incremental import cursor_text, instant
from elements.framework.registry import element_by_key
from elements.framework.requirements import check_bulk_configuration
from elements.framework.vendor import VendorError
from instances.crypto import CredentialsUnreadable
from instances.services import configuration_of
from platform_core.conf import platform_settings
from platform_core.exceptions import ValidationFailed

logger = logging.getLogger(__name__)

MAX_ERROR_ROWS = 10_000  # per job; recordsFailedCount still counts every failed record
Status = BulkJob.Status


class Stop(Exception):
    """The job is no longer ours to run: cancelled, or another worker took the lease."""


class InstanceGone(Stop):
    """The job's instance was disabled or deleted: the job ends CANCELLED with ``reason``."""

    def __init__(self, reason: str, *, deleted: bool):
        super().__init__(reason)
        self.reason = reason
        self.deleted = deleted


class GuardedVendor:
    """The instance's vendor client, with the job's row asked before every call."""

    def __init__(self, vendor, check):
        self._vendor = vendor
        self._check = check

    def request(self, *args, **kwargs):
        self._check()
        return self._vendor.request(*args, **kwargs)

    def stream_lines(self, *args, **kwargs):
        self._check()
        return self._vendor.stream_lines(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._vendor, name)


@dataclass(frozen=True)
class WrittenPart:
    """A page's result file, written but not yet committed (``name`` None: nothing to write)."""

    seq: int
    name: str | None
    size: int
    encrypted: bool


def worker_identity() -> str:
    return f"{socket.gethostname()}/{os.getpid()}/{uuid.uuid4().hex[:8]}"


def claim(job_id: int, worker_id: str) -> BulkJob | None:
    """Take the job's lease with one conditional UPDATE: a CREATED job, or a RUNNING one whose
    worker stopped renewing its heartbeat or that gave way (not an attempt more: see
    scheduling.py). None when another worker holds it or it has ended."""
    now = timezone.now()
    stale = now - timedelta(seconds=platform_settings.BULK_LEASE_SECONDS)
    claimed = (
        BulkJob.objects.filter(pk=job_id)
        .filter(
            Q(status=Status.CREATED)
            | Q(status=Status.RUNNING, heartbeat_at__lt=stale)
            | Q(status=Status.RUNNING, heartbeat_at__isnull=True)
        )
        .update(
            status=Status.RUNNING,
            worker_id=worker_id,
            heartbeat_at=now,
            attempts=Case(
                When(scheduling.WAITING_FOR_TURN, then=F("attempts")),
                default=F("attempts") + 1,
            ),
            started_at=Coalesce(F("started_at"), Value(now)),
        )
    )
    if not claimed:
        return None
    return BulkJob.objects.select_related("instance").get(pk=job_id)


class Heartbeat(threading.Thread):
    """Renews the lease while the job runs; notices when it is lost (cancel, or a sweeper gave
    the job to another worker after this one stalled)."""

    def __init__(self, job_id: int, worker_id: str, interval: float):
        super().__init__(name=f"bulk-heartbeat-{job_id}", daemon=True)
        self.job_id = job_id
        self.worker_id = worker_id
        self.interval = interval
        self.stopped = threading.Event()
        self.lost = threading.Event()

    def run(self):
        try:
            while not self.stopped.wait(self.interval):
                try:
                    renewed = BulkJob.objects.filter(
                        pk=self.job_id, status=Status.RUNNING, worker_id=self.worker_id
                    ).update(heartbeat_at=timezone.now())
                except Exception:  # the database blinked: try again next beat
                    logger.warning("bulk job %s: heartbeat failed", self.job_id, exc_info=True)
                    continue
                if not renewed:
                    self.lost.set()
                    return
        finally:
            connection.close()  # this thread's own connection

    def stop(self):
        self.stopped.set()
        self.join(timeout=10)


class Committer(threading.Thread):
    """Commits pages, in order, in its own thread (and database connection) while the runner's
    thread reads and parses the next page: file writes and database round trips wait on I/O,
    so this hides most of a commit. At most one page waits while another is committed. A
    commit that fails (Stop: cancelled or lease lost; or any error) is raised in the runner's
    thread at its next ``submit`` or ``drain``; nothing after it is committed."""

    def __init__(self, runner: JobRunner):
        super().__init__(name=f"bulk-commit-{runner.job.pk}", daemon=True)
        self.runner = runner
        self.pages: queue.Queue = queue.Queue(maxsize=1)
        self.error: BaseException | None = None
        self.done = threading.Event()  # a commit said the job has all it needs
        self.start()

    def run(self):
        try:
            while True:
                page = self.pages.get()
                try:
                    if page is None:
                        return
                    if self.error is None and not self.done.is_set() and self.runner.commit(page):
                        self.done.set()
                except BaseException as exc:  # handed to the runner's thread
                    self.error = exc
                finally:
                    page = None
                    self.pages.task_done()
        finally:
            connection.close()  # this thread's own connection

    def check(self) -> None:
        if self.error is not None:
            raise self.error

    def submit(self, page: Page) -> None:
        self.check()
        self.pages.put(page)

    def drain(self) -> None:
        """Wait until every submitted page is committed; raise what went wrong."""
        self.pages.join()
        self.check()

    def close(self) -> None:
        self.pages.put(None)
        self.join(timeout=60)


def is_retryable(exc: VendorError) -> bool:
    """Whether the page may be read again: the one retry policy, for a read (retry.py)."""
    return retry.retry_failed_call(exc.status_code, exc.provider_status)


def retry_delay(exc: VendorError, retry_number: int) -> float:
    """Seconds before retry number ``retry_number`` (1-based): the vendor's Retry-After
    (seconds or an HTTP date), else exponential backoff with jitter."""
    after = retry.retry_after_seconds(exc.headers or {})
    if after is not None:
        return after
    return retry.backoff_seconds(retry_number - 1, platform_settings.BULK_RETRY_BACKOFF)


def vendor_message(exc: VendorError) -> str:
    message = exc.message
    if exc.provider_message:
        status = f" (HTTP {exc.provider_status})" if exc.provider_status else ""
        message = f"{message} Provider said{status}: {exc.provider_message}"
    return message[:2000]


def project(record: dict, fields: tuple[str, ...]) -> dict:
    """``select a, b.c from ...``: the named (dotted) fields, nested as in the record."""
    out: dict = {}
    for path in fields:
        value = record
        parts = path.split(".")
        for part in parts:
            if not isinstance(value, dict) or part not in value:
                break
            value = value[part]
        else:
            target = out
            for part in parts[:-1]:
                target = target.setdefault(part, {})
            target[parts[-1]] = value
    return out


@contextmanager
def _gc_per_page():
    """Python's cyclic GC, left automatic, rescans every record of the page being built (and
    the worker's whole heap) again and again: a third of the run time. Pages hold no cycles and
    are freed by reference counting, so automatic collection is paused while a job runs and
    done every few pages instead (``_collect``)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _collect(pages: int) -> None:
    if pages % 100 == 0:
        gc.collect()
    elif pages % 10 == 0:
        gc.collect(1)


def _check_configuration(job: BulkJob, element, configuration: dict) -> None:
    """What the object needs of the configuration, checked at submission, may have been removed
    since: the job then ends with the submission's message, before any vendor call."""
    obj = vendor_object(job.instance, element, job.object_name)
    if obj is None:
        return
    try:
        check_bulk_configuration(
            element, obj, instance_id=job.instance_id, configuration=configuration
        )
    except ValidationFailed as exc:
        raise BulkQueryError(exc.message) from None


def _dumps(record: dict) -> bytes:
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode()


class JobRunner:
    def __init__(
        self,
        job: BulkJob,
        worker_id: str,
        *,
        source=None,
        sleep=None,
        heartbeat: bool = True,
        pipelined: bool = True,
    ):
        self.job = job
        self.use_heartbeat = heartbeat
        self.pipelined = pipelined
        self.worker_id = worker_id
        self.source = source
        self.heartbeat: Heartbeat | None = None
        self._sleep = sleep
        self.fields: list[str] = list(job.fields or [])
        self.seen = set(self.fields)
        self.limit: int | None = None
        self.projection: tuple[str, ...] | None = None
        self.pages_done = 0
        self.secrets: list[str] = []  # the instance's, once read (_prepare)
        self.cursor = job.cursor or ""  # the highest cursor committed (ISO-8601 UTC)
        obj = bulk_object(job)
        self.cursor_in_days = obj is not None and obj.cursor_granularity == "day"

    # --- the run -----------------------------------------------------------------------------

    def run(self) -> str:
        job = self.job
        if job.attempts > platform_settings.BULK_MAX_ATTEMPTS:
            return self._finish_quietly(
                f"Gave up after {job.attempts - 1} attempts: the worker running this job "
                "stopped each time."
            )
        if self.use_heartbeat:
            interval = max(0.2, platform_settings.BULK_LEASE_SECONDS / 4)
            self.heartbeat = Heartbeat(job.pk, self.worker_id, interval)
            self.heartbeat.start()
        try:
            return self._run()
        except InstanceGone as gone:
            try:
                # A deleted instance took the callback's signature key with it.
                return self.finish(Status.CANCELLED, gone.reason, callback=not gone.deleted)
            except Stop:
                return "stopped"
        except Stop:
            return "stopped"
        except DatabaseError:
            raise  # the row cannot be updated now: the sweeper hands the job out again later
        except OSError as exc:
            logger.exception("bulk job %s: result storage failed", job.pk)
            return self._finish_quietly(f"Could not write the result: {exc.strerror or exc}")
        except Exception:
            logger.exception("bulk job %s: internal error", job.pk)
            return self._finish_quietly("Internal error while running the job.")
        finally:
            if self.heartbeat is not None:
                self.heartbeat.stop()

    def _finish_quietly(self, message: str) -> str:
        try:
            return self.finish(Status.ERROR, message)
        except Stop:
            return "stopped"

    def _run(self) -> str:
        # A job whose instance was disabled or deleted before the claim never starts.
        self.check()
        try:
            call, query, source = self._prepare()
        except (BulkQueryError, CeqlError, LookupError) as exc:
            return self.finish(Status.ERROR, f"The query cannot run: {exc}")
        except CredentialsUnreadable:
            return self.finish(
                Status.ERROR, "The instance's stored credentials cannot be decrypted."
            )
        self._delete_orphans()
        committer = Committer(self) if self.pipelined else None
        try:
            return self._pages(call, query, source, committer)
        finally:
            if committer is not None:
                committer.close()

    def _pages(self, call, query, source, committer: Committer | None) -> str:
        job = self.job
        retries = 0
        turn = scheduling.TimeSlice(job.pk)
        while True:
            if self.heartbeat and self.heartbeat.lost.is_set():
                raise Stop()
            try:
                done = False
                with closing(source.pages(call, query, job.checkpoint)) as pages, _gc_per_page():
                    for page in pages:
                        # The job's row is read before the page is committed (``commit``),
                        # in the committer's thread: this one goes on reading.
                        if committer is not None:
                            committer.submit(page)  # committed while the next page is read
                            done = committer.done.is_set()
                        else:
                            done = self.commit(page)
                        give_way = turn.over(page.progress)
                        del page  # before the collection below: the page is garbage now
                        retries = 0
                        self.pages_done += 1
                        _collect(self.pages_done)
                        if done:
                            break
                        if give_way:  # others wait: give way once this page is committed
                            if committer is not None:
                                committer.drain()
                                if committer.done.is_set():
                                    break
                            return self.give_way()
                if committer is not None:
                    committer.drain()
                return self.finish(Status.COMPLETED, "")
            except BulkQueryError as exc:
                if committer is not None:
                    committer.drain()
                return self.finish(Status.ERROR, f"The query cannot run: {exc}")
            except VendorError as exc:
                if committer is not None:
                    committer.drain()  # keep what was read before the failure
                if not is_retryable(exc):
                    return self.finish(Status.ERROR, vendor_message(exc))
                if retries >= platform_settings.BULK_PAGE_RETRIES:
                    return self.finish(
                        Status.ERROR, f"Gave up after {retries} retries. {vendor_message(exc)}"
                    )
                retries += 1
                delay = retry_delay(exc, retries)
                if delay > platform_settings.BULK_MAX_RETRY_WAIT:
                    return self.finish(
                        Status.ERROR,
                        f"The vendor asked to wait {delay:.0f} s. {vendor_message(exc)}",
                    )
                logger.info(
                    "bulk job %s: %s; retry %s in %.1f s", job.pk, exc.message, retries, delay
                )
                self.wait(delay)

    def _prepare(self):
        job = self.job
        element = element_by_key(job.element_key)
        if element is None:
            raise LookupError(f"the element {job.element_key} is no longer installed")
        source = self.source
        if source is None:
            # The element's own object or a transformed one (bulk/transformed.py).
            source = bulk_source(job.instance, element, job.object_name)
            if source is None:
                raise LookupError(f"{job.element_key} cannot bulk-download {job.object_name}")
        select = parse_select(job.query_text)
        self.limit = select.limit
        self.projection = select.fields
        configuration = configuration_of(job.instance)
        self.secrets = secret_values(element, configuration)
        _check_configuration(job, element, configuration)
        # A bulk download only reads: its vendor requests may all be retried.
        vendor = vendor_client(element, configuration, idempotent=True)
        call = make_call(
            element,
            instance_id=job.instance_id,
            configuration=configuration,
            vendor=GuardedVendor(vendor, self.check),
            request_id=f"bulk-{job.pk}",
        )
        return call, query_of(job, select), source

    def _delete_orphans(self) -> None:
        """Parts a dead worker wrote but never committed."""
        committed = set(BulkPart.objects.filter(job_id=self.job.pk).values_list("name", flat=True))
        orphans = [name for name in storage.job_files(self.job.pk) if name not in committed]
        if orphans:
            logger.info("bulk job %s: deleting %s uncommitted parts", self.job.pk, len(orphans))
            storage.delete_files(orphans)

    def check(self) -> None:
        """Raise Stop unless the job is still RUNNING under this worker, InstanceGone when its
        instance was disabled or deleted. One indexed read of the job's row."""
        if self.heartbeat and self.heartbeat.lost.is_set():
            raise Stop()
        row = (
            BulkJob.objects.filter(pk=self.job.pk)
            .values_list("status", "worker_id", "instance_id", "instance__disabled")
            .first()
        )
        if row is None or row[0] != Status.RUNNING or row[1] != self.worker_id:
            raise Stop()
        reason = services.instance_stop_reason(instance_id=row[2], disabled=row[3])
        if reason:
            raise InstanceGone(reason, deleted=row[2] is None)

    def wait(self, seconds: float) -> None:
        """Sleep before a retry; the job's row is read every second meanwhile."""
        if self._sleep is not None:
            self._sleep(seconds)
            self.check()
            return
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0:
            if self.heartbeat and self.heartbeat.lost.wait(min(remaining, 1.0)):
                raise Stop()
            if not self.heartbeat:
                time.sleep(min(remaining, 1.0))
            self.check()

    # --- one page ----------------------------------------------------------------------------

    def commit(self, page: Page) -> bool:
        """Write the page's part, then commit checkpoint + counts + part in one transaction.
        True when the job has all it needs (the source said done, or the limit is reached).
        Raises Stop or InstanceGone first when the job is no longer ours to run (``check``)."""
        self.check()
        records, raw, done = self._select(page)
        kept = len(raw) if page.ndjson is None else page.ndjson_records
        new_fields = self._new_fields(records, page.keys)
        cursor = self._page_cursor(page, kept)
        part = self._write_part(raw, page.ndjson)
        try:
            self._record(page, part, kept, new_fields, cursor)
        except Stop:
            if part.name:
                storage.delete_files([part.name])  # rolled back: nobody will ever point at it
            raise
        job = self.job
        job.checkpoint = page.checkpoint
        job.records_count += kept
        job.records_failed_count += len(page.failed)
        if part.name:
            job.parts_count = part.seq
        if cursor:
            self.cursor = job.cursor = cursor
        return done

    def _page_cursor(self, page: Page, kept: int) -> str | None:
        """The job's new cursor after this page (None: unchanged): the highest cursor value of
        the records written (the first ``kept`` of the page, when a limit cut it short)."""
        if not page.cursors or not kept:
            return None
        values = [v for v in page.cursors[:kept] if v is not None]
        try:
            highest = instant(max(values)) if values else None
        except TypeError:  # values of different kinds (a malformed record): compare instants
            highest = max((t for v in values if (t := instant(v)) is not None), default=None)
        text = cursor_text(highest, day=self.cursor_in_days)
        return text if text and text > self.cursor else None

    def _select(self, page: Page) -> tuple[list[dict], list[bytes], bool]:
        """The page's records the job keeps: up to the query's ``limit``, with only the
        selected fields; and whether the job is done."""
        if page.ndjson is not None and (self.limit is not None or self.projection):
            # The limit and the projection look at single records.
            page.raw, page.ndjson = page.lines(), None
        records, raw, done = page.records, page.raw, page.done
        if self.limit is not None:
            remaining = max(0, self.limit - self.job.records_count)
            if len(raw) >= remaining:
                records, raw, done = records[:remaining], raw[:remaining], True
        if self.projection:
            if not records:
                records = [json.loads(line) for line in raw]
            records = [project(r, self.projection) for r in records]
            raw = [_dumps(r) for r in records]
        return records, raw, done

    def _new_fields(self, records: list[dict], keys: list[str] | None) -> list[str]:
        """Top-level fields not seen in earlier pages (the CSV columns), added to the job's."""
        seen, new_fields = self.seen, []
        if records:
            for record in records:
                for key in record:
                    if key not in seen:
                        seen.add(key)
                        new_fields.append(key)
        else:
            new_fields = [key for key in keys or () if key not in seen]
            seen.update(new_fields)
        if new_fields:
            self.fields.extend(new_fields)
        return new_fields

    def _write_part(self, raw: list[bytes], ndjson: list[bytes] | None = None) -> WrittenPart:
        """Step 1: the records as the job's next result part (no row points at it yet)."""
        job = self.job
        seq = job.parts_count + 1
        encrypt = platform_settings.BULK_ENCRYPT_RESULTS
        if not (raw or ndjson):
            return WrittenPart(seq=seq, name=None, size=0, encrypted=encrypt)
        # One copy of the page (not two: join, then + b"\n").
        data = b"".join(ndjson) if ndjson else b"\n".join([*raw, b""])
        name = storage.write_part(
            storage.part_name(job.pk, seq, job.attempts),
            data,
            encrypt=encrypt,
            job_id=job.pk,
            seq=seq,
        )
        return WrittenPart(seq=seq, name=name, size=len(data), encrypted=encrypt)

    def _record(
        self,
        page: Page,
        part: WrittenPart,
        records: int,
        new_fields: list[str],
        cursor: str | None = None,
    ):
        """Step 2, in one transaction and only while the job is still ours and RUNNING (else
        Stop): checkpoint, counts, fields, cursor and progress; the part's row; the error
        rows."""
        job = self.job
        failed = page.failed
        room = max(0, MAX_ERROR_ROWS - job.records_failed_count)
        updates = {
            "checkpoint": page.checkpoint,
            "records_count": F("records_count") + records,
            "records_failed_count": F("records_failed_count") + len(failed),
            "heartbeat_at": timezone.now(),
        }
        if part.name:
            updates["parts_count"] = part.seq
            updates["bytes_written"] = F("bytes_written") + part.size
        if new_fields:
            updates["fields"] = self.fields
        if cursor:
            updates["cursor"] = cursor
        if page.progress:
            updates["progress_done"], updates["progress_total"] = page.progress
        with transaction.atomic():
            owned = BulkJob.objects.filter(
                pk=job.pk, status=Status.RUNNING, worker_id=self.worker_id
            ).update(**updates)
            if not owned:
                raise Stop()
            if part.name:
                BulkPart.objects.create(
                    job_id=job.pk,
                    seq=part.seq,
                    name=part.name,
                    records=records,
                    size=part.size,
                    encrypted=part.encrypted,
                )
            if failed and room:
                BulkJobError.objects.bulk_create(
                    [
                        BulkJobError(
                            job_id=job.pk,
                            position=str(f.get("position", ""))[:100],
                            message=str(f.get("error", "unreadable record"))[:500],
                            raw=str(f.get("raw", ""))[:2000],
                        )
                        for f in failed[:room]
                    ]
                )

    # --- the end -----------------------------------------------------------------------------

    def give_way(self) -> str:
        """End this turn: the job waits at the tail of the queue for its next (scheduling.py)."""
        if not services.job_give_way(job_id=self.job.pk, worker_id=self.worker_id):
            raise Stop()
        return "gave way"

    def finish(self, status: str, message: str, *, callback: bool = True) -> str:
        """End the job (only while still ours and RUNNING) and queue its callback, or with
        ``callback=False`` give the callback up."""
        job = self.job
        updates = {
            "status": status,
            # A vendor's words (vendor_message) may echo the credentials it was sent.
            "status_message": mask_secrets(message, self.secrets),
            "completed_at": timezone.now(),
            "worker_id": "",
        }
        if job.callback_url and not callback:
            updates["callback_status"] = BulkJob.Callback.FAILED
            updates["callback_last_error"] = CALLBACK_NOT_SENT
        elif job.callback_url:
            updates["callback_status"] = BulkJob.Callback.PENDING
            updates["callback_next_at"] = timezone.now()
        ended = BulkJob.objects.filter(
            pk=job.pk, status=Status.RUNNING, worker_id=self.worker_id
        ).update(**updates)
        if not ended:
            raise Stop()
        logger.info(
            "bulk job %s: %s (%s records, %s failed)",
            job.pk,
            status,
            job.records_count,
            job.records_failed_count,
        )
        if job.callback_url and callback:
            transaction.on_commit(lambda: services.enqueue_callback(job.pk))
        return status


def run_job(
    job_id: int,
    worker_id: str | None = None,
    *,
    source=None,
    sleep=None,
    heartbeat=True,
    pipelined=True,
) -> str:
    """Claim and run one job; what happened, for logs and tests."""
    worker_id = worker_id or worker_identity()
    job = claim(job_id, worker_id)
    if job is None:
        return "not claimed"
    started = time.monotonic()
    runner = JobRunner(
        job, worker_id, source=source, sleep=sleep, heartbeat=heartbeat, pipelined=pipelined
    )
    outcome = runner.run()
    logger.info("bulk job %s: %s after %.1f s", job_id, outcome, time.monotonic() - started)
    return outcome
