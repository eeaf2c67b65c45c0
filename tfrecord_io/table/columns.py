"""Turn what :func:`~tfrecord_io.table.writer.write_table` is given into numpy columns.

Accepted: a dict of arrays, a ``pandas.DataFrame``, a ``geopandas.GeoDataFrame`` (points become
coordinate columns) and a ``pyarrow.Table`` (``fixed_shape_tensor`` and fixed-size list columns
become arrays). Each column comes out shaped ``(rows, *shape)``: numbers as numbers, text and
bytes as object arrays, ragged cells as a 1-D object array of arrays. Datetimes become int64
milliseconds since 1970, Earth Engine's ``system:time_start`` convention.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from tfrecord_io.errors import TableError

__all__ = ["columns_from"]


def _module(data: object) -> str:
    return type(data).__module__.split(".")[0]


def _stack_cells(name: str, cells: np.ndarray) -> np.ndarray:
    """Stack array cells of one shape into ``(rows, *shape)``; unequal shapes stay ragged."""
    arrays = [np.asarray(c) for c in cells]
    shapes = {a.shape for a in arrays}
    if len(shapes) == 1:
        return np.stack(arrays) if arrays else np.empty((0,))
    if all(a.ndim == 1 for a in arrays):
        out = np.empty(len(arrays), dtype=object)
        for i, a in enumerate(arrays):
            out[i] = a
        return out
    row = next(i for i, a in enumerate(arrays) if a.shape != arrays[0].shape)
    raise TableError(
        f"column '{name}', row {row}: a cell of shape {arrays[row].shape} where row 0 has "
        f"{arrays[0].shape}. Every cell of an array column needs the same shape."
    )


def _array_column(name: str, values: Any) -> np.ndarray:
    if isinstance(values, list | tuple) and values and isinstance(values[0], np.ndarray | list):
        cells = np.empty(len(values), dtype=object)
        for i, cell in enumerate(values):
            cells[i] = np.asarray(cell)
        return _stack_cells(name, cells)
    if isinstance(values, list | tuple) and values and isinstance(values[0], str | bytes):
        texts = np.empty(len(values), dtype=object)  # not via numpy's "S": it drops trailing NULs
        texts[:] = values
        return texts
    array = np.asarray(values)
    if array.dtype.kind == "M":
        return array.astype("datetime64[ms]").astype(np.int64)
    if array.dtype.kind in "US":
        return array.astype(object)
    if array.dtype == object and len(array) and array.ndim == 1:
        first = array[0]
        if isinstance(first, np.ndarray | list | tuple):
            return _stack_cells(name, array)
    return array


def _from_pandas(frame: Any) -> dict[str, np.ndarray]:
    out = {}
    for name in frame.columns:
        series = frame[name]
        if series.isna().any() and series.dtype.kind != "f":
            row = int(np.flatnonzero(series.isna().to_numpy())[0])
            raise TableError(
                f"column '{name}', row {row}: a missing value. Earth Engine tables have no "
                "nulls: fill it (fillna) or drop the row first."
            )
        dtype = series.dtype
        if getattr(dtype, "kind", "O") in "iufbM" and not hasattr(dtype, "numpy_dtype"):
            out[str(name)] = _array_column(str(name), series.to_numpy())
        elif hasattr(dtype, "numpy_dtype") and dtype.kind in "iufb":  # nullable Int64 etc.
            out[str(name)] = series.to_numpy(dtype=dtype.numpy_dtype)
        else:
            out[str(name)] = _array_column(str(name), series.to_numpy(dtype=object))
    return out


def _from_arrow(table: Any) -> dict[str, np.ndarray]:
    import pyarrow as pa

    out = {}
    for name, chunked in zip(table.column_names, table.columns, strict=True):
        column = chunked.combine_chunks()
        if isinstance(column.type, pa.FixedShapeTensorType):
            out[name] = column.to_numpy_ndarray()
        elif pa.types.is_fixed_size_list(column.type):
            flat = column.flatten().to_numpy(zero_copy_only=False)
            out[name] = _array_column(name, flat.reshape(len(column), column.type.list_size))
        elif pa.types.is_list(column.type) or pa.types.is_large_list(column.type):
            cells = np.empty(len(column), dtype=object)
            for i, cell in enumerate(column.to_pylist()):
                cells[i] = np.asarray(cell)
            out[name] = cells
        elif pa.types.is_string(column.type) or pa.types.is_binary(column.type):
            out[name] = _array_column(name, np.array(column.to_pylist(), dtype=object))
        else:
            out[name] = _array_column(name, column.to_numpy(zero_copy_only=False))
        if column.null_count:
            raise TableError(
                f"column '{name}' holds {column.null_count} null(s). Earth Engine tables have "
                "no nulls: fill or drop them first."
            )
    return out


def _points(frame: Any, x: str, y: str, crs: Any) -> Any:
    """Return the GeoDataFrame without its geometry, with ``x`` and ``y`` from its points."""
    geometry = frame.geometry
    if x in frame.columns and y in frame.columns:
        return frame.drop(columns=[frame.geometry.name])
    if geometry.crs is not None and crs is not None:
        geometry = geometry.to_crs(crs)
    types = set(geometry.geom_type.dropna())
    if geometry.isna().any() or geometry.is_empty.any() or types - {"Point"}:
        bad = next(
            i for i, g in enumerate(geometry) if g is None or g.is_empty or g.geom_type != "Point"
        )
        raise TableError(
            f"row {bad}: geometry {geometry.iloc[bad]!r:.60} is not a point. Only points become "
            f"{x}/{y} columns: use .centroid, or drop the geometry and give coordinates."
        )
    plain = frame.drop(columns=[frame.geometry.name])
    plain[x] = geometry.x.to_numpy()
    plain[y] = geometry.y.to_numpy()
    return plain


def columns_from(data: Any, *, x: str, y: str, crs: Any) -> dict[str, np.ndarray]:
    """Return ``{name: (rows, *shape) array}`` for a dict, DataFrame, GeoDataFrame or Arrow table.

    Parameters
    ----------
    data : mapping, pandas.DataFrame, geopandas.GeoDataFrame or pyarrow.Table
        The rows to write.
    x, y : str
        Names of the coordinate columns made from a GeoDataFrame's points.
    crs : str or pyproj.CRS
        CRS the points are reprojected to.

    Raises
    ------
    TableError
        Columns of different lengths, nulls, unequal cell shapes, or non-point geometry.
    """
    module = _module(data)
    if module == "geopandas":
        columns = _from_pandas(_points(data, x, y, crs))
    elif module == "pandas":
        columns = _from_pandas(data)
    elif module == "pyarrow":
        columns = _from_arrow(data)
    elif isinstance(data, Mapping):
        columns = {str(k): _array_column(str(k), v) for k, v in data.items()}
    else:
        raise TableError(
            f"write_table takes a DataFrame, a GeoDataFrame, a pyarrow Table or a dict of "
            f"arrays, not {type(data).__name__}"
        )
    lengths = {name: len(v) if np.ndim(v) else 1 for name, v in columns.items()}
    if len(set(lengths.values())) > 1:
        raise TableError(
            "the columns have different numbers of rows: "
            + ", ".join(f"{n}={k}" for n, k in lengths.items())
        )
    return columns
