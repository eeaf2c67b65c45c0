"""Rows of patches decoded by streaming the export once, handed out to chunk reads.

Reading patch by patch through the record index inflates a gzip shard twice (once to index it,
then again from a seek point for each record), and chunks computed by several dask threads
arrive out of order, which defeats the index's sequential cursor. When a compute starts at
either end of the mosaic with a whole chunk (patch-aligned rows, at least a patch wide; a
smaller window is read through the index) and the mosaic fits in the bound, :class:`RowStream`
instead reads it whole (the reader's whole read inflates the shards on two threads); when a
compute starts at the top of a larger one, it streams the export front to back with
:meth:`EETFRecordDataset.iter_patch_rows` (one thread inflating, one decoding). Either way each
shard is inflated once and each record decoded once, and the rows of patches are kept until every
band of every pixel has been taken, so the chunks of all band variables are cut from the same
rows. A compute of a mosaic larger than the bound that dask starts at the bottom (its usual
order) is read through the index, patch by patch.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from rasterio.windows import Window

from tfrecord_io.image.dataset import EETFRecordDataset

__all__ = ["RowStream"]


@dataclass
class _Row:
    data: np.ndarray  # (bands of the group, patch_height, width)
    taken: int = 0  # band-pixels handed out so far


class RowStream:
    """The rows of patches of one band group, streamed from the top and kept until taken.

    Parameters
    ----------
    dataset : EETFRecordDataset
        The open export; the group's bands must share one dtype.
    group : tuple of int
        Band numbers (from 1) decoded together.
    max_bytes : int
        Bound of the rows kept; beyond it the oldest are dropped (their chunks are then read
        through the index instead).
    """

    def __init__(self, dataset: EETFRecordDataset, group: tuple[int, ...], max_bytes: int) -> None:
        self.dataset = dataset
        self.group = group
        self.max_bytes = max_bytes
        self.patch_height = int(dataset.block_shapes[0][0])
        self.patch_width = int(dataset.block_shapes[0][1])
        self.patch_rows = dataset.height // self.patch_height
        self._rows: dict[int, _Row] = {}
        self._stream: Iterator[tuple[Window, np.ndarray]] | None = None
        self._next = 0
        self._lock = threading.Lock()

    def read(self, bands: tuple[int, ...], window: Window) -> np.ndarray | None:
        """Return ``(len(bands), rows, cols)`` of ``window``, or None if the stream is past it.

        Parameters
        ----------
        bands : tuple of int
            Band numbers of the group.
        window : Window
            Integer window inside the mosaic.
        """
        r0, c0 = int(window.row_off), int(window.col_off)
        r1, c1 = r0 + int(window.height), c0 + int(window.width)
        ph = self.patch_height
        first, last = r0 // ph, (r1 - 1) // ph
        positions = [self.group.index(b) for b in bands]
        p0 = positions[0]
        # Consecutive bands are a slice: a single-row window is then a view, not a copy (each
        # band-pixel is handed out once, and dask never writes into its chunks).
        band_index: Any = (
            slice(p0, p0 + len(positions))
            if positions == list(range(p0, p0 + len(positions)))
            else positions
        )
        with self._lock:
            # A window reaching the last row asks for it first: that may start a whole read.
            order = range(first, last + 1)
            # Only a whole chunk (patch-aligned rows, at least a patch wide) may start a whole
            # read: a sliver of the first or last row is read through the index instead.
            whole_chunk = r0 % ph == 0 and (r1 % ph == 0 or r1 == self.dataset.height)
            whole_chunk = whole_chunk and c1 - c0 >= min(self.patch_width, self.dataset.width)
            found: dict[int, _Row] = {}
            for r in reversed(order) if last == self.patch_rows - 1 else order:
                row = self._row(r, whole_chunk)
                if row is None:
                    return None
                found[r] = row
            pieces = []
            for r in order:
                row = found[r]
                top = r * ph
                a, b = max(r0, top), min(r1, top + ph)
                pieces.append(row.data[band_index, a - top : b - top, c0:c1])
                row.taken += len(bands) * (b - a) * (c1 - c0)
                if row.taken >= row.data.size:
                    del self._rows[r]
        return pieces[0] if len(pieces) == 1 else np.concatenate(pieces, axis=1)

    def _row(self, r: int, whole_chunk: bool = True) -> _Row | None:
        """Return row ``r`` of patches, streaming up to it; None if the stream cannot give it."""
        row = self._rows.get(r)
        if row is not None:
            return row
        if self._stream is None or self._next > r:
            itemsize = np.dtype(self.dataset.dtypes[self.group[0] - 1]).itemsize
            fits = len(self.group) * self.dataset.height * self.dataset.width * itemsize
            if whole_chunk and fits <= self.max_bytes and r in (0, self.patch_rows - 1):
                # A whole compute begins at one end (dask usually computes the last chunk
                # first), and the mosaic fits: one whole read, which inflates the shards on
                # two threads at once.
                self._close_stream()
                whole = self.dataset.read(list(self.group))
                for n in range(self.patch_rows):
                    self._rows[n] = _Row(
                        whole[:, n * self.patch_height : (n + 1) * self.patch_height]
                    )
                self._next = self.patch_rows
                return self._rows.get(r)
            if r != 0:
                # A window inside the mosaic, or the last row of one too large to keep (the
                # stream would decode every row to reach it): read through the index.
                return None
            self._close_stream()
            self._next = 0
            self._stream = self.dataset.iter_patch_rows(list(self.group))
        while self._next <= r:
            _, data = next(self._stream)
            self._rows[self._next] = _Row(data)
            self._next += 1
            self._trim(keep=r)
        if self._next == self.patch_rows:
            self._close_stream()  # every row was read; a later read from the top starts again
            self._next = self.patch_rows
        return self._rows.get(r)

    def _trim(self, keep: int) -> None:
        total = sum(row.data.nbytes for row in self._rows.values())
        for r in sorted(self._rows):
            if total <= self.max_bytes:
                break
            if r != keep:
                total -= self._rows.pop(r).data.nbytes

    def _close_stream(self) -> None:
        stream: Any = self._stream
        self._stream = None
        if stream is not None:
            stream.close()

    def close(self) -> None:
        """Stop the stream and drop the rows kept."""
        with self._lock:
            self._close_stream()
            self._rows.clear()
