"""Turns between bulk jobs (bulk/scheduling.py), in-process with the fake source of
test_bulk_runner.py: a job gives its worker up after its slice only while another job waits,
resumes from its committed checkpoint, and keeps every record exactly once. Real workers on a
real broker are in test_bulk_concurrent.py."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from bulk import runner, scheduling, services
from bulk.models import BulkJob, BulkPart
from conftest import make_instance
from tests import test_bulk_runner
from tests.test_bulk_runner import Crash, FakeSource, make_job, result_records, run

# test_bulk_runner's fixtures: results under a temporary MEDIA_ROOT and the broker replaced by a
# list (both autouse), and an instance.
media = test_bulk_runner.media
queued = test_bulk_runner.queued
instance = test_bulk_runner.instance

pytestmark = pytest.mark.django_db
Status = BulkJob.Status
A_MOMENT = 1e-9  # a slice that is over at the first page boundary


@pytest.fixture
def short_slices(settings):
    settings.PLATFORM = {**settings.PLATFORM, "BULK_JOB_SLICE_SECONDS": A_MOMENT}


def test_a_job_gives_way_while_another_waits_and_resumes_exactly_once(
    instance, queued, short_slices
):
    job = make_job(instance)
    waiting = make_job(instance)  # CREATED: waits for a worker
    source = FakeSource(pages=4, size=3)

    assert run(job, source) == "gave way"
    row = BulkJob.objects.get(pk=job.pk)
    assert row.status == Status.RUNNING and row.records_count == 3
    assert row.worker_id == "" and row.heartbeat_at is None
    assert queued["jobs"] == [job.pk]  # queued again, behind the waiting job

    turns = 1
    while (outcome := run(job, source, worker=f"w{turns + 1}")) == "gave way":
        turns += 1
    assert outcome == Status.COMPLETED
    assert turns == 4  # one page per turn
    assert source.started_from == [0, 1, 2, 3, 4]  # each turn from the committed checkpoint
    job.refresh_from_db()
    assert job.records_count == 12 and job.parts_count == 4
    assert job.attempts == 1  # giving way is not a worker dying
    assert result_records(job) == source.expected()
    assert BulkPart.objects.filter(job=job).count() == 4
    assert BulkJob.objects.get(pk=waiting.pk).status == Status.CREATED


def test_a_job_alone_keeps_its_worker(instance, queued, short_slices):
    job = make_job(instance)
    make_job(instance, status=Status.COMPLETED)  # ended jobs do not wait
    assert run(job, FakeSource(pages=5)) == Status.COMPLETED
    assert queued["jobs"] == []


def test_a_job_waiting_for_its_turn_makes_others_give_way(instance, queued, short_slices):
    first, second = make_job(instance), make_job(instance)
    assert run(first, FakeSource(pages=3), worker="a") == "gave way"  # second is CREATED
    assert run(second, FakeSource(pages=3), worker="b") == "gave way"  # first waits its turn
    assert scheduling.jobs_waiting(besides=first.pk)
    assert queued["jobs"] == [first.pk, second.pk]


def test_a_slice_ends_where_the_next_turn_resumes_cheaply(instance):
    """Past its slice, a job gives way at the page that completes a unit of the source's
    progress (an export day: the next turn starts the day afresh instead of skipping its
    first lines), at a page without progress, or at any page after a second slice."""
    job = make_job(instance)
    make_job(instance)  # waiting
    turn = scheduling.TimeSlice(job.pk, seconds=0.3)
    assert not turn.over((0, 10))  # within the slice
    time.sleep(0.35)
    assert not turn.over((0, 10))  # the middle of day 1
    assert turn.over((1, 10))  # day 1 done
    assert not turn.over((1, 10))  # the middle of day 2
    time.sleep(0.3)
    assert turn.over((1, 10))  # two slices: give way wherever it is

    turn = scheduling.TimeSlice(job.pk, seconds=0.01)
    time.sleep(0.02)
    assert turn.over(None)

    alone = scheduling.TimeSlice(job.pk, seconds=0.01)
    BulkJob.objects.exclude(pk=job.pk).update(status=Status.COMPLETED)
    time.sleep(0.05)
    assert not alone.over(None) and not alone.over((3, 10))


def test_turns_off_with_a_zero_slice(instance, queued, settings):
    settings.PLATFORM = {**settings.PLATFORM, "BULK_JOB_SLICE_SECONDS": 0}
    job = make_job(instance)
    make_job(instance)
    assert run(job, FakeSource(pages=3)) == Status.COMPLETED


def test_a_job_cancelled_while_waiting_for_its_turn_is_not_claimed(instance, short_slices):
    job = make_job(instance)
    make_job(instance)
    assert run(job, FakeSource(pages=3)) == "gave way"
    services.job_cancel(BulkJob.objects.get(pk=job.pk))
    assert run(job, FakeSource(pages=3)) == "not claimed"
    job.refresh_from_db()
    assert job.status == Status.CANCELLED and job.records_count == 3


def test_a_worker_dying_after_giving_way_counts_as_an_attempt(instance, short_slices, settings):
    """Turns keep crash recovery as it was: a turn that dies leaves a stale lease, and the
    next claim is an attempt more, writing parts under a new name."""
    job = make_job(instance)
    make_job(instance)
    source = FakeSource(pages=4, size=2, hooks={1: lambda: (_ for _ in ()).throw(Crash())})
    assert run(job, source) == "gave way"
    with pytest.raises(Crash):
        run(job, source, worker="w2")  # its next turn dies reading page 1
    row = BulkJob.objects.get(pk=job.pk)
    assert row.status == Status.RUNNING and row.worker_id == "w2" and row.attempts == 1
    BulkJob.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    source.hooks.clear()
    while run(job, source, worker="w3") == "gave way":
        pass
    job.refresh_from_db()
    assert job.status == Status.COMPLETED and job.attempts == 2
    assert result_records(job) == source.expected()


def test_the_sweeper_queues_a_job_whose_turn_message_was_lost(instance, queued, short_slices):
    job = make_job(instance)
    make_job(instance)
    assert run(job, FakeSource(pages=3)) == "gave way"
    queued["jobs"].clear()
    assert services.sweep()["unclaimed"] == 0  # its message was just sent
    BulkJob.objects.filter(pk=job.pk).update(queued_at=timezone.now() - timedelta(hours=1))
    BulkJob.objects.exclude(pk=job.pk).update(status=Status.COMPLETED)
    assert services.sweep()["unclaimed"] == 1
    assert queued["jobs"] == [job.pk]


@pytest.mark.django_db(transaction=True)
def test_the_pipelined_runner_gives_way_after_its_pages_are_committed(tenant, settings, queued):
    settings.PLATFORM = {**settings.PLATFORM, "BULK_JOB_SLICE_SECONDS": A_MOMENT}
    instance, _ = make_instance(tenant, name="turns")
    job, waiting = make_job(instance), make_job(instance)
    source = FakeSource(pages=6, size=20)
    outcomes = []
    while (outcome := runner.run_job(job.pk, f"t{len(outcomes)}", source=source)) == "gave way":
        outcomes.append(outcome)
        assert len(outcomes) < 10
    assert outcome == Status.COMPLETED and outcomes
    job.refresh_from_db()
    assert job.records_count == 120 and job.parts_count == 6 and job.attempts == 1
    assert result_records(job) == source.expected()
    # The last page says the job is complete: the runner ends it instead of giving way.
    limited = make_job(instance, q="select * from activities limit 40")
    outcomes = []
    while (outcome := runner.run_job(limited.pk, "l", source=FakeSource(pages=6, size=20))) == (
        "gave way"
    ):
        outcomes.append(outcome)
        assert len(outcomes) < 10
    limited.refresh_from_db()
    assert outcome == Status.COMPLETED and limited.records_count == 40
    assert BulkJob.objects.get(pk=waiting.pk).status == Status.CREATED


def test_a_worker_takes_one_message_at_a_time(settings):
    """Turns rely on a free worker taking the next message from the queue: a worker must not
    hold messages beyond the one of the job it runs (late ack, prefetch multiplier 1: its one
    slot is taken until the job's message is acknowledged)."""
    assert settings.CELERY_TASK_ACKS_LATE is True
    assert settings.CELERY_WORKER_PREFETCH_MULTIPLIER == 1
