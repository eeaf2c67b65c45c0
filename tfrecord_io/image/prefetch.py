"""Iterators for the reader: one run ahead on another thread, and closing one on exit.

zlib and isal release the GIL while they inflate, so reading and inflating records on a second
thread overlaps with decoding them on the first; two shards read at once use both cores.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["Ahead", "closing", "prefetched"]


def prefetched(items: Iterator[Any], depth: int = 4) -> Iterator[Any]:
    """Run an iterator on a background thread, at most ``depth`` items ahead of the consumer.

    Errors raised by the iterator are raised to the consumer in order; abandoning the iteration
    stops the thread. The thread starts at the first ``next``; :class:`Ahead` starts at once.
    """
    ahead = Ahead(items, depth)
    try:
        yield from ahead
    finally:
        ahead.close()


class Ahead:
    """An iterator run on a background thread from now on, at most ``depth`` items ahead."""

    _DONE = object()

    def __init__(self, items: Iterator[Any], depth: int) -> None:
        self._items = items
        self._buffer: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._produce, name="tfrecord_io-prefetch")
        self._thread.daemon = True
        self._thread.start()

    def _put(self, entry: tuple[Any, BaseException | None]) -> bool:
        while not self._stop.is_set():
            try:
                self._buffer.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self) -> None:
        try:
            for item in self._items:
                if not self._put((item, None)):
                    return
            self._put((self._DONE, None))
        except BaseException as exc:  # handed to the consumer
            self._put((self._DONE, exc))
        finally:
            close = getattr(self._items, "close", None)
            if close is not None:
                close()

    def __iter__(self) -> Iterator[Any]:
        while True:
            item, error = self._buffer.get()
            if error is not None:
                raise error
            if item is self._DONE:
                return
            yield item

    def close(self) -> None:
        """Stop the thread and drop what it read ahead."""
        self._stop.set()
        while self._thread.is_alive():
            try:
                self._buffer.get_nowait()
            except queue.Empty:
                self._thread.join(0.05)


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
