"""Whole columns filled in place as a table is read: what :meth:`TableExport.to_numpy` returns.

Rows are decoded straight into the output arrays, never into batches joined afterwards: the
output is allocated once when the row count is known, or can be told from the files' sizes
(:func:`rows_hint`: a table whose records all have one length, as Earth Engine writes numbers
and patches, holds its inflated size divided by that length, and gzip records the inflated size
in its trailer). A wrong hint costs a copy, never a wrong answer: rows beyond it go to further
blocks, joined once at the end, and fewer rows than hinted return the rows filled.
"""

from __future__ import annotations

import os
import struct

import numpy as np

from tfrecord_io.errors import TFRecordIOError
from tfrecord_io.format._gzip import STREAM_ERRORS
from tfrecord_io.format.records import GZIP_MAGIC, HEADER_SIZE, RECORD_OVERHEAD, open_stream
from tfrecord_io.format.storage import is_url
from tfrecord_io.table.schema import Column, Schema

__all__ = ["ColumnSink", "rows_hint"]

_ISIZE = struct.Struct("<I")
_MAX_RATIO = 1032  # deflate's largest inflated-to-compressed size ratio
_HINT_ERRORS: tuple[type[BaseException], ...] = (OSError, TFRecordIOError, *STREAM_ERRORS)


def rows_hint(path: str) -> int | None:
    """Return how many records a local file holds if they all have its first one's length.

    None when that cannot be told from the file's size (a URL, an empty file, or a size that
    is no multiple of the first record's framed length). Only the first record's header is
    inflated.
    """
    if is_url(path):
        return None
    with open(path, "rb") as f:
        compressed = f.read(2) == GZIP_MAGIC
        size = stored = f.seek(0, os.SEEK_END)
        if compressed:  # ISIZE: the inflated size modulo 2**32 (exact for a single member)
            f.seek(-4, os.SEEK_END)
            size = _ISIZE.unpack(f.read(4))[0] if stored >= 18 else 0
    if size > stored * _MAX_RATIO:  # no deflate stream inflates that much: a forged trailer
        return None
    try:
        with open_stream(path) as stream:
            header = stream.read(HEADER_SIZE)
    except _HINT_ERRORS:  # the read that follows reports it
        return None
    if len(header) < HEADER_SIZE:
        return None
    stride = int.from_bytes(header[:8], "little") + RECORD_OVERHEAD
    return size // stride if size and size % stride == 0 else None


def _empty(column: Column, rows: int) -> np.ndarray:
    if column.is_ragged:  # a 1-D array of 1-D arrays
        return np.empty(rows, dtype=object)
    return np.empty((rows, *column.shape), dtype=column.numpy_dtype)


class ColumnSink:
    """Output columns filled block by block, rows decoded straight into them.

    Parameters
    ----------
    schema : Schema
        The columns.
    rows : int, optional
        The expected row count: the first block's size.
    block : int
        Rows of each further block (the first's size too when ``rows`` is unknown).
    """

    def __init__(self, schema: Schema, rows: int | None, block: int) -> None:
        self.schema = schema
        self.block = max(1, block)
        self._blocks: list[dict[str, np.ndarray]] = []
        self._filled = 0  # rows filled in the last block
        self._first = rows

    def space(self) -> int:
        """Return the rows left in the current block, opening a new block when it is full."""
        if not self._blocks or self._filled == self._capacity():
            rows = self._first if not self._blocks and self._first else self.block
            self._blocks.append({c.name: _empty(c, rows) for c in self.schema.columns})
            self._filled = 0
        return self._capacity() - self._filled

    def take(self, rows: int) -> dict[str, np.ndarray]:
        """Return the slots of the next ``rows`` rows (at most :meth:`space`) to decode into."""
        start, self._filled = self._filled, self._filled + rows
        return {name: values[start : self._filled] for name, values in self._blocks[-1].items()}

    def _capacity(self) -> int:
        return len(next(iter(self._blocks[-1].values()))) if self._blocks else 0

    def finish(self) -> dict[str, np.ndarray]:
        """Return every column: the one block as it is, or the blocks joined once."""
        if not self._blocks:
            return {c.name: _empty(c, 0) for c in self.schema.columns}
        last = self._blocks[-1]
        if self._filled < self._capacity():
            self._blocks[-1] = {name: values[: self._filled] for name, values in last.items()}
        if len(self._blocks) == 1:
            return self._blocks.pop()
        total = sum(len(next(iter(b.values()))) for b in self._blocks)
        out = {c.name: _empty(c, total) for c in self.schema.columns}
        row = 0
        while self._blocks:  # each block is freed once copied: the peak is the output + one
            block = self._blocks.pop(0)
            rows = len(next(iter(block.values())))
            for name, values in block.items():
                out[name][row : row + rows] = values
            row += rows
        return out
