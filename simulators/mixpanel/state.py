"""In-memory simulator state: accounts, profiles overlay, recordings, counters.

One :class:`State` instance is shared by all handler threads; every mutation happens under
``state.lock``.  Reads of plain scalars (ints/strings swapped atomically) skip the lock.
"""

from __future__ import annotations

import copy
import secrets
import threading
import time
from collections import OrderedDict, deque
from datetime import UTC, datetime
from typing import Any

from . import changes, datagen
from .data_store import DataStore
from .exported import IMPORTED, AddedEvents

__all__ = [
    "DEFAULT_API_SECRET",
    "DEFAULT_GDPR_TOKEN",
    "DEFAULT_GROUP_KEYS",
    "DEFAULT_ORGANIZATION_ID",
    "DEFAULT_PROJECT_ID",
    "DEFAULT_PROJECT_TOKEN",
    "DEFAULT_SA_SECRET",
    "DEFAULT_SA_USERNAME",
    "ROLES",
    "State",
]

DEFAULT_ORGANIZATION_ID = 1001
DEFAULT_PROJECT_ID = 2002
DEFAULT_SA_USERNAME = "sim-admin.a1b2c3.mp-service-account"
DEFAULT_SA_SECRET = "sim-sa-secret"
DEFAULT_API_SECRET = "sim-api-secret"
DEFAULT_PROJECT_TOKEN = "sim-project-token"
DEFAULT_GDPR_TOKEN = "sim-gdpr-oauth-token"
DEFAULT_GROUP_KEYS = {"company_id": -1405123841946871899}
DEFAULT_CREATED = "2024-01-01T00:00:00Z"
PRIVACY_TASK_STATUSES = ("PENDING", "STAGING", "STARTED", "SUCCESS", "FAILURE")

ROLES = ("owner", "admin", "analyst", "consumer")

MAX_RECORDED_REQUESTS = 1000
MAX_KEPT_EVENTS = 10_000
MAX_SESSIONS = 256

# Rate-limit defaults, from the reference (section 9).
DEFAULT_RATE_LIMITS: dict[str, Any] = {
    "enabled": False,
    "query_per_hour": 60,
    "query_concurrent": 5,
    "export_per_hour": 60,
    "export_per_second": 3,
    "export_concurrent": 100,
    "ingest_events_per_minute": 1_800_000,  # ~30k events/s
    "ingest_bytes_per_minute": 2 * 1024**3,  # 2 GB/min uncompressed
    "gdpr_per_second": 1,  # GDPR API (privacy.py)
}

# Everything settable through POST /__sim__/config (plus the special keys handled in
# State.configure).  Values marked [I] in the reference are the configurable guesses.
DEFAULT_SETTINGS: dict[str, Any] = {
    "organization_id": DEFAULT_ORGANIZATION_ID,
    "project_id": DEFAULT_PROJECT_ID,
    "project_token": DEFAULT_PROJECT_TOKEN,
    "api_secret": DEFAULT_API_SECRET,
    "gdpr_token": DEFAULT_GDPR_TOKEN,  # privacy.py
    "privacy_task_status": "PENDING",  # privacy.py: the status new tasks start in
    "group_keys": DEFAULT_GROUP_KEYS,  # groups.py: group key name -> data group id
    "events_per_day": 0,
    "import_max_bytes": 10 * 1024 * 1024,
    "import_max_events": 2000,
    "track_max_events": 2000,
    "engage_max_updates": 2000,
    "engage_max_page_size": 1000,
    # [I] what an unknown/expired engage session_id does: "error" (400) or "recompute".
    "engage_unknown_session": "error",
    "engage_session_ttl": 3600,
    # [I] status + message for bad credentials on the query/export APIs.  AIRBYTE treats
    # 400 + "Unable to authenticate request" as expired credentials; others use 401.
    "query_auth_error_status": 401,
    "query_auth_error_message": "Unable to authenticate request",
    # [I] engage: repeat "total" on pages > 0 (Airbyte believes it is only on page 0).
    "engage_total_on_later_pages": True,
    # [I] GET /service-accounts/{id}: enveloped {"status","results"} (True) or bare object.
    "sa_get_enveloped": True,
    # [C] reject export to_date later than today (UTC) with a 400.
    "export_reject_future_to_date": False,
    "export_max_limit": 100_000,
    # [I] /track: reject events older than this many days (0 disables).
    "track_max_age_days": 5,
    "export_chunk_bytes": 65536,
}


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _iso_from_ts(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class ServiceAccount:
    __slots__ = (
        "id",
        "username",
        "secret",
        "role",
        "projects",
        "expires",
        "expires_ts",
        "created",
        "creator",
        "last_used",
    )

    def __init__(
        self,
        id: int,
        username: str,
        secret: str,
        role: str = "owner",
        projects: dict[int, str] | None = None,
        expires: str | None = None,
        created: str | None = None,
        creator: int | None = None,
    ) -> None:
        self.id = id
        self.username = username
        self.secret = secret
        self.role = role
        self.projects: dict[int, str] = dict(projects or {})
        self.expires = expires
        self.expires_ts = _parse_expiry(expires)
        self.created = created or now_iso()
        self.creator = creator
        self.last_used: float | None = None

    def read(self) -> dict:
        """ServiceAccountRead (SA-OAS)."""
        return {
            "id": self.id,
            "username": self.username,
            "last_used": _iso_from_ts(self.last_used),
            "expires": self.expires,
            "creator": self.creator,
            "created": self.created,
            "user": self.id,
        }

    def admin_view(self) -> dict:
        d = self.read()
        d["secret"] = self.secret
        d["role"] = self.role
        d["projects"] = [{"id": pid, "role": r} for pid, r in self.projects.items()]
        return d

    def expired(self, now: float) -> bool:
        return self.expires_ts is not None and self.expires_ts <= now


def _parse_expiry(expires: str | None) -> float | None:
    if expires is None:
        return None
    dt = parse_datetime(expires)
    return dt.timestamp() if dt else None


def parse_datetime(value: str) -> datetime | None:
    text = value.strip()
    if text.endswith("Z") or text.endswith("z"):
        text = text[:-1] + "+00:00"
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt


class RateWindow:
    """Sliding window counter (timestamps in a deque) plus a concurrency gauge."""

    __slots__ = ("hits", "running")

    def __init__(self) -> None:
        self.hits: deque[float] = deque()
        self.running = 0

    def count_since(self, since: float) -> int:
        hits = self.hits
        while hits and hits[0] < since:
            hits.popleft()
        return len(hits)


class State:
    def __init__(self, **overrides: Any) -> None:
        self.lock = threading.RLock()
        # Guards the profile overlay and engage evaluation (kept apart from ``lock`` so a long
        # engage scan doesn't stall imports and recordings).
        self.profiles_lock = threading.RLock()
        self._overrides = dict(overrides)
        self.reset()

    # ----------------------------------------------------------------------------------------
    # lifecycle
    # ----------------------------------------------------------------------------------------
    def reset(self) -> None:
        # Lock order everywhere: profiles_lock before lock.
        with self.profiles_lock, self.lock:
            s = copy.deepcopy(DEFAULT_SETTINGS)
            self.settings: dict[str, Any] = s
            self.rate_limits: dict[str, Any] = dict(DEFAULT_RATE_LIMITS)
            self.service_accounts: dict[int, ServiceAccount] = {}
            self.sa_by_username: dict[str, ServiceAccount] = {}
            self.next_sa_id = 2
            self._add_sa(
                ServiceAccount(
                    1,
                    DEFAULT_SA_USERNAME,
                    DEFAULT_SA_SECRET,
                    "owner",
                    {DEFAULT_PROJECT_ID: "owner"},
                    created=DEFAULT_CREATED,
                    creator=None,
                )
            )
            self.profile_count = 0
            # distinct_id -> properties dict (None = deleted).  Generated profiles are only
            # copied in here once mutated; extra (non-generated) profiles live here too.
            self.overlay: dict[str, dict | None] = {}
            self.extra_order: list[str] = []  # insertion order of non-generated profiles
            self.sessions: OrderedDict[str, tuple[float, Any]] = OrderedDict()
            self.recorded: deque = deque(maxlen=MAX_RECORDED_REQUESTS)
            # What /import accepted and POST /__sim__/events added: the export's (exported.py).
            self.added_events = AddedEvents(MAX_KEPT_EVENTS)
            self.imported_count = 0
            self.tracked: deque = deque(maxlen=MAX_KEPT_EVENTS)
            self.tracked_count = 0
            self.engage_updates_count = 0
            self.group_profiles: dict[tuple[str, str], dict] = {}  # groups.py
            self.privacy_tasks: dict[str, dict] = {}  # privacy.py
            self.privacy_calls: deque = deque()  # privacy.py: recent call times, for its limit
            self.query_windows: dict[int, RateWindow] = {}
            self.export_windows: dict[int, RateWindow] = {}
            self.ingest_windows: dict[int, deque] = {}
            self.data_management = DataStore()  # cohorts, annotations, lookup tables, identity
            if self._overrides:
                self.configure(self._overrides)

    def _add_sa(self, sa: ServiceAccount) -> None:
        self.service_accounts[sa.id] = sa
        self.sa_by_username[sa.username] = sa

    # ----------------------------------------------------------------------------------------
    # configuration
    # ----------------------------------------------------------------------------------------
    def configure(self, cfg: dict[str, Any]) -> dict:
        """Apply a config dict (POST /__sim__/config).  Raises ValueError on bad input."""
        if not isinstance(cfg, dict):
            raise ValueError("config must be a JSON object")
        with self.profiles_lock, self.lock:
            unknown = [
                k
                for k in cfg
                if k not in DEFAULT_SETTINGS
                and k
                not in (
                    "rate_limits",
                    "profiles",
                    "service_accounts",
                    "service_account_username",
                    "service_account_secret",
                )
            ]
            if unknown:
                raise ValueError(f"unknown config keys: {', '.join(sorted(unknown))}")
            for key, value in cfg.items():
                if key in DEFAULT_SETTINGS:
                    default = DEFAULT_SETTINGS[key]
                    if isinstance(default, bool):
                        if not isinstance(value, bool):
                            raise ValueError(f"{key} must be a boolean")
                    elif isinstance(default, int):
                        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                            raise ValueError(f"{key} must be a non-negative integer")
                    elif isinstance(default, str) and not isinstance(value, str):
                        raise ValueError(f"{key} must be a string")
            if "engage_unknown_session" in cfg and cfg["engage_unknown_session"] not in (
                "error",
                "recompute",
            ):
                raise ValueError("engage_unknown_session must be 'error' or 'recompute'")
            groups = cfg.get("group_keys", {})
            if not isinstance(groups, dict) or not all(type(v) is int for v in groups.values()):
                raise ValueError("group_keys must be an object of group key names to integers")
            if cfg.get("privacy_task_status", "PENDING") not in PRIVACY_TASK_STATUSES:
                raise ValueError(f"privacy_task_status must be one of {PRIVACY_TASK_STATUSES}")
            old_project = self.settings["project_id"]
            for key, value in cfg.items():
                if key in DEFAULT_SETTINGS:
                    self.settings[key] = value
            new_project = self.settings["project_id"]
            if new_project != old_project:
                for sa in self.service_accounts.values():
                    if old_project in sa.projects:
                        sa.projects[new_project] = sa.projects.pop(old_project)
            if "rate_limits" in cfg:
                rl = cfg["rate_limits"]
                if isinstance(rl, bool):
                    rl = {"enabled": rl}
                if not isinstance(rl, dict):
                    raise ValueError("rate_limits must be a boolean or an object")
                for k, v in rl.items():
                    if k not in DEFAULT_RATE_LIMITS:
                        raise ValueError(f"unknown rate_limits key {k!r}")
                    if k == "enabled":
                        if not isinstance(v, bool):
                            raise ValueError("rate_limits.enabled must be a boolean")
                    elif isinstance(v, bool) or not isinstance(v, int) or v < 0:
                        raise ValueError(f"rate_limits.{k} must be a non-negative integer")
                self.rate_limits.update(rl)
                self.query_windows.clear()
                self.export_windows.clear()
                self.ingest_windows.clear()
            if "profiles" in cfg:
                p = cfg["profiles"]
                if isinstance(p, int) and not isinstance(p, bool):
                    p = {"count": p}
                if not isinstance(p, dict) or not isinstance(p.get("count"), int) or p["count"] < 0:
                    raise ValueError('profiles must be {"count": <non-negative int>}')
                self.profile_count = p["count"]
                self.overlay.clear()
                self.extra_order.clear()
                self.sessions.clear()
            if "service_account_username" in cfg or "service_account_secret" in cfg:
                sa = self.service_accounts.get(1)
                if sa is None:
                    raise ValueError("seeded service account 1 was deleted")
                uname = cfg.get("service_account_username", sa.username)
                secret = cfg.get("service_account_secret", sa.secret)
                if not isinstance(uname, str) or not isinstance(secret, str):
                    raise ValueError("service account username/secret must be strings")
                self.sa_by_username.pop(sa.username, None)
                sa.username, sa.secret = uname, secret
                self.sa_by_username[uname] = sa
            if "service_accounts" in cfg:
                self._replace_service_accounts(cfg["service_accounts"])
            return self.config_view()

    def _replace_service_accounts(self, items: Any) -> None:
        if not isinstance(items, list):
            raise ValueError("service_accounts must be a list")
        new: list[ServiceAccount] = []
        next_id = 1
        for item in items:
            if not isinstance(item, dict):
                raise ValueError("service_accounts items must be objects")
            uname, secret = item.get("username"), item.get("secret")
            if not isinstance(uname, str) or not isinstance(secret, str):
                raise ValueError("service_accounts items need string username and secret")
            role = item.get("role", "owner")
            if role not in ROLES:
                raise ValueError(f"invalid role {role!r}")
            sa_id = item.get("id", next_id)
            if not isinstance(sa_id, int):
                raise ValueError("service account id must be an integer")
            projects = item.get("projects")
            if projects is None:
                pmap = {self.settings["project_id"]: role}
            else:
                pmap = {}
                for p in projects:
                    if isinstance(p, int):
                        pmap[p] = role
                    elif isinstance(p, dict) and isinstance(p.get("id"), int):
                        pmap[p["id"]] = p.get("role", role)
                    else:
                        raise ValueError("projects items must be ints or {id, role}")
            new.append(
                ServiceAccount(
                    sa_id,
                    uname,
                    secret,
                    role,
                    pmap,
                    item.get("expires"),
                    item.get("created", DEFAULT_CREATED),
                )
            )
            next_id = max(next_id, sa_id) + 1
        self.service_accounts.clear()
        self.sa_by_username.clear()
        for sa in new:
            self._add_sa(sa)
        self.next_sa_id = next_id

    def config_view(self) -> dict:
        with self.lock:
            out = dict(self.settings)
            out["rate_limits"] = dict(self.rate_limits)
            out["profiles"] = {"count": self.profile_count}
            sa = self.service_accounts.get(1)
            if sa is not None:
                out["service_account_username"] = sa.username
                out["service_account_secret"] = sa.secret
            return out

    # ----------------------------------------------------------------------------------------
    # service accounts
    # ----------------------------------------------------------------------------------------
    def create_service_account(
        self,
        name: str,
        role: str,
        expires: str | None,
        projects: dict[int, str],
        creator: int | None,
    ) -> tuple[ServiceAccount, str]:
        with self.lock:
            sa_id = self.next_sa_id
            self.next_sa_id += 1
            username = f"{name}.{secrets.token_hex(3)}.mp-service-account"
            secret = secrets.token_hex(16)
            sa = ServiceAccount(
                sa_id, username, secret, role, projects, expires, now_iso(), creator
            )
            self._add_sa(sa)
            return sa, secret

    def delete_service_account(self, sa_id: int) -> bool:
        with self.lock:
            sa = self.service_accounts.pop(sa_id, None)
            if sa is None:
                return False
            self.sa_by_username.pop(sa.username, None)
            return True

    # ----------------------------------------------------------------------------------------
    # profiles
    # ----------------------------------------------------------------------------------------
    def get_profile(self, distinct_id: str) -> dict | None:
        """Current properties of a profile (the live dict; copy before mutating outside)."""
        ov = self.overlay
        if distinct_id in ov:
            return ov[distinct_id]
        idx = datagen.profile_index(distinct_id, self.profile_count)
        if idx is None:
            return None
        return datagen.profile_properties(idx)

    def iter_profile_ids(self):
        """All live distinct_ids in deterministic order: generated by index, then extras."""
        ov = self.overlay
        if not ov:
            yield from (f"user-{i}" for i in range(self.profile_count))
            return
        for i in range(self.profile_count):
            did = f"user-{i}"
            if did in ov and ov[did] is None:
                continue
            yield did
        for did in self.extra_order:
            if ov.get(did) is not None:
                yield did

    def mutable_profile(self, distinct_id: str) -> dict:
        """Profile dict in the overlay (created if missing).  Caller holds profiles_lock."""
        ov = self.overlay
        props = ov.get(distinct_id)
        if props is not None:
            return props
        idx = datagen.profile_index(distinct_id, self.profile_count)
        if distinct_id in ov:  # deleted earlier: recreate empty
            props = {}
        elif idx is not None:
            props = datagen.profile_properties(idx)
        else:
            props = {}
            self.extra_order.append(distinct_id)
        ov[distinct_id] = props
        return props

    def profile_exists(self, distinct_id: str) -> bool:
        return self.get_profile(distinct_id) is not None

    def delete_profile(self, distinct_id: str) -> None:
        if self.get_profile(distinct_id) is not None:
            self.overlay[distinct_id] = None

    # ----------------------------------------------------------------------------------------
    # engage sessions
    # ----------------------------------------------------------------------------------------
    def new_session(self, matched: Any) -> str:
        sid = f"{int(time.time())}-{secrets.token_hex(3).upper()}"
        with self.lock:
            self.sessions[sid] = (time.monotonic(), matched)
            while len(self.sessions) > MAX_SESSIONS:
                self.sessions.popitem(last=False)
        return sid

    def get_session(self, sid: str) -> Any | None:
        with self.lock:
            entry = self.sessions.get(sid)
            if entry is None:
                return None
            created, matched = entry
            ttl = self.settings["engage_session_ttl"]
            if ttl and time.monotonic() - created > ttl:
                del self.sessions[sid]
                return None
            self.sessions.move_to_end(sid)
            return matched

    # ----------------------------------------------------------------------------------------
    # recordings
    # ----------------------------------------------------------------------------------------
    def add_imported(self, events: list) -> None:
        # Stored as Mixpanel stores them: at the simulator's clock (their processing time).
        processing_ms = int(changes.now(self) * 1000)
        self.added_events.add(events, source=IMPORTED, processing_ms=processing_ms)
        with self.lock:
            self.imported_count += len(events)

    def add_tracked(self, events: list) -> None:
        with self.lock:
            self.tracked.extend(events)
            self.tracked_count += len(events)

    def service_accounts_view(self) -> list[dict]:
        with self.lock:
            return [sa.admin_view() for sa in self.service_accounts.values()]

    # ----------------------------------------------------------------------------------------
    # rate limits
    # ----------------------------------------------------------------------------------------
    def acquire_query_slot(self, project_id: int, kind: str) -> str | None:
        """Count one query/export request.  Returns an error message when over the limit."""
        rl = self.rate_limits
        now = time.monotonic()
        with self.lock:
            if kind == "export":
                win = self.export_windows.setdefault(project_id, RateWindow())
                per_hour, concurrent = rl["export_per_hour"], rl["export_concurrent"]
                per_second = rl["export_per_second"]
            else:
                win = self.query_windows.setdefault(project_id, RateWindow())
                per_hour, concurrent = rl["query_per_hour"], rl["query_concurrent"]
                per_second = 0
            in_hour = win.count_since(now - 3600)
            if kind == "export" and win.running >= concurrent:
                return "too many export requests in progress for this project"
            if per_second:
                in_second = sum(1 for t in win.hits if t >= now - 1.0)
                if in_second >= per_second:
                    return (
                        f"Query rate limit exceeded for project_id: {project_id}. "
                        f"{in_second + 1}/{per_second} queries in the last second."
                    )
            if in_hour >= per_hour or win.running >= concurrent:
                return (
                    f"Query rate limit exceeded for project_id: {project_id}. "
                    f"{win.running + 1}/{concurrent} queries running concurrently and "
                    f"{in_hour + 1}/{per_hour} queries running in the last hour. "
                    "For more information, please consult our documentation at "
                    "https://help.mixpanel.com/hc/en-us/articles/"
                    "115004602563-Rate-Limits-for-Export-API-Endpoints"
                )
            win.hits.append(now)
            win.running += 1
            return None

    def release_query_slot(self, project_id: int, kind: str) -> None:
        with self.lock:
            windows = self.export_windows if kind == "export" else self.query_windows
            win = windows.get(project_id)
            if win is not None and win.running > 0:
                win.running -= 1

    def ingest_allowed(self, project_id: int, events: int, nbytes: int) -> bool:
        rl = self.rate_limits
        now = time.monotonic()
        with self.lock:
            win = self.ingest_windows.setdefault(project_id, deque())
            while win and win[0][0] < now - 60:
                win.popleft()
            ev = sum(e for _, e, _ in win)
            by = sum(b for _, _, b in win)
            if ev + events > rl["ingest_events_per_minute"]:
                return False
            if by + nbytes > rl["ingest_bytes_per_minute"]:
                return False
            win.append((now, events, nbytes))
            return True
