"""A transformation applied to an element's records (contract §9): records from the vendor,
bodies to it, and CEQL ``where`` field names rewritten to the vendor's.

Pure functions over JSON values; what a transformation is and where it is stored is the
``transformations`` app's business. Paths are dot paths with ``[*]`` for "every element of this
array" (``users[*].name`` <- ``Users[*].DisplayName``, element-wise).

Defaults follow Cloud Elements: unmapped fields pass through both ways (``passThrough`` false
drops them), a mapped field's vendor key is not echoed beside its new name, and a value that
cannot be coerced to the field's type is kept as it is.
"""

from __future__ import annotations

import copy
import hashlib
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from elements.framework import ceql

MISSING = object()
_SEGMENT = re.compile(r"^(?P<key>[^\[\]]+)(?P<star>\[\*\])?$")


class PathError(ValueError):
    """A path that is not ``a.b[*].c``."""


def parse_path(path: str) -> tuple[tuple[str, bool], ...]:
    """``"a.b[*].c"`` -> ``(("a", False), ("b", True), ("c", False))``."""
    segments = []
    for part in path.split("."):
        match = _SEGMENT.match(part)
        if not match:
            raise PathError(f"{path!r} is not a dot path (a.b, items[*].name)")
        segments.append((match["key"], bool(match["star"])))
    return tuple(segments)


def get_path(value: Any, segments) -> Any:
    """The value at ``segments``; a ``[*]`` gives a list (None where an element lacks it)."""
    if not segments:
        return value
    (key, star), rest = segments[0], segments[1:]
    if not isinstance(value, dict) or key not in value:
        return MISSING
    child = value[key]
    if not star:
        return get_path(child, rest)
    if not isinstance(child, list):
        return MISSING
    found = [get_path(item, rest) for item in child]
    return [None if item is MISSING else item for item in found]


def set_path(target: dict, segments, value: Any) -> None:
    (key, star), rest = segments[0], segments[1:]
    if star and isinstance(value, list):
        if not rest:
            target[key] = list(value)
            return
        items = target.get(key)
        if not isinstance(items, list):
            items = target[key] = []
        while len(items) < len(value):
            items.append({})
        for index, item_value in enumerate(value):
            if not isinstance(items[index], dict):
                items[index] = {}
            if item_value is not None:
                set_path(items[index], rest, item_value)
        return
    if not rest:
        target[key] = value
        return
    child = target.get(key)
    if not isinstance(child, dict):
        child = target[key] = {}
    set_path(child, rest, value)


def delete_path(target: Any, segments) -> None:
    """Remove the value at ``segments``, and the objects (or arrays of objects) it leaves
    empty."""
    if not isinstance(target, dict) or not segments:
        return
    (key, star), rest = segments[0], segments[1:]
    if key not in target:
        return
    if not rest:
        del target[key]
        return
    child = target[key]
    children = child if star and isinstance(child, list) else [child]
    for item in children:
        delete_path(item, rest)
    emptied = not child if isinstance(child, dict) else star and all(c == {} for c in children)
    if emptied:
        del target[key]


# --- dates -------------------------------------------------------------------------------------

# The Java (SimpleDateFormat) pattern letters Cloud Elements users write, as strftime codes.
_JAVA_TOKENS = re.compile(r"'[^']*'|yyyy|yy|MM|dd|HH|hh|mm|ss|SSS|XXX|a|Z|X|.", re.S)
_STRFTIME = {
    "yyyy": "%Y",
    "yy": "%y",
    "MM": "%m",
    "dd": "%d",
    "HH": "%H",
    "hh": "%I",
    "mm": "%M",
    "ss": "%S",
    "SSS": "%f",
    "a": "%p",
    "Z": "%z",
    "X": "%z",
    "XXX": "%z",
}
DATE_PATTERN_LETTERS = tuple(_STRFTIME)


def strftime_pattern(java_pattern: str) -> str:
    parts = []
    for token in _JAVA_TOKENS.findall(java_pattern):
        if token.startswith("'"):
            parts.append(token[1:-1].replace("%", "%%") or "'")
        else:
            parts.append(_STRFTIME.get(token, token.replace("%", "%%")))
    return "".join(parts)


def _parse_date(value: Any, java_pattern: str | None) -> datetime | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        seconds = value / 1000 if abs(value) > 1e11 else value  # epoch ms or s
        try:
            return datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if not isinstance(value, str):
        return None
    text = value.strip()
    try:
        if java_pattern:
            parsed = datetime.strptime(text, strftime_pattern(java_pattern))
        else:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    try:
        parsed.astimezone(UTC)  # 0001-01-01T00:00:00+01:00 is in year 0 in UTC: kept as given
    except OverflowError:
        return None
    return parsed


def _format_date(moment: datetime, java_pattern: str | None) -> str:
    if not java_pattern:
        # ISO-8601 without a zone, as Mixpanel writes its dates (UTC).
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    text = moment.strftime(strftime_pattern(java_pattern))
    if "SSS" in java_pattern:  # strftime's %f has six digits, Java's SSS three
        micro = moment.strftime("%f")
        text = text.replace(micro, micro[:3], 1)
    return text


# --- one field ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldMapping:
    path: str
    vendor_path: str
    type: str | None = None
    remove_from_vendor: bool = False
    remove_to_vendor: bool = False
    date_pattern: str | None = None  # transformDate: the tenant's pattern
    vendor_date_pattern: str | None = None  # transformDate: the vendor's (default ISO-8601)

    @property
    def segments(self):
        return parse_path(self.path)

    @property
    def vendor_segments(self):
        return parse_path(self.vendor_path)

    def from_vendor(self, value: Any) -> Any:
        return self._each(value, lambda v: self._coerce(v, to_vendor=False))

    def to_vendor(self, value: Any) -> Any:
        return self._each(value, lambda v: self._coerce(v, to_vendor=True))

    def _each(self, value: Any, convert: Callable[[Any], Any]) -> Any:
        if isinstance(value, list) and "[*]" in self.path and self.type != "array":
            return [convert(v) for v in value]
        return convert(value)

    def _coerce(self, value: Any, *, to_vendor: bool) -> Any:
        if value is None:
            return None
        if self.date_pattern is not None or self.type == "date":
            source, target = (
                (self.date_pattern, self.vendor_date_pattern)
                if to_vendor
                else (self.vendor_date_pattern, self.date_pattern)
            )
            moment = _parse_date(value, source)
            return value if moment is None else _format_date(moment, target)
        if to_vendor:
            return value  # the vendor's own types are the element's business
        return coerce(value, self.type)


def coerce(value: Any, kind: str | None) -> Any:
    """``value`` as ``kind`` when it reads as one; else unchanged."""
    if kind == "string" and isinstance(value, int | float | bool):
        return str(value).lower() if isinstance(value, bool) else str(value)
    if kind == "number" and isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return value
        if not math.isfinite(number):
            return value
        return int(number) if number.is_integer() and "." not in value else number
    if kind == "boolean" and isinstance(value, str | int) and not isinstance(value, bool):
        lowered = str(value).strip().lower()
        if lowered in ("true", "1"):
            return True
        if lowered in ("false", "0"):
            return False
    return value


# --- the whole transformation ------------------------------------------------------------------


def _identity(path: str) -> str:
    return path


@dataclass(frozen=True)
class Mapping:
    """A resolved transformation: the object it is called, the element object it maps onto, its
    fields and its object-level pass-through.

    ``write_path``: where the element takes a value it returns at a ``vendorPath`` (Mixpanel
    users: ``$properties.X`` is written as ``$set.X``). ``where_field``: the name a CEQL ``where``
    uses for a ``vendorPath`` (Mixpanel users: ``X``). Both are the element object's."""

    name: str
    vendor_name: str
    fields: tuple[FieldMapping, ...]
    pass_through_from_vendor: bool = True
    pass_through_to_vendor: bool = True
    write_path: Callable[[str], str] = field(default=_identity, compare=False)
    where_field: Callable[[str], str] = field(default=_identity, compare=False)

    def from_vendor(self, record: Any) -> Any:
        if not isinstance(record, dict):
            return record
        result = copy.deepcopy(record) if self.pass_through_from_vendor else {}
        values = []
        for mapped in self.fields:
            source = mapped.vendor_segments
            value = get_path(record, source)
            if value is MISSING:
                # A write's answer holds what was written, where it was written ($set.X).
                source = parse_path(self.write_path(mapped.vendor_path))
                value = get_path(record, source)
            values.append(value)
            if self.pass_through_from_vendor:
                delete_path(result, source)
        for mapped, value in zip(self.fields, values, strict=True):
            if value is MISSING or mapped.remove_from_vendor:
                continue
            set_path(result, mapped.segments, mapped.from_vendor(value))
        return result

    def to_vendor(self, body: Any) -> Any:
        if not isinstance(body, dict):
            return body
        result = copy.deepcopy(body) if self.pass_through_to_vendor else {}
        values = []
        for mapped in self.fields:
            values.append(get_path(body, mapped.segments))
            if self.pass_through_to_vendor:
                delete_path(result, mapped.segments)
        for mapped, value in zip(self.fields, values, strict=True):
            if value is MISSING or mapped.remove_to_vendor:
                continue
            set_path(
                result, parse_path(self.write_path(mapped.vendor_path)), mapped.to_vendor(value)
            )
        return result

    def vendor_field(self, name: str) -> str:
        """The element's ``where`` name for the tenant's field ``name`` (unmapped: itself)."""
        for mapped in self.fields:
            if mapped.path == name:
                return self.where_field(mapped.vendor_path)
        return name

    def vendor_expr(self, expr: ceql.Expr) -> ceql.Expr:
        """A parsed CEQL expression with every field name the vendor's."""
        if isinstance(expr, ceql.And | ceql.Or):
            return replace(expr, items=tuple(self.vendor_expr(e) for e in expr.items))
        if isinstance(expr, ceql.Not):
            return replace(expr, expr=self.vendor_expr(expr.expr))
        return replace(expr, field=self.vendor_field(expr.field))

    def vendor_where(self, where: str) -> str:
        """CEQL text with every field name the vendor's; the rest of the text is unchanged."""
        expr = ceql.parse_where(where)
        spans = sorted(_field_spans(expr, where), reverse=True)
        for start, end, name in spans:
            vendor = self.vendor_field(name)
            if vendor != name:
                where = where[:start] + '"' + vendor.replace('"', '""') + '"' + where[end:]
        return where


_FIELD_TOKEN = re.compile(r'"(?:[^"]|"")+"|`(?:[^`]|``)+`|[^\s=<>!(),]+')


def _field_spans(expr: ceql.Expr, text: str):
    if isinstance(expr, ceql.And | ceql.Or):
        for item in expr.items:
            yield from _field_spans(item, text)
    elif isinstance(expr, ceql.Not):
        yield from _field_spans(expr.expr, text)
    elif expr.position is not None:
        match = _FIELD_TOKEN.match(text, expr.position)
        if match:
            yield match.start(), match.end(), expr.field


def stable_id(*parts: Any) -> str:
    """An id for a record that has none of its own, the same every time it is read."""
    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()[:32]
