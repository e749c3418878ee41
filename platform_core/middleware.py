"""Request ids and the last line of defence for the error shape (contract §2)."""

import logging
import secrets

from django.contrib.auth.middleware import AuthenticationMiddleware
from django.contrib.messages.middleware import MessageMiddleware
from django.contrib.sessions.middleware import SessionMiddleware
from django.core.exceptions import (
    BadRequest,
    PermissionDenied,
    RequestDataTooBig,
    SuspiciousOperation,
)
from django.http import Http404, UnreadablePostError

from platform_core.exceptions import error_response, unreadable_body_response

logger = logging.getLogger("platform.requests")

REQUEST_ID_HEADER = "Elements-Request-Id"


_DEFAULT_MESSAGES = {
    400: "Bad request.",
    403: "Forbidden.",
    404: "No such endpoint.",
    405: "Method not allowed.",
    500: "Internal error; quote the requestId when reporting it.",
}
ADMIN_PATH_PREFIX = "/admin/"
_NON_API_PREFIXES = (ADMIN_PATH_PREFIX, "/static/")


def _is_json(response) -> bool:
    return response.get("Content-Type", "").startswith("application/json")


def _is_api_path(path: str) -> bool:
    return not path.startswith(_NON_API_PREFIXES)


def new_request_id() -> str:
    return secrets.token_hex(12)


class RequestIdMiddleware:
    """Gives every request an id, answers oversize bodies with 413 before reading them, and
    turns any unhandled exception into a 500 in the error shape (never a stack trace)."""

    def __init__(self, get_response):
        self.get_response = get_response
        from django.conf import settings

        self.max_bytes = settings.MAX_REQUEST_BYTES

    def __call__(self, request):
        request.request_id = new_request_id()
        response = (
            self._oversize(request) or self._nul_in_url(request) or self.get_response(request)
        )
        if response.status_code >= 400 and not _is_json(response) and _is_api_path(request.path):
            # Django's own pages (e.g. the DEBUG 404 page) never reach an API client.
            response = error_response(
                request,
                response.status_code,
                _DEFAULT_MESSAGES.get(response.status_code, "Request failed."),
            )
        response[REQUEST_ID_HEADER] = request.request_id
        return response

    def _oversize(self, request):
        raw = request.META.get("CONTENT_LENGTH") or "0"
        try:
            length = int(raw)
        except ValueError:
            return error_response(request, 400, "Content-Length is not a number.")
        if length < 0:
            return error_response(request, 400, "Content-Length is negative.")
        if length > self.max_bytes:
            return error_response(
                request,
                413,
                f"Request body of {length} bytes exceeds the limit of {self.max_bytes} bytes.",
            )
        return None

    @staticmethod
    def _nul_in_url(request):
        # PostgreSQL text cannot hold NUL: a %00 reaching a query would be a 500.
        # The raw query string, not request.GET: parsing it here could raise (too many fields).
        query = request.META.get("QUERY_STRING", "")
        if "\x00" in request.path or "\x00" in query or "%00" in query:
            return error_response(request, 400, "The URL contains a NUL character.")
        return None

    def process_exception(self, request, exception):
        if isinstance(exception, RequestDataTooBig):
            return error_response(request, 413, "Request body is too large.")
        if isinstance(exception, UnreadablePostError):
            return unreadable_body_response(request, exception)
        if isinstance(exception, (Http404, PermissionDenied, SuspiciousOperation, BadRequest)):
            return None  # Django answers these itself, through handler404/403/400
        # Logged with the request id only: request bodies may carry credentials.
        logger.error(
            "unhandled %s on %s %s request_id=%s",
            type(exception).__name__,
            request.method,
            request.path,
            getattr(request, "request_id", "-"),
            exc_info=exception,
        )
        return error_response(
            request, 500, "Internal error; quote the requestId when reporting it."
        )


class _AdminOnly:
    """Runs the middleware it is mixed into on the admin's requests only. The admin is the one
    part of the platform that a browser logs in to; everything else authenticates each request
    by its Authorization header and has no use for a session, a Django user or flash messages,
    whose middleware cost an element call about 6 % of its CPU (bench.proxy_overhead's
    profile)."""

    def __call__(self, request):
        if request.path_info.startswith(ADMIN_PATH_PREFIX):
            return super().__call__(request)
        return self.get_response(request)


class AdminSessionMiddleware(_AdminOnly, SessionMiddleware):
    """Django's SessionMiddleware, for the admin's requests only."""


class AdminAuthenticationMiddleware(_AdminOnly, AuthenticationMiddleware):
    """Django's AuthenticationMiddleware (``request.user``), for the admin's requests only; the
    API's views get their user from their own authentication (DRF's, or the element call's)."""


class AdminMessageMiddleware(_AdminOnly, MessageMiddleware):
    """Django's MessageMiddleware, for the admin's requests only."""
