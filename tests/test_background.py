"""gvr.ops.background: prefetch and background calls keep order, bound memory and never lose an error."""

import threading
import time

import pytest

from gvr.ops.background import BackgroundCalls, prefetch


def test_prefetch_keeps_order_and_runs_ahead_in_another_thread():
    threads = set()

    def items():
        for i in range(10):
            threads.add(threading.get_ident())
            yield i

    assert list(prefetch(items(), depth=3)) == list(range(10))
    assert threading.get_ident() not in threads
    assert list(prefetch(iter(range(4)), depth=0)) == [0, 1, 2, 3]  # depth 0: in series


def test_prefetch_raises_the_producers_error_where_it_happened_and_stops_when_left():
    def broken():
        yield 1
        raise ValueError("bad frame 2")

    got = []
    with pytest.raises(ValueError, match="bad frame 2"):
        for x in prefetch(broken()):
            got.append(x)
    assert got == [1]
    made = []

    def endless():
        i = 0
        while True:
            made.append(i)
            yield i
            i += 1

    for x in prefetch(endless(), depth=2):
        if x == 3:
            break
    time.sleep(0.3)
    assert len(made) <= 3 + 2 + 2  # the producer stopped a queue's length past the consumer


def test_background_calls_run_in_order_and_close_waits_for_them():
    seen = []
    with BackgroundCalls(lambda x: (time.sleep(0.01), seen.append(x)), depth=2) as calls:
        for i in range(6):
            calls.submit(i)
    assert seen == list(range(6))


def test_an_error_in_a_background_call_is_raised_by_the_next_submit_or_close():
    def fail(x):
        if x == 1:
            raise OSError("disk full")

    calls = BackgroundCalls(fail)
    calls.submit(0)
    calls.submit(1)
    with pytest.raises(OSError, match="disk full"):
        for i in range(2, 50):
            time.sleep(0.01)
            calls.submit(i)
        calls.close()
