"""Least privilege in the bulk jobs admin, with real admin requests by staff users holding exactly
the permissions under test: viewing a job is not cancelling, retrying or downloading it."""

import json
from pathlib import Path

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.test import Client

from bulk import services
from bulk.models import BulkJob, BulkPart
from conftest import completed_bulk_job, element_client_for, staff_client

pytestmark = pytest.mark.django_db

JOBS = "/admin/bulk/bulkjob/"


@pytest.fixture(autouse=True)
def media(settings, tmp_path) -> Path:
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return tmp_path / "media"


@pytest.fixture(autouse=True)
def queued(monkeypatch):
    sent = []
    monkeypatch.setattr(services, "enqueue_job", sent.append)
    monkeypatch.setattr(services, "enqueue_callback", lambda job_id, countdown=None: None)
    return sent


@pytest.fixture
def jobs(tenant, sim):
    """A completed job (2 parts) and one still waiting for a worker."""
    sim.configure(profiles={"count": 1500})
    client = element_client_for(tenant)
    done = BulkJob.objects.get(pk=completed_bulk_job(client, "select * from users"))
    response = client.post("/elements/api-v2/bulk/query?q=select%20*%20from%20users")
    waiting = BulkJob.objects.get(pk=response.json()["id"])
    return done, waiting


def act(client: Client, action: str, *jobs: BulkJob):
    return client.post(
        JOBS, {"action": action, "_selected_action": [j.pk for j in jobs]}, follow=True
    )


def download_url(job: BulkJob) -> str:
    return f"{JOBS}{job.pk}/download/"


def test_the_download_permission_exists():
    permission = Permission.objects.get(codename="download_bulkjob_results")
    assert permission.content_type.app_label == "bulk"


def test_view_only_staff_sees_jobs_but_cannot_act_or_download(jobs, queued):
    done, waiting = jobs
    viewer = staff_client("view_bulkjob")
    listing = viewer.get(JOBS)
    assert listing.status_code == 200
    page = listing.content.decode()
    assert f"{JOBS}{done.pk}/change/" in page
    # No actions offered, no download link.
    assert "cancel_jobs" not in page and "retry_jobs" not in page
    assert "/download/" not in page
    change = viewer.get(f"{JOBS}{done.pk}/change/").content.decode()
    assert "/download/" not in change and "download (NDJSON)" not in change

    assert viewer.get(download_url(done)).status_code == 403
    act(viewer, "cancel_jobs", waiting)
    waiting.refresh_from_db()
    assert waiting.status == BulkJob.Status.CREATED
    BulkJob.objects.filter(pk=waiting.pk).update(status=BulkJob.Status.CANCELLED)
    act(viewer, "retry_jobs", waiting)
    assert BulkJob.objects.get(pk=waiting.pk).status == BulkJob.Status.CANCELLED
    assert queued == []
    assert not LogEntry.objects.exists()


def test_change_permission_cancels_and_retries_but_does_not_download(
    jobs, queued, django_capture_on_commit_callbacks
):
    done, waiting = jobs
    operator = staff_client("view_bulkjob", "change_bulkjob")
    page = operator.get(JOBS).content.decode()
    assert "cancel_jobs" in page and "retry_jobs" in page
    assert "/download/" not in page
    assert operator.get(download_url(done)).status_code == 403

    with django_capture_on_commit_callbacks(execute=True):
        act(operator, "cancel_jobs", waiting)
    waiting.refresh_from_db()
    assert waiting.status == BulkJob.Status.CANCELLED
    with django_capture_on_commit_callbacks(execute=True):
        act(operator, "retry_jobs", waiting)
    waiting.refresh_from_db()
    assert waiting.status == BulkJob.Status.CREATED and queued == [waiting.pk]
    logged = LogEntry.objects.filter(user=operator.user, object_id=str(waiting.pk))
    assert {e.get_change_message() for e in logged} == {
        "Cancelled the job.",
        "Queued the job again.",
    }


def test_download_permission_downloads_and_is_logged(jobs):
    done, _ = jobs
    reader = staff_client("view_bulkjob", "download_bulkjob_results")
    page = reader.get(JOBS).content.decode()
    assert download_url(done) in page
    assert "cancel_jobs" not in page  # downloading is not changing
    assert download_url(done) in reader.get(f"{JOBS}{done.pk}/change/").content.decode()

    response = reader.get(download_url(done))
    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="bulk-{done.pk}-users.ndjson"'
    records = [json.loads(line) for line in b"".join(response.streaming_content).splitlines()]
    assert len(records) == 1500
    [entry] = LogEntry.objects.filter(object_id=str(done.pk))
    assert entry.user == reader.user and entry.action_flag == CHANGE
    assert entry.get_change_message() == "Downloaded the results (NDJSON)."
    assert entry.content_type.model == "bulkjob"


def test_the_download_permission_needs_the_view_permission_too(jobs):
    done, _ = jobs
    blind = staff_client("download_bulkjob_results")
    assert blind.get(JOBS).status_code == 403
    assert blind.get(download_url(done)).status_code == 403
    assert not LogEntry.objects.exists()


def test_staff_without_any_permission_gets_nothing(jobs):
    done, waiting = jobs
    nobody = staff_client()
    assert nobody.get(JOBS).status_code == 403
    assert nobody.get(download_url(done)).status_code == 403
    act(nobody, "cancel_jobs", waiting)
    assert BulkJob.objects.get(pk=waiting.pk).status == BulkJob.Status.CREATED


def test_a_refused_result_is_an_admin_error_not_data(jobs, media):
    done, _ = jobs
    first, second = BulkPart.objects.filter(job=done).order_by("seq")
    (media / first.name).write_bytes((media / second.name).read_bytes())
    reader = staff_client("view_bulkjob", "download_bulkjob_results")
    response = reader.get(download_url(done))
    assert response.status_code == 302 and response["Location"].endswith(f"{done.pk}/change/")
    [message] = list(get_messages(response.wsgi_request))
    assert "integrity check" in message.message
    assert not LogEntry.objects.exists()  # nothing was downloaded
