"""The ``Authorization`` header of contract §1: its parsing, which every authentication of
the platform shares.

``User <secret>, Organization <secret>[, Element <token>]``: comma-separated ``Scheme value``
pairs in any order, schemes case-insensitive. The DRF authentication classes live with the
models they look up: ``tenants/authentication.py`` (platform calls: User + Organization) and
``instances/authentication.py`` (element calls: User + Element, Organization optional, and then
it must match).
"""

import re

from rest_framework.exceptions import AuthenticationFailed

SCHEMES = ("user", "organization", "element")
_WHITESPACE = re.compile(r"\s")
MAX_HEADER_LENGTH = 4096


def parse_authorization(header: str) -> dict[str, str]:
    """``"User a, Organization b"`` -> ``{"user": "a", "organization": "b"}``.

    Raises AuthenticationFailed (401) on anything else."""
    if not header or len(header) > MAX_HEADER_LENGTH:
        raise AuthenticationFailed("Authorization header missing or malformed.")
    credentials: dict[str, str] = {}
    for part in header.split(","):
        pieces = part.strip().split(None, 1)
        if len(pieces) != 2:
            raise AuthenticationFailed("Authorization header malformed: expected 'Scheme value'.")
        scheme, value = pieces[0].lower(), pieces[1].strip()
        if scheme not in SCHEMES or not value or _WHITESPACE.search(value):
            raise AuthenticationFailed("Authorization header malformed.")
        if scheme in credentials:
            raise AuthenticationFailed(f"Authorization header repeats the {pieces[0]} scheme.")
        credentials[scheme] = value
    return credentials


def credentials_of(request) -> dict[str, str] | None:
    """The request's ``Authorization`` credentials by scheme; None when it has none."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if not header:
        return None
    return parse_authorization(header)
