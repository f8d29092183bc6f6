"""Overlap a pipeline's stages: decode ahead of the model in one thread, encode behind it in another.

PyAV decodes and encodes with the GIL released and torch computes with it released too, so a file's decode,
the network and the encoder run at once instead of in series. Queues are bounded (memory stays flat in the
video's length) and an error in a worker thread is raised in the caller, never lost.
"""

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

_DONE = object()


def prefetch(items: Iterable, depth: int = 2) -> Iterator:
    """The items of ``items``, produced by a background thread up to ``depth`` ahead of the consumer.

    An exception in the producer is raised here, at the item where it happened. Leaving the loop early stops
    the producer at its next item.
    """
    if depth < 1:
        yield from items
        return
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(entry) -> bool:
        """Queue ``entry`` unless the consumer has left; False once it has."""
        while not stop.is_set():
            try:
                q.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put((True, item)):
                    return
            put((True, _DONE))
        except BaseException as err:  # noqa: BLE001 - handed to the consumer
            put((False, err))

    thread = threading.Thread(target=produce, name="gvr-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            ok, item = q.get()
            if not ok:
                raise item
            if item is _DONE:
                return
            yield item
    finally:
        stop.set()
        thread.join(timeout=5)


class BackgroundCalls:
    """Runs ``fn(*args)`` for each `submit` in one background thread, in order, at most ``depth`` waiting.

    `close` waits for the queued calls; the first error of a call is raised by the next `submit` or by `close`.
    Use as a context manager: leaving the block normally closes it, an exception drops the queued calls.
    """

    def __init__(self, fn: Callable[..., Any], depth: int = 2):
        self.fn, self._error = fn, None
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self._thread = threading.Thread(target=self._work, name="gvr-background", daemon=True)
        self._thread.start()

    def _work(self) -> None:
        while True:
            args = self._queue.get()
            if args is _DONE:
                return
            if self._error is None:
                try:
                    self.fn(*args)
                except BaseException as err:  # noqa: BLE001 - raised in the caller
                    self._error = err

    def _raise(self) -> None:
        if self._error is not None:
            err, self._error = self._error, None
            raise err

    def submit(self, *args) -> None:
        self._raise()
        self._queue.put(args)

    def close(self) -> None:
        self._queue.put(_DONE)
        self._thread.join()
        self._raise()

    def __enter__(self) -> "BackgroundCalls":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self._error = exc  # skip what is still queued
            self._queue.put(_DONE)
            self._thread.join()
