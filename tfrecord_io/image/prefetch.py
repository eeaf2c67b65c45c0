"""Iterators for reading: one run on a background thread a few items ahead, and closing one.

Reading inflates on one thread while decoding on another (zlib and isal release the GIL).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["closing", "prefetched"]


def prefetched(items: Iterator[Any], depth: int = 4) -> Iterator[Any]:
    """Run an iterator on a background thread, at most ``depth`` items ahead of the consumer.

    Errors raised by the iterator are raised to the consumer in order; abandoning the iteration
    stops the thread.
    """
    done = object()
    buffer: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(entry: tuple[Any, BaseException | None]) -> bool:
        while not stop.is_set():
            try:
                buffer.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put((item, None)):
                    return
            put((done, None))
        except BaseException as exc:  # handed to the consumer
            put((done, exc))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=produce, name="tfrecord_io-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item, error = buffer.get()
            if error is not None:
                raise error
            if item is done:
                return
            yield item
    finally:
        stop.set()
        while thread.is_alive():
            try:
                buffer.get_nowait()
            except queue.Empty:
                thread.join(0.05)


class closing:
    """Close a generator on exit (contextlib.closing without the typing noise)."""

    def __init__(self, gen: Iterator[Any]) -> None:
        self.gen = gen

    def __enter__(self) -> Iterator[Any]:
        return self.gen

    def __exit__(self, *exc: object) -> None:
        close: Callable[[], None] | None = getattr(self.gen, "close", None)
        if close is not None:
            close()
