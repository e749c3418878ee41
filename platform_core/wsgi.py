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


class CodingGuard:
    """A body compressed or otherwise coded would be read as if it were the JSON itself: refuse
    a ``Content-Encoding`` other than identity (415) and a ``Transfer-Encoding`` other than
    chunked (501, as RFC 9112 asks of a coding the server does not know)."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        content = environ.get("HTTP_CONTENT_ENCODING", "").strip().lower()
        if content not in ("", "identity"):
            return _error(
                start_response,
                "415 Unsupported Media Type",
                f"Content-Encoding {content[:40]} is not supported: send the body uncompressed.",
            )
        codings = [c.strip().lower() for c in environ.get("HTTP_TRANSFER_ENCODING", "").split(",")]
        unknown = [c for c in codings if c not in ("", "chunked")]
        if unknown:
            return _error(
                start_response,
                "501 Not Implemented",
                f"Transfer-Encoding {unknown[0][:40]} is not supported: send the body chunked "
                "or with a Content-Length.",
            )
        return self.app(environ, start_response)


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


class _DeclaredLengthInput:
    """``wsgi.input`` that raises ``IncompleteBody`` where the body ends before its length. A
    stream's ``read(n)`` returns fewer than ``n`` bytes only at its end, and ``readline`` a line
    without its newline; Django never asks for more than the Content-Length."""

    def __init__(self, stream, length: int):
        self.stream = stream
        self.length = length
        self.received = 0

    def read(self, size=-1):
        wanted = self._wanted(size)
        data = self.stream.read(wanted)
        return self._counted(data, complete=len(data) == wanted)

    def readline(self, size=-1):
        wanted = self._wanted(size)
        line = self.stream.readline(wanted)
        return self._counted(line, complete=len(line) == wanted or line.endswith(b"\n"))

    def _wanted(self, size) -> int:
        left = self.length - self.received
        return left if size is None or size < 0 else min(size, left)

    def _counted(self, data: bytes, *, complete: bool) -> bytes:
        self.received += len(data)
        if not complete:
            from platform_core.exceptions import IncompleteBody

            raise IncompleteBody(
                "The request body ended before its declared length: "
                f"{self.received} of {self.length} bytes (Content-Length) arrived."
            )
        return data


class DeclaredLengthBody:
    """Bodies with a Content-Length are read to that length, or refused.

    gunicorn's reader hands over what arrived when a client closes the connection before the
    end of its body (or stalls past ``WEB_REQUEST_READ_TIMEOUT``, ``gunicorn.conf.py``), without
    an error, and Django would take those bytes as the whole body (a truncated CSV replacing a
    vendor's lookup table, say). The body is still read as the view asks for it, not buffered
    here; a short read raises ``IncompleteBody``, which the views and ``RequestIdMiddleware``
    answer with 400 (``unreadable_body_response``).
    """

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0  # RequestIdMiddleware answers 400
        if length > 0:
            environ["wsgi.input"] = _DeclaredLengthInput(environ["wsgi.input"], length)
        return self.app(environ, start_response)


def _application():
    from django.conf import settings

    django_app = get_wsgi_application()
    return CodingGuard(
        DeclaredLengthBody(
            ChunkedBody(CharsetGuard(django_app), max_bytes=settings.MAX_REQUEST_BYTES)
        )
    )


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
