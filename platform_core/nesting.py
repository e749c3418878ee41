"""How deep JSON may nest on its way through the platform.

orjson, which encodes the platform's answers and the bodies it sends on, stops at 254 levels of
arrays and objects; the json module and ``copy.deepcopy`` stop near the interpreter's recursion
limit. So a request body deeper than MAX_JSON_DEPTH is refused (400) before anything is sent:
whatever the vendor was sent can then be answered, mapped and logged. A vendor's answer can be
deeper than orjson goes (Mixpanel keeps what others sent it): ``encode`` falls back to the json
module for it.
"""

import json

import orjson

ORJSON_MAX_DEPTH = 254
# Room below orjson's limit for what the platform wraps around a body (a mapping's paths, an
# import's batch, a usage record).
MAX_JSON_DEPTH = 200
NESTED_TOO_DEEPLY = f"The request body is nested too deeply (at most {MAX_JSON_DEPTH} levels)."


def _orjson_recursion(exc: TypeError) -> bool:
    return "Recursion limit" in str(exc)


def may_nest_too_deeply(raw: bytes) -> bool:
    """Whether a JSON text has enough brackets to nest past MAX_JSON_DEPTH (two counts in C:
    most bodies are settled here without a look at the decoded data)."""
    return raw.count(b"[") + raw.count(b"{") > MAX_JSON_DEPTH


def nested_too_deeply(data, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether ``data`` nests arrays and objects more than ``limit`` levels deep. In C: wrapped in
    ``ORJSON_MAX_DEPTH - limit`` lists, it encodes exactly when it is no deeper than ``limit``."""
    for _ in range(ORJSON_MAX_DEPTH - limit):
        data = [data]
    try:
        orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS)
    except TypeError as exc:
        return _orjson_recursion(exc)
    return False


def encode(data) -> bytes:
    """JSON bytes of decoded JSON (non-text keys as text), however deep: orjson, else the json
    module past orjson's depth. RecursionError past the interpreter's: the caller's to answer."""
    try:
        return orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS)
    except TypeError as exc:
        if not _orjson_recursion(exc):
            raise
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
