"""Fault switches (``POST /__sim__/faults``).

A POST body holds any of the switch keys below plus optional top-level ``path_prefix`` (default:
every non-control path), ``method`` (default: any), ``count`` (next N matching requests;
default: unlimited until reset/clear) and ``probability`` (0..1: the share of matching requests
the switch fires on, drawn per request; default 1; ``count`` counts only the requests it fired
on).  Each switch value may also be an object carrying its own
``count``/``path_prefix``/``method``/``probability``.  POSTs accumulate; ``DELETE
/__sim__/faults`` clears.  ``seed`` (top level) makes the draws repeatable.

Switches (value forms):

* ``latency_ms``: ``250`` or ``{"ms": 250}`` -- sleep before answering (combines with others)
* ``status``: ``503`` or ``{"status": 503, "body": {...}}`` -- default body
  ``{"error":"simulated failure"}``
* ``rate_limit``: ``{"retry_after": 7}`` / ``{"retry_after": null}`` / ``true`` -- Mixpanel 429
* ``hang``: ``true`` or ``{"seconds": 60}`` -- read the request, never answer
* ``drop``: ``true`` -- close the socket without answering
* ``truncate``: ``true`` -- headers announce more bytes than are sent, then close
* ``malformed``: ``true`` or ``{"body": "<html>oops", "content_type": "text/html"}`` -- 200 non-JSON
* ``export_terminate_after``: ``N`` -- stream N lines then the line ``terminated early``
* ``export_garble_line``: ``i`` -- line i (0-based) is replaced by broken JSON
* ``export_fail_after``: ``N`` -- stream N lines then drop the connection mid-stream

Terminal switches are checked in the order above (``status`` .. ``malformed``); when several
match a request, the first one added that fires wins.  So "10 % 5xx and 1 % hangs" is
``{"hang": {"probability": 0.01}}`` posted before ``{"status": {"status": 503, "probability":
0.1}}``: 1 % hang, and 10 % of the other 99 % fail.
"""

from __future__ import annotations

import random
import threading
from typing import Any

__all__ = ["EXPORT_KINDS", "TERMINAL_KINDS", "Fault", "FaultSet"]

TERMINAL_KINDS = ("status", "rate_limit", "hang", "drop", "truncate", "malformed")
EXPORT_KINDS = ("export_terminate_after", "export_garble_line", "export_fail_after")
ALL_KINDS = ("latency_ms", *TERMINAL_KINDS, *EXPORT_KINDS)
_META = ("path_prefix", "count", "method", "probability", "seed")


class Fault:
    __slots__ = ("kind", "params", "path_prefix", "method", "remaining", "hits", "probability")

    def __init__(
        self,
        kind: str,
        params: dict,
        path_prefix: str,
        method: str | None,
        count: int | None,
        probability: float = 1.0,
    ) -> None:
        self.kind = kind
        self.params = params
        self.path_prefix = path_prefix
        self.method = method
        self.remaining = count
        self.hits = 0
        self.probability = probability

    def matches(self, method: str, path: str) -> bool:
        if self.remaining is not None and self.remaining <= 0:
            return False
        if self.method is not None and self.method != method:
            return False
        return path.startswith(self.path_prefix)

    def fires(self, draw: random.Random) -> bool:
        """Whether this matching request is one of the ``probability`` share it hits."""
        return self.probability >= 1 or draw.random() < self.probability

    def consume(self) -> None:
        self.hits += 1
        if self.remaining is not None:
            self.remaining -= 1

    def view(self) -> dict:
        return {
            "kind": self.kind,
            "params": self.params,
            "path_prefix": self.path_prefix,
            "method": self.method,
            "remaining": self.remaining,
            "probability": self.probability,
            "hits": self.hits,
        }


def _int(value: Any, name: str, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
        raise ValueError(f"{name} must be a number >= {minimum}")
    return int(value)


def _probability(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ValueError("probability must be a number from 0 to 1")
    return float(value)


def _normalise(kind: str, value: Any) -> dict | None:
    """Turn a switch value into a params dict; None means 'switch off'."""
    if value is None or value is False:
        return None
    obj = value if isinstance(value, dict) else None
    if kind == "latency_ms":
        ms = obj.get("ms", obj.get("latency_ms")) if obj is not None else value
        return {"ms": _int(ms, "latency_ms")}
    if kind == "status":
        code = obj.get("status", obj.get("code")) if obj is not None else value
        code = _int(code, "status", 100)
        if code > 599:
            raise ValueError("status must be an HTTP status code")
        body = obj.get("body") if obj is not None else None
        return {
            "status": code,
            "body": body if body is not None else {"error": "simulated failure"},
        }
    if kind == "rate_limit":
        if obj is not None:
            ra = obj.get("retry_after")
        elif value is True:
            ra = None
        else:
            ra = value
        if ra is not None:
            ra = _int(ra, "retry_after")
        return {"retry_after": ra}
    if kind == "hang":
        seconds = obj.get("seconds", 60) if obj is not None else (60 if value is True else value)
        return {"seconds": float(_int(seconds, "hang.seconds"))}
    if kind in ("drop", "truncate"):
        return {}
    if kind == "malformed":
        body = (obj or {}).get("body", "<html>oops</html>")
        ctype = (obj or {}).get("content_type", "text/html")
        status = _int((obj or {}).get("status", 200), "malformed.status", 100)
        if not isinstance(body, str) or not isinstance(ctype, str):
            raise ValueError("malformed.body and malformed.content_type must be strings")
        return {"body": body, "content_type": ctype, "status": status}
    if kind == "export_garble_line":
        idx = obj.get("index") if obj is not None else value
        return {"index": _int(idx, kind)}
    # export_terminate_after / export_fail_after
    lines = obj.get("lines") if obj is not None else value
    return {"lines": _int(lines, kind)}


class FaultSet:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.items: list[Fault] = []
        self.draw = random.Random()

    def clear(self) -> None:
        with self.lock:
            self.items = []
            self.draw = random.Random()

    def view(self) -> list[dict]:
        with self.lock:
            return [f.view() for f in self.items]

    def add(self, spec: Any) -> list[dict]:
        if not isinstance(spec, dict):
            raise ValueError("faults body must be a JSON object")
        unknown = [k for k in spec if k not in ALL_KINDS and k not in _META]
        if unknown:
            raise ValueError(f"unknown fault switches: {', '.join(sorted(unknown))}")
        prefix = spec.get("path_prefix", "/")
        count = spec.get("count")
        method = spec.get("method")
        probability = spec.get("probability", 1)
        seed = spec.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ValueError("seed must be an integer")
        new: list[Fault] = []
        for kind in ALL_KINDS:
            if kind not in spec:
                continue
            value = spec[kind]
            params = _normalise(kind, value)
            if params is None:
                continue
            p_prefix, p_count, p_method, p_probability = prefix, count, method, probability
            if isinstance(value, dict):
                p_prefix = value.get("path_prefix", prefix)
                p_count = value.get("count", count)
                p_method = value.get("method", method)
                p_probability = value.get("probability", probability)
            if not isinstance(p_prefix, str) or not p_prefix.startswith("/"):
                raise ValueError("path_prefix must be a string starting with '/'")
            if p_count is not None:
                p_count = _int(p_count, "count", 1)
            if p_method is not None:
                if not isinstance(p_method, str):
                    raise ValueError("method must be a string")
                p_method = p_method.upper()
            new.append(
                Fault(kind, params, p_prefix, p_method, p_count, _probability(p_probability))
            )
        with self.lock:
            if seed is not None:
                self.draw = random.Random(seed)
            self.items = [*self.items, *new]
            return [f.view() for f in self.items]

    def take(self, method: str, path: str) -> tuple[int, Fault | None]:
        """Consume matching request-level faults: (total latency ms, first terminal fault)."""
        latency = 0
        terminal: Fault | None = None
        with self.lock:
            for f in self.items:
                if f.kind in EXPORT_KINDS or not f.matches(method, path):
                    continue
                if f.kind == "latency_ms":
                    if f.fires(self.draw):
                        latency += f.params["ms"]
                        f.consume()
                elif terminal is None and f.fires(self.draw):
                    terminal = f
                    f.consume()
        return latency, terminal

    def take_export(self, method: str, path: str) -> dict[str, dict]:
        """Consume matching export-stream faults: {kind: params} (first match per kind)."""
        out: dict[str, dict] = {}
        with self.lock:
            for f in self.items:
                if f.kind not in EXPORT_KINDS or f.kind in out or not f.matches(method, path):
                    continue
                if not f.fires(self.draw):
                    continue
                out[f.kind] = f.params
                f.consume()
        return out
