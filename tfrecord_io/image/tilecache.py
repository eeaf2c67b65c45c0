"""The decoded-tile cache of an export reader: least recently used, bounded in bytes."""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np

__all__ = ["TileCache"]


class TileCache:
    """An LRU cache of decoded tiles, bounded by their size in bytes.

    Parameters
    ----------
    max_bytes : int
        The bound; a tile larger than it is not kept.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[int, tuple[np.ndarray, ...]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: int) -> tuple[np.ndarray, ...] | None:
        """Return the tile of patch ``key`` (now the most recently used), or None."""
        with self._lock:
            item = self._items.get(key)
            if item is not None:
                self._items.move_to_end(key)
            return item

    def put(self, key: int, item: tuple[np.ndarray, ...]) -> None:
        """Keep the tile of patch ``key``, dropping the least recently used over the bound."""
        size = sum(a.nbytes for a in item)
        if size > self.max_bytes:
            return
        with self._lock:
            if key in self._items:
                return
            self._items[key] = item
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, old = self._items.popitem(last=False)
                self._bytes -= sum(a.nbytes for a in old)

    def __contains__(self, key: int) -> bool:
        return key in self._items

    def clear(self) -> None:
        """Drop every tile."""
        with self._lock:
            self._items.clear()
            self._bytes = 0
