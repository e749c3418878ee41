"""The mapping a transformation applies (elements/framework/mapping.py): dot paths and [*]
arrays on both sides, pass-through, remove, types and dates, and where rewriting."""

import pytest

from elements.framework import ceql
from elements.framework.mapping import FieldMapping, Mapping, PathError, parse_path


def mapping(*fields, **options) -> Mapping:
    return Mapping(name="thing", vendor_name="things", fields=tuple(fields), **options)


def test_dot_paths_both_ways_and_unmapped_fields_pass_through():
    m = mapping(
        FieldMapping("name", "Name"),
        FieldMapping("address.city", "MailingAddress.City"),
    )
    vendor = {"Name": "Ann", "MailingAddress": {"City": "Oslo"}, "Other": 1}
    assert m.from_vendor(vendor) == {"name": "Ann", "address": {"city": "Oslo"}, "Other": 1}
    assert m.to_vendor({"name": "Ann", "address": {"city": "Oslo"}, "extra": True}) == {
        "Name": "Ann",
        "MailingAddress": {"City": "Oslo"},
        "extra": True,
    }
    # The vendor record is not changed.
    assert vendor == {"Name": "Ann", "MailingAddress": {"City": "Oslo"}, "Other": 1}


def test_arrays_element_wise_on_both_sides():
    m = mapping(
        FieldMapping("users[*].name", "Users[*].DisplayName"),
        FieldMapping("users[*].mail", "Users[*].Contact.Email"),
        FieldMapping("everyone[*]", "Users[*]"),
        pass_through_from_vendor=False,
    )
    vendor = {
        "Users": [
            {"DisplayName": "Ann", "Contact": {"Email": "a@x"}},
            {"DisplayName": "Bob"},
        ]
    }
    mapped = m.from_vendor(vendor)
    assert mapped["users"] == [{"name": "Ann", "mail": "a@x"}, {"name": "Bob"}]
    assert mapped["everyone"] == vendor["Users"]

    back = mapping(
        FieldMapping("lines[*].sku", "items[*].id"),
        FieldMapping("lines[*].count", "items[*].qty", type="number"),
        pass_through_to_vendor=False,
    )
    assert back.to_vendor({"lines": [{"sku": "a", "count": 2}, {"sku": "b"}]}) == {
        "items": [{"id": "a", "qty": 2}, {"id": "b"}]
    }


def test_pass_through_false_and_remove_per_direction():
    m = mapping(
        FieldMapping("a", "A"),
        FieldMapping("b", "B", remove_from_vendor=True),
        FieldMapping("c", "C", remove_to_vendor=True),
        pass_through_from_vendor=False,
        pass_through_to_vendor=False,
    )
    assert m.from_vendor({"A": 1, "B": 2, "C": 3, "D": 4}) == {"a": 1, "c": 3}
    assert m.to_vendor({"a": 1, "b": 2, "c": 3, "d": 4}) == {"A": 1, "B": 2}


def test_types_coerce_what_comes_from_the_vendor_and_keep_what_does_not_convert():
    m = mapping(
        FieldMapping("n", "n", type="number"),
        FieldMapping("f", "f", type="number"),
        FieldMapping("b", "b", type="boolean"),
        FieldMapping("s", "s", type="string"),
        FieldMapping("bad", "bad", type="number"),
        FieldMapping("inf", "inf", type="number"),
    )
    assert m.from_vendor(
        {"n": "42", "f": "1.5", "b": "true", "s": 7, "bad": "x", "inf": "1e999"}
    ) == {
        "n": 42,
        "f": 1.5,
        "b": True,
        "s": "7",
        "bad": "x",
        "inf": "1e999",
    }


def test_transform_date_with_java_patterns_and_epochs():
    field = FieldMapping("d", "d", date_pattern="dd/MM/yyyy HH:mm")
    m = mapping(field)
    assert m.from_vendor({"d": "2024-01-05T10:30:00"}) == {"d": "05/01/2024 10:30"}
    assert m.from_vendor({"d": 1704450600}) == {"d": "05/01/2024 10:30"}
    assert m.from_vendor({"d": 1704450600000}) == {"d": "05/01/2024 10:30"}
    assert m.to_vendor({"d": "05/01/2024 10:30"}) == {"d": "2024-01-05T10:30:00"}
    assert m.from_vendor({"d": "not a date"}) == {"d": "not a date"}
    assert m.from_vendor({"d": 10**30}) == {"d": 10**30}  # out of range: kept
    iso = mapping(FieldMapping("d", "d", type="date"))
    for edge in ("0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"):
        assert iso.to_vendor({"d": edge}) == {"d": edge}  # out of range once in UTC: kept
    quoted = mapping(
        FieldMapping(
            "d", "d", date_pattern="yyyy-MM-dd'T'HH:mm:ss.SSS", vendor_date_pattern="yyyyMMdd"
        )
    )
    assert quoted.from_vendor({"d": "20240105"}) == {"d": "2024-01-05T00:00:00.000"}


def test_where_names_are_rewritten_and_the_rest_is_kept():
    m = mapping(
        FieldMapping("town", "$properties.$city"),
        FieldMapping("age", "$properties.age"),
        where_field=lambda p: p.removeprefix("$properties."),
    )
    where = "town = 'Dallas' AND (age >= 21 OR \"town\" IN ('Paris', 'town = x')) AND other = 1"
    assert m.vendor_where(where) == (
        "\"$city\" = 'Dallas' AND (age >= 21 OR \"$city\" IN ('Paris', 'town = x')) AND other = 1"
    )
    expr = m.vendor_expr(ceql.parse_where("NOT town LIKE '%a%' AND age IS NULL"))
    assert expr == ceql.parse_where("NOT \"$city\" LIKE '%a%' AND age IS NULL")
    with pytest.raises(ceql.CeqlError):
        m.vendor_where("town = ")


def test_a_write_answer_is_read_where_it_was_written():
    m = mapping(
        FieldMapping("city", "$properties.$city"),
        write_path=lambda p: p.replace("$properties.", "$set.", 1),
    )
    assert m.to_vendor({"city": "Oslo"}) == {"$set": {"$city": "Oslo"}}
    assert m.from_vendor({"$distinct_id": "1", "$set": {"$city": "Oslo"}}) == {
        "$distinct_id": "1",
        "city": "Oslo",
    }


@pytest.mark.parametrize("bad", ["a..b", "a[0]", "[*]", "", "a[*]b"])
def test_paths_are_checked(bad):
    with pytest.raises(PathError):
        parse_path(bad)
