"""Own an export's files: find the shards and the mixer, locate and decode patches.

:class:`ExportReader` reads the mixer and the first record when it is made, nothing more. A
record index (shard, offset) is built shard by shard the first time a patch beyond what is
indexed is asked for, and kept; decoded tiles go through an LRU cache bounded in bytes. A read of
the whole export streams every shard once instead (:meth:`ExportReader.iter_tiles`).
How records become bands is :mod:`tfrecord_io.image.layout`'s business.
"""

from __future__ import annotations

import os
import queue
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from tfrecord_io.errors import (
    DecodeError,
    GridError,
    MissingMixerError,
    OptionError,
    RecordCountError,
    location,
)
from tfrecord_io.format import example as wire
from tfrecord_io.format.index import ShardIndex
from tfrecord_io.format.records import iter_records, size_hint
from tfrecord_io.image.files import find_export, mixer_from_grid
from tfrecord_io.image.grid import PatchGrid
from tfrecord_io.image.layout import ArrayLayout, layout_from_record, values_array
from tfrecord_io.image.mixer import Mixer

__all__ = ["ExportReader"]


class _TileCache:
    """An LRU cache of decoded tiles, bounded by their size in bytes."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[int, tuple[np.ndarray, ...]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: int) -> tuple[np.ndarray, ...] | None:
        with self._lock:
            item = self._items.get(key)
            if item is not None:
                self._items.move_to_end(key)
            return item

    def put(self, key: int, item: tuple[np.ndarray, ...]) -> None:
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
        with self._lock:
            self._items.clear()
            self._bytes = 0


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
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        kernel_size: tuple[int, int] | None = None,
        mixer: str | os.PathLike[str] | Mixer | dict[str, Any] | None = None,
        band_order: Sequence[str] | None = None,
        array_layout: ArrayLayout = "depth_major",
        sequence_data: bool | None = None,
        cache_bytes: int = 256 << 20,
    ) -> None:
        if array_layout not in ("depth_major", "pixel_major"):
            raise OptionError(
                f"array_layout must be 'depth_major' or 'pixel_major', not {array_layout!r}"
            )
        if kernel_size is not None:
            kernel_size = _pair(kernel_size, "kernel_size")
        self.files = find_export(path)
        self.expected_records: int | None = None  # known once the grid is
        self._indexes: list[ShardIndex] = []
        self._index_lock = threading.Lock()
        self._cache = _TileCache(cache_bytes)
        first_where = location(self.files.shards[0], 0)
        with _closing(iter_records(self.files.shards[0])) as it:
            first = next(it, None)
        if first is None:
            raise RecordCountError(f"{first_where}: the first shard holds no record")
        payload = first[1]
        sequence = wire.is_sequence_example(payload) if sequence_data is None else sequence_data
        self.mixer = self._load_mixer(mixer, sequence)
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
        self.grid = PatchGrid(
            patch_width=self.mixer.patch_width,
            patch_height=self.mixer.patch_height,
            patches_per_row=self.mixer.patches_per_row,
            patch_rows=self.mixer.patch_rows,
            transform=self.mixer.transform,
            margin_x=mx,
            margin_y=my,
        )
        self.records_per_patch = self.grid.tile_pixels if sequence else 1
        self.expected_records = self.grid.total_patches * self.records_per_patch

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
            return mixer_from_grid(mixer, total)
        if mixer is not None:
            return Mixer.from_file(mixer)
        if self.files.mixer is None:
            raise MissingMixerError(
                f"'{self.files.folder}' has no {self.files.prefix}-mixer.json. Earth Engine "
                "writes no mixer when an export sets maskedThreshold below 1, or the file was "
                "not downloaded. Pass the grid by hand: tfrecord_io.open(path, mixer={"
                "'patch_size': (width, height), 'patches_per_row': N, 'crs': 'EPSG:...', "
                "'transform': Affine(...)}), or the path of the mixer file."
            )
        return Mixer.from_file(self.files.mixer)

    # -- the record index ------------------------------------------------------------------

    def _index_through(self, record: int | None) -> None:
        """Index forward until ``record`` is covered (everything for None).

        Shards are indexed in order, and the last one only as far as needed, so a window near
        the start of a large gzip shard does not wait for the whole shard to be inflated.
        """
        with self._index_lock:
            shards = self.files.shards
            while True:
                if not self._indexes or (
                    self._indexes[-1].complete and len(self._indexes) < len(shards)
                ):
                    self._indexes.append(
                        ShardIndex.for_shard(shards[len(self._indexes)], self._indexed_records())
                    )
                last = self._indexes[-1]
                if record is not None and record < last.first_index + len(last):
                    return
                if last.complete:
                    break
                last.scan(None if record is None else record - last.first_index)
            total = self._indexed_records()
            if self.expected_records is not None and total != self.expected_records:
                raise RecordCountError(self._count_message(total, self.expected_records))

    def _indexed_records(self) -> int:
        last = self._indexes[-1] if self._indexes else None
        return last.first_index + len(last) if last is not None else 0

    def _count_message(self, total: int, expected: int) -> str:
        last = os.path.basename(self.files.shards[-1])
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
        return self._indexed_records()

    def _read_record(self, record: int) -> tuple[bytes, str]:
        self._index_through(record)
        for shard_index in self._indexes:
            local = record - shard_index.first_index
            if 0 <= local < len(shard_index):
                return shard_index.read(local), location(
                    shard_index.path, record, shard_index.offsets[local]
                )
        raise RecordCountError(self._count_message(self._indexed_records(), record + 1))

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
            tile = self._sequence_tile(index)
        else:
            payload, where = self._read_record(index)
            tile = self.layout.decode(payload, where)
        self._cache.put(index, tile)
        return tile

    def _sequence_tile(self, index: int) -> tuple[np.ndarray, ...]:
        layout = self.layout
        arrays = tuple(
            np.empty((f.depth, layout.tile_height * layout.tile_width), f.dtype)
            for f in layout.features
        )
        first = index * self.records_per_patch
        for pixel in range(self.records_per_patch):
            payload, where = self._read_record(first + pixel)
            self._fill_pixel(arrays, pixel, payload, where)
        return tuple(a.reshape(-1, layout.tile_height, layout.tile_width) for a in arrays)

    def _fill_pixel(
        self, arrays: tuple[np.ndarray, ...], pixel: int, payload: bytes, where: str
    ) -> None:
        context, lists = wire.decode_sequence_example(payload, where)
        for layout, out in zip(self.layout.features, arrays, strict=True):
            if layout.name in context:
                steps = [context[layout.name]]
            elif layout.name in lists:
                steps = lists[layout.name]
            else:
                raise DecodeError(f"{where}: the band '{layout.name}' is missing")
            if len(steps) != layout.depth:
                raise GridError(
                    f"{where}: the band '{layout.name}' has {len(steps)} steps where the first "
                    f"record has {layout.depth}"
                )
            for depth, step in enumerate(steps):
                values = values_array(step)
                if values.size != 1:
                    raise GridError(
                        f"{where}: the band '{layout.name}' holds {values.size} values in one "
                        "pixel; a sequence export holds one per step"
                    )
                out[depth, pixel] = values[0]

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
        if self.layout.sequence:
            for index in range(self.grid.total_patches):
                yield index, self.tile(index)
            return
        total, expected = 0, self.grid.total_patches
        records = _prefetched(self._iter_payloads()) if prefetch else self._iter_payloads()
        with _closing(records):
            for shard, index, offset, payload in records:
                if index >= expected:
                    raise RecordCountError(self._count_message(index + 1, expected))
                yield index, self.layout.decode(payload, location(shard, index, offset))
                total = index + 1
        if total != expected:
            raise RecordCountError(self._count_message(total, expected))

    def _iter_payloads(self) -> Iterator[tuple[str, int, int, bytes]]:
        index = 0
        for shard in self.files.shards:
            for offset, payload in iter_records(shard, first_index=index):
                yield shard, index, offset, payload
                index += 1

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
        prediction fails): one thread inflates while the other decodes. ``place`` may be called
        from several threads and must be safe for distinct indexes.

        Raises
        ------
        RecordCountError
            The records do not add up to the mixer's grid.
        """
        parallel = workers > 1 and not self.layout.sequence
        starts = self._predict_starts() if parallel and len(self.files.shards) > 1 else None
        if starts is not None:
            shard_starts = starts

            def run(n: int) -> int:
                count = 0
                for index, tile in self._decode_shard(self.files.shards[n], shard_starts[n]):
                    if index < self.grid.total_patches:
                        place(index, tile)
                    count += 1
                return count

            with ThreadPoolExecutor(max_workers=workers) as pool:
                counts = list(pool.map(run, range(len(self.files.shards))))
            if all(starts[n] + counts[n] == starts[n + 1] for n in range(len(counts))):
                return
        for index, tile in self.iter_tiles(prefetch=parallel):
            place(index, tile)

    def _predict_starts(self) -> list[int] | None:
        starts = [0]
        for shard in self.files.shards:
            size = size_hint(shard)  # a regular file, checked before opening; None: too short
            if size is None:
                return None
            with _closing(iter_records(shard, first_index=starts[-1], verify=False)) as it:
                first = next(it, None)
            if first is None:
                return None
            record_size = len(first[1]) + 16
            if size % record_size:
                return None
            starts.append(starts[-1] + size // record_size)
        return starts if starts[-1] == self.grid.total_patches else None

    def _decode_shard(
        self, shard: str, first_index: int
    ) -> Iterator[tuple[int, tuple[np.ndarray, ...]]]:
        for index, (offset, payload) in enumerate(
            iter_records(shard, first_index=first_index), start=first_index
        ):
            yield index, self.layout.decode(payload, location(shard, index, offset))

    def close(self) -> None:
        """Release open files and cached tiles."""
        for shard_index in self._indexes:
            shard_index.close()
        self._cache.clear()


def _pair(value: Any, name: str) -> tuple[int, int]:
    if isinstance(value, int):
        return value, value
    try:
        x, y = value
        return int(x), int(y)
    except (TypeError, ValueError):
        raise OptionError(f"{name} must be an int or an (x, y) pair, not {value!r}") from None


def _prefetched(items: Iterator[Any], depth: int = 4) -> Iterator[Any]:
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


class _closing:
    """Close a generator on exit (contextlib.closing without the typing noise)."""

    def __init__(self, gen: Iterator[Any]) -> None:
        self.gen = gen

    def __enter__(self) -> Iterator[Any]:
        return self.gen

    def __exit__(self, *exc: object) -> None:
        close: Callable[[], None] | None = getattr(self.gen, "close", None)
        if close is not None:
            close()
