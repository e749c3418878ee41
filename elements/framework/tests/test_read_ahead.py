"""read_ahead: an iterator consumed in its own thread, a bounded number of items ahead."""

import threading
import time

import pytest

from elements.framework.read_ahead import read_ahead


def test_the_items_come_in_order_and_the_thread_ends():
    before = threading.active_count()
    assert list(read_ahead(iter(range(1000)), depth=2)) == list(range(1000))
    assert threading.active_count() == before


def test_the_producer_stays_at_most_depth_items_ahead():
    produced = []

    def items():
        for n in range(100):
            produced.append(n)
            yield n

    stream = read_ahead(items(), depth=2)
    assert next(stream) == 0
    time.sleep(0.3)
    # One handed out, two waiting, one held by the producer until there is room.
    assert len(produced) <= 4
    assert list(stream) == list(range(1, 100))


def test_an_error_of_the_iterator_is_raised_where_its_item_would_have_come():
    def items():
        yield 1
        yield 2
        raise ValueError("the stream broke off")

    stream = read_ahead(items())
    assert next(stream) == 1
    assert next(stream) == 2
    with pytest.raises(ValueError, match="broke off"):
        next(stream)


def test_a_reader_that_stops_early_stops_the_producer_and_closes_the_iterator():
    closed = threading.Event()

    def items():
        try:
            n = 0
            while True:
                yield n
                n += 1
        finally:
            closed.set()

    stream = read_ahead(items(), depth=2)
    assert [next(stream) for _ in range(3)] == [0, 1, 2]
    started = time.monotonic()
    stream.close()
    assert time.monotonic() - started < 0.5  # the reader does not wait for the producer
    assert closed.wait(2)
