"""HTTP Basic authentication rules (reference section 2).

Credentials:

* service account ``username:secret`` -- every API; ``project_id`` is required on query,
  export and import, and the account must be a member of that project;
* project API secret ``secret:`` (empty password) -- query, export, import;
* project token ``token:`` (empty password) -- ``/import`` only (``project_id`` optional).

The header value after ``Basic `` may be base64 or plain text (both accepted by Mixpanel).
:func:`authenticate` returns a :class:`Principal` or raises :class:`AuthError`; the server turns
the error into the envelope of the API family that was called.
"""

from __future__ import annotations

import base64
import binascii
import time
from dataclasses import dataclass

from .state import ServiceAccount, State

__all__ = ["AuthError", "Principal", "authenticate", "parse_basic"]

QUERY = "query"
EXPORT = "export"
IMPORT = "import"
APP = "app"
INGEST = "ingest"  # /engage profile updates (optional SA auth instead of $token)


@dataclass(slots=True)
class Principal:
    kind: str  # "sa" | "secret" | "token"
    project_id: int | None
    sa: ServiceAccount | None = None


class AuthError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def parse_basic(header: str | None) -> tuple[str, str] | None:
    """Decode ``Basic <b64 or plain user:secret>``; None when absent or unparseable."""
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    value = value.strip()
    if not value:
        return None
    if ":" not in value:
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            decoded = None
        if decoded is not None and ":" in decoded:
            user, _, pw = decoded.partition(":")
            return user, pw
        return None
    user, _, pw = value.partition(":")
    return user, pw


def _bad(state: State, api: str) -> AuthError:
    if api in (QUERY, EXPORT):
        s = state.settings
        return AuthError(s["query_auth_error_status"], s["query_auth_error_message"])
    return AuthError(401, "Invalid credentials")


def _project_param(raw: str | None, api: str) -> int | None:
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        if api == IMPORT:
            raise AuthError(400, "'project_id' is invalid: must be an integer") from None
        raise AuthError(400, "project_id must be an integer") from None


def authenticate(state: State, header: str | None, api: str, project_id: str | None) -> Principal:
    """Authenticate a request for API family ``api`` (query/export/import/app/ingest)."""
    creds = parse_basic(header)
    if creds is None:
        raise _bad(state, api)
    user, secret = creds
    settings = state.settings
    sa = state.sa_by_username.get(user)
    if sa is not None and secret and secret == sa.secret:
        now = time.time()
        if sa.expired(now):
            raise _bad(state, api)
        sa.last_used = now
        if api == APP:
            return Principal("sa", None, sa)
        pid = _project_param(project_id, api)
        if pid is None:
            if api == IMPORT:
                raise AuthError(400, "'project_id' is required for service account authentication")
            raise AuthError(400, "project_id is required for service account authentication")
        role = sa.projects.get(pid)
        if role is None or pid != settings["project_id"]:
            if api == IMPORT:  # /import never answers 403 (ERR4xx/403)
                raise AuthError(401, "Invalid credentials")
            raise AuthError(403, f"User is not a member of project {pid}")
        if api == IMPORT and role not in ("owner", "admin"):
            raise AuthError(401, "Invalid credentials")
        return Principal("sa", pid, sa)
    if secret == "" and user:
        if api == APP:
            raise AuthError(401, "Invalid credentials")
        if user == settings["api_secret"]:
            return Principal("secret", settings["project_id"])
        if user == settings["project_token"] and api in (IMPORT, INGEST):
            pid = _project_param(project_id, api)
            if pid is not None and pid != settings["project_id"]:
                raise AuthError(401, "Invalid credentials")
            return Principal("token", settings["project_id"])
    raise _bad(state, api)
