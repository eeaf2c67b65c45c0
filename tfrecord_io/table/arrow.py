"""Columns of a table export (numpy arrays) as pyarrow, pandas and geopandas tables.

Every function takes the table's ``schema`` (:class:`~tfrecord_io.table.schema.Schema`: the
columns' kinds and shapes) and its ``columns`` (a dict of numpy arrays shaped ``(rows, *shape)``,
as :meth:`TableExport.to_numpy` gives them). Imported packages come from the
``tfrecord_io[table]`` extra, only when a function is called; a missing one raises
:class:`~tfrecord_io.errors.MissingExtraError`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tfrecord_io.table._deps import require
from tfrecord_io.table.schema import Column, Schema

__all__ = ["to_arrow", "to_geopandas", "to_pandas"]


def _arrow_type(pa: Any, column: Column) -> Any:
    if column.dtype == "str":
        return pa.string()
    if column.dtype == "bytes":
        return pa.binary()
    return pa.from_numpy_dtype(np.dtype(column.dtype))


def _arrow_column(pa: Any, column: Column, values: np.ndarray) -> Any:
    value_type = _arrow_type(pa, column)
    if column.is_ragged:
        lengths = np.fromiter((len(v) for v in values), dtype=np.int64, count=len(values))
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
        flat = np.concatenate(list(values)) if len(values) else np.empty(0, column.numpy_dtype)
        return pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat, type=value_type))
    if column.shape == ():
        return pa.array(values, type=value_type)
    if column.kind == "bytes":
        flat = pa.array(values.reshape(-1), type=value_type)
        return pa.FixedSizeListArray.from_arrays(flat, column.size)
    return pa.FixedShapeTensorArray.from_numpy_ndarray(np.ascontiguousarray(values))


def to_arrow(schema: Schema, columns: dict[str, np.ndarray]) -> Any:
    """Return a ``pyarrow.Table`` of the columns; array columns are ``fixed_shape_tensor``."""
    pa = require("pyarrow", "to_arrow()")
    arrays = [_arrow_column(pa, c, columns[c.name]) for c in schema.columns]
    return pa.Table.from_arrays(arrays, names=list(schema.names))


def to_pandas(schema: Schema, columns: dict[str, np.ndarray]) -> Any:
    """Return a ``pandas.DataFrame``; each array cell is a numpy array of the column's shape."""
    pd = require("pandas", "to_pandas()")
    data: dict[str, Any] = {}
    for column in schema.columns:
        values = columns[column.name]
        if column.shape == () or column.is_ragged:
            data[column.name] = values
            continue
        cells = np.empty(len(values), dtype=object)
        for i in range(len(values)):
            cells[i] = values[i]  # a view of shape column.shape, not a copy
        data[column.name] = cells
    return pd.DataFrame(data)


def to_geopandas(schema: Schema, columns: dict[str, np.ndarray], x: str, y: str, crs: Any) -> Any:
    """Return a ``geopandas.GeoDataFrame`` with points from the scalar columns ``x`` and ``y``.

    Parameters
    ----------
    schema, columns
        The table, as every function here takes it.
    x, y : str
        The coordinate columns (kept as columns too).
    crs : str or pyproj.CRS
        The coordinates' reference system.

    Raises
    ------
    MissingExtraError
        geopandas is not installed.
    """
    gpd = require("geopandas", "to_geopandas()")
    frame = to_pandas(schema, columns)
    points = gpd.points_from_xy(
        columns[x].astype(np.float64), columns[y].astype(np.float64), crs=crs
    )
    return gpd.GeoDataFrame(frame, geometry=points, crs=crs)
