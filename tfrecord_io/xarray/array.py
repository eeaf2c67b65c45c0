"""Lazy, picklable access to an export's pixels for xarray: :class:`EETFRecordBackendArray`.

A backend array holds what is needed to open the export again (its path and reader options, as
a :class:`SourceSpec`), never an open file, so it pickles to dask.distributed workers and works
after a fork or under the spawn start method. Each process opens the export once, on first use,
through :func:`tfrecord_io.open`, and keeps it in a small per-process registry
(:func:`patch_store`).

Every variable of a Dataset reads through the same :class:`PatchStore`, which decodes each
record once however many band variables there are. A compute that starts at either end of the
mosaic (a whole compute does) is served from rows of patches streamed front to back
(:class:`~tfrecord_io.xarray.rows.RowStream`), the fast path for whole exports. Any other window
is read through the record index: the first variable to ask for it reads *every* band the
Dataset uses in one pass, the others take their bands from the store, and concurrent requests
for one window (dask threads computing the chunks of several variables) wait for the first
reader instead of decoding again.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from rasterio.windows import Window
from xarray.backends import BackendArray
from xarray.core import indexing

import tfrecord_io
from tfrecord_io.image.dataset import EETFRecordDataset
from tfrecord_io.xarray.rows import RowStream

__all__ = ["EETFRecordBackendArray", "PatchStore", "SourceSpec", "patch_store", "release"]

_STORES_PER_PROCESS = 8
"""Open exports kept per process; the least recently used one is closed beyond this."""


@dataclass(frozen=True, eq=False)
class SourceSpec:
    """How to open an export again, in any process: its path and reader options.

    Attributes
    ----------
    path : str
        The export's folder, mixer or shard.
    options : tuple of (str, object)
        Keyword arguments of :func:`tfrecord_io.open`.
    token : str
        Names one ``open_dataset`` call, so that its arrays share one store per process;
        specs are equal (and hash) by it, since options may hold unhashable values.
    """

    path: str
    options: tuple[tuple[str, Any], ...]
    token: str

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SourceSpec) and other.token == self.token

    def __hash__(self) -> int:
        return hash(self.token)

    def open(self) -> EETFRecordDataset:
        """Open the export with the options."""
        return tfrecord_io.open(self.path, **dict(self.options))  # type: ignore[no-any-return]


@dataclass
class _Entry:
    """One window of every band of a group, read once and handed out band by band."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    bands: dict[int, np.ndarray] | None = None
    pending: set[int] = field(default_factory=set)

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.bands or {}).values())


class PatchStore:
    """One open export in one process, and the windows read but not yet taken by every band.

    Parameters
    ----------
    dataset : EETFRecordDataset
        The open export.
    max_bytes : int
        Bound of the windows kept for bands not yet taken (the oldest are dropped beyond it).
    """

    def __init__(self, dataset: EETFRecordDataset, max_bytes: int = 256 << 20) -> None:
        self.dataset = dataset
        self.max_bytes = max_bytes
        self._entries: OrderedDict[tuple[Any, ...], _Entry] = OrderedDict()
        self.dtypes = dataset.dtypes  # a property that builds a tuple: looked up once
        self._streams: dict[tuple[int, ...], RowStream | None] = {}
        self._lock = threading.Lock()

    def read(
        self, bands: tuple[int, ...], group: tuple[int, ...], window: Window, dtype: np.dtype
    ) -> np.ndarray:
        """Return ``(len(bands), rows, cols)`` of ``window``, reading all of ``group`` at once.

        Parameters
        ----------
        bands : tuple of int
            Band numbers (from 1) wanted now.
        group : tuple of int
            Every band the caller's Dataset uses; ``bands`` is a subset of it.
        window : Window
            Integer window inside the mosaic.
        dtype : numpy.dtype
            Output dtype.
        """
        stream = self._stream(group)
        if stream is not None:
            streamed = stream.read(bands, window)
            if streamed is not None:
                return streamed.astype(dtype, copy=False)
        key = (window.col_off, window.row_off, window.width, window.height, group)
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                entry = self._entries[key] = _Entry(pending=set(group))
        with entry.lock:
            if entry.bands is None:
                entry.bands = self._read_group(group, window)
                self._trim()
            out = np.stack([entry.bands[b] for b in bands]).astype(dtype, copy=False)
            entry.pending.difference_update(bands)
            if not entry.pending:
                with self._lock:
                    if self._entries.get(key) is entry:
                        del self._entries[key]
        return out

    def _stream(self, group: tuple[int, ...]) -> RowStream | None:
        """Return the row stream of ``group``, or None when its bands differ in dtype."""
        with self._lock:
            if group not in self._streams:
                same = len({self.dtypes[b - 1] for b in group}) == 1
                self._streams[group] = (
                    RowStream(self.dataset, group, self.max_bytes) if same else None
                )
            return self._streams[group]

    def _read_group(self, group: tuple[int, ...], window: Window) -> dict[int, np.ndarray]:
        """Read every band of ``group`` in ``window``, one read per dtype.

        Reads after the first find the records in the reader's tile cache: none is decoded twice.
        """
        by_dtype: dict[str, list[int]] = {}
        for band in group:
            by_dtype.setdefault(self.dtypes[band - 1], []).append(band)
        result: dict[int, np.ndarray] = {}
        for indexes in by_dtype.values():
            data = self.dataset.read(indexes, window=window)
            result.update(zip(indexes, data, strict=True))
        return result

    def _trim(self) -> None:
        with self._lock:
            total = sum(e.nbytes for e in self._entries.values())
            while total > self.max_bytes and len(self._entries) > 1:
                _, old = self._entries.popitem(last=False)
                total -= old.nbytes

    def close(self) -> None:
        """Close the export and drop the windows kept."""
        with self._lock:
            self._entries.clear()
            streams, self._streams = list(self._streams.values()), {}
        for stream in streams:
            if stream is not None:
                stream.close()
        self.dataset.close()


_registry: OrderedDict[SourceSpec, PatchStore] = OrderedDict()
_registry_lock = threading.Lock()
_registry_pid = os.getpid()


def patch_store(spec: SourceSpec, dataset: EETFRecordDataset | None = None) -> PatchStore:
    """Return this process's store for ``spec``, opening the export on first use.

    Parameters
    ----------
    spec : SourceSpec
        The export and options.
    dataset : EETFRecordDataset, optional
        An already open dataset for ``spec`` to register (the one ``open_dataset`` opened).
    """
    global _registry_pid
    with _registry_lock:
        if os.getpid() != _registry_pid:  # forked: the parent's handles are not ours
            _registry.clear()
            _registry_pid = os.getpid()
        store = _registry.get(spec)
        if store is None:
            if dataset is None:
                dataset = spec.open()
            cache = int(dict(spec.options).get("cache_size", 256 << 20))
            store = _registry[spec] = PatchStore(dataset, max(cache, 1 << 20))
            while len(_registry) > _STORES_PER_PROCESS:
                _registry.popitem(last=False)[1].close()
        _registry.move_to_end(spec)
        return store


def release(spec: SourceSpec) -> None:
    """Close this process's store for ``spec``, if it has one."""
    with _registry_lock:
        store = _registry.pop(spec, None) if os.getpid() == _registry_pid else None
    if store is not None:
        store.close()


class EETFRecordBackendArray(BackendArray):
    """Bands of an export as a lazy array: ``(y, x)`` for one band, ``(band, y, x)`` for several.

    Parameters
    ----------
    spec : SourceSpec
        How to open the export.
    bands : tuple of int
        Band numbers (from 1) of this array.
    group : tuple of int
        Every band of the Dataset, read together.
    shape : tuple of int
        ``(height, width)`` or ``(len(bands), height, width)``.
    dtype : numpy.dtype
        The array's dtype.
    """

    def __init__(
        self,
        spec: SourceSpec,
        bands: tuple[int, ...],
        group: tuple[int, ...],
        shape: tuple[int, ...],
        dtype: np.dtype,
    ) -> None:
        self.spec = spec
        self.bands = bands
        self.group = group
        self.shape = shape
        self.dtype = np.dtype(dtype)

    def __getitem__(self, key: indexing.ExplicitIndexer) -> Any:
        return indexing.explicit_indexing_adapter(
            key, self.shape, indexing.IndexingSupport.BASIC, self._getitem
        )

    def _getitem(self, key: tuple[Any, ...]) -> np.ndarray:
        """Read a basic index: ints and slices, over ``(band,) y, x``."""
        stacked = len(self.shape) == 3
        band_key = key[0] if stacked else 0
        bands = np.asarray(self.bands)[band_key]
        rows, cols = (_span(k, n) for k, n in zip(key[-2:], self.shape[-2:], strict=True))
        (r0, r1, rstep), (c0, c1, cstep) = rows, cols
        wanted = tuple(int(b) for b in np.atleast_1d(bands))
        if r1 <= r0 or c1 <= c0 or not wanted:
            data = np.empty((len(wanted), max(r1 - r0, 0), max(c1 - c0, 0)), self.dtype)
        else:
            store = patch_store(self.spec)
            data = store.read(wanted, self.group, Window(c0, r0, c1 - c0, r1 - r0), self.dtype)
        data = data[:, ::rstep, ::cstep]
        index: tuple[Any, ...] = (
            0 if np.ndim(bands) == 0 else slice(None),
            0 if isinstance(key[-2], int | np.integer) else slice(None),
            0 if isinstance(key[-1], int | np.integer) else slice(None),
        )
        return data[index]


def _span(key: Any, size: int) -> tuple[int, int, int]:
    """Return ``(start, stop, step)`` of the rows or columns an int or slice selects."""
    if isinstance(key, int | np.integer):
        start = int(key) + size if key < 0 else int(key)
        return start, start + 1, 1
    start, stop, step = key.indices(size)
    if step < 0:
        raise IndexError("negative steps are not supported")  # xarray never passes them here
    if stop <= start:
        return start, start, 1
    # Read the tight span: the last index taken plus one.
    stop = start + ((stop - start - 1) // step) * step + 1
    return start, stop, step
