"""Training loaders over an export's patches or a table's rows: numpy out, no torch dependency.

:class:`PatchDataset` is map-style (``len``, ``[i]``: patch ``i`` in export order);
:class:`IterablePatchDataset` streams whole shards, split across workers; :class:`TableDataset`
is map-style over the rows of a table export, and :class:`IterableTableDataset` streams them.
They work as a ``torch.utils.data.Dataset`` / ``IterableDataset`` without subclassing them (a
``DataLoader`` only needs ``__getitem__``/``__len__`` or ``__iter__``), and with no torch at all.

They hold the export's path and options, never an open file: each process opens the export on
first use, so they pickle to ``DataLoader`` workers and to ``multiprocessing`` pools under the
spawn start method.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from tfrecord_io.errors import OptionError, location
from tfrecord_io.format.index import ShardIndex
from tfrecord_io.format.records import iter_records
from tfrecord_io.image.reader import ExportReader
from tfrecord_io.table.decode import BatchDecoder
from tfrecord_io.table.reader import open_table
from tfrecord_io.table.schema import Schema

__all__ = [
    "IterablePatchDataset",
    "IterableTableDataset",
    "PatchDataset",
    "TableDataset",
    "worker_identity",
]

Patch = np.ndarray | dict[str, np.ndarray]


class _PatchSource:
    """The export, opened lazily once per process, and how a decoded tile becomes an item."""

    def __init__(
        self,
        export: str | os.PathLike[str],
        *,
        trim: bool,
        bands: Sequence[str] | None,
        as_dict: bool,
        options: dict[str, Any],
    ) -> None:
        self.path = os.fspath(export)
        self.trim = trim
        self.as_dict = as_dict
        self.options = {"cache_bytes": 0, **options}
        self._reader: ExportReader | None = None
        self._pid = -1
        reader = self.reader  # checks the export and the options now, in the caller's process
        names = reader.layout.names
        wanted = list(names) if bands is None else [str(b) for b in bands]
        unknown = [b for b in wanted if b not in names]
        if unknown or not wanted:
            raise OptionError(f"'{self.path}' has no band(s) {unknown or wanted}; it has {names}")
        self.band_names = tuple(wanted)
        self._positions = [names.index(b) for b in wanted]
        self.total_patches = reader.grid.total_patches

    @property
    def reader(self) -> ExportReader:
        """The reader of this process, opened on first use (again after a fork or unpickling)."""
        if self._reader is None or self._pid != os.getpid():
            self._reader = ExportReader(self.path, **self.options)
            self._pid = os.getpid()
        return self._reader

    def item(self, tile: tuple[np.ndarray, ...]) -> Patch:
        """Turn a decoded tile (one ``(depth, h, w)`` array per feature) into an item."""
        planes = [plane for feature in tile for plane in feature]
        if self.trim:
            grid = self.reader.grid
            rows = slice(grid.margin_y, grid.margin_y + grid.patch_height)
            cols = slice(grid.margin_x, grid.margin_x + grid.patch_width)
            planes = [plane[rows, cols] for plane in planes]
        chosen = [planes[p] for p in self._positions]
        if self.as_dict:
            return dict(zip(self.band_names, chosen, strict=True))
        return np.stack(chosen).astype(np.result_type(*chosen), copy=False)

    def close(self) -> None:
        if self._reader is not None and self._pid == os.getpid():
            self._reader.close()
        self._reader = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_reader": None, "_pid": -1}


class _Loader:
    """What both loaders share: the lazily opened export, its band selection and length."""

    def __init__(
        self,
        export: str | os.PathLike[str],
        trim: bool = False,
        bands: Sequence[str] | None = None,
        *,
        as_dict: bool = False,
        **options: Any,
    ) -> None:
        self.source = _PatchSource(export, trim=trim, bands=bands, as_dict=as_dict, options=options)

    @property
    def band_names(self) -> tuple[str, ...]:
        """The bands given, in order."""
        return self.source.band_names

    def __len__(self) -> int:
        """Patches of the whole export."""
        return self.source.total_patches

    def close(self) -> None:
        """Close this process's files (they reopen when next read)."""
        self.source.close()


class PatchDataset(_Loader):
    """Map-style loader: ``dataset[i]`` is patch ``i`` of the export, in export order.

    Parameters
    ----------
    export : path-like
        The export's folder, mixer or a shard.
    trim : bool
        Cut the kernel margins off: ``(bands, patch_height, patch_width)`` instead of the
        stored tile.
    bands : sequence of str, optional
        Band names to give, in this order; all by default.
    as_dict : bool
        Give ``{band name: (h, w) array}`` (each band keeps its dtype) instead of one
        ``(bands, h, w)`` array (bands of different dtypes promoted to a common one).
    **options
        Options of :class:`~tfrecord_io.image.reader.ExportReader` (``kernel_size``, ``mixer``,
        ``band_order``, ``array_layout``, ``sequence_data``, ``cache_bytes``; no tiles are
        cached by default, since a training epoch reads each patch once).

    Raises
    ------
    TFRecordIOError
        The export is incomplete or malformed, or a band is not in it.
    """

    def __getitem__(self, index: int) -> Patch:
        """Return patch ``index`` (negative counts from the end), decoded."""
        position = _position(index, len(self), ("patch", "patches"), f"'{self.source.path}'")
        return self.source.item(self.source.reader.tile(position))


class IterablePatchDataset(_Loader):
    """Streaming loader: each worker reads whole shards of its own, every patch exactly once.

    Worker ``w`` of ``n`` takes shards ``w, w + n, w + 2n, ...`` (so with more workers than
    shards some get none) and yields their patches in file order. ``w`` and ``n`` come from
    ``torch.utils.data.get_worker_info()`` inside a ``DataLoader`` worker, and from
    ``worker_id``/``num_workers`` otherwise (one worker by default).

    Parameters
    ----------
    export : path-like
        The export's folder, mixer or a shard.
    *args, **kwargs
        ``trim``, ``bands``, ``as_dict`` and the reader's options, as for :class:`PatchDataset`.
    worker_id, num_workers : int, optional
        This worker's number and the number of workers, when not in a torch ``DataLoader``.

    Raises
    ------
    OptionError
        The export holds one SequenceExample per pixel (use :class:`PatchDataset`), or the
        worker numbers are invalid.
    """

    def __init__(
        self,
        export: str | os.PathLike[str],
        *args: Any,
        worker_id: int | None = None,
        num_workers: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(export, *args, **kwargs)
        if self.source.reader.layout.sequence:
            raise OptionError(
                f"'{self.source.path}' holds one SequenceExample per pixel, so a shard does not "
                "hold whole patches: use PatchDataset"
            )
        self.worker_id = worker_id
        self.num_workers = num_workers
        worker_identity(worker_id, num_workers)  # check them now

    def shards(self) -> list[str]:
        """Return the shards this worker reads."""
        worker, count = worker_identity(self.worker_id, self.num_workers)
        return list(self.source.reader.files.shards[worker::count])

    def __iter__(self) -> Iterator[Patch]:
        layout = self.source.reader.layout
        for shard in self.shards():
            records = iter_records(shard)
            try:
                for record, (offset, payload) in enumerate(records):
                    tile = layout.decode(payload, location(shard, record, offset))
                    yield self.source.item(tile)
            finally:  # close the shard also when the consumer stops early
                close = getattr(records, "close", None)
                if close is not None:
                    close()


def worker_identity(
    worker_id: int | None = None, num_workers: int | None = None
) -> tuple[int, int]:
    """Return ``(worker, workers)``: torch's ``DataLoader`` worker if in one, else the arguments.

    Parameters
    ----------
    worker_id, num_workers : int, optional
        Used outside a torch ``DataLoader`` worker; ``(0, 1)`` by default.

    Raises
    ------
    OptionError
        ``worker_id`` is not in ``range(num_workers)``.
    """
    try:
        from torch.utils.data import get_worker_info
    except ImportError:
        info = None
    else:
        info = get_worker_info()
    if info is not None:
        return int(info.id), int(info.num_workers)
    count = 1 if num_workers is None else int(num_workers)
    worker = 0 if worker_id is None else int(worker_id)
    if count < 1 or not 0 <= worker < count:
        raise OptionError(
            f"worker_id must be in range(num_workers); got worker_id={worker_id}, "
            f"num_workers={num_workers}"
        )
    return worker, count


class TableDataset:
    """Map-style loader over a table export: ``dataset[i]`` is row ``i`` as a dict of values.

    Each row is ``{column: value}`` in schema order: a numpy scalar (float32 or int64), a
    ``str`` or ``bytes``, or a numpy array of the column's cell shape. Row ``i`` is found
    through a record index of its file (:class:`~tfrecord_io.format.index.ShardIndex`: record
    offsets and gzip seek points), built lazily in each process as far as the rows asked for,
    so random access into a gzip table does not re-read it from the start.

    The dataset pickles to workers (``DataLoader``, spawn pools) as the file names, the schema
    and the row counts; each process opens its own index on first use.

    Parameters
    ----------
    paths : path-like or sequence of path-like
        The table: one file, a list, a glob or a folder (as :func:`tfrecord_io.open_table`).
    index_spacing : int
        Inflated bytes between the seek points of a gzip file's index: a random read inflates
        at most this much (about 2 ms per MiB), and each seek point holds about 40 KB (zlib's
        window and state), so the index of each process takes about 4% of the inflated table
        at the default 1 MiB.
    **options
        :func:`tfrecord_io.open_table`'s options (``shapes``, ``columns``, ``ragged``,
        ``binary``, ``verify``, ``sample``).

    Raises
    ------
    TFRecordIOError
        The table cannot be opened, as for :func:`tfrecord_io.open_table`.
    """

    def __init__(self, paths: Any, *, index_spacing: int = 1 << 20, **options: Any) -> None:
        if index_spacing < 1:
            raise OptionError(f"index_spacing must be at least 1 byte, not {index_spacing}")
        self.index_spacing = index_spacing
        table = open_table(paths, **options)
        self.files: tuple[str, ...] = table.files
        self.schema: Schema = table.schema
        self.verify = table.verify
        counts = [table.count_rows(path) for path in self.files]
        self._starts = np.cumsum([0, *counts])
        self._indexes: dict[int, ShardIndex] = {}
        self._decoder: BatchDecoder | None = None
        self._pid = -1

    def __len__(self) -> int:
        """Rows of every file."""
        return int(self._starts[-1])

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_indexes": {}, "_decoder": None, "_pid": -1}

    def _index(self, file: int) -> ShardIndex:
        if self._pid != os.getpid():  # a new process: nothing opened by another is used
            self._indexes, self._decoder, self._pid = {}, None, os.getpid()
        index = self._indexes.get(file)
        if index is None:
            start = int(self._starts[file])
            index = ShardIndex.for_shard(self.files[file], start, spacing=self.index_spacing)
            self._indexes[file] = index
        return index

    def locate(self, index: int) -> tuple[int, int]:
        """Return ``(file number, row within the file)`` of row ``index`` of the table."""
        position = _position(index, len(self), ("row", "rows"), f"the table '{self.files[0]}'")
        file = int(np.searchsorted(self._starts, position, side="right")) - 1
        return file, position - int(self._starts[file])

    def __getitem__(self, index: int) -> dict[str, Any]:
        """Return row ``index`` (negative counts from the end) as ``{column: value}``."""
        file, local = self.locate(index)
        shard = self._index(file)
        shard.scan(until=local)
        payload = shard.read(local, verify=self.verify)
        if self._decoder is None:
            self._decoder = BatchDecoder(self.schema)
        path = self.files[file]
        columns = self._decoder.decode([[payload]], lambda _i: f"'{path}', row {local}")
        return {name: values[0] for name, values in columns.items()}

    def close(self) -> None:
        """Close this process's files (they reopen when next read)."""
        if self._pid == os.getpid():
            for index in self._indexes.values():
                index.close()
        self._indexes = {}


class IterableTableDataset:
    """Streaming loader over a table export: each worker yields its own batches' rows.

    The table is read in batches of ``batch_size`` rows; worker ``w`` of ``n`` takes batches
    ``w, w + n, ...`` (worker identity as for :class:`IterablePatchDataset`), so every row is
    given exactly once across workers. Each worker reads the files through, but decodes only
    its own batches.

    Parameters
    ----------
    paths : path-like or sequence of path-like
        The table, as :func:`tfrecord_io.open_table`.
    batch_size : int
        Rows per batch handed to a worker.
    worker_id, num_workers : int, optional
        This worker's number and the number of workers, when not in a torch ``DataLoader``.
    **options
        :func:`tfrecord_io.open_table`'s options.
    """

    def __init__(
        self,
        paths: Any,
        batch_size: int = 1024,
        *,
        worker_id: int | None = None,
        num_workers: int | None = None,
        **options: Any,
    ) -> None:
        if batch_size < 1:
            raise OptionError(f"batch_size must be at least 1, not {batch_size}")
        self.table = open_table(paths, **options)
        self.batch_size = batch_size
        self.worker_id = worker_id
        self.num_workers = num_workers
        worker_identity(worker_id, num_workers)  # check them now

    def __len__(self) -> int:
        """Rows of the whole table (all workers together)."""
        return len(self.table)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        worker, count = worker_identity(self.worker_id, self.num_workers)
        for batch in self.table.iter_batches(self.batch_size, part=(worker, count)):
            names = list(batch)
            for i in range(len(batch[names[0]]) if names else 0):
                yield {name: batch[name][i] for name in names}


def _position(index: object, n: int, names: tuple[str, str], owner: str) -> int:
    """Return ``index`` as a position in ``range(n)``, a negative one counting from the end.

    ``names`` are the item's name, singular and plural, and ``owner`` names what holds them,
    for the messages.
    """
    if isinstance(index, bool) or not isinstance(index, int | np.integer):
        raise TypeError(f"{names[0]} indexes are integers, not {index!r}")
    position = int(index) + n if index < 0 else int(index)
    if not 0 <= position < n:
        raise IndexError(f"{names[0]} {index} out of range: {owner} has {n} {names[1]}")
    return position
