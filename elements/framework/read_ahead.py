"""An iterator consumed in a thread of its own, a few items ahead of its reader.

For a vendor's export stream: reading the socket and gunzipping release the GIL, so a thread
that does both while the job's thread decodes the previous block uses a second core instead of
taking turns. At most ``depth`` items wait (the memory bound); an exception of the iterator is
raised in the reader's thread where the item would have come; a reader that stops early (an
error, a cancel) tells the thread to stop after its current item and does not wait for it: the
caller then closes what the iterator reads from (``LineStream.close``), which ends a read that
is still waiting.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import TypeVar

T = TypeVar("T")

_END = object()
PUT_WAIT_SECONDS = 0.1  # how often a blocked producer looks whether the reader has gone


class _Raised:
    def __init__(self, exc: BaseException):
        self.exc = exc


def read_ahead(items: Iterator[T], *, depth: int = 2, name: str = "read-ahead") -> Iterator[T]:
    waiting: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                waiting.put(item, timeout=PUT_WAIT_SECONDS)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
            put(_END)
        except BaseException as exc:  # handed to the reader's thread
            if not stop.is_set():
                put(_Raised(exc))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=produce, name=name, daemon=True)
    thread.start()
    try:
        while True:
            item = waiting.get()
            if item is _END:
                thread.join()  # it has nothing left to do
                return
            if type(item) is _Raised:
                raise item.exc
            yield item
    finally:
        stop.set()
