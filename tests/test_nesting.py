"""platform_core/nesting.py and the places that lean on it: the depth test at its boundary, the
encoder past orjson's depth, and a vendor record too deep to map or to trace."""

import json

import pytest

from elements import transformed
from elements.framework.mapping import FieldMapping, Mapping
from elements.framework.vendor import VendorGarbage
from platform_core.nesting import (
    MAX_JSON_DEPTH,
    ORJSON_MAX_DEPTH,
    encode,
    may_nest_too_deeply,
    nested_too_deeply,
)
from usage.services import _traceable


def arrays(depth: int):
    value = 1
    for _ in range(depth):
        value = [value]
    return value


def objects(depth: int):
    value = 1
    for _ in range(depth):
        value = {"k": value}
    return value


@pytest.mark.parametrize("build", [arrays, objects])
def test_the_depth_test_holds_at_its_boundary(build):
    assert not nested_too_deeply(build(MAX_JSON_DEPTH))
    assert nested_too_deeply(build(MAX_JSON_DEPTH + 1))
    assert nested_too_deeply(build(ORJSON_MAX_DEPTH + 50))
    assert not nested_too_deeply(build(10), limit=10)
    assert nested_too_deeply(build(11), limit=10)


def test_the_bracket_count_settles_shallow_texts():
    assert not may_nest_too_deeply(b'{"a": [1, 2, {"b": 3}]}')
    assert may_nest_too_deeply(b"[" * (MAX_JSON_DEPTH + 1))


@pytest.mark.parametrize("depth", [ORJSON_MAX_DEPTH, ORJSON_MAX_DEPTH + 1, 600])
def test_encode_goes_past_orjson_and_keeps_the_value(depth):
    value = {"x": arrays(depth), 7: "a key that is not text"}
    assert json.loads(encode(value)) == {"x": arrays(depth), "7": "a key that is not text"}


def test_encode_past_the_interpreter_leaves_the_answer_to_the_caller():
    with pytest.raises(RecursionError):
        encode(arrays(100_000))


def test_a_vendor_record_too_deep_to_map_is_the_vendors_fault():
    mapping = Mapping(name="thing", vendor_name="things", fields=(FieldMapping("name", "Name"),))
    assert transformed.tenant_body(mapping, [{"Name": "a"}]) == [{"name": "a"}]
    with pytest.raises(VendorGarbage):
        transformed.tenant_body(mapping, {"Name": "a", "deep": objects(5000)})


def test_a_traced_body_too_deep_to_store_is_summarised(settings):
    traced = _traceable({"x": arrays(MAX_JSON_DEPTH + 5)}, element=None, configuration={})
    assert traced == {"truncated": True, "reason": f"nested deeper than {MAX_JSON_DEPTH} levels"}
