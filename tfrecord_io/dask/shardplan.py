"""Shard boundaries of an export, computed before any shard is written.

The serial writer (:class:`~tfrecord_io.format.shards.ShardSink`) starts a new shard when the
next framed record would take the current one past ``maxFileSize`` bytes. Given the framed size
of every record, the same greedy rule gives the same boundaries up front, so each shard can be
written on its own (on a dask worker) and still be byte for byte what the serial writer makes.

When every record has one size (float and bytes lists, no patch dropped by
``maskedThreshold``) the boundaries are arithmetic (:func:`fixed_shards`) and each shard is
encoded from the source rows of its patches; otherwise they come from the record sizes a first
pass measures (:func:`sized_shards`) as it writes the records into uncompressed *pieces*, and
each shard is compressed from the byte ranges of the pieces holding its records
(:func:`piece_spans`). Pure functions, no I/O.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from tfrecord_io.image.grid import PatchGrid

__all__ = ["ShardTask", "fixed_shards", "patch_chunks", "piece_spans", "sized_shards"]


@dataclass(frozen=True)
class ShardTask:
    """One shard: the patches to encode for it and which of their records it holds.

    Attributes
    ----------
    number : int
        The shard's number (``PREFIX-{number:05d}``).
    patches : range
        Patch indices to encode; the first and last may give records to neighbouring shards
        too (sequence exports have one record per pixel).
    first_record : int
        Index, in the whole export, of the first record those patches give.
    records : range
        Indices, in the whole export, of the records the shard holds.
    """

    number: int
    patches: range
    first_record: int
    records: range


def fixed_shards(
    total_patches: int, records_per_patch: int, framed_size: int, max_file_size: int
) -> list[ShardTask]:
    """Return the shards of an export whose records all have one framed size.

    Parameters
    ----------
    total_patches : int
        Patches written (none dropped).
    records_per_patch : int
        1, or the tile's pixels for a sequence export.
    framed_size : int
        Bytes of one record, framing included.
    max_file_size : int
        ``maxFileSize``: uncompressed bytes per shard.
    """
    total = total_patches * records_per_patch
    per_shard = max(1, max_file_size // framed_size)  # a record never split, nor left alone
    tasks = []
    for number, r0 in enumerate(range(0, total, per_shard)):
        r1 = min(total, r0 + per_shard)
        p0, p1 = r0 // records_per_patch, (r1 - 1) // records_per_patch + 1
        tasks.append(ShardTask(number, range(p0, p1), p0 * records_per_patch, range(r0, r1)))
    return tasks or [_empty()]


def sized_shards(sizes: np.ndarray, max_file_size: int) -> list[range]:
    """Return the records of each shard of an export, from the framed size of each record.

    Parameters
    ----------
    sizes : numpy.ndarray
        Framed size of each record, in export order.
    max_file_size : int
        ``maxFileSize``: uncompressed bytes per shard.

    Returns
    -------
    list of range
        Record indices of each shard, in order (one empty shard when there is no record).
    """
    total = len(sizes)
    ends = np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)])
    bounds = [0]
    while bounds[-1] < total:
        start = bounds[-1]
        # The most records from `start` that fit; at least one (one too large for any shard
        # is refused by the shard writer, as the serial writer refuses it).
        stop = int(np.searchsorted(ends, ends[start] + max_file_size, side="right")) - 1
        bounds.append(min(total, max(stop, start + 1)))
    return [range(a, b) for a, b in itertools.pairwise(bounds)] or [range(0)]


def piece_spans(
    records: range, piece_starts: np.ndarray, payload_sizes: np.ndarray
) -> list[tuple[int, int, np.ndarray]]:
    """Where the payloads of ``records`` are in the pieces the sizing pass wrote.

    Parameters
    ----------
    records : range
        Record indices of one shard.
    piece_starts : numpy.ndarray
        Index of the first record of each piece, then the number of records.
    payload_sizes : numpy.ndarray
        Payload size of every record, in export order.

    Returns
    -------
    list of (int, int, numpy.ndarray)
        ``(piece, byte offset, payload sizes)`` for each piece holding some of the records.
    """
    spans = []
    for piece in range(len(piece_starts) - 1):
        first, stop = int(piece_starts[piece]), int(piece_starts[piece + 1])
        r0, r1 = max(records.start, first), min(records.stop, stop)
        if r0 < r1:
            offset = int(payload_sizes[first:r0].sum())
            spans.append((piece, offset, payload_sizes[r0:r1]))
    return spans


def patch_chunks(grid: PatchGrid, parts: int) -> list[range]:
    """Split the patches into at most ``parts`` ranges of whole patch rows, in order."""
    rows = grid.patch_rows
    parts = max(1, min(parts, rows))
    edges = [rows * k // parts for k in range(parts + 1)]
    per_row = grid.patches_per_row
    return [range(a * per_row, b * per_row) for a, b in itertools.pairwise(edges)]


def _empty() -> ShardTask:
    """Return the one empty shard of an export with no record (the serial writer makes one)."""
    return ShardTask(0, range(0), 0, range(0))
