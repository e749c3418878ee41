"""Cursor paging of contract §3: ``pageSize`` and ``nextPage``, with the next cursor in the
``Elements-Next-Page-Token`` response header. Cursors are opaque (base64 of the last id)."""

import base64
import json
from collections.abc import Callable

from platform_core.conf import platform_settings
from platform_core.exceptions import ValidationFailed

NEXT_PAGE_HEADER = "Elements-Next-Page-Token"


def encode_token(data: dict) -> str:
    """An opaque next-page token: base64 of a small JSON object."""
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str, is_valid: Callable[[dict], bool]) -> dict:
    """The object inside a token ``encode_token`` made; 400 unless ``is_valid`` accepts it."""
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        if isinstance(data, dict) and is_valid(data):
            return data
    except (ValueError, KeyError, TypeError, UnicodeEncodeError):
        pass
    raise ValidationFailed(
        "nextPage is not a cursor this API issued.",
        errors=[{"field": "nextPage", "message": "invalid cursor"}],
    )


def _valid_after(data: dict) -> bool:
    after = data["after"]
    return isinstance(after, int) and not isinstance(after, bool) and 0 <= after < 2**63


def encode_cursor(after_id: int) -> str:
    return encode_token({"after": after_id})


def decode_cursor(token: str) -> int:
    return decode_token(token, _valid_after)["after"]


def page_params(query) -> tuple[int, int]:
    """(page size, id to continue after) from a request's query parameters."""
    raw_size = query.get("pageSize")
    size = platform_settings.DEFAULT_PAGE_SIZE
    if raw_size not in (None, ""):
        try:
            size = int(raw_size)
        except ValueError:
            size = 0
        limit = platform_settings.MAX_PAGE_SIZE
        if not 1 <= size <= limit:
            raise ValidationFailed(
                "pageSize is out of range.",
                errors=[
                    {
                        "field": "pageSize",
                        "message": f"must be an integer from 1 to {limit}",
                    }
                ],
            )
    token = query.get("nextPage")
    return size, (decode_cursor(token) if token else 0)


def paged_headers(items: list, size: int, id_of=lambda item: item.pk) -> dict:
    """The next-page header when the page is full (one more fetch may still come back empty)."""
    if len(items) >= size and items:
        return {NEXT_PAGE_HEADER: encode_cursor(id_of(items[-1]))}
    return {}
