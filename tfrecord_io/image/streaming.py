"""Whole-export reads: every shard streamed once, in order or on several threads at once.

An :class:`ExportStream` belongs to one :class:`~tfrecord_io.image.reader.ExportReader`
(its :attr:`~tfrecord_io.image.reader.ExportReader.stream`). Where a patch read goes
through the record index and the tile cache, a whole read needs neither: each shard is
inflated front to back once, the next one ahead on another thread, or ranges of records
from saved seek points on a pool of threads.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import numpy as np

from tfrecord_io.errors import RecordCountError, location
from tfrecord_io.format.index import ShardIndex
from tfrecord_io.format.records import framed_size, iter_records, size_hint
from tfrecord_io.image.prefetch import Ahead, prefetched
from tfrecord_io.image.prefetch import closing as _closing

if TYPE_CHECKING:
    from tfrecord_io.image.reader import ExportReader

__all__ = ["ExportStream"]

_AHEAD_BYTES = 128 << 20  # records a second inflater may hold while the shard before is read


class ExportStream:
    """The whole-export reads of one reader.

    Parameters
    ----------
    reader : ExportReader
        The export read: its files, grid, layout and (for partial exports) tiles.
    """

    def __init__(self, reader: ExportReader) -> None:
        self.reader = reader

    def iter_tiles(self, prefetch: bool = False) -> Iterator[tuple[int, tuple[np.ndarray, ...]]]:
        """Yield every patch in export order (:meth:`ExportReader.iter_tiles`)."""
        reader = self.reader
        if reader.partial:
            for index in range(reader.grid.total_patches):
                if index not in reader.missing_patches:
                    yield index, reader.tile(index)
            return
        if reader.layout.sequence:  # one queue item per patch, not per pixel record
            batches = self._iter_sequence_batches()
            with _closing(prefetched(batches, depth=2) if prefetch else batches) as items:
                for index, batch in items:
                    yield index, reader.layout.decode_sequence(batch)
            return
        total, expected = 0, reader.grid.total_patches
        records = self._iter_payloads_ahead() if prefetch else self.iter_payloads()
        with _closing(records):
            for shard, index, offset, payload in records:
                if index >= expected:
                    raise RecordCountError(reader.count_message(index + 1, expected))
                yield index, reader.layout.decode(payload, location(shard, index, offset))
                total = index + 1
        if total != expected:
            raise RecordCountError(reader.count_message(total, expected))

    def _iter_sequence_batches(self) -> Iterator[tuple[int, list[tuple[bytes, str]]]]:
        """Yield a sequence export's records patch by patch: ``(index, [(payload, where)])``."""
        reader = self.reader
        per, expected = reader.records_per_patch, reader.expected_records or 0
        batch: list[tuple[bytes, str]] = []
        total = 0
        with _closing(self.iter_payloads()) as records:
            for shard, record, offset, payload in records:
                if record >= expected:
                    raise RecordCountError(reader.count_message(record + 1, expected))
                batch.append((payload, location(shard, record, offset)))
                total = record + 1
                if len(batch) == per:
                    yield record // per, batch
                    batch = []
        if total != expected:
            raise RecordCountError(reader.count_message(total, expected))

    def _iter_payloads_ahead(self) -> Iterator[tuple[str, int, int, bytes]]:
        """Yield what :meth:`iter_payloads` yields, inflated on other threads.

        A gzip shard is one sequential stream: inflating on two cores means two shards at once.
        While a shard is consumed, the next one is read on another thread, at most
        ``_AHEAD_BYTES`` of records ahead. Its first record's index is predicted from the gzip
        trailer as :meth:`read_all` does; without a prediction, shards are read one at a time
        (on one thread ahead of the consumer).
        """
        shards, store = self.reader.files.shards, self.reader.store
        starts = self.predict_starts() if len(shards) > 1 else None
        if starts is None:
            yield from prefetched(self.iter_payloads())
            return
        per_record = max(1, (size_hint(shards[0], store) or 0) // max(1, starts[1] - starts[0]))
        depth = max(4, _AHEAD_BYTES // per_record)
        predicted = starts

        def shard(n: int) -> Iterator[tuple[str, int, int, bytes]]:
            path, first = shards[n], predicted[n]
            records = iter_records(path, first_index=first, storage_options=store)
            for k, (offset, payload) in enumerate(records):
                yield path, first + k, offset, payload

        running = [Ahead(shard(0), 4)]
        try:
            for n in range(len(shards)):
                if n + 1 < len(shards):
                    running.append(Ahead(shard(n + 1), depth))
                current = running.pop(0)
                count = 0
                for item in current:
                    yield item
                    count += 1
                current.close()
                if predicted[n] + count != predicted[n + 1]:  # mispredicted: go on in order
                    for ahead in running:
                        ahead.close()
                    yield from self.iter_payloads(n + 1, predicted[n] + count)
                    return
        finally:
            for ahead in running:
                ahead.close()

    def iter_payloads(
        self, first_shard: int = 0, first_index: int = 0
    ) -> Iterator[tuple[str, int, int, bytes]]:
        """Yield ``(shard, record, offset, payload)`` of every record, shard by shard.

        Parameters
        ----------
        first_shard : int
            The shard to start at.
        first_index : int
            The export-wide index of that shard's first record.
        """
        index = first_index
        for shard in self.reader.files.shards[first_shard:]:
            for offset, payload in iter_records(
                shard, first_index=index, storage_options=self.reader.store
            ):
                yield shard, index, offset, payload
                index += 1

    def read_all(
        self, place: Callable[[int, tuple[np.ndarray, ...]], None], workers: int = 2
    ) -> None:
        """Decode every patch once and hand it to ``place`` (:meth:`ExportReader.read_all`)."""
        reader = self.reader
        parallel = workers > 1 and not reader.layout.sequence and not reader.partial
        ranges = reader.saved_ranges(4 * workers) if parallel else None
        if ranges is not None:
            total = reader.grid.total_patches

            def run_range(task: tuple[ShardIndex, int, int]) -> None:
                ix, start, stop = task
                for local, offset, payload in ix.iter_from(start, stop):
                    index = ix.first_index + local
                    if index < total:
                        where = location(ix.path, index, offset)
                        place(index, reader.layout.decode(payload, where))

            with ThreadPoolExecutor(max_workers=workers) as pool:
                list(pool.map(run_range, ranges))
            return
        shards = reader.files.shards
        starts = self.predict_starts() if parallel and len(shards) > 1 else None
        if starts is not None:
            shard_starts = starts

            def run(n: int) -> int:
                count = 0
                for index, tile in self._decode_shard(shards[n], shard_starts[n]):
                    if index < reader.grid.total_patches:
                        place(index, tile)
                    count += 1
                return count

            with ThreadPoolExecutor(max_workers=workers) as pool:
                counts = list(pool.map(run, range(len(shards))))
            if all(starts[n] + counts[n] == starts[n + 1] for n in range(len(counts))):
                return
        for index, tile in self.iter_tiles(prefetch=workers > 1):
            place(index, tile)

    def predict_starts(self) -> list[int] | None:
        """Return each shard's first record index, predicted from sizes, and the total last.

        A gzip shard's trailer gives its inflated size; divided by its first record's framed
        size (records of an image export have one size when no band is int64) it gives the
        shard's record count. None when a size is unknown or does not divide, or the counts do
        not add up to the grid.
        """
        reader = self.reader
        starts = [0]
        for shard in reader.files.shards:
            size = size_hint(shard, reader.store)  # a regular file, checked; None: too short
            if size is None:
                return None
            with _closing(
                iter_records(
                    shard, first_index=starts[-1], verify=False, storage_options=reader.store
                )
            ) as it:
                first = next(it, None)
            if first is None:
                return None
            record_size = framed_size(len(first[1]))
            if size % record_size:
                return None
            starts.append(starts[-1] + size // record_size)
        return starts if starts[-1] == reader.grid.total_patches else None

    def _decode_shard(
        self, shard: str, first_index: int
    ) -> Iterator[tuple[int, tuple[np.ndarray, ...]]]:
        reader = self.reader
        for index, (offset, payload) in enumerate(
            iter_records(shard, first_index=first_index, storage_options=reader.store),
            start=first_index,
        ):
            yield index, reader.layout.decode(payload, location(shard, index, offset))
