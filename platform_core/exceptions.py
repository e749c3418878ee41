"""The one error shape of contract §2, for every error the platform answers.

``{"requestId", "message"}`` plus ``providerMessage``/``providerStatus`` when the vendor answered
and ``errors: [{"field", "message"}]`` for validation failures. DRF's own exceptions, Django's
404/400/500 handlers and the request-id middleware all end up in ``error_response``.
"""

import logging
import traceback

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, JsonResponse, UnreadablePostError
from rest_framework import exceptions as drf_exceptions
from rest_framework import status

logger = logging.getLogger(__name__)


class PlatformError(drf_exceptions.APIException):
    """An error the platform answers on purpose, with the contract's fields."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = "Bad request."

    def __init__(
        self,
        message: str | None = None,
        *,
        status_code: int | None = None,
        errors: list[dict] | None = None,
        provider_message: str | None = None,
        provider_status: int | None = None,
        headers: dict | None = None,
    ):
        super().__init__(message or self.default_detail)
        if status_code is not None:
            self.status_code = status_code
        self.message = message or self.default_detail
        self.errors = errors
        self.provider_message = provider_message
        self.provider_status = provider_status
        self.headers = headers or {}


class IncompleteBody(UnreadablePostError):
    """A request body that ended before its Content-Length (``platform_core/wsgi.py``)."""


class BadRequest(PlatformError):
    status_code = 400
    default_detail = "Bad request."


class ValidationFailed(PlatformError):
    status_code = 400
    default_detail = "The request failed validation."


class NotFound(PlatformError):
    status_code = 404
    default_detail = "Not found."


class Conflict(PlatformError):
    status_code = 409
    default_detail = "Conflict."


class InstanceDisabled(PlatformError):
    status_code = 403
    default_detail = "The element instance is disabled."


def error_body(request_id: str, message: str, **extra) -> dict:
    body = {"requestId": request_id, "message": message}
    body.update({k: v for k, v in extra.items() if v is not None})
    return body


def request_id_of(request) -> str:
    # DRF's Request proxies attributes of the Django request.
    return getattr(request, "request_id", "") or ""


def error_response(request, status_code: int, message: str, *, headers=None, **extra):
    response = JsonResponse(
        error_body(request_id_of(request), message, **extra), status=status_code
    )
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def unreadable_body_response(request, exc: UnreadablePostError):
    """400 for a body that could not be read to its end (the client sent less than its
    Content-Length, left, or stalled), never taken as the whole body. Django raises an error
    reading the body as an ``UnreadablePostError`` from it (``request.body`` twice over)."""
    cause = exc
    while cause is not None and not isinstance(cause, IncompleteBody):
        cause = cause.__cause__
    message = str(cause) if cause is not None else "The request body could not be read to its end."
    return error_response(request, 400, message)


def _field_errors_from_drf(detail, prefix: str = "") -> list[dict]:
    if isinstance(detail, dict):
        out = []
        for key, value in detail.items():
            field = f"{prefix}.{key}" if prefix else str(key)
            out.extend(_field_errors_from_drf(value, field))
        return out
    if isinstance(detail, list):
        out = []
        for item in detail:
            out.extend(_field_errors_from_drf(item, prefix))
        return out
    return [{"field": prefix or "body", "message": str(detail)}]


_DRF_MESSAGES = {
    drf_exceptions.ParseError: "The request body is not valid JSON.",
    drf_exceptions.NotAuthenticated: (
        "Authorization header missing or incomplete: expected "
        "'User <secret>, Organization <secret>' or 'User <secret>, Element <token>'."
    ),
    drf_exceptions.UnsupportedMediaType: "Unsupported Content-Type: send application/json.",
    drf_exceptions.NotAcceptable: "Cannot produce a response for the given Accept header.",
}


def _raised_parsing_the_body(exc) -> bool:
    return any(
        frame.f_code.co_name == "_parse"
        and frame.f_globals.get("__name__") == "rest_framework.request"
        for frame, _ in traceback.walk_tb(exc.__traceback__)
    )


def exception_handler(exc, context):
    """DRF exception handler: every exception becomes the contract's error shape."""
    request = context.get("request")
    if isinstance(exc, RecursionError) and _raised_parsing_the_body(exc):
        # json gives up on deeply nested documents with RecursionError, which DRF lets through.
        return error_response(request, 400, "The request body is nested too deeply.")
    if isinstance(exc, PlatformError):
        return error_response(
            request,
            exc.status_code,
            exc.message,
            headers=exc.headers,
            errors=exc.errors,
            providerMessage=exc.provider_message,
            providerStatus=exc.provider_status,
        )
    if isinstance(exc, Http404):
        return error_response(request, 404, "Not found.")
    if isinstance(exc, DjangoPermissionDenied):
        return error_response(request, 403, "Forbidden.")
    if isinstance(exc, RequestDataTooBig):
        return error_response(request, 413, "Request body is too large.")
    if isinstance(exc, UnreadablePostError):
        return unreadable_body_response(request, exc)
    if isinstance(exc, drf_exceptions.ValidationError):
        return error_response(
            request,
            400,
            "The request failed validation.",
            errors=_field_errors_from_drf(exc.detail),
        )
    if isinstance(exc, drf_exceptions.MethodNotAllowed):
        return error_response(request, 405, f"Method {request.method} is not allowed here.")
    if isinstance(exc, drf_exceptions.Throttled):
        wait = int(exc.wait or 1)
        return error_response(request, 429, "Rate limited.", headers={"Retry-After": str(wait)})
    if isinstance(exc, drf_exceptions.APIException):
        message = _DRF_MESSAGES.get(type(exc))
        if message is None:
            detail = exc.detail
            message = str(detail) if isinstance(detail, str) else "Request failed."
        headers = {}
        if exc.status_code == 401:
            headers["WWW-Authenticate"] = "User"
        return error_response(request, exc.status_code, message, headers=headers)
    return None  # a bug: the middleware answers 500 in the error shape and logs it


# Django-level handlers (URLs that never reached a DRF view).
def handler400(request, exception=None):
    return error_response(request, 400, "Bad request.")


def handler403(request, exception=None):
    return error_response(request, 403, "Forbidden.")


def handler404(request, exception=None):
    return error_response(request, 404, f"No such endpoint: {request.path}")


def handler500(request):
    return error_response(request, 500, "Internal error; quote the requestId when reporting it.")
