"""Decode a batch of table records into one numpy array per column.

Two ways, with the same result:

- the template path: when every record of the batch has the same length, every feature is a
  packed ``float_list`` (what Earth Engine writes for numbers) and every byte outside the values
  equals the first record's, the records differ only in their values, which then sit at the same
  offsets in every record. The batch is one ``(rows, record_length)`` byte matrix and each column
  is a strided copy out of it: no Python work per row.
- the general path: each record is decoded by :func:`tfrecord_io.format.example.decode_example`
  and each column checked (present, same kind, same length) and stacked.

Columns come out as ``(rows, *shape)`` arrays: float32 or int64, object arrays of ``str`` or
``bytes``, and, for a ragged column, a 1-D object array of 1-D arrays.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from tfrecord_io.errors import SchemaError
from tfrecord_io.format import example as wire
from tfrecord_io.table.frames import Run
from tfrecord_io.table.schema import Column, Schema, shape_hint

__all__ = ["BatchDecoder"]

Where = Callable[[int], str]  # row of the batch -> "'file', row N"


@dataclass(frozen=True, eq=False)
class _Template:
    """The constant bytes of a record layout and where each column's float values sit."""

    length: int  # bytes per record
    constant_at: np.ndarray  # indexes of the bytes outside the value slots
    constant: np.ndarray  # uint8, the template record's bytes there
    slots: dict[str, tuple[int, int]]  # column -> (byte start, byte stop)


def _view_offset(values: np.ndarray, base: int, length: int) -> int | None:
    """Byte offset of a zero-copy view in the payload at ``base``, or None if it is a copy."""
    start = int(values.__array_interface__["data"][0]) - base
    return start if start >= 0 and start + values.nbytes <= length else None


def _make_template(payload: bytes, schema: Schema) -> _Template | None:
    features = wire.decode_example(payload)
    record = np.frombuffer(payload, dtype=np.uint8)
    base = int(record.__array_interface__["data"][0])
    constant = np.ones(len(payload), dtype=bool)
    slots = {}
    for name, feature in features.items():
        if feature.kind != "float" or not isinstance(feature.values, np.ndarray):
            return None
        start = _view_offset(feature.values, base, len(payload)) if len(feature) else None
        if start is None:
            return None
        stop = start + feature.values.nbytes
        constant[start:stop] = False
        slots[name] = (start, stop)
    for column in schema.columns:
        if column.kind != "float" or column.is_ragged or column.name not in slots:
            return None
        start, stop = slots[column.name]
        if (stop - start) // 4 != column.size:
            return None
    constant_at = np.flatnonzero(constant)
    return _Template(len(payload), constant_at, record[constant_at].copy(), slots)


def _as_matrices(pieces: list[Run], template: _Template) -> list[np.ndarray] | None:
    """Each run as a ``(records, length)`` matrix, or None unless all fit the template."""
    out = []
    for piece in pieces:
        if isinstance(piece, list):
            if any(len(p) != template.length for p in piece):
                return None
            piece = np.frombuffer(b"".join(piece), np.uint8).reshape(len(piece), template.length)
        elif piece.shape[1] != template.length:
            return None
        if not bool((piece[:, template.constant_at] == template.constant).all()):
            return None
        out.append(piece)
    return out


class BatchDecoder:
    """Decode batches of record payloads into columns of a :class:`Schema`.

    Parameters
    ----------
    schema : Schema
        The columns to produce.
    """

    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        self._template: _Template | None = None
        self._template_tried = False

    def decode(
        self, pieces: Sequence[Run], where: Where, out: dict[str, np.ndarray] | None = None
    ) -> dict[str, np.ndarray]:
        """Decode runs of payloads (one record each) into ``{column: (rows, *shape) array}``.

        Parameters
        ----------
        pieces : sequence of (list of bytes or numpy.ndarray)
            Consecutive runs of payloads, as :func:`~tfrecord_io.table.frames.iter_payload_runs`
            yields them (a uint8 matrix holds records of one length).
        where : callable
            ``where(row)`` names a row of the batch for error messages.
        out : dict of str to numpy.ndarray, optional
            Arrays of exactly the batch's rows to decode into (returned), instead of new ones.

        Raises
        ------
        SchemaError
            A record lacks a column, or holds it with another kind or number of values.
        DecodeError
            A payload is not a valid Example.
        """
        pieces = [p for p in pieces if len(p)]
        if pieces:
            fast = self._decode_template(pieces, out)
            if fast is not None:
                return fast
        payloads: list[bytes] = []
        for piece in pieces:
            payloads += piece if isinstance(piece, list) else [row.tobytes() for row in piece]
        columns = self._decode_general(payloads, where)
        if out is None:
            return columns
        for name, values in columns.items():
            out[name][...] = values
        return out

    def _decode_template(
        self, pieces: list[Run], out: dict[str, np.ndarray] | None
    ) -> dict[str, np.ndarray] | None:
        if self._template is None and not self._template_tried:
            self._template_tried = True
            piece = pieces[0]
            payload = piece[0] if isinstance(piece, list) else piece[0].tobytes()  # type: ignore[union-attr]
            self._template = _make_template(payload, self.schema)
        template = self._template
        if template is None:
            return None
        matrices = _as_matrices(pieces, template)
        if matrices is None:
            return None
        rows = sum(len(m) for m in matrices)
        if out is None:
            out = {c.name: np.empty((rows, *c.shape), np.float32) for c in self.schema.columns}
        for name, values in out.items():
            start, stop = template.slots[name]
            flat = values.reshape(rows, -1)
            row = 0
            for matrix in matrices:  # one copy, straight out of the inflated records
                flat[row : row + len(matrix)] = matrix[:, start:stop].view("<f4")
                row += len(matrix)
        return out

    def _decode_general(self, payloads: Sequence[bytes], where: Where) -> dict[str, np.ndarray]:
        records = [wire.decode_example(p, where(i)) for i, p in enumerate(payloads)]
        return {c.name: _column(c, records, where) for c in self.schema.columns}


def _misfit(column: Column, feature: wire.Feature | None, where: str) -> str:
    """Say how a row's ``feature`` fails the column its first rows made."""
    if feature is None:
        return (
            f"{where}: column '{column.name}' is missing (the first rows have it). Pass "
            "columns=[...] without it to read the others."
        )
    return (
        f"{where}: column '{column.name}' is a {feature.kind}_list where the first rows hold a "
        f"{column.kind}_list"
    )


def _column(column: Column, records: list[dict[str, wire.Feature]], where: Where) -> np.ndarray:
    present: list[wire.Feature] = []
    for i, record in enumerate(records):
        feature = record.get(column.name)
        if feature is None or feature.kind != column.kind:
            raise SchemaError(_misfit(column, feature, where(i)))
        present.append(feature)
    rows = len(present)
    if column.is_ragged:
        out = np.empty(rows, dtype=object)
        for i, feature in enumerate(present):
            out[i] = _cell_values(column, feature, where, i)
        return out
    lengths = np.fromiter((len(f.values) for f in present), dtype=np.int64, count=rows)
    bad = np.flatnonzero(lengths != column.size)
    if bad.size:
        i = int(bad[0])
        raise SchemaError(
            f"{where(i)}: column '{column.name}' holds {lengths[i]} values where its shape "
            f"{column.shape} needs {column.size}. {shape_hint(int(lengths[i]))} Pass "
            "ragged=True if rows hold different numbers of values."
        )
    if column.kind == "bytes":
        flat = np.empty(rows * column.size, dtype=object)
        k = 0
        for i, feature in enumerate(present):
            for value in _cell_values(column, feature, where, i):
                flat[k] = value
                k += 1
        return flat.reshape(rows, *column.shape)
    if not rows:
        return np.empty((0, *column.shape), dtype=column.numpy_dtype)
    stacked = np.concatenate([f.values for f in present])  # type: ignore[misc]
    return stacked.astype(column.numpy_dtype, copy=False).reshape(rows, *column.shape)


def _cell_values(column: Column, feature: wire.Feature, where: Where, row: int) -> np.ndarray:
    """One cell's values as a 1-D array (strings decoded, numbers copied out of the payload)."""
    if column.kind != "bytes":
        return np.array(feature.values, dtype=column.numpy_dtype)
    if column.dtype == "bytes":
        items: list[object] = list(feature.values)
    else:
        try:
            items = [v.decode("utf-8") for v in feature.values]  # type: ignore[union-attr]
        except UnicodeDecodeError:
            raise SchemaError(
                f"{where(row)}: column '{column.name}' holds bytes that are not UTF-8 text, "
                f"although the first rows are. Pass binary=['{column.name}'] to read it as bytes."
            ) from None
    cell = np.empty(len(items), dtype=object)
    cell[:] = items
    return cell
