"""``GET /usage`` and ``GET /usage/{requestId}`` (contract §7), scoped to the caller."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from platform_core.dates import instant_param
from platform_core.exceptions import NotFound, ValidationFailed
from platform_core.openapi import (
    PAGE_PARAMETERS,
    PLATFORM_ERRORS,
    component,
    error_responses,
    json_response,
    path_parameter,
)
from platform_core.pagination import page_params, paged_headers
from usage import selectors


def usage_representation(record) -> dict:
    out = {
        "requestId": record.request_id,
        "instanceId": record.instance_id,
        "elementKey": record.element_key,
        "operation": record.operation,
        "method": record.method,
        "path": record.path,
        "status": record.status,
        "vendorStatus": record.vendor_status,
        "durationMs": record.duration_ms,
        "dateTime": record.created_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
    }
    if record.request_body is not None or record.response_body is not None:
        out["requestBody"] = record.request_body
        out["responseBody"] = record.response_body
    return out


USAGE_SCHEMA = component(
    "UsageRecord",
    {
        "type": "object",
        "required": ["requestId", "method", "path", "status", "durationMs", "dateTime"],
        "properties": {
            "requestId": {"type": "string"},
            "instanceId": {"type": ["integer", "null"]},
            "elementKey": {"type": "string"},
            "operation": {"type": "string"},
            "method": {"type": "string"},
            "path": {"type": "string"},
            "status": {"type": "integer"},
            "vendorStatus": {"type": ["integer", "null"]},
            "durationMs": {"type": "number"},
            "dateTime": {"type": "string", "format": "date-time"},
            "requestBody": {"description": "Only with traceLoggingEnabled; secrets redacted."},
            "responseBody": {"description": "Only with traceLoggingEnabled; secrets redacted."},
        },
    },
)


def _int_param(query, name):
    raw = query.get(name)
    if raw in (None, ""):
        return None
    try:
        return int(raw)
    except ValueError:
        raise ValidationFailed(errors=[{"field": name, "message": "must be an integer"}]) from None


class UsageListView(APIView):
    @extend_schema(
        tags=["usage"],
        operation_id="listUsage",
        summary="Your element calls, oldest first (paged)",
        parameters=[
            OpenApiParameter("instanceId", int),
            OpenApiParameter("status", int, description="Only calls answered with this status."),
            OpenApiParameter("from", str, description="ISO-8601 date or date-time."),
            OpenApiParameter("to", str, description="ISO-8601 date or date-time."),
            *PAGE_PARAMETERS,
        ],
        responses={
            200: json_response({"type": "array", "items": USAGE_SCHEMA}),
            **error_responses(*PLATFORM_ERRORS),
        },
    )
    def get(self, request):
        size, after = page_params(request.query_params)
        records = selectors.usage_list(
            user_id=request.user.pk,
            instance_id=_int_param(request.query_params, "instanceId"),
            status=_int_param(request.query_params, "status"),
            date_from=instant_param(request.query_params.get("from"), "from"),
            date_to=instant_param(request.query_params.get("to"), "to"),
            after_id=after,
            limit=size,
        )
        return Response(
            [usage_representation(r) for r in records], headers=paged_headers(records, size)
        )


class UsageDetailView(APIView):
    @extend_schema(
        tags=["usage"],
        operation_id="getUsage",
        summary="One element call, by the Elements-Request-Id it was answered with",
        parameters=[path_parameter("requestId", "The call's Elements-Request-Id.")],
        responses={
            200: json_response(USAGE_SCHEMA),
            **error_responses(*PLATFORM_ERRORS, 404),
        },
    )
    def get(self, request, request_id):
        record = selectors.usage_get(user_id=request.user.pk, request_id=request_id)
        if record is None:
            raise NotFound(f"No usage record {request_id[:40]}.")
        return Response(usage_representation(record))
