"""Encode table rows as ``tf.train.Example`` payloads, one per row, columns in order.

An Example is ``0a len(Features) Features``, and Features is the concatenation of one map entry
per feature, each framed as field 1. So a row's payload is a header and the entries of its
columns side by side. A float column of fixed length (what Earth Engine writes for numbers) has
the same entry bytes in every row except its values: its entries are a constant prefix and the
values' bytes, laid out for all rows at once as one ``(rows, entry_length)`` byte matrix. Other
columns (int64 varints, strings) are encoded row by row with
:func:`tfrecord_io.format.example.encode_example`, whose output the tests also hold the fast
layout to.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np

from tfrecord_io.format import example as wire
from tfrecord_io.format._wire import encode_varint

__all__ = ["KINDS", "RowEncoder", "TableColumn"]

KINDS = ("float", "int64", "bytes")


@dataclass(frozen=True, eq=False)
class TableColumn:
    """A column to write: its name, kind and values shaped ``(rows, *shape)``.

    Values are float or integer arrays, or object arrays of ``bytes`` (strings already
    encoded); a ragged column is a 1-D object array of 1-D arrays.
    """

    name: str
    kind: str
    values: np.ndarray
    ragged: bool = False

    @property
    def is_fixed_float(self) -> bool:
        """Whether every row's entry has the same length (a float column of fixed shape)."""
        return self.kind == "float" and not self.ragged


def _strip_example_header(payload: bytes) -> bytes:
    """Return the Features bytes of a one-feature Example (drop the tag and length varint)."""
    pos = 1
    while payload[pos] & 0x80:
        pos += 1
    return payload[pos + 1 :]


def _feature(kind: str, cell: object) -> wire.Feature:
    if kind == "float":
        return wire.float_feature(cell)
    if kind == "int64":
        return wire.int64_feature(cell)
    items = cell.reshape(-1) if isinstance(cell, np.ndarray) else [cell]
    return wire.Feature("bytes", tuple(items))  # type: ignore[arg-type]


def _entry_matrix(column: TableColumn) -> np.ndarray:
    """``(rows, entry_length)`` uint8 matrix of a fixed float column's map entries."""
    rows = len(column.values)
    values = np.ascontiguousarray(column.values, dtype="<f4").reshape(rows, -1)
    size = values.shape[1]
    entry = _strip_example_header(
        wire.encode_example({column.name: wire.float_feature(np.zeros(size, np.float32))})
    )
    prefix = np.frombuffer(entry[: len(entry) - 4 * size], dtype=np.uint8)
    matrix = np.empty((rows, len(prefix) + 4 * size), dtype=np.uint8)
    matrix[:, : len(prefix)] = prefix
    matrix[:, len(prefix) :] = values.view(np.uint8).reshape(rows, 4 * size)
    return matrix


def _matrix_row(block: np.ndarray, start: int, i: int) -> bytes:
    return block[i - start].tobytes()


class RowEncoder:
    """Encode rows of columns as serialised Examples.

    Parameters
    ----------
    columns : sequence of TableColumn
        The columns, written in this order; all of the same number of rows.
    """

    def __init__(self, columns: Sequence[TableColumn]) -> None:
        self.columns = tuple(columns)
        self.rows = len(self.columns[0].values) if self.columns else 0
        # Runs of consecutive fixed float columns become one byte matrix each.
        self._segments: list[np.ndarray | TableColumn] = []
        run: list[np.ndarray] = []
        for column in self.columns:
            if column.is_fixed_float:
                run.append(_entry_matrix(column))
                continue
            if run:
                self._segments.append(np.hstack(run) if len(run) > 1 else run[0])
                run = []
            self._segments.append(column)
        if run:
            self._segments.append(np.hstack(run) if len(run) > 1 else run[0])

    def _pieces(self, start: int, stop: int) -> list[Callable[[int], bytes]]:
        pieces: list[Callable[[int], bytes]] = []
        for segment in self._segments:
            if isinstance(segment, np.ndarray):
                pieces.append(partial(_matrix_row, segment[start:stop], start))
            else:
                kind, values = segment.kind, segment.values
                name = segment.name

                def piece(i: int, kind: str = kind, values: np.ndarray = values, name: str = name):
                    feature = _feature(kind, values[i])
                    return _strip_example_header(wire.encode_example({name: feature}))

                pieces.append(piece)
        return pieces

    def iter_payloads(self, chunk: int = 65536) -> Iterator[bytes]:
        """Yield one serialised Example per row, in row order."""
        for start in range(0, self.rows, chunk):
            stop = min(start + chunk, self.rows)
            pieces = self._pieces(start, stop)
            if len(pieces) == 1:
                only = pieces[0]
                for i in range(start, stop):
                    body = only(i)
                    yield b"\x0a" + encode_varint(len(body)) + body
                continue
            for i in range(start, stop):
                body = b"".join([piece(i) for piece in pieces])
                yield b"\x0a" + encode_varint(len(body)) + body
