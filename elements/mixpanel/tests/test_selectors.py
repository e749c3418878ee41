"""Tests for CEQL -> Mixpanel selector translation. Plain pytest, no Django."""

from __future__ import annotations

import pytest

from elements.framework.ceql import CeqlError, parse_select
from elements.mixpanel.selector_language import expr_to_selector, where_to_selector


@pytest.mark.parametrize(
    ("where", "selector"),
    [
        # comparisons
        ("\"$city\" = 'Dallas'", 'properties["$city"] == "Dallas"'),
        ("$city = 'Dallas'", 'properties["$city"] == "Dallas"'),
        ("age != 3", 'properties["age"] != 3'),
        ("age <> 3", 'properties["age"] != 3'),
        ("age < 3", 'properties["age"] < 3'),
        ("age > 3", 'properties["age"] > 3'),
        ("age <= 3", 'properties["age"] <= 3'),
        ("age >= 3", 'properties["age"] >= 3'),
        ("score = -1.5", 'properties["score"] == -1.5'),
        ("score = 0.0000001", 'properties["score"] == 0.0000001'),
        ("n = 12345678901234567890", 'properties["n"] == 12345678901234567890'),
        ("vip = true", 'properties["vip"] == true'),
        ("vip = FALSE", 'properties["vip"] == false'),
        ("code = '42'", 'properties["code"] == "42"'),
        (
            "$last_seen >= '2024-01-01T00:00:00'",
            'properties["$last_seen"] >= "2024-01-01T00:00:00"',
        ),
        # boolean structure
        (
            "a = '1' and (b = 2 or c != 'x')",
            '(properties["a"] == "1" and (properties["b"] == 2 or properties["c"] != "x"))',
        ),
        (
            "a = 1 OR b = 2 AND c = 3",
            '(properties["a"] == 1 or (properties["b"] == 2 and properties["c"] == 3))',
        ),
        (
            "(a = 1 OR b = 2) AND c = 3",
            '((properties["a"] == 1 or properties["b"] == 2) and properties["c"] == 3)',
        ),
        (
            "a = 1 AND b = 2 AND c = 3",
            '(properties["a"] == 1 and properties["b"] == 2 and properties["c"] == 3)',
        ),
        ("((a = 1))", 'properties["a"] == 1'),
        ("NOT a = 1", 'not (properties["a"] == 1)'),
        ("not not a = 1", 'not (not (properties["a"] == 1))'),
        (
            "NOT (a = 1 OR b = 2)",
            'not (properties["a"] == 1 or properties["b"] == 2)',
        ),
        (
            "NOT a = 1 AND b = 2",
            '(not (properties["a"] == 1) and properties["b"] == 2)',
        ),
        # IN
        ("plan IN ('pro')", 'properties["plan"] == "pro"'),
        (
            "plan IN ('pro', 'team', 3)",
            '(properties["plan"] == "pro" or properties["plan"] == "team"'
            ' or properties["plan"] == 3)',
        ),
        (
            "plan NOT IN ('pro', 'team')",
            'not (properties["plan"] == "pro" or properties["plan"] == "team")',
        ),
        ("plan NOT IN ('pro')", 'not (properties["plan"] == "pro")'),
        (
            "a = 1 and plan in ('x', 'y')",
            '(properties["a"] == 1 and (properties["plan"] == "x" or properties["plan"] == "y"))',
        ),
        # LIKE
        ("$email LIKE '%@example.com%'", '"@example.com" in properties["$email"]'),
        ("name like 'Ann'", 'properties["name"] == "Ann"'),
        ("name like ''", 'properties["name"] == ""'),
        ("name NOT LIKE '%bot%'", 'not ("bot" in properties["name"])'),
        ("name LIKE '%it''s%'", '"it\'s" in properties["name"]'),
        # IS [NOT] NULL
        ("$email IS NULL", 'not defined(properties["$email"])'),
        ("$email IS NOT NULL", 'defined(properties["$email"])'),
        ("NOT $email IS NULL", 'not (not defined(properties["$email"]))'),
        (
            "$email is not null and $name is null",
            '(defined(properties["$email"]) and not defined(properties["$name"]))',
        ),
        # field names that need escaping or quoting
        ("\"Referred By\" = 'x'", 'properties["Referred By"] == "x"'),
        ('"say ""hi""" = 1', 'properties["say \\"hi\\""] == 1'),
        ('"back\\slash" = 1', 'properties["back\\\\slash"] == 1'),
        ("`a.b` = 1", 'properties["a.b"] == 1'),
        ("a.b = 1", 'properties["a.b"] == 1'),
        ("`Größe` = 1", 'properties["Größe"] == 1'),
        # string values: JSON escapes, unicode kept as-is
        ("city = 'Zürich'", 'properties["city"] == "Zürich"'),
        ("city = '東京 ☃ 😀'", 'properties["city"] == "東京 ☃ 😀"'),
        ("q = 'say \"hi\"'", 'properties["q"] == "say \\"hi\\""'),
        ("q = 'C:\\dir'", 'properties["q"] == "C:\\\\dir"'),
        ("q = 'a\nb'", 'properties["q"] == "a\\nb"'),
        ("q = 'it''s'", 'properties["q"] == "it\'s"'),
        ("q = ''", 'properties["q"] == ""'),
        # "query" is only special on its own with = and a string
        ("queries = 'x'", 'properties["queries"] == "x"'),
    ],
)
def test_translation(where, selector):
    assert where_to_selector(where) == selector


@pytest.mark.parametrize(
    ("where", "raw"),
    [
        ('query=\'(properties["$city"] == "Dallas")\'', '(properties["$city"] == "Dallas")'),
        (
            'query = \'properties["$email"] == "a@b.c" and defined(properties["x"])\'',
            'properties["$email"] == "a@b.c" and defined(properties["x"])',
        ),
        ("  query='not defined(properties[\"x\"])'  ", 'not defined(properties["x"])'),
        ("(query='x')", "x"),
        ("query='it''s raw'", "it's raw"),
        ("\"query\"='x'", "x"),
        ("query=''", ""),
    ],
)
def test_raw_query_passthrough(where, raw):
    assert where_to_selector(where) == raw


@pytest.mark.parametrize(
    ("where", "position"),
    [
        ("a = 1 AND query='x'", 10),
        ("query='x' OR a = 1", 0),
        ("NOT query='x'", 4),
        ("a = 1 and (b = 2 or query = 'x')", 20),
        ("query IN ('x')", 0),
        ("query LIKE '%x%'", 0),
        ("query IS NULL", 0),
        ("query = 5", 0),
        ("query != 'x'", 0),
    ],
)
def test_misplaced_raw_query_is_rejected(where, position):
    with pytest.raises(CeqlError) as info:
        where_to_selector(where)
    assert info.value.position == position
    assert "query='<selector>'" in str(info.value)


@pytest.mark.parametrize(
    ("where", "position"),
    [
        ("name LIKE 'Ann%'", 10),
        ("name LIKE '%son'", 10),
        ("name LIKE 'A_n'", 10),
        ("name LIKE '%a_b%'", 10),
        ("name LIKE '%a%b%'", 10),
        ("name LIKE '%'", 10),
        ("a = 1 AND\n  name LIKE 'x%'", 22),
    ],
)
def test_unsupported_like_patterns(where, position):
    with pytest.raises(CeqlError) as info:
        where_to_selector(where)
    err = info.value
    assert err.position == position
    assert "only support contains ('%text%') or exact" in str(err)


def test_unsupported_like_error_has_line_and_column():
    with pytest.raises(CeqlError) as info:
        where_to_selector("a = 1 AND\n  name LIKE 'x%'")
    assert (info.value.line, info.value.column) == (2, 13)


def test_empty_contains_pattern():
    assert where_to_selector("name LIKE '%%'") == '"" in properties["name"]'


@pytest.mark.parametrize("where", ["", "a =", "a = 1 AND", "city = 'x"])
def test_syntax_errors_propagate(where):
    with pytest.raises(CeqlError):
        where_to_selector(where)


def test_expr_to_selector_for_bulk_queries():
    query = parse_select("select * from users where \"$city\" = 'Dallas' or age > 30")
    assert expr_to_selector(query.where) == (
        '(properties["$city"] == "Dallas" or properties["age"] > 30)'
    )


def test_expr_to_selector_rejects_raw_query():
    text = "select * from users where query = 'x'"
    with pytest.raises(CeqlError) as info:
        expr_to_selector(parse_select(text).where, text)
    assert info.value.position == 26
