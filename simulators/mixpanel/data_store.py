"""The data-management part of the simulator's state: cohorts, annotations, lookup tables and
identity (reference part 2, sections 1.8, 2, 4, 5). Seeded on every reset; the control API
(``data_management.control``) adds, changes and deletes cohorts and annotations, which
event-polling tests need. Kept apart from ``state.py``: it imports nothing of the endpoints.

All mutations happen under the owning ``State``'s ``lock``.
"""

from __future__ import annotations

import copy
import json
import time
from datetime import UTC, datetime
from typing import Any

from .selector import SelectorError, compile_selector

ID_MANAGEMENT_VERSIONS = ("simplified", "original", "legacy")
# [I] The seeded project uses Original ID Merge, so merge and alias work until a test
# switches it (POST /__sim__/identity {"id_management": "simplified"}).
DEFAULT_ID_MANAGEMENT = "original"
MAX_CLUSTER_IDS = 500  # Original ID Merge (reference part 2 §4)
IDENTITY_EVENTS = ("$identify", "$create_alias", "$merge")
SIMPLIFIED_REFUSAL = (
    "identity events are not allowed when project is using simplified identity management"
)

ANNOTATION_DATE_FORMAT = "%Y-%m-%d %H:%M:%S"
ANNOTATION_USER = {"id": 1, "first_name": "Sim", "last_name": "Admin"}

# Membership of a seeded cohort is computed from the profiles (``selector``) and/or listed.
SEED_COHORTS: tuple[dict, ...] = (
    {
        "id": 1001,
        "name": "Dallas users",
        "description": "Profiles whose $city is Dallas.",
        "created": "2024-02-01 09:00:00",
        "is_visible": 1,
        "selector": 'properties["$city"] == "Dallas"',
    },
    {
        "id": 1002,
        "name": "Enterprise plan",
        "description": "Profiles on the enterprise plan.",
        "created": "2024-03-15 12:30:00",
        "is_visible": 1,
        "selector": 'properties["plan"] == "enterprise"',
    },
    {
        "id": 1003,
        "name": "Hand-picked",
        "description": "A static list.",
        "created": "2024-04-20 18:45:10",
        "is_visible": 0,
        "distinct_ids": ["user-0", "user-1", "user-2"],
    },
)
SEED_TAGS: tuple[dict, ...] = ({"id": 1, "name": "release"}, {"id": 2, "name": "campaign"})
SEED_ANNOTATIONS: tuple[dict, ...] = (
    {"id": 101, "date": "2024-05-01 00:00:00", "description": "v2.0 released", "tags": [1]},
    {"id": 102, "date": "2024-05-10 12:00:00", "description": "Spring campaign", "tags": [2]},
    {"id": 103, "date": "2024-06-01 08:30:00", "description": "Pricing page redesign", "tags": []},
)
SEED_LOOKUP_TABLES: tuple[dict, ...] = (
    {
        "id": "55b4fb2b-7d1e-4a51-9a3c-0c2f1e6b8a01",
        "name": "Accounts",
        "header": ["account_id", "name", "tier"],
        "rows": [["a-1", "Acme", "Gold"], ["a-2", "Globex", "Silver"]],
    },
    {
        "id": "0d9e7c52-1f3a-4c8b-b2d4-6e5f4a3b2c10",
        "name": "Campaigns",
        "header": ["campaign_id", "channel"],
        "rows": [["c-1", "email"]],
    },
)


def now_text() -> str:
    return datetime.now(UTC).strftime(ANNOTATION_DATE_FORMAT)


class DataStore:
    def __init__(self) -> None:
        self.cohorts: dict[int, dict] = {c["id"]: copy.deepcopy(c) for c in SEED_COHORTS}
        self.next_cohort_id = max(self.cohorts) + 1
        self.tags: dict[int, dict] = {t["id"]: dict(t) for t in SEED_TAGS}
        self.annotations: dict[int, dict] = {}
        for seed in SEED_ANNOTATIONS:
            self.annotations[seed["id"]] = {**copy.deepcopy(seed), "user": dict(ANNOTATION_USER)}
        self.next_annotation_id = max(self.annotations) + 1
        self.lookup_tables: dict[str, dict] = {
            t["id"]: copy.deepcopy(t) for t in SEED_LOOKUP_TABLES
        }
        self.lookup_table_calls: list[float] = []  # replacement times, for the 24 h limit
        self.id_management = DEFAULT_ID_MANAGEMENT
        self.clusters: dict[str, set[str]] = {}  # distinct id -> its merged cluster (shared set)
        self.aliases: dict[str, str] = {}  # alias -> distinct id

    # --- cohorts ----------------------------------------------------------------------------
    def cohort_members(self, state: Any, cohort: dict) -> list[str]:
        """The cohort's distinct ids with a live profile, in profile order, listed ids last.
        The caller holds ``state.profiles_lock``."""
        members: list[str] = []
        selector = cohort.get("selector")
        if selector:
            predicate = compile_selector(selector).raw  # type: ignore[attr-defined]
            get = state.get_profile
            members = [did for did in state.iter_profile_ids() if predicate(get(did), None)]
        seen = set(members)
        for did in cohort.get("distinct_ids") or ():
            if did not in seen and state.get_profile(did) is not None:
                seen.add(did)
                members.append(did)
        return members

    def cohort_view(self, state: Any, cohort: dict, project_id: int) -> dict:
        """A cohort as ``/cohorts/list`` shows it."""
        return {
            "count": len(self.cohort_members(state, cohort)),
            "is_visible": cohort["is_visible"],
            "description": cohort["description"],
            "created": cohort["created"],
            "project_id": project_id,
            "id": cohort["id"],
            "name": cohort["name"],
        }

    def put_cohort(self, data: Any, cohort_id: int | None = None) -> dict:
        """Add (no id) or change a cohort from the control API. Raises ValueError."""
        if not isinstance(data, dict):
            raise ValueError("a cohort must be a JSON object")
        keys = {"id", "name", "description", "created", "is_visible", "selector", "distinct_ids"}
        unknown = set(data) - keys
        if unknown:
            raise ValueError(f"unknown cohort keys: {', '.join(sorted(unknown))}")
        if cohort_id is None:
            cohort_id = data.get("id", self.next_cohort_id)
            if not isinstance(cohort_id, int) or cohort_id in self.cohorts:
                raise ValueError("cohort id must be a new integer")
            cohort = {
                "id": cohort_id,
                "name": "",
                "description": "",
                "created": now_text(),
                "is_visible": 1,
            }
        else:
            cohort = copy.deepcopy(self.cohorts.get(cohort_id))
            if cohort is None:
                raise KeyError(cohort_id)
        for key in ("name", "description", "created"):
            if key in data:
                if not isinstance(data[key], str):
                    raise ValueError(f"{key} must be a string")
                cohort[key] = data[key]
        if "created" in data:
            parse_annotation_date(data["created"], "created")
        if "is_visible" in data:
            if data["is_visible"] not in (0, 1, True, False):
                raise ValueError("is_visible must be 0 or 1")
            cohort["is_visible"] = int(data["is_visible"])
        if "selector" in data:
            if data["selector"] is not None:
                try:
                    compile_selector(data["selector"])
                except (SelectorError, TypeError) as exc:
                    raise ValueError(f"invalid selector: {exc}") from None
            cohort["selector"] = data["selector"]
        if "distinct_ids" in data:
            ids = data["distinct_ids"]
            if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
                raise ValueError("distinct_ids must be a list of strings")
            cohort["distinct_ids"] = list(ids)
        self.cohorts[cohort["id"]] = cohort
        self.next_cohort_id = max(self.next_cohort_id, cohort["id"] + 1)
        return cohort

    # --- annotations ------------------------------------------------------------------------
    def annotation_view(self, annotation: dict) -> dict:
        return {
            "id": annotation["id"],
            "date": annotation["date"],
            "description": annotation["description"],
            "user": dict(annotation["user"]),
            "tags": [dict(self.tags[t]) for t in annotation["tags"] if t in self.tags],
        }

    def add_annotation(self, *, date: str, description: str, tags: list[int]) -> dict:
        annotation = {
            "id": self.next_annotation_id,
            "date": date,
            "description": description,
            "tags": list(tags),
            "user": dict(ANNOTATION_USER),
        }
        self.next_annotation_id += 1
        self.annotations[annotation["id"]] = annotation
        return annotation

    def put_annotation(self, data: Any, annotation_id: int | None = None) -> dict:
        """Add or change an annotation from the control API (``date`` may change here, which
        the public API does not allow). Raises ValueError, KeyError."""
        if not isinstance(data, dict):
            raise ValueError("an annotation must be a JSON object")
        unknown = set(data) - {"id", "date", "description", "tags"}
        if unknown:
            raise ValueError(f"unknown annotation keys: {', '.join(sorted(unknown))}")
        if annotation_id is None:
            annotation = self.add_annotation(
                date=parse_annotation_date(data.get("date", now_text()), "date"),
                description=_text(data.get("description", ""), "description"),
                tags=self.check_tags(data.get("tags", [])),
            )
            return annotation
        annotation = self.annotations.get(annotation_id)
        if annotation is None:
            raise KeyError(annotation_id)
        if "date" in data:
            annotation["date"] = parse_annotation_date(data["date"], "date")
        if "description" in data:
            annotation["description"] = _text(data["description"], "description")
        if "tags" in data:
            annotation["tags"] = self.check_tags(data["tags"])
        return annotation

    def check_tags(self, tags: Any) -> list[int]:
        if not isinstance(tags, list) or not all(
            isinstance(t, int) and not isinstance(t, bool) for t in tags
        ):
            raise ValueError("tags must be an array of tag ids")
        missing = [t for t in tags if t not in self.tags]
        if missing:
            raise ValueError(f"unknown tag ids: {', '.join(map(str, missing))}")
        return list(dict.fromkeys(tags))

    # --- identity ---------------------------------------------------------------------------
    def identity_error(self, event: dict) -> tuple[str, str] | None:
        """``(field, message)`` when an otherwise valid imported event is an identity event the
        project refuses; applies it when accepted. The caller holds the state's lock."""
        name = event.get("event")
        if name not in IDENTITY_EVENTS:
            return None
        if self.id_management == "simplified":
            return "event", SIMPLIFIED_REFUSAL
        props = event["properties"]
        if name == "$merge":
            if self.id_management != "original":
                return "event", "$merge is only supported by Original ID Merge"
            ids = props.get("$distinct_ids")
            if (
                not isinstance(ids, list)
                or len(ids) != 2
                or not all(isinstance(i, str) and i for i in ids)
            ):
                return (
                    "properties.$distinct_ids",
                    "'properties.$distinct_ids' is invalid: must be an array of exactly 2 "
                    "non-empty strings",
                )
            return self._merge(ids[0], ids[1])
        if name == "$identify":
            if self.id_management != "original":
                return "event", "$identify is only supported by Original ID Merge"
            identified, anon = props.get("$identified_id"), props.get("$anon_id")
            if not isinstance(identified, str) or not isinstance(anon, str):
                return "properties.$identified_id", "'$identified_id' and '$anon_id' are required"
            return self._merge(identified, anon)
        alias, distinct_id = props.get("alias"), props.get("distinct_id")
        if not isinstance(alias, str) or not alias:
            return "properties.alias", "'properties.alias' is required"
        if str(distinct_id) == alias:
            return "properties.alias", "'properties.alias' must differ from distinct_id"
        mapped = self.aliases.get(alias)
        if mapped is not None and mapped != str(distinct_id):
            return "properties.alias", f"alias {alias!r} already maps to another distinct_id"
        self.aliases[alias] = str(distinct_id)
        return None

    def _merge(self, a: str, b: str) -> tuple[str, str] | None:
        cluster_a = self.clusters.get(a, {a})
        cluster_b = self.clusters.get(b, {b})
        if cluster_a is cluster_b:
            return None
        merged = cluster_a | cluster_b
        if len(merged) > MAX_CLUSTER_IDS:
            return (
                "properties.$distinct_ids",
                f"merge would create an identity cluster of more than {MAX_CLUSTER_IDS} ids",
            )
        for distinct_id in merged:
            self.clusters[distinct_id] = merged
        return None

    def identity_view(self) -> dict:
        clusters = {id(c): sorted(c) for c in self.clusters.values()}
        return {
            "id_management": self.id_management,
            "clusters": sorted(clusters.values()),
            "aliases": dict(self.aliases),
        }

    # --- lookup tables ----------------------------------------------------------------------
    def count_lookup_table_call(self, limit: int) -> bool:
        """Whether another replacement fits the rolling 24-hour limit (and counts it)."""
        now = time.monotonic()
        self.lookup_table_calls = [t for t in self.lookup_table_calls if t > now - 86400]
        if len(self.lookup_table_calls) >= limit:
            return False
        self.lookup_table_calls.append(now)
        return True


def cohort_filter_members(state: Any, raw_filter: Any) -> list[str] | None:
    """engage's ``filter_by_cohort`` (a JSON string, or an object from a JSON body) as the
    cohort's members, or None without one; ValueError when malformed or unknown. The caller
    holds ``state.profiles_lock``."""
    if raw_filter in (None, ""):
        return None
    value = raw_filter
    if isinstance(raw_filter, str):
        try:
            value = json.loads(raw_filter)
        except ValueError:
            raise ValueError("filter_by_cohort must be valid JSON") from None
    cohort_id = value.get("id") if isinstance(value, dict) else None
    if isinstance(cohort_id, str) and cohort_id.isdigit():
        cohort_id = int(cohort_id)
    if not isinstance(cohort_id, int) or isinstance(cohort_id, bool):
        raise ValueError('filter_by_cohort must be {"id": <cohort id>}')
    with state.lock:
        data: DataStore = state.data_management
        cohort = data.cohorts.get(cohort_id)
        if cohort is None:
            raise ValueError(f"cohort {cohort_id} does not exist")
        return data.cohort_members(state, cohort)


def _text(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string")
    return value


def parse_annotation_date(value: Any, name: str) -> str:
    """``YYYY-MM-DD HH:MM:SS`` (or a bare date, as midnight); raises ValueError."""
    if isinstance(value, str):
        for fmt in (ANNOTATION_DATE_FORMAT, "%Y-%m-%d"):
            try:
                return datetime.strptime(value, fmt).strftime(ANNOTATION_DATE_FORMAT)
            except ValueError:
                continue
    raise ValueError(f"{name} must be formatted YYYY-MM-DD HH:MM:SS")
