"""Every record's top-level ``id`` (contract §9): its primary key, so that a generic mapping
(``vendorPath: "id"``) works on any object.

A primary key of one field is that field's value, unchanged. A composite key (comma-separated
paths, e.g. ``cohort_id,$distinct_id``) is its values joined with ``:`` in the key's order:
cohort 7509's member ``alice`` is ``"7509:alice"``. The joined form is an identifier, not a
format to split: a part may itself contain ``:``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

ID_SEPARATOR = ":"


def joined_id(*parts: Any) -> str:
    """A composite primary key as one ``id``: ``joined_id(7509, "alice") == "7509:alice"``."""
    return ID_SEPARATOR.join(str(p) for p in parts)


def with_id(record: dict, value: Any) -> dict:
    """``record`` with ``id`` first, unless it has one of its own (the vendor's own id wins)."""
    if "id" in record:
        return record
    return {"id": value, **record}


def _at(record: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(record, Mapping) or part not in record:
            return None
        record = record[part]
    return record


def primary_key_id(record: Mapping, primary_key: str) -> Any:
    """The ``id`` a record of an object with this ``primary_key`` carries (None when a part is
    missing): what the conformance suite compares each bulk record's ``id`` with."""
    paths = [p.strip() for p in primary_key.split(",") if p.strip()]
    values = [_at(record, p) for p in paths]
    if not values or any(v is None for v in values):
        return None
    return values[0] if len(values) == 1 else joined_id(*values)
