"""Read-ahead for the pixel function: serve reads that move down the mosaic from one pass.

GDAL asks a VRT's pixel function for one band and one window at a time. ``gdal_translate``,
``BuildOverviews`` and block-by-block readers ask for windows from the top-left corner
downwards; answering each from the record index would inflate every shard twice (once to index
it, once per seek) and decode each patch once per band. :class:`RowStream` instead streams the
export once (:meth:`~tfrecord_io.image.dataset.EETFRecordDataset.iter_patch_rows`, which
inflates on a second thread), decodes a whole row of patches for all bands at a time, and keeps
the last few rows so the other bands' calls for the same window are copies.

A stream starts only on a full-resolution read at the mosaic's top-left pixel, and serves only
reads at or a little below the rows it holds; anything else (QGIS panning, a decimated read, a
jump) returns False and the caller reads through the index as before.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
from rasterio.windows import Window

from tfrecord_io.image.dataset import EETFRecordDataset

__all__ = ["DecimatedReads", "RowStream"]

_AHEAD = 2  # rows of patches a stream decodes to reach a read below the rows it holds
_KEEP = 3  # rows of patches it holds: a read may straddle two, and bands come one by one


class RowStream:
    """One pass over an export, answering in-order full-resolution band reads from it.

    Parameters
    ----------
    ds : EETFRecordDataset
        The open export; the stream does not close it.
    """

    def __init__(self, ds: EETFRecordDataset) -> None:
        self._ds = ds
        self._lock = threading.Lock()
        self._rows: Iterator[tuple[Window, np.ndarray]] | None = None
        self._held: dict[int, np.ndarray] = {}  # patch row -> (bands, patch_height, width)
        self._next = 0  # the patch row the stream yields next
        self._patch_height = ds.grid.patch_height
        self._usable = len(set(ds.dtypes)) == 1

    def read(self, band: int, window: Window, out: np.ndarray) -> bool:
        """Fill ``out`` with band ``band`` over ``window`` from the stream, if it can.

        Parameters
        ----------
        band : int
            Band number, from 1.
        window : Window
            Whole-pixel window of the mosaic, inside it.
        out : numpy.ndarray
            ``(rows, cols)`` buffer; only a full-resolution one (the window's size) is served.

        Returns
        -------
        bool
            True if ``out`` was filled; False if the caller must read it another way.
        """
        rows, cols = int(window.height), int(window.width)
        row_off, col_off = int(window.row_off), int(window.col_off)
        if not self._usable or out.shape != (rows, cols) or rows <= 0 or cols <= 0:
            return False
        if row_off < 0 or col_off < 0 or row_off + rows > self._ds.height:
            return False
        if col_off + cols > self._ds.width:
            return False
        first = row_off // self._patch_height
        last = (row_off + rows - 1) // self._patch_height
        with self._lock:
            if not self._advance(first, last, starts=row_off == 0 and col_off == 0):
                return False
            for prow in range(first, last + 1):
                top = prow * self._patch_height
                lo, hi = max(row_off, top), min(row_off + rows, top + self._patch_height)
                strip = self._held[prow]
                out[lo - row_off : hi - row_off] = strip[
                    band - 1, lo - top : hi - top, col_off : col_off + cols
                ]
        return True

    def _advance(self, first: int, last: int, starts: bool) -> bool:
        """Make patch rows ``first..last`` held, streaming on if they are just ahead."""
        if all(prow in self._held for prow in range(first, last + 1)):
            return True
        if self._rows is None or first < min(self._held, default=self._next):
            if not starts:
                return False
            self.close()
            self._rows = self._ds.iter_patch_rows()
        if last >= self._next + _AHEAD:
            return False
        try:
            for prow in range(self._next, last + 1):
                _, strip = next(self._rows)
                self._held[prow] = strip
                self._next = prow + 1
            if self._next == self._ds.grid.patch_rows:
                next(self._rows, None)  # the generator's end checks the record count
        except BaseException:
            self.close()
            raise
        for prow in [p for p in self._held if p < first or p <= last - _KEEP]:
            del self._held[prow]
        return True

    def close(self) -> None:
        """Stop the stream (and its inflating thread) and drop the rows it holds."""
        rows, self._rows = self._rows, None
        close = getattr(rows, "close", None)
        if close is not None:
            close()
        self._held.clear()
        self._next = 0


class DecimatedReads:
    """Answer a decimated read for every band at once, and the other bands from that.

    GDAL asks for a zoomed-out view (no overviews) one band at a time, each with the whole
    window; decoding the patches it covers once per band would multiply the cost by the band
    count. The first band's call reads all bands into a buffer the size of the output (small:
    it is decimated) and the calls for the other bands copy from it.

    Parameters
    ----------
    ds : EETFRecordDataset
        The open export.
    """

    def __init__(self, ds: EETFRecordDataset) -> None:
        self._ds = ds
        self._lock = threading.Lock()
        self._key: tuple[Any, ...] | None = None
        self._bands: np.ndarray | None = None

    def read(self, band: int, window: Window, out: np.ndarray) -> None:
        """Fill ``out`` (a decimated buffer of ``window``) with band ``band``."""
        key = (window.flatten(), out.shape, out.dtype.str)
        with self._lock:
            if key != self._key or self._bands is None:
                self._bands = self._ds.read(window=window, out_shape=out.shape, out_dtype=out.dtype)
                self._key = key
            out[...] = self._bands[band - 1]
