"""Admin UI for bulk jobs: status, progress, counts, duration, a download link, and cancel and
retry actions. Jobs are created through the API only; nothing here edits a job's fields.

Least privilege: viewing jobs needs ``view_bulkjob``; cancel and retry need ``change_bulkjob``;
downloading a job's results (a tenant's data, decrypted) needs ``download_bulkjob_results``,
and every download is recorded in the admin log with who did it.
"""

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect, StreamingHttpResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from bulk import formats, selectors, services, storage
from bulk.models import BulkJob
from platform_core.admin_base import SECRET_FIELDS, PlatformAdmin, tenant_column
from platform_core.exceptions import Conflict


def _duration(job: BulkJob) -> str:
    if not job.started_at:
        return "—"
    end = job.completed_at or timezone.now()
    seconds = int((end - job.started_at).total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


@admin.register(BulkJob)
class BulkJobAdmin(PlatformAdmin):
    list_display = (
        "id",
        "object_name",
        "instance",
        "status",
        "progress",
        "records_count",
        "records_failed_count",
        "duration",
        "created_at",
        "download",
    )
    list_filter = ("status", "object_name", "element_key")
    list_select_related = ("instance",)
    search_fields = ("=id", "object_name", "status_message")
    actions = ("cancel_jobs", "retry_jobs")
    hidden_fields = SECRET_FIELDS | {"checkpoint"}  # where a worker resumes: not shown
    fields = (
        "id",
        "instance",
        "tenant_user",
        "object_name",
        "query_text",
        "date_from",
        "date_to",
        "status",
        "status_message",
        "progress",
        "records_count",
        "records_failed_count",
        "cursor",
        "bytes_written",
        "parts_count",
        "attempts",
        "worker_id",
        "heartbeat_at",
        "created_at",
        "started_at",
        "completed_at",
        "duration",
        "results_deleted_at",
        "callback_url",
        "callback_status",
        "callback_attempts",
        "callback_last_error",
        "callback_delivered_at",
        "download",
    )
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        # The change form is read-only: never a save, whatever the permissions.
        return request.method in ("GET", "HEAD") and super().has_change_permission(request, obj)

    def has_operate_permission(self, request, obj=None):
        """Cancel and retry change a job: the change permission, on any method."""
        return super().has_change_permission(request, obj)

    def has_download_permission(self, request, obj=None):
        """Its own permission, on top of seeing the job at all."""
        return self.has_view_permission(request, obj) and request.user.has_perm(
            f"{self.opts.app_label}.download_bulkjob_results"
        )

    def get_list_display(self, request):
        shown = super().get_list_display(request)
        if self.has_download_permission(request):
            return shown
        return tuple(column for column in shown if column != "download")

    def get_fields(self, request, obj=None):
        fields = super().get_fields(request, obj)
        if self.has_download_permission(request):
            return fields
        return [field for field in fields if field != "download"]

    # -- columns -----------------------------------------------------------------------------

    tenant_user = tenant_column("user", "user")

    @admin.display(description="progress")
    def progress(self, obj):
        text = f"{obj.records_count:,} records"
        if obj.progress_total:
            text += f" · {obj.progress_done or 0}/{obj.progress_total}"
            if obj.object_name == "activities":
                text += " days"
        return text

    @admin.display(description="duration")
    def duration(self, obj):
        return _duration(obj)

    @admin.display(description="result")
    def download(self, obj):
        if obj.status != BulkJob.Status.COMPLETED or obj.results_deleted_at:
            return "—"
        url = reverse("admin:bulk_bulkjob_download", args=[obj.pk])
        return format_html('<a href="{}">download (NDJSON)</a>', url)

    # -- download ----------------------------------------------------------------------------

    def get_urls(self):
        return [
            path(
                "<path:object_id>/download/",
                self.admin_site.admin_view(self.download_view),
                name="bulk_bulkjob_download",
            ),
            *super().get_urls(),
        ]

    def download_view(self, request, object_id):
        if not self.has_download_permission(request):
            raise PermissionDenied
        job = self.get_object(request, unquote(object_id))
        if job is None or job.status != BulkJob.Status.COMPLETED or job.results_deleted_at:
            raise Http404("No completed result for this job.")
        parts = selectors.job_parts(job)
        try:
            formats.verify_first_part(parts)
        except storage.PartUnavailable:
            self.message_user(
                request,
                f"The stored result of job #{job.pk} failed its integrity check and is not "
                "served; the cause is in the server log.",
                messages.ERROR,
            )
            return HttpResponseRedirect(
                reverse(
                    "admin:bulk_bulkjob_change", args=[job.pk], current_app=self.admin_site.name
                )
            )
        self.log_change(request, job, "Downloaded the results (NDJSON).")
        response = StreamingHttpResponse(formats.ndjson_stream(parts), content_type=formats.NDJSON)
        response["Content-Disposition"] = (
            f'attachment; filename="bulk-{job.pk}-{job.object_name}.ndjson"'
        )
        return response

    # -- actions -----------------------------------------------------------------------------

    @admin.action(description="Cancel selected jobs", permissions=["operate"])
    def cancel_jobs(self, request, queryset):
        for job in queryset:
            try:
                services.job_cancel(job, message="Cancelled by an operator.")
            except Conflict as exc:
                self.message_user(request, exc.message, messages.WARNING)
                continue
            self.log_change(request, job, "Cancelled the job.")
            self.message_user(request, f"Job #{job.pk} cancelled.", messages.SUCCESS)

    @admin.action(
        description="Retry selected jobs (resume from the checkpoint)", permissions=["operate"]
    )
    def retry_jobs(self, request, queryset):
        for job in queryset:
            if services.job_retry(job):
                self.log_change(request, job, "Queued the job again.")
                self.message_user(
                    request,
                    f"Job #{job.pk} queued again; it resumes from its last checkpoint.",
                    messages.SUCCESS,
                )
            else:
                self.message_user(
                    request,
                    f"Job #{job.pk} is {job.status}: only jobs in ERROR or CANCELLED whose "
                    "results still exist, and whose instance exists and is enabled, can be "
                    "retried.",
                    messages.WARNING,
                )
