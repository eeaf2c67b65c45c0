"""A table export's columns: kind, dtype and shape of each, inferred from its first records.

Rules (Earth Engine's docs and the files seen, ``ee-tfrecord-format.md`` section 6):

- one Example per row, one feature per column, in the wire order of the first record;
- ``float_list`` is float32, ``int64_list`` int64, ``bytes_list`` ``str`` when every value seen
  is valid UTF-8, else ``bytes`` (``binary=`` keeps a column as bytes);
- a length-1 feature is a scalar column; a longer one an array, flattened row-major on the wire,
  shaped by ``shapes=`` or inferred: ``k*k`` values (k > 1) become ``(k, k)`` (the patches of
  ``neighborhoodToArray`` + ``sampleRegions``), anything else stays 1-D;
- a column whose length varies between rows is an error naming the column and the row, unless
  ``ragged=True`` (then every array column not named in ``shapes=`` has 1-D cells of any
  length).

Pure: no I/O, no pandas.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from tfrecord_io.errors import SchemaError
from tfrecord_io.format.example import Feature

__all__ = ["Column", "ColumnType", "Schema", "infer_schema", "shape_hint", "square_side"]

ColumnType = Literal["float32", "int64", "str", "bytes"]
_WIRE_TYPE: dict[str, ColumnType] = {"float": "float32", "int64": "int64", "bytes": "str"}


@dataclass(frozen=True)
class Column:
    """One column of a table export.

    Attributes
    ----------
    name : str
        The feature's key (Earth Engine's property name).
    kind : {"float", "int64", "bytes"}
        Which list of ``tf.train.Feature`` holds the values.
    dtype : {"float32", "int64", "str", "bytes"}
        The type of each value once read.
    shape : tuple of int
        Shape of one cell: ``()`` for a scalar; ``(-1,)`` for a ragged column.
    """

    name: str
    kind: str
    dtype: ColumnType
    shape: tuple[int, ...]

    @property
    def size(self) -> int:
        """Values per row (``-1`` when ragged)."""
        return -1 if self.is_ragged else math.prod(self.shape)

    @property
    def is_ragged(self) -> bool:
        """Whether rows hold different numbers of values."""
        return self.shape == (-1,)

    @property
    def numpy_dtype(self) -> np.dtype:
        """The numpy dtype of the column's arrays (object for strings and bytes)."""
        return np.dtype(object) if self.dtype in ("str", "bytes") else np.dtype(self.dtype)

    def to_dict(self) -> dict[str, Any]:
        """Return the column as JSON-ready data."""
        return {"name": self.name, "kind": self.kind, "dtype": self.dtype, "shape": self.shape}


@dataclass(frozen=True)
class Schema:
    """The columns of a table export, in order (a read-only mapping from name to Column)."""

    columns: tuple[Column, ...]

    def __getitem__(self, name: str) -> Column:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(name)

    def __contains__(self, name: object) -> bool:
        return any(c.name == name for c in self.columns)

    def __iter__(self) -> Any:
        return iter(self.names)

    def __len__(self) -> int:
        return len(self.columns)

    @property
    def names(self) -> tuple[str, ...]:
        """Column names in order."""
        return tuple(c.name for c in self.columns)

    def items(self) -> Iterable[tuple[str, Column]]:
        """``(name, Column)`` pairs in order."""
        return ((c.name, c) for c in self.columns)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """Return ``{name: {"kind", "dtype", "shape"}}``, JSON-ready."""
        return {c.name: {k: v for k, v in c.to_dict().items() if k != "name"} for c in self.columns}


def square_side(count: int) -> int | None:
    """Return k when ``count == k * k`` with k > 1, else None."""
    side = math.isqrt(count)
    return side if side > 1 and side * side == count else None


def shape_hint(count: int) -> str:
    """Say which shapes fit ``count`` values, with the ``ee.Kernel.square(r)`` rule when it applies.

    Parameters
    ----------
    count : int
        Values per row of a column.

    Returns
    -------
    str
        A sentence to end an error message with.
    """
    fits = [f"({count},)"]
    side = square_side(count)
    if side is not None:
        fits.append(f"({side}, {side})")
    fits += [f"({a}, {count // a})" for a in range(2, math.isqrt(count) + 1) if count % a == 0]
    fits = list(dict.fromkeys(fits))[:6]
    text = f"Shapes of {count} values fit, e.g. {', '.join(fits)}."
    if side is not None and side % 2 == 1:
        r = side // 2
        text += (
            f" ee.Kernel.square({r}) gives (2*{r}+1)^2 = {count} values per band: shape "
            f"({side}, {side}), not ({2 * r}, {2 * r})."
        )
    return text


def _check_shape(name: str, shape: Sequence[int], count: int, where: str) -> tuple[int, ...]:
    shape = tuple(int(s) for s in shape)
    if any(s < 0 for s in shape) and shape.count(-1) == 1:  # one dimension left to infer
        known = math.prod(s for s in shape if s != -1)
        if known and count % known == 0:
            shape = tuple(count // known if s == -1 else s for s in shape)
    if math.prod(shape) != count or any(s < 0 for s in shape):
        raise SchemaError(
            f"{where}: column '{name}' holds {count} values per row, which shape {shape} does "
            f"not fit ({math.prod(shape)} values). {shape_hint(count)} Pass shapes={{'{name}': "
            "...}} with one of them."
        )
    return shape


def _column_type(name: str, kind: str, values: list[Feature], binary: Sequence[str]) -> ColumnType:
    if kind != "bytes" or name in binary:
        return "bytes" if kind == "bytes" else _WIRE_TYPE[kind]
    for feature in values:
        for item in feature.values:
            try:
                item.decode("utf-8")  # type: ignore[union-attr]
            except UnicodeDecodeError:
                return "bytes"
    return "str"


def infer_schema(
    records: Sequence[Mapping[str, Feature]],
    *,
    shapes: Mapping[str, Sequence[int]] | None = None,
    columns: Sequence[str] | None = None,
    ragged: bool | Sequence[str] = False,
    binary: Sequence[str] = (),
    where: str = "",
    first_row: int = 0,
) -> Schema:
    """Infer a table's schema from its first decoded records.

    Parameters
    ----------
    records : sequence of mapping of str to Feature
        The first rows, decoded (at least one).
    shapes : mapping of str to shape, optional
        Cell shape of array columns (one dimension may be -1); inferred when not given.
    columns : sequence of str, optional
        The columns wanted, in the order wanted; every column of the first record otherwise.
    ragged : bool or sequence of str
        True makes every array column not named in ``shapes`` ragged (shape ``(-1,)``) and
        accepts columns whose length varies between the rows seen; a sequence makes the columns
        it names ragged, whatever their first lengths.
    binary : sequence of str
        ``bytes_list`` columns to keep as ``bytes`` even when they are valid UTF-8.
    where : str
        Names the file, put in front of error messages.
    first_row : int
        Row number of ``records[0]``, for error messages.

    Returns
    -------
    Schema

    Raises
    ------
    SchemaError
        A column named in ``columns`` or ``shapes`` is not in the table, its kind or length
        changes between the rows seen (without ``ragged``), or a shape does not fit.
    """
    shapes = dict(shapes or {})
    names = list(records[0]) if columns is None else list(columns)
    named_ragged = set() if isinstance(ragged, bool) else set(ragged)
    unknown = [n for n in [*names, *shapes] if n not in records[0]]
    if unknown:
        raise SchemaError(
            f"{where}: the table has no column '{unknown[0]}'. Its columns are: "
            f"{', '.join(records[0])}."
        )
    result = []
    for name in names:
        seen = [r.get(name) for r in records]
        first = seen[0]
        assert first is not None
        for row, feature in enumerate(seen):
            if feature is None:
                raise SchemaError(
                    f"{where}, row {first_row + row}: column '{name}' is missing (row "
                    f"{first_row} has it). Pass columns=[...] without it to read the others."
                )
            if feature.kind != first.kind:
                raise SchemaError(
                    f"{where}, row {first_row + row}: column '{name}' is a {feature.kind}_list, "
                    f"but a {first.kind}_list in row {first_row}"
                )
        lengths = [len(f) for f in seen if f is not None]
        count = lengths[0]
        is_ragged = name in named_ragged or (ragged is True and count != 1 and name not in shapes)
        if any(n != count for n in lengths) and not (ragged is True or is_ragged):
            row = next(i for i, n in enumerate(lengths) if n != count)
            raise SchemaError(
                f"{where}, row {first_row + row}: column '{name}' holds {lengths[row]} values "
                f"where row {first_row} holds {count}. Pass ragged=True to read it as 1-D "
                "arrays of varying length, or columns=[...] without it."
            )
        dtype = _column_type(name, first.kind, seen, binary)  # type: ignore[arg-type]
        if any(n != count for n in lengths) or is_ragged:
            shape: tuple[int, ...] = (-1,)
        elif name in shapes:
            shape = _check_shape(name, shapes[name], count, where)
        elif count == 1:
            shape = ()
        else:
            side = square_side(count)
            shape = (side, side) if side is not None else (count,)
        result.append(Column(name, first.kind, dtype, shape))
    return Schema(tuple(result))
