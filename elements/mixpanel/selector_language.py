"""Translate CEQL ``where`` expressions into Mixpanel engage selector expressions.

Mixpanel's ``/engage`` query takes a ``where`` selector such as
``(properties["$city"] == "Dallas" and properties["age"] >= 21)``. This module emits only the
forms that selector language (and the simulator) understands: ``properties["name"]``,
double-quoted string literals with backslash escapes, numbers, ``true``/``false``,
``== != < > <= >=``, ``"sub" in properties["x"]``, ``defined(...)``, ``not``, ``and``, ``or`` and
parentheses.

As on Cloud Elements, a caller may bypass CEQL and send a raw selector as
``query='<selector>'``; that string is passed through unchanged.
"""

from __future__ import annotations

import json
import math
from decimal import Decimal

from elements.framework.ceql import (
    And,
    CeqlError,
    Comparison,
    Expr,
    InList,
    IsNull,
    Like,
    Not,
    Or,
    Value,
    parse_where,
)

__all__ = ["RAW_QUERY_FIELD", "expr_to_selector", "where_to_selector"]

#: ``query='<raw selector>'`` sends a Mixpanel selector unchanged.
RAW_QUERY_FIELD = "query"

_OPERATORS = {"=": "==", "!=": "!=", "<": "<", ">": ">", "<=": "<=", ">=": ">="}


def where_to_selector(where: str) -> str:
    """Translate a CEQL ``where`` string into a Mixpanel selector expression.

    ``query='<selector>'`` on its own returns ``<selector>`` unchanged. Raises
    :class:`~elements.framework.ceql.CeqlError` for malformed CEQL and for what a selector can't
    express (LIKE patterns other than ``'%text%'`` or exact, a ``query`` term inside a larger
    expression).
    """
    expr = parse_where(where)
    if (
        isinstance(expr, Comparison)
        and expr.field == RAW_QUERY_FIELD
        and expr.op == "="
        and isinstance(expr.value, str)
    ):
        return expr.value
    return expr_to_selector(expr, where)


def expr_to_selector(expr: Expr, source: str = "") -> str:
    """Translate a parsed CEQL expression (e.g. a bulk query's ``where``) into a selector.

    ``source`` is the CEQL text ``expr`` was parsed from; it is only used to give errors a line
    and column. Raw ``query=`` terms are rejected here: only :func:`where_to_selector` accepts one,
    and only as the whole expression.
    """
    return _Translator(source).visit(expr)


def _property(name: str) -> str:
    return f"properties[{json.dumps(name, ensure_ascii=False)}]"


def _literal(value: Value) -> str:
    if isinstance(value, bool):  # before int: bool is an int
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"not a finite number: {value!r}")
        text = repr(value)
        # Plain decimal notation, never 1e-07: the selector grammar has no exponents.
        return format(Decimal(text), "f") if "e" in text or "E" in text else text
    return json.dumps(value, ensure_ascii=False)


class _Translator:
    def __init__(self, source: str) -> None:
        self.source = source

    def error(self, position: int | None, message: str, detail: str) -> CeqlError:
        return CeqlError.at(self.source, position or 0, message, detail=detail)

    def visit(self, expr: Expr) -> str:
        if isinstance(expr, And | Or):
            joiner = " and " if isinstance(expr, And) else " or "
            return "(" + joiner.join(self.visit(item) for item in expr.items) + ")"
        if isinstance(expr, Not):
            inner = self.visit(expr.expr)
            # And/Or/multi-value IN already come in parentheses.
            if isinstance(expr.expr, And | Or) or (
                isinstance(expr.expr, InList) and len(expr.expr.values) > 1
            ):
                return f"not {inner}"
            return f"not ({inner})"
        self.check_field(expr)
        if isinstance(expr, Comparison):
            return f"{_property(expr.field)} {_OPERATORS[expr.op]} {_literal(expr.value)}"
        if isinstance(expr, InList):
            prop = _property(expr.field)
            terms = [f"{prop} == {_literal(value)}" for value in expr.values]
            return terms[0] if len(terms) == 1 else "(" + " or ".join(terms) + ")"
        if isinstance(expr, Like):
            return self.like(expr)
        if isinstance(expr, IsNull):
            defined = f"defined({_property(expr.field)})"
            return defined if expr.negated else f"not {defined}"
        raise TypeError(f"not a CEQL expression: {expr!r}")

    def check_field(self, expr: Comparison | InList | Like | IsNull) -> None:
        if expr.field == RAW_QUERY_FIELD:
            raise self.error(
                expr.position,
                "Misplaced raw query",
                f"a raw Mixpanel selector must be the whole where clause, written "
                f"as {RAW_QUERY_FIELD}='<selector>'",
            )

    def like(self, expr: Like) -> str:
        pattern = expr.pattern
        prop = _property(expr.field)
        if "%" not in pattern and "_" not in pattern:
            return f"{prop} == {_literal(pattern)}"
        inner = pattern[1:-1]
        if (
            len(pattern) >= 2
            and pattern.startswith("%")
            and pattern.endswith("%")
            and "%" not in inner
            and "_" not in inner
        ):
            return f"{_literal(inner)} in {prop}"
        raise self.error(
            expr.value_position,
            f"Unsupported LIKE pattern {json.dumps(pattern, ensure_ascii=False)}",
            "Mixpanel selectors only support contains ('%text%') or exact (no % or _) patterns",
        )
