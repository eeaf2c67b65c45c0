"""The writer's scratch files: written windows kept on disk, not in memory.

:class:`Spill` holds the raster band-sequential in the dataset's dtype in a raw file, plus two
mask files made only when first needed (per-band masks from masked arrays, and the dataset mask
of ``write_mask``). Files are written and read with ``pwrite``/``preadv``, never memory-mapped,
so reading them back does not count in the process's resident memory. A file that was never
written reads as zeros (it is created sparse).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable

import numpy as np

__all__ = ["Spill"]


def _pread(fd: int, out: np.ndarray, offset: int) -> None:
    view = memoryview(out.reshape(-1)).cast("B")  # type: ignore[arg-type]
    done = 0
    while done < len(view):
        got = os.preadv(fd, [view[done:]], offset + done)
        if got == 0:  # beyond the end of a sparse file: never written, zeros
            view[done:] = bytes(len(view) - done)
            return
        done += got


def _pwrite(fd: int, data: np.ndarray, offset: int) -> None:
    view = memoryview(np.ascontiguousarray(data).reshape(-1)).cast("B")  # type: ignore[arg-type]
    done = 0
    while done < len(view):
        done += os.pwrite(fd, view[done:], offset + done)


class Spill:
    """A raster on disk, written window by window in any order and read back by rows.

    Parameters
    ----------
    path_for : callable
        ``path_for(name)`` gives where to create a scratch file.
    count, height, width : int
        Raster size.
    dtype : numpy.dtype
        The dtype kept.
    nodata : float, optional
        Pixels equal to it read as masked.
    """

    def __init__(
        self,
        path_for: Callable[[str], str],
        count: int,
        height: int,
        width: int,
        dtype: np.dtype,
        nodata: float | None = None,
    ) -> None:
        self._path_for = path_for
        self.count, self.height, self.width, self.dtype = count, height, width, dtype
        self.nodata = nodata
        self.fds: list[int] = []
        self._values = self._open(".spill", count * dtype.itemsize)
        self._masks: int | None = None
        self._dataset_mask: int | None = None

    def _open(self, name: str, bytes_per_pixel: int) -> int:
        fd = os.open(self._path_for(name), os.O_RDWR | os.O_CREAT, 0o600)
        self.fds.append(fd)
        os.ftruncate(fd, bytes_per_pixel * self.height * self.width)
        return fd

    def write(
        self, bands: list[int], data: np.ndarray, mask: np.ndarray | None, r0: int, c0: int
    ) -> None:
        """Write ``data`` ``(len(bands), rows, cols)`` at row ``r0``, column ``c0``.

        ``mask`` (True where masked, same shape) replaces the window's mask; None means unmasked.
        """
        if mask is not None and self._masks is None:
            self._masks = self._open(".mask", self.count)
        for k, band in enumerate(bands):
            self._write_plane(self._values, data[k].astype(self.dtype, copy=False), band, r0, c0)
            if self._masks is not None:
                plane = mask[k] if mask is not None else np.zeros(data.shape[1:], bool)
                self._write_plane(self._masks, plane.view(np.uint8), band, r0, c0)

    def write_dataset_mask(self, invalid: np.ndarray, r0: int, c0: int) -> None:
        """Mark pixels masked in every band (``invalid`` True) in a window."""
        if self._dataset_mask is None:
            self._dataset_mask = self._open(".dataset_mask", 1)
        self._write_plane(self._dataset_mask, invalid.astype(np.uint8), 0, r0, c0)

    def _write_plane(self, fd: int, plane: np.ndarray, band: int, r0: int, c0: int) -> None:
        rows, cols = plane.shape
        size = plane.dtype.itemsize
        base = band * self.height * self.width
        if cols == self.width:  # whole rows are contiguous in the file
            _pwrite(fd, plane, (base + r0 * self.width) * size)
            return
        for i in range(rows):
            _pwrite(fd, plane[i], (base + (r0 + i) * self.width + c0) * size)

    def read_rows(self, row_start: int, row_stop: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Return rows ``row_start:row_stop``: values and mask (a ``RowSource``)."""
        n = row_stop - row_start
        values = np.empty((self.count, n, self.width), dtype=self.dtype)
        for b in range(self.count):
            offset = (b * self.height + row_start) * self.width * values.itemsize
            _pread(self._values, values[b], offset)
        masked: np.ndarray | None = None
        if self._masks is not None:
            m = np.empty((self.count, n, self.width), dtype=np.uint8)
            for b in range(self.count):
                _pread(self._masks, m[b], (b * self.height + row_start) * self.width)
            masked = m.view(bool)
        if self._dataset_mask is not None:
            d = np.empty((n, self.width), dtype=np.uint8)
            _pread(self._dataset_mask, d, row_start * self.width)
            everywhere = np.broadcast_to(d.view(bool), values.shape)
            masked = everywhere if masked is None else masked | everywhere
        if self.nodata is not None:
            if np.isnan(self.nodata):
                nod = np.isnan(values)
            else:
                nod = values == np.asarray(self.nodata).astype(self.dtype)
            masked = nod if masked is None else masked | nod
        return values, masked

    def close(self) -> None:
        """Close the files (the caller removes them with its temporary folder)."""
        for fd in self.fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self.fds = []
