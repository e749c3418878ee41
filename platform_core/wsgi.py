import codecs
import io
import json
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "platform_core.settings")


def _is_text_charset(content_type: str) -> bool:
    for param in content_type.split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            try:
                return codecs.lookup(value.strip().strip('"'))._is_text_encoding
            except LookupError:
                return True  # unknown charsets are ignored by Django (UTF-8 is used)
    return True


def _error(start_response, status: str, message: str) -> list[bytes]:
    """An answer in the contract's error shape, for requests refused before Django sees them."""
    from platform_core.middleware import REQUEST_ID_HEADER, new_request_id

    request_id = new_request_id()
    body = json.dumps({"requestId": request_id, "message": message}).encode()
    start_response(
        status,
        [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
            (REQUEST_ID_HEADER, request_id),
        ],
    )
    return [body]


class CharsetGuard:
    """Django decodes the query string with the Content-Type's charset while it builds the
    request object, before any middleware: a charset that names a non-text codec (``rot13``,
    ``base64``) would raise there and reach the client as gunicorn's bare 500. Answer 415 in the
    error shape instead."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        if _is_text_charset(environ.get("CONTENT_TYPE", "")):
            return self.app(environ, start_response)
        return _error(
            start_response, "415 Unsupported Media Type", "Unsupported charset: send UTF-8 JSON."
        )


READ_STEP = 64 * 1024


class ChunkedBody:
    """Request bodies without a Content-Length (``Transfer-Encoding: chunked``), read under the
    body limit as they stream in.

    Django (and DRF) read exactly CONTENT_LENGTH bytes of a body, so a chunked body, which has
    none, would read as empty. gunicorn decodes the chunks and says so with
    ``wsgi.input_terminated``: this reads the decoded body, never holding more than the limit
    plus one byte, answers 413 as soon as the limit is passed (without waiting for the rest),
    and hands Django the body with its length. A server that leaves the chunk framing in the
    stream gets 411. Bodies with a Content-Length are refused above the limit, before they are
    read, by ``RequestIdMiddleware``.
    """

    def __init__(self, app, *, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    def __call__(self, environ, start_response):
        if (
            environ.get("CONTENT_LENGTH")
            or "chunked" not in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        ):
            return self.app(environ, start_response)
        if not environ.get("wsgi.input_terminated"):
            return _error(
                start_response,
                "411 Length Required",
                "This server cannot read a chunked body: send Content-Length.",
            )
        stream = environ["wsgi.input"]
        body = io.BytesIO()
        room = self.max_bytes + 1  # one byte past the limit tells an oversize body
        try:
            while room > 0:
                piece = stream.read(min(READ_STEP, room))
                if not piece:
                    break
                body.write(piece)
                room -= len(piece)
        except Exception:  # the server's own errors: a malformed chunk, a client gone
            # The server closes the connection after a body it could not read to its end.
            return _error(
                start_response, "400 Bad Request", "The chunked body is malformed or incomplete."
            )
        if room <= 0:
            return _error(
                start_response,
                "413 Request Entity Too Large",
                f"Request body exceeds the limit of {self.max_bytes} bytes.",
            )
        environ["CONTENT_LENGTH"] = str(body.tell())
        body.seek(0)
        environ["wsgi.input"] = body
        return self.app(environ, start_response)


def _application():
    from django.conf import settings

    django_app = get_wsgi_application()
    return ChunkedBody(CharsetGuard(django_app), max_bytes=settings.MAX_REQUEST_BYTES)


application = _application()


def _settle() -> None:
    """Load what the first request would (URL conf, views, element definitions), then move
    every object alive now out of the garbage collector's reach: the oldest generation's
    collections then walk only what requests create, not the ~100k start-up objects (a full
    collection of those takes tens of milliseconds, paid by whichever request triggers it)."""
    import gc

    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 (imports every view module)
    gc.collect()
    gc.freeze()


_settle()
