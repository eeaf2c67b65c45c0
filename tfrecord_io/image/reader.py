"""Own an export's files: find the shards and the mixer, locate and decode patches.

:class:`ExportReader` reads the mixer and the first record when it is made (and, for a partial
export, a sequence export without ``kernel_size`` or a hand-given grid without
``total_patches``, counts or places every record, which those need to know the grid). A
record index (shard, offset) is loaded from the export's sidecar when it has a current one
(:mod:`tfrecord_io.image.indexing`), or else built shard by shard the first time a patch
beyond what is indexed is asked for, and kept; decoded tiles go through an LRU cache bounded in
bytes. A read of the whole export streams every shard once instead
(:meth:`ExportReader.iter_tiles`, :mod:`tfrecord_io.image.streaming`).
How records become bands is :mod:`tfrecord_io.image.layout`'s business.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np
from rasterio.crs import CRS

from tfrecord_io.errors import (
    MissingMixerError,
    MixerError,
    OptionError,
    RecordCountError,
    TFRecordIOError,
    location,
)
from tfrecord_io.format import example as wire
from tfrecord_io.format.index import ShardIndex
from tfrecord_io.format.records import framed_size, iter_records, size_hint
from tfrecord_io.format.storage import StorageOptions, as_store, basename, stat
from tfrecord_io.image.files import ExportFiles, find_export
from tfrecord_io.image.grid import PatchGrid
from tfrecord_io.image.indexing import load_saved_indexes
from tfrecord_io.image.layout import ArrayLayout, layout_from_record
from tfrecord_io.image.mixer import Mixer, read_mixer_text
from tfrecord_io.image.partial import place_shards
from tfrecord_io.image.prefetch import closing as _closing
from tfrecord_io.image.streaming import ExportStream
from tfrecord_io.image.tilecache import TileCache

__all__ = ["ExportReader"]


class ExportReader:
    """The files of one export, its grid, and decoded access to its patches.

    Parameters
    ----------
    path : path-like
        The export folder, its mixer, or one of its shards.
    kernel_size : (int, int), optional
        ``(x, y)`` kernel size; inferred from the first record when not given.
    mixer : path-like, Mixer or dict, optional
        A mixer file or object to use instead of the export's own; or, for an export written
        without one, the grid by hand: a dict with ``patch_size``, ``patches_per_row``, ``crs``
        and ``transform``.
    band_order : sequence of str, optional
        Feature names in the order wanted (also selects a subset).
    array_layout : {"depth_major", "pixel_major"}
        Layout of array features.
    sequence_data : bool, optional
        Force reading as one SequenceExample per pixel (detected when not given).
    cache_bytes : int
        Bound of the decoded-tile cache.
    storage_options : dict or Store, optional
        fsspec options when ``path`` is a URL (``gs://``, ``s3://``, ``https://``, ...).
    allow_missing : bool
        Read a partial export (shards missing from the numbering): the present shards' records
        are placed when their positions are certain, every other patch is missing
        (:attr:`missing_patches`).
    files : ExportFiles, optional
        What :func:`~tfrecord_io.image.files.find_export` found for ``path`` (with the same
        ``mixer``, and ``strict=not allow_missing``), when the caller has looked already;
        found here otherwise.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
        *,
        kernel_size: tuple[int, int] | None = None,
        mixer: str | os.PathLike[str] | Mixer | dict[str, Any] | None = None,
        band_order: Sequence[str] | None = None,
        array_layout: ArrayLayout = "depth_major",
        sequence_data: bool | None = None,
        cache_bytes: int = 256 << 20,
        storage_options: StorageOptions = None,
        allow_missing: bool = False,
        files: ExportFiles | None = None,
    ) -> None:
        if array_layout not in ("depth_major", "pixel_major"):
            raise OptionError(
                f"array_layout must be 'depth_major' or 'pixel_major', not {array_layout!r}"
            )
        if kernel_size is not None:
            kernel_size = _pair(kernel_size, "kernel_size")
        self.store = as_store(storage_options)
        if files is None:
            files = find_export(
                path, strict=not allow_missing, mixer=mixer, storage_options=self.store
            )
        self.files = files
        #: The mixer file's exact text, when the mixer was read from a file.
        self.mixer_text: str | None = None
        self.expected_records: int | None = None  # known once the grid is
        #: Patches of a partial export whose shard is missing (read as nodata).
        self.missing_patches: frozenset[int] = frozenset()
        #: True for a partial export: its shards were indexed and placed when opened.
        self.partial = False
        self._bound: int | None = None
        self._indexes: list[ShardIndex] = []
        self._sidecar_checked = False
        self._index_lock = threading.Lock()
        self._cache = TileCache(cache_bytes)
        #: The whole-export reads (every shard streamed once).
        self.stream = ExportStream(self)
        first_where = location(self.files.shards[0], 0)
        with _closing(iter_records(self.files.shards[0], storage_options=self.store)) as it:
            first = next(it, None)
        if first is None:
            raise RecordCountError(f"{first_where}: the first shard holds no record")
        payload = first[1]
        sequence = wire.is_sequence_example(payload) if sequence_data is None else sequence_data
        self.mixer = self._load_mixer(mixer, sequence)
        self.crs = _crs_of(
            self.mixer,
            self._mixer_source(mixer),
            OptionError if isinstance(mixer, dict) else MixerError,
        )
        records_per_patch = None
        if sequence and kernel_size is None:
            count = self.record_count()
            records_per_patch, rest = divmod(count, self.mixer.total_patches)
            if rest:
                raise RecordCountError(
                    f"'{self.files.folder}': {count} per-pixel records do not divide into "
                    f"{self.mixer.total_patches} patches. Pass kernel_size."
                )
        self.layout, (mx, my) = layout_from_record(
            payload,
            self.mixer,
            kernel_size=kernel_size,
            band_order=band_order,
            array_layout=array_layout,
            sequence=sequence,
            records_per_patch=records_per_patch,
            where=first_where,
        )
        self.grid = PatchGrid.from_mixer(self.mixer, mx, my)
        self.records_per_patch = self.grid.tile_pixels if sequence else 1
        self.expected_records = self.grid.total_patches * self.records_per_patch
        if self.files.missing:
            self._place_partial()

    def _place_partial(self) -> None:
        """Index every shard present and place it in the grid (a partial export)."""
        if self.layout.sequence:
            raise OptionError(
                f"'{self.files.folder}': a sequence export with missing shards cannot be placed. "
                "Download the missing shards."
            )
        indexes = [
            ShardIndex.for_shard(shard, storage_options=self.store) for shard in self.files.shards
        ]
        for index in indexes:
            index.scan(None)
        starts = place_shards(
            self.files.numbers,
            [len(index) for index in indexes],
            {size for index in indexes for size in index.lengths},
            self.grid.total_patches,
            self.files.folder,
        )
        present: set[int] = set()
        for index, start in zip(indexes, starts, strict=True):
            index.first_index = start
            present.update(range(start, start + len(index)))
        self._indexes = indexes
        self.partial = True
        self.missing_patches = frozenset(range(self.grid.total_patches)) - present

    def _load_mixer(self, mixer: Any, sequence: bool) -> Mixer:
        if isinstance(mixer, Mixer):
            return mixer
        if isinstance(mixer, dict):
            total = mixer.get("total_patches")
            if total is None:
                if sequence:
                    raise OptionError(
                        "a sequence export given a grid by hand also needs its total_patches"
                    )
                count = self.record_count()
                if count % int(mixer.get("patches_per_row", 1) or 1):
                    raise RecordCountError(
                        f"'{self.files.folder}' holds {count} records, not a whole number of rows "
                        f"of {mixer.get('patches_per_row')} patches. Earth Engine drops patches "
                        "when maskedThreshold is below 1, and then the grid cannot be rebuilt."
                    )
                total = count
            return Mixer.from_grid(mixer, total)
        if mixer is not None:
            return self._read_mixer(mixer)
        if self.files.mixer is None:
            raise MissingMixerError(
                f"'{self.files.folder}' has no {self.files.prefix}-mixer.json. Earth Engine "
                "writes no mixer when an export sets maskedThreshold below 1, or the file was "
                "not downloaded. Pass the grid by hand: tfrecord_io.open(path, mixer={"
                "'patch_size': (width, height), 'patches_per_row': N, 'crs': 'EPSG:...', "
                "'transform': Affine(...)}), or the path of the mixer file."
            )
        return self._read_mixer(self.files.mixer)

    def _read_mixer(self, path: str | os.PathLike[str]) -> Mixer:
        self.mixer_text = read_mixer_text(path, self.store)
        return Mixer.from_json(self.mixer_text, source=f"'{os.fspath(path)}'")

    def _mixer_source(self, mixer: Any) -> str:
        if isinstance(mixer, str | os.PathLike):
            return f"'{os.fspath(mixer)}'"
        if mixer is None and self.files.mixer:
            return f"'{self.files.mixer}'"
        return "the mixer given"

    # -- the record index ------------------------------------------------------------------

    def _index_through(self, record: int | None) -> None:
        """Index forward until ``record`` is covered (everything for None).

        Shards are indexed in order, and the last one only as far as needed, so a window near
        the start of a large gzip shard does not wait for the whole shard to be inflated.
        """
        if self.partial:
            return  # every shard present was indexed and placed when opened
        with self._index_lock:
            self._load_sidecar()
            shards = self.files.shards
            while True:
                if not self._indexes or (
                    self._indexes[-1].complete and len(self._indexes) < len(shards)
                ):
                    self._indexes.append(
                        ShardIndex.for_shard(
                            shards[len(self._indexes)],
                            self._indexed_records(),
                            storage_options=self.store,
                        )
                    )
                last = self._indexes[-1]
                if record is not None and record < last.first_index + len(last):
                    return
                if last.complete:
                    break
                last.scan(None if record is None else record - last.first_index)
            total = self._indexed_records()
            if self.expected_records is not None and total != self.expected_records:
                raise RecordCountError(self.count_message(total, self.expected_records))

    def _load_sidecar(self) -> bool:
        """Load the saved index once, when current (it replaces the scan); True if loaded."""
        if not self._sidecar_checked:
            self._sidecar_checked = True
            self._indexes = (
                load_saved_indexes(self.files, storage_options=self.store) or self._indexes
            )
        return bool(self._indexes) and self._indexes[0].saved

    def saved_ranges(self, pieces: int) -> list[tuple[ShardIndex, int, int]] | None:
        """Split the records into about ``pieces`` ranges that start at saved seek points.

        None without a current sidecar: then a shard can only be read from its start.
        """
        with self._index_lock:
            if not self._load_sidecar():
                return None
        self._index_through(None)  # complete already: checks the count against the grid
        sizes = [ix.offsets[-1] + ix.lengths[-1] if len(ix) else 0 for ix in self._indexes]
        target = max(1, sum(sizes) // pieces)
        ranges = []
        for ix in self._indexes:
            start, start_at = 0, 0
            for at, local in ix.split_points():
                if at - start_at >= target and local > start:
                    ranges.append((ix, start, local))
                    start, start_at = local, at
            if start < len(ix):
                ranges.append((ix, start, len(ix)))
        return ranges

    def _indexed_records(self) -> int:
        last = self._indexes[-1] if self._indexes else None
        return last.first_index + len(last) if last is not None else 0

    def count_message(self, total: int, expected: int) -> str:
        """Return why ``total`` records do not fit a grid needing ``expected``, and what to do."""
        last = basename(self.files.shards[-1])
        hint = (
            f"A shard after {last} may be missing: download it."
            if total < expected
            else "The shards do not belong to this mixer, or another export's shards are mixed in."
        )
        return (
            f"'{self.files.folder}' holds {total} records in {len(self.files.shards)} shard(s), "
            f"but the mixer's grid needs {expected}. {hint}"
        )

    def record_count(self) -> int:
        """Count the records of every shard (indexes the whole export once).

        Raises
        ------
        RecordCountError
            Once the grid is known, when the count does not match it.
        """
        self._index_through(None)
        if self.partial:
            return sum(len(index) for index in self._indexes)
        return self._indexed_records()

    def require_patch(self, index: int) -> None:
        """Check that the records of patch ``index`` exist (indexing as far as them).

        Raises
        ------
        RecordCountError
            The export holds fewer records than the mixer's grid needs.
        """
        needed = (index + 1) * self.records_per_patch
        if self.partial or needed <= self._indexed_records() or needed <= self._record_bound():
            return
        self._index_through(needed - 1)

    def _record_bound(self) -> int:
        """Return an upper bound of the records the shards can hold, from their sizes alone.

        A record holds at least one byte per value of each feature (one pixel's values in a
        sequence export, a tile's otherwise). A gzip shard inflates to at
        most 1032 times its size (deflate's limit); when that is under 4 GiB its trailer's ISIZE
        is the exact size of a one-member stream, and a tighter bound (a wrong ISIZE only makes
        the caller index the records to be sure).
        """
        if self._bound is None:
            values = 1 if self.layout.sequence else self.grid.tile_pixels  # per feature
            smallest = framed_size(values * len(self.layout.features))
            records = 0
            for shard in self.files.shards:
                try:
                    size = stat(shard, self.store).size
                    hint = size_hint(shard, self.store) or 0
                except (OSError, TFRecordIOError):
                    size, hint = 0, 0
                limit = size * 1032 if hint != size else size
                if limit < 1 << 32:
                    limit = min(limit, hint)
                records += limit // smallest
            self._bound = records
        return self._bound

    def _read_record(self, record: int) -> tuple[bytes, str]:
        self._index_through(record)
        for shard_index in self._indexes:
            local = record - shard_index.first_index
            if 0 <= local < len(shard_index):
                return shard_index.read(local), location(
                    shard_index.path, record, shard_index.offsets[local]
                )
        raise RecordCountError(self.count_message(self._indexed_records(), record + 1))

    # -- tiles -----------------------------------------------------------------------------

    def is_cached(self, indexes: Iterable[int]) -> bool:
        """Return True if every patch in ``indexes`` is in the decoded-patch cache."""
        return all(index in self._cache for index in indexes)

    def tile(self, index: int) -> tuple[np.ndarray, ...]:
        """Return patch ``index`` decoded: one ``(depth, tile_h, tile_w)`` array per feature."""
        cached = self._cache.get(index)
        if cached is not None:
            return cached
        self.grid.patch_rowcol(index)  # range check
        if self.layout.sequence:
            first = index * self.records_per_patch
            tile = self.layout.decode_sequence(
                self._read_record(record) for record in range(first, first + self.records_per_patch)
            )
        else:
            payload, where = self._read_record(index)
            tile = self.layout.decode(payload, where)
        self._cache.put(index, tile)
        return tile

    def iter_tiles(self, prefetch: bool = False) -> Iterator[tuple[int, tuple[np.ndarray, ...]]]:
        """Yield every patch in export order, streaming each shard once.

        Parameters
        ----------
        prefetch : bool
            Read and inflate records on a second thread (zlib and isal release the GIL), a few
            records ahead of the decoding.

        Raises
        ------
        RecordCountError
            The records do not add up to the mixer's grid.
        """
        return self.stream.iter_tiles(prefetch)

    def read_all(
        self, place: Callable[[int, tuple[np.ndarray, ...]], None], workers: int = 2
    ) -> None:
        """Decode every patch once and hand it to ``place(index, tile)``.

        With ``workers > 1`` the work goes on two threads at once (zlib and isal release the
        GIL). Across shards: a shard's first patch index must be known before its patches can
        be placed, and counting a gzip shard means inflating it, so the index is predicted from
        the gzip trailer's size field and the first record's size (records of an image export
        have one size when no band is int64), then checked against the actual counts; if any
        prediction was wrong the export is read again in order. Within one shard (or when the
        prediction fails): one thread inflates while the other decodes. With a current index
        sidecar none of this is needed: the records are cut into ranges that start at saved
        seek points, balanced across the threads, also within a single shard. ``place`` may be
        called from several threads and must be safe for distinct indexes.

        Raises
        ------
        RecordCountError
            The records do not add up to the mixer's grid.
        """
        self.stream.read_all(place, workers)

    def close(self) -> None:
        """Release open files and cached tiles."""
        for shard_index in self._indexes:
            shard_index.close()
        self._cache.clear()


def _crs_of(mixer: Mixer, source: str, error: type[Exception]) -> CRS:
    """Return the mixer's CRS as rasterio understands it; ``error`` when it does not."""
    try:
        return CRS.from_user_input(mixer.crs)
    except Exception as exc:  # rasterio's CRSError, or GDAL's
        raise error(
            f"{source}: the crs {mixer.crs!r} is not one GDAL knows ({exc}). Fix the mixer's "
            "projection.crs, or pass the grid by hand with a known crs."
        ) from None


def _pair(value: Any, name: str) -> tuple[int, int]:
    if isinstance(value, int):
        return value, value
    try:
        x, y = value
        return int(x), int(y)
    except (TypeError, ValueError):
        raise OptionError(f"{name} must be an int or an (x, y) pair, not {value!r}") from None
