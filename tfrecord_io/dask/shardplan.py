"""Shard boundaries of an export, computed before any shard is written.

The serial writer (:class:`~tfrecord_io.format.shards.ShardSink`) starts a new shard when the
next framed record would take the current one past ``maxFileSize`` bytes. Given the framed size
of every record, the same greedy rule gives the same boundaries up front, so each shard can be
written on its own (on a dask worker) and still be byte for byte what the serial writer makes.

When every record has one size (float and bytes lists, no patch dropped by
``maskedThreshold``) the boundaries are arithmetic (:func:`fixed_shards`); otherwise they come
from the record sizes measured by a first pass (:func:`sized_shards`). Pure functions, no I/O.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from tfrecord_io.image.grid import PatchGrid

__all__ = ["ShardTask", "fixed_shards", "patch_chunks", "sized_shards"]


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


def sized_shards(counts: np.ndarray, sizes: np.ndarray, max_file_size: int) -> list[ShardTask]:
    """Return the shards of an export from the framed size of each of its records.

    Parameters
    ----------
    counts : numpy.ndarray
        Records of each patch, in export order (0 for a patch dropped by ``maskedThreshold``).
    sizes : numpy.ndarray
        Framed size of each record, in export order (``counts.sum()`` of them).
    max_file_size : int
        ``maxFileSize``: uncompressed bytes per shard.
    """
    total = len(sizes)
    if total == 0:
        return [_empty()]
    ends = np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)])
    bounds = [0]
    while bounds[-1] < total:
        start = bounds[-1]
        # The most records from `start` that fit; at least one (one too large for any shard
        # is refused by the shard writer, as the serial writer refuses it).
        stop = int(np.searchsorted(ends, ends[start] + max_file_size, side="right")) - 1
        bounds.append(min(total, max(stop, start + 1)))
    first = np.concatenate([[0], np.cumsum(counts, dtype=np.int64)])  # first record of each patch
    kept = np.flatnonzero(counts)
    kept_first = first[kept]
    tasks = []
    for number, (r0, r1) in enumerate(itertools.pairwise(bounds)):
        p0 = int(kept[np.searchsorted(kept_first, r0, side="right") - 1])
        p1 = int(kept[np.searchsorted(kept_first, r1 - 1, side="right") - 1]) + 1
        tasks.append(ShardTask(number, range(p0, p1), int(first[p0]), range(r0, r1)))
    return tasks


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
