"""CEQL: the Cloud Elements query language.

Two entry points:

* :func:`parse_where` parses a ``where=`` expression (a SQL ``WHERE`` clause without the keyword),
  e.g. ``"$city" = 'Dallas' AND (age >= 21 OR vip = true)``;
* :func:`parse_select` parses a bulk query, ``select <*|field, ...> from <object> [where <expr>]
  [limit <n>]``.

Both return small immutable dataclasses (the AST below). Everything that goes wrong is a
:class:`CeqlError` that carries the 0-based character offset, line and column of the problem.

This module is element-agnostic: translating an AST into a vendor's own filter syntax is the job of
each element (e.g. ``elements.mixpanel.selector_language``).

Grammar notes:

* keywords (``AND OR NOT IN LIKE IS NULL TRUE FALSE SELECT FROM WHERE LIMIT``) are
  case-insensitive;
* field names are bare identifiers (``city``, ``$city``, ``a.b``), double-quoted (``"Referred By"``,
  ``""`` escapes a quote) or backticked (`` `a.b` ``, doubled backtick escapes one);
* values are single-quoted strings (``''`` escapes a quote), integers, decimals (optionally
  negative) and ``true``/``false``;
* operators ``= != <> < > <= >=`` (``<>`` is read as ``!=``), ``[NOT] IN (v, ...)``,
  ``[NOT] LIKE 'pattern'``, ``IS [NOT] NULL``, prefix ``NOT``, parentheses;
* precedence, loosest first: ``OR`` < ``AND`` < ``NOT`` < comparisons.

The LALR parser is built once at import time and applies its callbacks while parsing (no parse tree
is kept), so a call costs one pass over the input.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import Any

from lark import Lark, Token
from lark.exceptions import (
    UnexpectedCharacters,
    UnexpectedEOF,
    UnexpectedInput,
    UnexpectedToken,
)

__all__ = [
    "MAX_DEPTH",
    "MAX_LENGTH",
    "And",
    "CeqlError",
    "Comparison",
    "Expr",
    "InList",
    "IsNull",
    "Like",
    "Not",
    "Or",
    "SelectQuery",
    "Value",
    "parse_select",
    "parse_where",
]

#: Longest accepted query text, in characters.
MAX_LENGTH = 10_000
#: Deepest accepted nesting of parentheses, ``NOT`` and ``AND``/``OR`` groups.
MAX_DEPTH = 100

Value = str | int | float | bool


# --------------------------------------------------------------------------------------------
# Errors


def _line_column(text: str, position: int) -> tuple[int, int]:
    """1-based line and column of a 0-based offset into ``text``."""
    position = max(0, min(position, len(text)))
    line = text.count("\n", 0, position) + 1
    column = position - (text.rfind("\n", 0, position) + 1) + 1
    return line, column


class CeqlError(ValueError):
    """A query that cannot be parsed or translated.

    ``position`` is the 0-based character offset of the problem in the query text, ``line`` and
    ``column`` its 1-based line and column; ``expected`` lists human-readable descriptions of what
    would have been accepted there (empty when not applicable). ``str(error)`` names all of it,
    e.g. ``Unexpected token "AND" at position 12 (line 1, column 13): expected a value``.
    """

    def __init__(
        self,
        message: str,
        *,
        position: int,
        line: int = 1,
        column: int | None = None,
        expected: tuple[str, ...] = (),
        detail: str | None = None,
    ) -> None:
        self.reason = message
        self.position = position
        self.line = line
        self.column = position + 1 if column is None else column
        self.expected = expected
        self.detail = detail
        full = f"{message} at position {position} (line {self.line}, column {self.column})"
        if detail:
            full += f": {detail}"
        elif expected:
            full += f": expected {_join_alternatives(expected)}"
        super().__init__(full)

    @classmethod
    def at(
        cls,
        text: str,
        position: int,
        message: str,
        *,
        expected: tuple[str, ...] = (),
        detail: str | None = None,
    ) -> CeqlError:
        """Build an error at ``position`` of ``text`` (line and column are derived from it)."""
        line, column = _line_column(text, position)
        return cls(
            message,
            position=position,
            line=line,
            column=column,
            expected=expected,
            detail=detail,
        )


def _join_alternatives(items: tuple[str, ...]) -> str:
    if len(items) == 1:
        return items[0]
    return ", ".join(items[:-1]) + " or " + items[-1]


# --------------------------------------------------------------------------------------------
# AST

_POS = {"default": None, "compare": False, "repr": False, "kw_only": True}


@dataclass(frozen=True)
class Comparison:
    """``field op value``; ``op`` is one of ``= != < > <= >=``."""

    field: str
    op: str
    value: Value
    #: offset of the field name / of the value in the source text (not part of equality)
    position: int | None = dc_field(**_POS)
    value_position: int | None = dc_field(**_POS)


@dataclass(frozen=True)
class InList:
    """``field IN (v1, v2, ...)`` (``NOT IN`` is ``Not(InList(...))``)."""

    field: str
    values: tuple[Value, ...]
    position: int | None = dc_field(**_POS)
    value_position: int | None = dc_field(**_POS)


@dataclass(frozen=True)
class Like:
    """``field LIKE 'pattern'`` with SQL wildcards ``%`` and ``_`` left in ``pattern``."""

    field: str
    pattern: str
    position: int | None = dc_field(**_POS)
    value_position: int | None = dc_field(**_POS)


@dataclass(frozen=True)
class IsNull:
    """``field IS NULL`` (``negated=False``) or ``field IS NOT NULL`` (``negated=True``)."""

    field: str
    negated: bool = False
    position: int | None = dc_field(**_POS)


@dataclass(frozen=True)
class And:
    """Conjunction of two or more expressions, in source order."""

    items: tuple[Expr, ...]


@dataclass(frozen=True)
class Or:
    """Disjunction of two or more expressions, in source order."""

    items: tuple[Expr, ...]


@dataclass(frozen=True)
class Not:
    expr: Expr
    position: int | None = dc_field(**_POS)


Expr = Comparison | InList | Like | IsNull | And | Or | Not


@dataclass(frozen=True)
class SelectQuery:
    """``select <fields> from <object_name> [where <where>] [limit <limit>]``.

    ``fields`` is ``None`` for ``select *``.
    """

    object_name: str
    fields: tuple[str, ...] | None = None
    where: Expr | None = None
    limit: int | None = None


# --------------------------------------------------------------------------------------------
# Grammar

# Keywords are reserved: a bare identifier can't be one (quote it: "limit" = 1). They are regexes
# of priority 2 so that they win over identifiers; the lookahead keeps "andrew" or "in.x"
# identifiers.
_KW = r"(?![\w$.])"
_KEYWORDS = "and|or|not|in|like|is|null|true|false|select|from|where|limit"

_GRAMMAR = rf"""
start_where: expr
start_select: _SELECT select_list _FROM object_name [_WHERE expr] [_LIMIT INT]

select_list: STAR                          -> select_all
           | field (COMMA field)*          -> select_fields

object_name: OBJECT_NAME                   -> bare_object
           | QUOTED_NAME                   -> quoted_name
           | BACKTICK_NAME                 -> backtick_name

?expr: or_expr
?or_expr: and_expr (OR and_expr)*
?and_expr: not_expr (AND not_expr)*
?not_expr: NOT not_expr                    -> not_
         | atom
?atom: predicate
     | LPAR expr RPAR                      -> group

predicate: field COMP_OP value                        -> comparison
         | field IN LPAR value (COMMA value)* RPAR    -> in_list
         | field NOT IN LPAR value (COMMA value)* RPAR -> not_in_list
         | field LIKE STRING                          -> like
         | field NOT LIKE STRING                      -> not_like
         | field IS NULL                              -> is_null
         | field IS NOT NULL                          -> is_not_null

field: NAME                                -> bare_name
     | QUOTED_NAME                         -> quoted_name
     | BACKTICK_NAME                       -> backtick_name

value: STRING                              -> string_value
     | NUMBER                              -> number_value
     | TRUE                                -> true_value
     | FALSE                               -> false_value

OR.2: /or{_KW}/i
AND.2: /and{_KW}/i
NOT.2: /not{_KW}/i
IN.2: /in{_KW}/i
LIKE.2: /like{_KW}/i
IS.2: /is{_KW}/i
NULL.2: /null{_KW}/i
TRUE.2: /true{_KW}/i
FALSE.2: /false{_KW}/i
_SELECT.2: /select{_KW}/i
_FROM.2: /from{_KW}/i
_WHERE.2: /where{_KW}/i
_LIMIT.2: /limit{_KW}/i

COMP_OP: /<=|>=|!=|<>|=|<|>/
LPAR: "("
RPAR: ")"
COMMA: ","
STAR: "*"

NAME: /(?!(?i:{_KEYWORDS}){_KW})(?:[^\W\d]|\$)[\w$]*(?:\.[\w$]+)*/
OBJECT_NAME: /[\w$][\w$.\-]*/
QUOTED_NAME: /"(?:[^"]|"")+"/
BACKTICK_NAME: /`(?:[^`]|``)+`/
STRING: /'(?:[^']|'')*'/
NUMBER: /-?(?:\d+(?:\.\d+)?|\.\d+)/
INT: /\d+/

%ignore /\s+/
"""


class _Built:
    """An expression under construction, with its nesting depth."""

    __slots__ = ("depth", "expr")

    def __init__(self, expr: Expr, depth: int) -> None:
        self.expr = expr
        self.depth = depth


class _DepthError(Exception):
    def __init__(self, position: int) -> None:
        super().__init__(position)
        self.position = position


class _NumberError(Exception):
    def __init__(self, position: int) -> None:
        super().__init__(position)
        self.position = position


def _nest(expr: Expr, depth: int, token: Token) -> _Built:
    if depth > MAX_DEPTH:
        raise _DepthError(token.start_pos)
    return _Built(expr, depth)


class _Callbacks:
    """Rule callbacks applied by the LALR parser at each reduction.

    Stateless (every call gets its children), so one instance is shared by all threads. lark only
    looks up methods named after rules/aliases; none is named after a terminal.
    """

    # ---- names and values: (python value, offset) pairs

    def bare_name(self, children: list[Token]) -> tuple[str, int]:
        (tok,) = children
        return str(tok), tok.start_pos

    def quoted_name(self, children: list[Token]) -> tuple[str, int]:
        (tok,) = children
        return tok[1:-1].replace('""', '"'), tok.start_pos

    def backtick_name(self, children: list[Token]) -> tuple[str, int]:
        (tok,) = children
        return tok[1:-1].replace("``", "`"), tok.start_pos

    def bare_object(self, children: list[Token]) -> tuple[str, int]:
        return self.bare_name(children)

    def string_value(self, children: list[Token]) -> tuple[Value, int]:
        (tok,) = children
        return tok[1:-1].replace("''", "'"), tok.start_pos

    def number_value(self, children: list[Token]) -> tuple[Value, int]:
        (tok,) = children
        if "." in tok:
            number = float(tok)
            if not math.isfinite(number):
                raise _NumberError(tok.start_pos)
            return number, tok.start_pos
        return int(tok), tok.start_pos

    def true_value(self, children: list[Token]) -> tuple[Value, int]:
        return True, children[0].start_pos

    def false_value(self, children: list[Token]) -> tuple[Value, int]:
        return False, children[0].start_pos

    # ---- predicates

    def comparison(self, children: list[Any]) -> _Built:
        (name, pos), op, (value, vpos) = children
        op = "!=" if op == "<>" else str(op)
        return _Built(Comparison(name, op, value, position=pos, value_position=vpos), 0)

    def in_list(self, children: list[Any]) -> _Built:
        (name, pos), _in, _lpar, *rest = children
        values = [item for item in rest if isinstance(item, tuple)]
        node = InList(
            name,
            tuple(v for v, _ in values),
            position=pos,
            value_position=values[0][1],
        )
        return _Built(node, 0)

    def not_in_list(self, children: list[Any]) -> _Built:
        not_tok = children[1]
        inner = self.in_list([children[0], *children[2:]])
        return _Built(Not(inner.expr, position=not_tok.start_pos), 1)

    def like(self, children: list[Any]) -> _Built:
        (name, pos), _like, pattern = children
        node = Like(
            name,
            pattern[1:-1].replace("''", "'"),
            position=pos,
            value_position=pattern.start_pos,
        )
        return _Built(node, 0)

    def not_like(self, children: list[Any]) -> _Built:
        not_tok = children[1]
        inner = self.like([children[0], *children[2:]])
        return _Built(Not(inner.expr, position=not_tok.start_pos), 1)

    def is_null(self, children: list[Any]) -> _Built:
        (name, pos), *_ = children
        return _Built(IsNull(name, False, position=pos), 0)

    def is_not_null(self, children: list[Any]) -> _Built:
        (name, pos), *_ = children
        return _Built(IsNull(name, True, position=pos), 0)

    # ---- boolean structure

    def or_expr(self, children: list[Any]) -> _Built:
        return self._combine(Or, children)

    def and_expr(self, children: list[Any]) -> _Built:
        return self._combine(And, children)

    def _combine(self, cls: type[And] | type[Or], children: list[Any]) -> _Built:
        items = children[0::2]
        node = cls(tuple(item.expr for item in items))
        return _nest(node, 1 + max(item.depth for item in items), children[1])

    def not_(self, children: list[Any]) -> _Built:
        not_tok, inner = children
        return _nest(Not(inner.expr, position=not_tok.start_pos), inner.depth + 1, not_tok)

    def group(self, children: list[Any]) -> _Built:
        lpar, inner, _rpar = children
        return _nest(inner.expr, inner.depth + 1, lpar)

    # ---- start rules

    def start_where(self, children: list[Any]) -> Expr:
        return children[0].expr

    def start_select(self, children: list[Any]) -> SelectQuery:
        fields, (object_name, _pos), where, limit = children
        return SelectQuery(
            object_name=object_name,
            fields=fields,
            where=None if where is None else where.expr,
            limit=None if limit is None else int(limit),
        )

    def select_all(self, children: list[Any]) -> None:
        return None

    def select_fields(self, children: list[Any]) -> tuple[str, ...]:
        return tuple(name for name, _pos in children[0::2])


_PARSER = Lark(
    _GRAMMAR,
    parser="lalr",
    lexer="contextual",
    start=["start_where", "start_select"],
    transformer=_Callbacks(),
    maybe_placeholders=True,
)


# --------------------------------------------------------------------------------------------
# Error messages

_OPERATOR = "an operator (=, !=, <, >, <=, >=, IN, LIKE, IS NULL)"
_DESCRIPTIONS = {
    "NAME": "a field name",
    "QUOTED_NAME": "a field name",
    "BACKTICK_NAME": "a field name",
    "OBJECT_NAME": "an object name",
    "STRING": "a value",
    "NUMBER": "a value",
    "TRUE": "a value",
    "FALSE": "a value",
    "INT": "a whole number",
    "COMP_OP": _OPERATOR,
    "LPAR": "'('",
    "RPAR": "')'",
    "COMMA": "','",
    "STAR": "'*'",
    "NOT": "NOT",
    "AND": "AND",
    "OR": "OR",
    "IN": "IN",
    "LIKE": "LIKE",
    "IS": "IS",
    "NULL": "NULL",
    "_SELECT": "SELECT",
    "_FROM": "FROM",
    "_WHERE": "WHERE",
    "_LIMIT": "LIMIT",
    "$END": "end of input",
}
_ORDER = list(dict.fromkeys(_DESCRIPTIONS.values()))


def _describe(terminals: set[str] | frozenset[str]) -> tuple[str, ...]:
    names = set(terminals)
    found: set[str] = set()
    if "OBJECT_NAME" in names:
        names -= {"QUOTED_NAME", "BACKTICK_NAME"}
    if "COMP_OP" in names:
        # After a field name: the operator summary says it all.
        names -= {"IN", "LIKE", "IS", "NOT"}
    if "STRING" in names and not names & {"NUMBER", "TRUE", "FALSE"}:
        names.discard("STRING")
        found.add("a quoted string")
    for name in names:
        found.add(_DESCRIPTIONS.get(name, name))
    return tuple(sorted(found, key=lambda d: (_ORDER.index(d) if d in _ORDER else -1, d)))


def _token_text(value: str) -> str:
    value = value if len(value) <= 40 else value[:37] + "..."
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


_UNTERMINATED = {"'": "string", '"': "quoted field name", "`": "backticked field name"}


def _accepted_at(text: str, position: int, start: str) -> set[str] | None:
    """Terminals the parser accepts after ``text[:position]``.

    More precise than what lark's exceptions report: those come from LALR states merged across
    contexts, or from after the reductions the offending token triggered.
    """
    try:
        parser = _PARSER.parse_interactive(text[:position], start=start)
        parser.exhaust_lexer()
        return parser.accepts()
    except Exception:  # the prefix itself doesn't parse: fall back to lark's own list
        return None


def _convert(text: str, exc: UnexpectedInput, start: str) -> CeqlError:
    if isinstance(exc, UnexpectedToken):
        if exc.token.type == "$END":
            accepted = _accepted_at(text, len(text), start)
            expected = _describe(accepted or exc.accepts or exc.expected)
            return CeqlError.at(text, len(text), "Unexpected end of input", expected=expected)
        position = exc.token.start_pos
        if position is None:
            position = exc.pos_in_stream or 0
        accepted = _accepted_at(text, position, start)
        expected = _describe(accepted or exc.accepts or exc.expected)
        return CeqlError.at(
            text,
            position,
            f'Unexpected token "{_token_text(str(exc.token))}"',
            expected=expected,
        )
    if isinstance(exc, UnexpectedCharacters):
        position = exc.pos_in_stream
        char = text[position] if position < len(text) else ""
        accepted = _accepted_at(text, position, start)
        expected = _describe(accepted or exc.allowed or set())
        if char in '"`' and text[position : position + 2] == char * 2:
            return CeqlError.at(text, position, "Empty field name", expected=expected)
        if char in _UNTERMINATED:
            return CeqlError.at(
                text,
                position,
                f"Unterminated {_UNTERMINATED[char]}",
                detail=f"missing closing {char}",
            )
        return CeqlError.at(
            text, position, f'Unexpected character "{_token_text(char)}"', expected=expected
        )
    if isinstance(exc, UnexpectedEOF):
        return CeqlError.at(
            text, len(text), "Unexpected end of input", expected=_describe(set(exc.expected))
        )
    position = getattr(exc, "pos_in_stream", None) or 0
    return CeqlError.at(text, position, "Syntax error")


def _parse(text: str, start: str, what: str) -> Any:
    if not isinstance(text, str):
        raise TypeError(f"CEQL {what} must be a str, not {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise CeqlError.at(
            text,
            MAX_LENGTH,
            f"CEQL {what} too long ({len(text)} characters)",
            detail=f"the limit is {MAX_LENGTH} characters",
        )
    if not text.strip():
        expected = ("a field name", "'('", "NOT") if start == "start_where" else ("SELECT",)
        raise CeqlError.at(text, 0, f"Empty CEQL {what}", expected=expected)
    try:
        return _PARSER.parse(text, start=start)
    except UnexpectedInput as exc:
        raise _convert(text, exc, start) from None
    except _DepthError as exc:
        raise CeqlError.at(
            text,
            exc.position,
            "Expression nested too deeply",
            detail=f"at most {MAX_DEPTH} levels of parentheses, NOT, AND and OR are allowed",
        ) from None
    except _NumberError as exc:
        raise CeqlError.at(text, exc.position, "Number out of range") from None


def parse_where(text: str) -> Expr:
    """Parse a CEQL ``where`` expression (without the ``WHERE`` keyword) into an AST."""
    return _parse(text, "start_where", "expression")


def parse_select(text: str) -> SelectQuery:
    """Parse a CEQL bulk query: ``select * from <object> [where <expr>] [limit <n>]``."""
    return _parse(text, "start_select", "query")
