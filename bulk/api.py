"""Bulk endpoints of contract §6, on ``/bulk/...`` and ``/hubs/{hub}/bulk/...``.

Header ``User`` + ``Element``: jobs belong to the instance the token names; any other job id,
another tenant's included, is a 404.
"""

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from bulk import formats, selectors, services, storage
from bulk.models import BulkJob
from bulk.representations import job_representation
from instances.authentication import ElementAuthentication
from platform_core.exceptions import Conflict, NotFound, PlatformError, ValidationFailed
from platform_core.openapi import (
    BODY_ERRORS,
    PAGE_PARAMETERS,
    PLATFORM_ERRORS,
    component,
    error_responses,
    json_response,
    path_parameter,
)
from platform_core.pagination import page_params, paged_headers
from platform_core.permissions import InstanceEnabled
from platform_core.validation import validate
from usage.recording import UsageLoggedMixin


class NotAcceptable(PlatformError):
    status_code = 406
    default_detail = "Cannot produce the result in the requested format."


class JsonOnly(BaseContentNegotiation):
    """Errors and status objects are always JSON; the download view picks its own format."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return JSONRenderer(), JSONRenderer.media_type


def not_downloadable_message(job: BulkJob) -> str:
    """Why a job that is not COMPLETED has no result, and whether it ever will."""
    if job.status in (BulkJob.Status.CREATED, BulkJob.Status.RUNNING):
        return (
            f"Job {job.pk} is {job.status}; its result can be downloaded once it is COMPLETED "
            f"(GET /bulk/{job.pk}/status)."
        )
    why = "was cancelled" if job.status == BulkJob.Status.CANCELLED else "ended in ERROR"
    # An operator's retry in the admin is the only way back; a client cannot retry a job.
    return (
        f"Job {job.pk} {why} ({job.status}): its result will never be downloadable unless an "
        "operator retries the job. Submit a new job to get the data."
    )


# --- the OpenAPI document (drf-spectacular) -----------------------------------------------------

JOB_SCHEMA = component(
    "BulkJob",
    {
        "type": "object",
        "required": ["id", "status", "objectName", "recordsCount", "recordsFailedCount"],
        "properties": {
            "id": {"type": "integer"},
            "status": {"enum": list(BulkJob.Status.values)},
            "objectName": {"type": "string"},
            "recordsCount": {"type": "integer"},
            "recordsFailedCount": {"type": "integer"},
            "createdDate": {"type": "string", "format": "date-time"},
            "startedDate": {"type": ["string", "null"], "format": "date-time"},
            "completedDate": {"type": ["string", "null"], "format": "date-time"},
            "statusMessage": {"type": ["string", "null"]},
            "cursor": {
                "type": ["string", "null"],
                "description": "The highest cursor value written (ISO-8601 UTC): the next "
                "incremental sync asks for `where <cursorField> >= '<cursor>'`.",
            },
        },
    },
)
_JOB_ID = path_parameter("id", "The job's id.", OpenApiTypes.INT)
# Every bulk call is an element call: a disabled instance is 403.
_ERRORS = (*PLATFORM_ERRORS, 403)
_ONE_JOB = {200: json_response(JOB_SCHEMA), **error_responses(*_ERRORS, 404)}
_RECORDS = {"type": "array", "items": {"type": "object"}}
_TEXT = {"type": "string"}


def _bulk_docs(operation_id: str, summary: str, **kwargs):
    return extend_schema(
        tags=["bulk"],
        operation_id=operation_id,
        summary=summary,
        description=(
            "Header `User` + `Element`: the instance's own jobs. Every path also works under "
            "`/elements/api-v2/hubs/{hub}/bulk/...`."
        ),
        **kwargs,
    )


class BulkView(UsageLoggedMixin, APIView):
    authentication_classes = [ElementAuthentication]
    permission_classes = [IsAuthenticated, InstanceEnabled]
    content_negotiation_class = JsonOnly

    def job(self, request, job_id) -> BulkJob:
        return selectors.job_get(instance=request.auth.instance, job_id=job_id)


_QUERY_BODY = {"type": "object", "properties": {"q": _TEXT, "from": _TEXT, "to": _TEXT}}


class BulkQueryView(BulkView):
    usage_operation = "bulk.query"

    @_bulk_docs(
        "submitBulkQuery",
        "Start a bulk download; q, from and to in the query string or a JSON body",
        parameters=[
            OpenApiParameter(
                "q",
                str,
                description="CEQL: select * from {object} [where ...] [limit n]. Incremental "
                "sync: where <cursorField> >= '<ISO-8601>' (the object's metadata names it).",
            ),
            OpenApiParameter(
                "from",
                str,
                description="activities: first UTC day (ISO-8601 date or time); every object: "
                "only records whose cursorField is at or after it (incremental sync). A dated "
                "object's range is at most BULK_MAX_DAYS days (3660 by default).",
            ),
            OpenApiParameter(
                "to", str, description="activities: last UTC day (ISO-8601 date or time)."
            ),
            OpenApiParameter(
                services.CALLBACK_HEADER,
                str,
                OpenApiParameter.HEADER,
                description="An http(s) URL on a public address: the final status is POSTed.",
            ),
        ],
        request={"application/json": _QUERY_BODY},
        responses={
            200: json_response(
                {
                    "type": "object",
                    "required": ["id", "status"],
                    "properties": {"id": {"type": "integer"}, "status": {"const": "CREATED"}},
                }
            ),
            **error_responses(*_ERRORS, *BODY_ERRORS),
        },
    )
    def post(self, request):
        params = request.query_params
        body = {}
        if "q" not in params and request.body:
            data = request.data
            if isinstance(data, dict):
                # Texts the job keeps: no NUL nor lone surrogate (PostgreSQL stores neither).
                body = validate(_QUERY_BODY, data)

        def value(name):
            return params.get(name) if name in params else body.get(name)

        job = services.job_submit(
            instance=request.auth.instance,
            q=value("q"),
            date_from=value("from"),
            date_to=value("to"),
            callback_url=request.headers.get(services.CALLBACK_HEADER),
        )
        return Response({"id": job.pk, "status": job.status})


class BulkJobsView(BulkView):
    usage_operation = "bulk.jobs"

    @_bulk_docs(
        "listBulkJobs",
        "This instance's jobs, newest first (paged)",
        parameters=[
            OpenApiParameter("status", str, enum=list(BulkJob.Status.values)),
            *PAGE_PARAMETERS,
        ],
        responses={
            200: json_response({"type": "array", "items": JOB_SCHEMA}),
            **error_responses(*_ERRORS),
        },
    )
    def get(self, request):
        size, before = page_params(request.query_params)
        status = request.query_params.get("status")
        if status and status not in BulkJob.Status.values:
            raise ValidationFailed(
                errors=[
                    {"field": "status", "message": f"one of {', '.join(BulkJob.Status.values)}"}
                ]
            )
        jobs = selectors.job_list(
            instance=request.auth.instance, status=status, before_id=before, limit=size
        )
        return Response([job_representation(j) for j in jobs], headers=paged_headers(jobs, size))


class BulkStatusView(BulkView):
    usage_operation = "bulk.status"

    @_bulk_docs(
        "getBulkJobStatus", "A job's status and counts", parameters=[_JOB_ID], responses=_ONE_JOB
    )
    def get(self, request, job_id):
        return Response(job_representation(self.job(request, job_id)))


class BulkCancelView(BulkView):
    usage_operation = "bulk.cancel"

    @_bulk_docs(
        "cancelBulkJob",
        "Cancel a job; a running one stops at its next page",
        parameters=[_JOB_ID],
        request=None,
        responses={**_ONE_JOB, **error_responses(409)},
    )
    def put(self, request, job_id):
        job = services.job_cancel(self.job(request, job_id))
        return Response(job_representation(job))


class BulkErrorsView(BulkView):
    usage_operation = "bulk.errors"

    @_bulk_docs(
        "listBulkJobErrors",
        "Records the job could not read (paged)",
        parameters=[_JOB_ID, *PAGE_PARAMETERS],
        responses={
            200: json_response(
                {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["position", "message"],
                        "properties": {
                            "position": {"type": "integer"},
                            "message": _TEXT,
                            "record": {},
                        },
                    },
                }
            ),
            **error_responses(*_ERRORS, 404),
        },
    )
    def get(self, request, job_id):
        job = self.job(request, job_id)
        size, after = page_params(request.query_params)
        errors = selectors.job_errors(job=job, after_id=after, limit=size)
        return Response(
            [{"position": e.position, "message": e.message, "record": e.raw} for e in errors],
            headers=paged_headers(errors, size),
        )


class BulkResultView(BulkView):
    usage_operation = "bulk.download"

    @_bulk_docs(
        "downloadBulkJobResult",
        "Download a COMPLETED job's records, streamed, in the format Accept asks for",
        parameters=[
            _JOB_ID,
            path_parameter("objectName", "The job's object (activities, users...)."),
        ],
        responses={
            (200, formats.JSON): json_response(_RECORDS, "The records as one JSON array"),
            (200, formats.NDJSON): json_response(_TEXT, "One JSON record a line"),
            (200, formats.JSONL): json_response(_TEXT, "One JSON record a line"),
            (200, formats.CSV): json_response(
                _TEXT, "A header row of the records' top-level keys; nested values as JSON"
            ),
            **error_responses(*_ERRORS, 404, 406, 409),
        },
    )
    def get(self, request, job_id, object_name):
        job = self.job(request, job_id)
        if object_name != job.object_name:
            raise NotFound(f"Job {job.pk} downloads {job.object_name}, not {object_name[:100]}.")
        media = formats.negotiate(request.headers.get("Accept"))
        if media is None:
            raise NotAcceptable(
                "Cannot produce the result as "
                f"{request.headers.get('Accept', '')[:100]!r}; ask for one of "
                f"{', '.join(formats.OFFERED)}."
            )
        if job.status != BulkJob.Status.COMPLETED:
            raise Conflict(not_downloadable_message(job))
        if job.results_deleted_at:
            # 404, not 410: contract §2 lists the statuses a client must handle, and 410 is
            # not one of them. The message says why, and the status call still shows the job.
            raise NotFound(f"The results of job {job.pk} were deleted after the retention period.")
        parts = selectors.job_parts(job)
        try:
            formats.verify_first_part(parts)
        except storage.LegacyPart:
            raise Conflict(
                f"The result of job {job.pk} was stored by an earlier version of the platform in "
                "a format that is no longer served; submit the job again."
            ) from None
        except storage.PartUnavailable:
            # 409: the job's stored result is in a state that cannot be served (contract §2
            # has no better status; 500 is for bugs). The cause is logged, not told.
            raise Conflict(
                f"The stored result of job {job.pk} failed its integrity check and will not be "
                "served (the operators have it in their logs); submit the job again."
            ) from None
        if media == formats.CSV:
            stream = formats.csv_stream(parts, list(job.fields or []))
            content_type = "text/csv; charset=utf-8"
        elif media == formats.JSON:
            stream = formats.json_array_stream(parts)
            content_type = formats.JSON
        else:
            stream = formats.ndjson_stream(parts)
            content_type = media
        response = StreamingHttpResponse(stream, content_type=content_type)
        response["Vary"] = "Accept"
        return response
