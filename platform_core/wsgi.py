import codecs
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
        from platform_core.middleware import REQUEST_ID_HEADER, new_request_id

        request_id = new_request_id()
        body = json.dumps(
            {"requestId": request_id, "message": "Unsupported charset: send UTF-8 JSON."}
        ).encode()
        start_response(
            "415 Unsupported Media Type",
            [
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(body))),
                (REQUEST_ID_HEADER, request_id),
            ],
        )
        return [body]


application = CharsetGuard(get_wsgi_application())


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
