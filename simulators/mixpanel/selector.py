"""Mixpanel selector-expression evaluator (the ``where`` parameter of engage and export).

A small tokenizer and recursive-descent parser compile an expression into a Python closure
``predicate(properties, event_name=None) -> bool``.  Supported grammar::

    expr       := and_expr ("or" and_expr)*
    and_expr   := not_expr ("and" not_expr)*
    not_expr   := "not" not_expr | comparison
    comparison := operand [ ("==" | "!=" | "<" | ">" | "<=" | ">=") operand
                          | ["not"] "in" operand ]
    operand    := STRING | NUMBER | "-" NUMBER | true | false | null
                | properties[STRING] | event
                | datetime(NUMBER | STRING) | defined(properties[STRING])
                | "(" expr ")"

Semantics: a missing property is ``UNDEFINED``; every comparison involving it is false except
``!=`` which is true.  Comparisons between different types behave the same way.  Datetimes
compare against ISO strings (``YYYY-MM-DDTHH:MM:SS``) and against numbers (epoch seconds).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

__all__ = ["UNDEFINED", "SelectorError", "compile_selector", "evaluate"]


class SelectorError(ValueError):
    """Raised for a syntactically or semantically invalid expression."""


class _Undefined:
    __slots__ = ()

    def __repr__(self) -> str:
        return "undefined"

    def __bool__(self) -> bool:
        return False


UNDEFINED = _Undefined()

Predicate = Callable[[dict, Any], bool]
Getter = Callable[[dict, Any], Any]

_TOKEN_RE = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<num>\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)
  | (?P<op>==|!=|<=|>=|<|>|\(|\)|\[|\]|,|-)
  | (?P<ident>[A-Za-z_$][A-Za-z0-9_$]*)
  | (?P<str>["'])
    """,
    re.VERBOSE,
)

_KEYWORDS = frozenset({"and", "or", "not", "in", "true", "false", "null", "properties", "event"})


def _tokenize(text: str) -> list[tuple[str, Any, int]]:
    tokens: list[tuple[str, Any, int]] = []
    pos = 0
    n = len(text)
    while pos < n:
        m = _TOKEN_RE.match(text, pos)
        if m is None:
            raise SelectorError(f"unexpected character {text[pos]!r} at position {pos}")
        kind = m.lastgroup
        if kind == "ws":
            pos = m.end()
            continue
        if kind == "str":
            quote = text[pos]
            i = pos + 1
            chunks: list[str] = []
            while True:
                if i >= n:
                    raise SelectorError(f"unterminated string starting at position {pos}")
                c = text[i]
                if c == "\\":
                    if i + 1 >= n:
                        raise SelectorError(f"unterminated string starting at position {pos}")
                    chunks.append(text[i : i + 2])
                    i += 2
                    continue
                if c == quote:
                    break
                chunks.append('\\"' if c == '"' else c)
                i += 1
            raw = "".join(chunks)
            if quote == "'":
                raw = raw.replace("\\'", "'")
            try:
                value = json.loads('"' + raw + '"')
            except ValueError as exc:
                raise SelectorError(f"invalid string literal at position {pos}") from exc
            tokens.append(("str", value, pos))
            pos = i + 1
            continue
        value = m.group(kind)
        if kind == "num":
            num: Any = float(value) if any(c in value for c in ".eE") else int(value)
            tokens.append(("num", num, pos))
        else:
            tokens.append((kind, value, pos))
        pos = m.end()
    tokens.append(("eof", None, n))
    return tokens


def _parse_datetime_literal(value: Any) -> datetime:
    if isinstance(value, bool):
        raise SelectorError("datetime() expects a number or a string")
    if isinstance(value, int | float):
        seconds = value / 1000.0 if abs(value) > 100_000_000_000 else float(value)
        return datetime.fromtimestamp(seconds, UTC).replace(tzinfo=None)
    if isinstance(value, str):
        dt = _to_datetime(value)
        if dt is None:
            raise SelectorError(f"invalid datetime literal {value!r}")
        return dt
    raise SelectorError("datetime() expects a number or a string")


def _to_datetime(value: Any) -> datetime | None:
    """Coerce a property value to a naive UTC datetime for datetime comparisons."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        seconds = value / 1000.0 if abs(value) > 100_000_000_000 else float(value)
        try:
            return datetime.fromtimestamp(seconds, UTC).replace(tzinfo=None)
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, str):
        text = value.strip()
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        try:
            dt = datetime.fromisoformat(text)
        except ValueError:
            return None
        if dt.tzinfo is not None:
            dt = dt.astimezone(UTC).replace(tzinfo=None)
        return dt
    return None


def _kind(value: Any) -> str:
    if value is UNDEFINED:
        return "undefined"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, datetime):
        return "datetime"
    if isinstance(value, list):
        return "list"
    return "object"


def _compare(op: str, left: Any, right: Any) -> bool:
    if left is UNDEFINED or right is UNDEFINED:
        return op == "!="
    lk = _kind(left)
    rk = _kind(right)
    if lk == "datetime" or rk == "datetime":
        if lk != "datetime":
            left = _to_datetime(left)
            if left is None:
                return op == "!="
        if rk != "datetime":
            right = _to_datetime(right)
            if right is None:
                return op == "!="
    elif lk != rk:
        return op == "!="
    elif lk in ("null", "list", "object", "bool") and op not in ("==", "!="):
        return False
    if op == "==":
        return left == right
    if op == "!=":
        return left != right
    if op == "<":
        return left < right
    if op == ">":
        return left > right
    if op == "<=":
        return left <= right
    return left >= right


def _contains(needle: Any, haystack: Any) -> bool:
    if needle is UNDEFINED or haystack is UNDEFINED:
        return False
    if isinstance(haystack, str):
        return isinstance(needle, str) and needle in haystack
    if isinstance(haystack, list):
        return needle in haystack
    if isinstance(haystack, dict):
        return isinstance(needle, str) and needle in haystack
    return False


def _truthy(value: Any) -> bool:
    if value is UNDEFINED or value is None:
        return False
    if isinstance(value, datetime):
        return True
    return bool(value)


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.i = 0

    # -- token helpers -------------------------------------------------------------------
    def peek(self) -> tuple[str, Any, int]:
        return self.tokens[self.i]

    def next(self) -> tuple[str, Any, int]:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def at(self, kind: str, value: Any = None) -> bool:
        tk, tv, _ = self.tokens[self.i]
        return tk == kind and (value is None or tv == value)

    def at_keyword(self, word: str) -> bool:
        return self.at("ident", word)

    def expect(self, kind: str, value: Any = None) -> tuple[str, Any, int]:
        tok = self.next()
        if tok[0] != kind or (value is not None and tok[1] != value):
            want = value if value is not None else kind
            got = "end of expression" if tok[0] == "eof" else repr(tok[1])
            raise SelectorError(f"expected {want!r} at position {tok[2]}, got {got}")
        return tok

    # -- grammar -------------------------------------------------------------------------
    def parse(self) -> Predicate:
        if self.at("eof"):
            raise SelectorError("empty expression")
        node = self.parse_or()
        if not self.at("eof"):
            tok = self.peek()
            raise SelectorError(f"unexpected token {tok[1]!r} at position {tok[2]}")
        return node

    def parse_or(self) -> Predicate:
        parts = [self.parse_and()]
        while self.at_keyword("or"):
            self.next()
            parts.append(self.parse_and())
        if len(parts) == 1:
            return parts[0]
        return lambda p, e: any(f(p, e) for f in parts)

    def parse_and(self) -> Predicate:
        parts = [self.parse_not()]
        while self.at_keyword("and"):
            self.next()
            parts.append(self.parse_not())
        if len(parts) == 1:
            return parts[0]
        return lambda p, e: all(f(p, e) for f in parts)

    def parse_not(self) -> Predicate:
        if self.at_keyword("not"):
            self.next()
            inner = self.parse_not()
            return lambda p, e: not inner(p, e)
        return self.parse_comparison()

    def parse_comparison(self) -> Predicate:
        left = self.parse_operand()
        tok = self.peek()
        if tok[0] == "op" and tok[1] in ("==", "!=", "<", ">", "<=", ">="):
            self.next()
            op = tok[1]
            right = self.parse_operand()
            return _make_compare(op, left, right)
        negate = False
        if self.at_keyword("not") and self.tokens[self.i + 1][:2] == ("ident", "in"):
            self.next()
            negate = True
        if self.at_keyword("in"):
            self.next()
            right = self.parse_operand()
            lget, rget = left[1], right[1]
            if negate:
                return lambda p, e: not _contains(lget(p, e), rget(p, e))
            return lambda p, e: _contains(lget(p, e), rget(p, e))
        if left[0] == "pred":
            return left[2]
        getter = left[1]
        return lambda p, e: _truthy(getter(p, e))

    def parse_operand(self) -> tuple[str, Getter, Predicate | None]:
        """Return (kind, getter, predicate).  kind is 'const', 'value' or 'pred'."""
        kind, value, pos = self.next()
        if kind == "str" or kind == "num":
            return _const(value)
        if kind == "op" and value == "-":
            nk, nv, npos = self.next()
            if nk != "num":
                raise SelectorError(f"expected a number after '-' at position {npos}")
            return _const(-nv)
        if kind == "op" and value == "(":
            inner = self.parse_or()
            self.expect("op", ")")
            return ("pred", lambda p, e: inner(p, e), inner)
        if kind == "ident":
            if value == "true":
                return _const(True)
            if value == "false":
                return _const(False)
            if value == "null":
                return _const(None)
            if value == "properties":
                name = self.parse_property_name()
                return ("value", _property_getter(name), None)
            if value == "event":
                return ("value", lambda p, e: UNDEFINED if e is None else e, None)
            if value == "datetime":
                self.expect("op", "(")
                neg = False
                if self.at("op", "-"):
                    self.next()
                    neg = True
                ak, av, apos = self.next()
                if ak not in ("num", "str") or (neg and ak != "num"):
                    raise SelectorError(
                        f"datetime() expects a number or a string at position {apos}"
                    )
                self.expect("op", ")")
                return _const(_parse_datetime_literal(-av if neg else av))
            if value == "defined":
                self.expect("op", "(")
                self.expect("ident", "properties")
                name = self.parse_property_name()
                self.expect("op", ")")
                pred = _defined_predicate(name)
                return ("pred", lambda p, e: pred(p, e), pred)
            raise SelectorError(f"unknown identifier {value!r} at position {pos}")
        got = "end of expression" if kind == "eof" else repr(value)
        raise SelectorError(f"unexpected {got} at position {pos}")

    def parse_property_name(self) -> str:
        self.expect("op", "[")
        kind, value, pos = self.next()
        if kind != "str":
            raise SelectorError(f"expected a quoted property name at position {pos}")
        self.expect("op", "]")
        return value


def _const(value: Any) -> tuple[str, Getter, None]:
    return ("const", lambda p, e: value, None)


def _property_getter(name: str) -> Getter:
    if name == "$time":
        # Export rows carry the event time as properties.time; Mixpanel exposes it as $time.
        def get_time(p: dict, e: Any) -> Any:
            v = p.get("$time", UNDEFINED)
            if v is UNDEFINED and e is not None:
                return p.get("time", UNDEFINED)
            return v

        return get_time
    return lambda p, e: p.get(name, UNDEFINED)


def _defined_predicate(name: str) -> Predicate:
    getter = _property_getter(name)
    return lambda p, e: getter(p, e) is not UNDEFINED


def _make_compare(op: str, left: tuple, right: tuple) -> Predicate:
    lget, rget = left[1], right[1]
    if right[0] == "const" and left[0] != "const":
        const = rget(None, None)
        if isinstance(const, str) and op in ("==", "!="):
            # Fast path for the most common form: properties["x"] == "literal".
            if op == "==":

                def eq_str(p: dict, e: Any) -> bool:
                    v = lget(p, e)
                    return v.__class__ is str and v == const

                return eq_str

            def ne_str(p: dict, e: Any) -> bool:
                v = lget(p, e)
                return not (v.__class__ is str and v == const)

            return ne_str
        return lambda p, e: _compare(op, lget(p, e), const)
    return lambda p, e: _compare(op, lget(p, e), rget(p, e))


def compile_selector(expression: str) -> Callable[..., bool]:
    """Compile ``expression``; return ``predicate(properties, event_name=None) -> bool``.

    Raises :class:`SelectorError` for invalid expressions.
    """
    if not isinstance(expression, str):
        raise SelectorError("expression must be a string")
    pred = _Parser(expression).parse()

    def predicate(properties: dict, event_name: str | None = None) -> bool:
        return bool(pred(properties, event_name))

    predicate.raw = pred  # type: ignore[attr-defined]
    return predicate


def evaluate(expression: str, properties: dict, event_name: str | None = None) -> bool:
    """Convenience one-shot evaluation."""
    return compile_selector(expression)(properties, event_name)
