"""Tests for the CEQL parser (elements.framework.ceql). Plain pytest, no Django."""

from __future__ import annotations

import dataclasses

import pytest

from elements.framework.ceql import (
    MAX_DEPTH,
    MAX_LENGTH,
    And,
    CeqlError,
    Comparison,
    InList,
    IsNull,
    Like,
    Not,
    Or,
    SelectQuery,
    parse_select,
    parse_where,
)


def cmp(field, op, value):
    return Comparison(field, op, value)


# --------------------------------------------------------------------------------------------
# Comparisons and values


@pytest.mark.parametrize("op", ["=", "!=", "<", ">", "<=", ">="])
def test_every_comparison_operator(op):
    assert parse_where(f"age {op} 21") == cmp("age", op, 21)


def test_sql_not_equal_is_normalised():
    assert parse_where("age <> 21") == cmp("age", "!=", 21)


def test_operators_without_spaces():
    assert parse_where("a>=1") == cmp("a", ">=", 1)
    assert parse_where("a<=-1") == cmp("a", "<=", -1)
    assert parse_where("a!='x'") == cmp("a", "!=", "x")


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("x = 'Dallas'", "Dallas"),
        ("x = ''", ""),
        ("x = 'it''s'", "it's"),
        ("x = ''''", "'"),
        ("x = 'a''''b'", "a''b"),
        ("x = 'say \"hi\"'", 'say "hi"'),
        ("x = 'back\\slash'", "back\\slash"),
        ("x = 'Zürich ☃'", "Zürich ☃"),
        ("x = 'two\nlines'", "two\nlines"),
        ("x = 'AND OR NOT'", "AND OR NOT"),
        ("x = 42", 42),
        ("x = 0", 0),
        ("x = -7", -7),
        ("x = 3.25", 3.25),
        ("x = -0.5", -0.5),
        ("x = .5", 0.5),
        ("x = 12345678901234567890", 12345678901234567890),
        ("x = true", True),
        ("x = FALSE", False),
        ("x = True", True),
        ("x = '42'", "42"),
        ("x = 'true'", "true"),
    ],
)
def test_values(text, value):
    expr = parse_where(text)
    assert expr == cmp("x", "=", value)
    assert type(expr.value) is type(value)


# --------------------------------------------------------------------------------------------
# Field names


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("city = 1", "city"),
        ("$city = 1", "$city"),
        ("mp_country_code = 1", "mp_country_code"),
        ("a.b = 1", "a.b"),
        ("a.b.c2 = 1", "a.b.c2"),
        ("_x = 1", "_x"),
        ("Größe = 1", "Größe"),
        ('"$city" = 1', "$city"),
        ('"Referred By" = 1', "Referred By"),
        ('"say ""hi""" = 1', 'say "hi"'),
        ('"and" = 1', "and"),
        ("`a.b` = 1", "a.b"),
        ("`with space` = 1", "with space"),
        ("`tick``s` = 1", "tick`s"),
        ("`limit` = 1", "limit"),
        # identifiers that merely start with a keyword are not keywords
        ("andrew = 1", "andrew"),
        ("order = 1", "order"),
        ("notes = 1", "notes"),
        ("island = 1", "island"),
        ("nullable = 1", "nullable"),
        ("in_stock = 1", "in_stock"),
        ("like.count = 1", "like.count"),
    ],
)
def test_field_names(text, field):
    assert parse_where(text) == cmp(field, "=", 1)


# --------------------------------------------------------------------------------------------
# IN, LIKE, IS NULL


def test_in_one_value():
    assert parse_where("plan IN ('pro')") == InList("plan", ("pro",))


def test_in_many_values_of_mixed_types():
    assert parse_where("x in ('a', 2, -3.5, true,'b''c')") == InList(
        "x", ("a", 2, -3.5, True, "b'c")
    )


def test_not_in():
    assert parse_where("x NOT IN (1, 2)") == Not(InList("x", (1, 2)))


@pytest.mark.parametrize("pattern", ["%x%", "x%", "%x", "a_c", "exact", ""])
def test_like(pattern):
    assert parse_where(f"name LIKE '{pattern}'") == Like("name", pattern)


def test_like_lowercase_and_escaped_quote():
    assert parse_where("name like '%o''b%'") == Like("name", "%o'b%")


def test_not_like():
    assert parse_where("name not like '%x%'") == Not(Like("name", "%x%"))


def test_is_null_and_is_not_null():
    assert parse_where("email IS NULL") == IsNull("email", False)
    assert parse_where("email is not null") == IsNull("email", True)
    assert parse_where('"$email" Is Not Null') == IsNull("$email", True)


# --------------------------------------------------------------------------------------------
# Boolean structure, precedence, parentheses


def test_and_or_are_n_ary_in_source_order():
    a, b, c = cmp("a", "=", 1), cmp("b", "=", 2), cmp("c", "=", 3)
    assert parse_where("a = 1 AND b = 2 AND c = 3") == And((a, b, c))
    assert parse_where("a = 1 OR b = 2 OR c = 3") == Or((a, b, c))


def test_and_binds_tighter_than_or():
    a, b, c, d = (cmp(n, "=", i) for i, n in enumerate("abcd"))
    assert parse_where("a = 0 OR b = 1 AND c = 2") == Or((a, And((b, c))))
    assert parse_where("a = 0 AND b = 1 OR c = 2") == Or((And((a, b)), c))
    assert parse_where("a = 0 AND b = 1 OR c = 2 AND d = 3") == Or((And((a, b)), And((c, d))))


def test_parentheses_override_precedence():
    a, b, c = (cmp(n, "=", i) for i, n in enumerate("abc"))
    assert parse_where("(a = 0 OR b = 1) AND c = 2") == And((Or((a, b)), c))
    assert parse_where("a = 0 AND (b = 1 OR c = 2)") == And((a, Or((b, c))))


def test_redundant_parentheses_vanish():
    assert parse_where("((( a = 1 )))") == cmp("a", "=", 1)
    assert parse_where("(a = 1) and ((b = 2))") == And((cmp("a", "=", 1), cmp("b", "=", 2)))


def test_parenthesised_groups_are_not_flattened():
    a, b, c = (cmp(n, "=", i) for i, n in enumerate("abc"))
    assert parse_where("(a = 0 AND b = 1) AND c = 2") == And((And((a, b)), c))


def test_not_binds_tighter_than_and_and_looser_than_comparison():
    a, b = cmp("a", "=", 1), cmp("b", "=", 2)
    assert parse_where("NOT a = 1 AND b = 2") == And((Not(a), b))
    assert parse_where("NOT (a = 1 AND b = 2)") == Not(And((a, b)))
    assert parse_where("a = 1 OR NOT b = 2") == Or((a, Not(b)))
    assert parse_where("not not a = 1") == Not(Not(a))
    assert parse_where("NOT email IS NULL") == Not(IsNull("email"))


def test_keywords_are_case_insensitive():
    expected = And(
        (
            cmp("a", "=", True),
            Or((InList("b", (1,)), Not(Like("c", "%x%")))),
            IsNull("d", True),
        )
    )
    for text in [
        "a = true AND (b IN (1) OR NOT c LIKE '%x%') AND d IS NOT NULL",
        "a = TRUE and (b in (1) or not c like '%x%') and d is not null",
        "a = True AnD (b In (1) oR nOt c LiKe '%x%') aNd d iS NoT NuLl",
    ]:
        assert parse_where(text) == expected


def test_whitespace_and_newlines_are_insignificant():
    assert parse_where("\n\t a\n=\n1\r\n AND\tb = 2 ") == And((cmp("a", "=", 1), cmp("b", "=", 2)))


def test_nodes_are_frozen_and_hashable():
    expr = parse_where("a = 1 and b in (1, 2)")
    with pytest.raises(dataclasses.FrozenInstanceError):
        expr.items = ()
    assert hash(expr) == hash(parse_where("a = 1 and b in (1, 2)"))


def test_source_positions_are_recorded_but_not_compared():
    expr = parse_where("x = 1 AND name LIKE 'a%' AND y IN (2) AND z IS NULL")
    comparison, like, in_list, is_null = expr.items
    assert (comparison.position, comparison.value_position) == (0, 4)
    assert (like.position, like.value_position) == (10, 20)
    assert (in_list.position, in_list.value_position) == (29, 35)
    assert is_null.position == 42
    assert comparison == Comparison("x", "=", 1, position=99)
    assert "position" not in repr(comparison)


# --------------------------------------------------------------------------------------------
# select queries


def test_select_star():
    assert parse_select("select * from users") == SelectQuery("users", None, None, None)


def test_select_with_where():
    assert parse_select("select * from users where \"$city\" = 'Dallas'") == SelectQuery(
        "users", None, cmp("$city", "=", "Dallas"), None
    )


def test_select_with_where_and_limit():
    query = parse_select("select * from activities where a = 1 or b = 2 limit 100")
    assert query == SelectQuery("activities", None, Or((cmp("a", "=", 1), cmp("b", "=", 2))), 100)


def test_select_with_limit_only():
    assert parse_select("select * from users limit 5").limit == 5


def test_select_fields():
    query = parse_select('select a, $b, "c d", `e.f`, g.h from users')
    assert query.fields == ("a", "$b", "c d", "e.f", "g.h")
    assert query.where is None
    assert parse_select("select a from users").fields == ("a",)


def test_select_keywords_case_insensitive_and_hyphenated_object():
    assert parse_select("SELECT * FROM service-accounts WHERE x != 'y' LIMIT 3") == SelectQuery(
        "service-accounts", None, cmp("x", "!=", "y"), 3
    )
    assert parse_select("Select * From `my objects`").object_name == "my objects"
    assert parse_select('select * from "users"').object_name == "users"


def test_select_multiline():
    assert parse_select("select *\nfrom users\nwhere a = 1\nlimit 2") == SelectQuery(
        "users", None, cmp("a", "=", 1), 2
    )


# --------------------------------------------------------------------------------------------
# Errors


def error_of(text, parse=parse_where):
    with pytest.raises(CeqlError) as info:
        parse(text)
    return info.value


def test_error_is_a_value_error_with_position_line_and_column():
    err = error_of("\"$city\" = 'x' AND AND")
    assert isinstance(err, ValueError)
    assert (err.position, err.line, err.column) == (18, 1, 19)
    assert str(err) == (
        'Unexpected token "AND" at position 18 (line 1, column 19): '
        "expected a field name, '(' or NOT"
    )


def test_error_message_names_expected_value():
    err = error_of("a = 1 AND b = AND c = 2")
    assert str(err) == 'Unexpected token "AND" at position 14 (line 1, column 15): expected a value'


def test_error_on_second_line():
    err = error_of("a = 1\nAND b = = 2")
    assert (err.position, err.line, err.column) == (14, 2, 9)
    assert "line 2, column 9" in str(err)


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_empty_input_is_an_error_at_position_zero(text):
    err = error_of(text)
    assert err.position == 0
    assert (err.line, err.column) == (1, 1)
    assert "Empty" in str(err)


@pytest.mark.parametrize(
    ("text", "position", "expected"),
    [
        ("a =", 3, "a value"),
        ("a", 1, "an operator"),
        ("= 1", 0, "a field name"),
        ("a = 1 b = 2", 6, "AND, OR or end of input"),
        ("a = 1)", 5, "AND, OR or end of input"),
        ("(a = 1", 6, "')', AND or OR"),
        ("a = 1 AND", 9, "a field name"),
        ("a = 1 OR", 8, "a field name"),
        ("a IN ()", 6, "a value"),
        ("a IN (1,)", 8, "a value"),
        ("a IN (1 2)", 8, "')'"),
        ("a IN 1", 5, "'('"),
        ("a LIKE 5", 7, "a quoted string"),
        ("a IS 5", 5, "NOT or NULL"),
        ("a IS NOT 5", 9, "NULL"),
        ("a == 1", 3, "a value"),
        ("a = b", 4, "a value"),
        ("a = tru", 4, "a value"),
        ("a = 1e5", 5, "AND, OR or end of input"),
        ("a = 1.", 5, "AND, OR or end of input"),
        ("a # 1", 2, "an operator"),
        ("a ! 1", 2, "an operator"),
        ("a = 'x' && b = 1", 8, "AND, OR or end of input"),
        ("not", 3, "a field name"),
        ("()", 1, "a field name"),
        ("and = 1", 0, "a field name"),
        ("a = 1 limit 5", 6, "AND, OR or end of input"),
        ("a = - 1", 4, "a value"),
    ],
)
def test_malformed_where(text, position, expected):
    err = error_of(text)
    assert err.position == position, str(err)
    assert f"at position {position} " in str(err)
    assert f"expected {expected}" in str(err), str(err)


@pytest.mark.parametrize(
    ("text", "position", "what"),
    [
        ("a = 'unterminated", 4, "Unterminated string"),
        ("a = 'it''s", 8, "Unterminated string"),  # 'it' is a string; 's is not
        ('"field = 1', 0, "Unterminated quoted field name"),
        ("`field = 1", 0, "Unterminated backticked field name"),
        ('"" = 1', 0, "Empty field name"),
        ("a = 1 and `` = 2", 10, "Empty field name"),
    ],
)
def test_unterminated_quotes(text, position, what):
    err = error_of(text)
    assert err.position == position
    assert str(err).startswith(f"{what} at position {position}")


@pytest.mark.parametrize(
    ("text", "position", "expected"),
    [
        ("select", 6, "a field name or '*'"),
        ("select * users", 9, "FROM"),
        ("select * from", 13, "an object name"),
        ("select * from users where", 25, "a field name"),
        ("select * from users limit", 25, "a whole number"),
        ("select * from users limit -1", 26, "a whole number"),
        ("select * from users limit 1.5", 27, "end of input"),
        ("select * from users limit 5 where a = 1", 28, "end of input"),
        ("select a, from users", 10, "a field name"),
        ("select *, a from users", 8, "FROM"),
        ("select * from users where a = 1 b", 32, "AND, OR, LIMIT or end of input"),
        ("update users set a = 1", 0, "SELECT"),
        ("a = 1", 0, "SELECT"),
    ],
)
def test_malformed_select(text, position, expected):
    err = error_of(text, parse_select)
    assert err.position == position, str(err)
    assert f"expected {expected}" in str(err), str(err)


def test_empty_select():
    err = error_of("", parse_select)
    assert err.position == 0
    assert "expected SELECT" in str(err)


def test_long_token_is_truncated_in_message():
    err = error_of("a = 1 " + "b" * 500)
    assert err.position == 6
    assert len(str(err)) < 200


def test_too_long_input():
    text = "a = '" + "x" * MAX_LENGTH + "'"
    err = error_of(text)
    assert err.position == MAX_LENGTH
    assert "too long" in str(err)
    assert "too long" in str(error_of("select * from users where " + text, parse_select))


def test_longest_allowed_input_parses():
    text = " OR ".join(["a = 1"] * 1000)
    assert len(text) <= MAX_LENGTH
    assert len(parse_where(text).items) == 1000


def test_nesting_at_the_limit_parses():
    assert parse_where("(" * MAX_DEPTH + "a = 1" + ")" * MAX_DEPTH) == cmp("a", "=", 1)
    expr = parse_where("NOT " * MAX_DEPTH + "a = 1")
    for _ in range(MAX_DEPTH):
        expr = expr.expr
    assert expr == cmp("a", "=", 1)


def test_too_deep_parentheses():
    err = error_of("(" * (MAX_DEPTH + 1) + "a = 1" + ")" * (MAX_DEPTH + 1))
    assert err.position == 0
    assert "nested too deeply" in str(err)


def test_hostile_nesting_is_rejected_not_a_crash():
    err = error_of("(" * 4000 + "a = 1" + ")" * 4000)
    assert "nested too deeply" in str(err)
    err = error_of("not " * 2400 + "a = 1")
    assert "nested too deeply" in str(err)
    err = error_of("(" * 9000)
    assert "nested too deeply" not in str(err)  # incomplete: an ordinary syntax error
    assert err.position == 9000


def test_mixed_deep_nesting():
    text = "a = 1 AND (" * 60 + "b = 2" + ")" * 60
    err = error_of(text)
    assert "nested too deeply" in str(err)


def test_number_out_of_range():
    err = error_of("a = " + "9" * 400 + ".5")
    assert err.position == 4
    assert "out of range" in str(err)


def test_non_string_input_is_a_type_error():
    with pytest.raises(TypeError):
        parse_where(None)
    with pytest.raises(TypeError):
        parse_select(b"select * from users")


def test_error_attributes_on_direct_construction():
    err = CeqlError.at("ab\ncd", 4, "Oops", detail="why")
    assert (err.position, err.line, err.column) == (4, 2, 2)
    assert str(err) == "Oops at position 4 (line 2, column 2): why"
