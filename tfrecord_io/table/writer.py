"""Write a table as Earth Engine writes table exports, ready for ``earthengine upload table``.

One gzip member per file with Earth Engine's header ``1f 8b 08 00 00 00 00 00 00 ff`` (mtime 0,
OS byte 255, through :class:`~tfrecord_io.format.shards.ShardSink`), one Example per row, one
feature per column in column order, arrays flattened row-major. The file is written beside the
destination under a temporary name and renamed into place, or put into a bucket as one object
(:func:`~tfrecord_io.format.upload.atomic_output`), so a failed write leaves nothing behind.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from tfrecord_io.errors import OptionError, TableError
from tfrecord_io.format import storage
from tfrecord_io.format.shards import ShardSink
from tfrecord_io.format.storage import StorageOptions
from tfrecord_io.format.upload import atomic_output
from tfrecord_io.table.columns import columns_from
from tfrecord_io.table.encode import KINDS, RowEncoder, TableColumn

__all__ = ["write_table"]

_DEFAULT_KIND = {"f": "float", "i": "int64", "u": "int64", "b": "int64", "O": "bytes"}


def _kind_of(name: str, values: np.ndarray, given: str | None) -> str:
    if given is not None:
        if given not in KINDS:
            raise OptionError(f"kinds['{name}'] must be 'float', 'int64' or 'bytes', not {given!r}")
        return given
    if values.dtype == object and len(values) and isinstance(values.flat[0], np.ndarray):
        return _DEFAULT_KIND.get(values.flat[0].dtype.kind, "bytes")  # ragged cells
    kind = _DEFAULT_KIND.get(values.dtype.kind)
    if kind is None:
        raise TableError(
            f"column '{name}' has values of type {values.dtype}, which a TFRecord table cannot "
            "hold: convert it to numbers or strings first"
        )
    return kind


def _as_written(name: str, kind: str, values: np.ndarray) -> TableColumn:
    """Cast a column to what its kind stores: float32, int64, or bytes objects."""
    ragged = values.dtype == object and len(values) > 0 and isinstance(values[0], np.ndarray)
    if kind == "bytes":
        flat = values.reshape(-1)
        per_row = max(1, flat.size // max(1, len(values)))
        out = np.empty(flat.shape, dtype=object)
        for i, item in enumerate(flat):
            if isinstance(item, str):
                out[i] = item.encode("utf-8")
            elif isinstance(item, bytes | bytearray | memoryview | np.ndarray):
                out[i] = bytes(item)
            else:
                raise TableError(
                    f"column '{name}', row {i // per_row}: "
                    f"{item!r} is not text or bytes. Earth Engine tables have no nulls: fill "
                    "the missing values first, or pass kinds= to store numbers."
                )
        return TableColumn(name, kind, out.reshape(values.shape), ragged=False)
    if ragged:
        dtype = np.float32 if kind == "float" else np.int64
        cells = np.empty(len(values), dtype=object)
        for i, cell in enumerate(values):
            cells[i] = np.asarray(cell, dtype=dtype).reshape(-1)
        return TableColumn(name, kind, cells, ragged=True)
    try:
        cast = values.astype(np.float32 if kind == "float" else np.int64)
    except (TypeError, ValueError) as exc:
        raise TableError(f"column '{name}' cannot be stored as {kind} values: {exc}") from None
    if kind == "int64" and values.dtype.kind == "f" and not np.array_equal(cast, values):
        raise TableError(
            f"column '{name}' holds non-integer values (or NaN), which kinds= says are int64"
        )
    return TableColumn(name, kind, cast, ragged=False)


def write_table(
    data: Any,
    path: str | os.PathLike[str],
    kinds: Mapping[str, str] | None = None,
    *,
    x: str = "longitude",
    y: str = "latitude",
    crs: Any = "EPSG:4326",
    compressed: bool = True,
    level: int = 6,
    overwrite: bool = False,
    progress: Callable[[float], None] | None = None,
    storage_options: StorageOptions = None,
) -> str:
    """Write a table as one Earth Engine table TFRecord file (one Example per row).

    Parameters
    ----------
    data : pandas.DataFrame, geopandas.GeoDataFrame, pyarrow.Table or dict of arrays
        The rows. Array cells (numpy arrays of one shape per column, ``fixed_shape_tensor``
        columns) are flattened row-major. A GeoDataFrame's points become the columns ``x`` and
        ``y``, reprojected to ``crs`` (unless it already has both columns; then the geometry is
        dropped).
    path : path-like or str
        The file to write, e.g. ``training.tfrecord.gz``; or a URL (``gs://bucket/t.tfrecord.gz``),
        written locally and then put as one object.
    kinds : mapping of str to {"float", "int64", "bytes"}, optional
        The list each column is stored in; by default floats -> ``float_list`` (float32),
        integers and booleans -> ``int64_list``, strings and bytes -> ``bytes_list``.
    x, y : str
        Names of the coordinate columns made from points (``earthengine upload table``'s
        defaults).
    crs : str or pyproj.CRS
        CRS the points are reprojected to before they become coordinates.
    compressed : bool
        Write gzip, as Earth Engine does (the upload tool accepts both).
    level : int
        zlib compression level, 0 to 9.
    overwrite : bool
        Replace ``path`` if it exists.
    progress : callable, optional
        Called with the fraction of rows written, from 0 to 1.
    storage_options : dict, optional
        fsspec options when ``path`` is a URL.

    Returns
    -------
    str
        The path written.

    Raises
    ------
    TableError
        A column cannot be stored (nulls, mixed types, unequal array shapes, non-point
        geometry); the message names the column and row.
    ExportExistsError
        ``path`` exists and ``overwrite`` is False.
    OptionError
        A kind or option is invalid.
    """
    kinds = dict(kinds or {})
    raw = columns_from(data, x=x, y=y, crs=crs)
    unknown = set(kinds) - set(raw)
    if unknown:
        raise OptionError(
            f"kinds names column(s) {', '.join(sorted(unknown))} that the data does not have"
        )
    columns = [_as_written(n, _kind_of(n, v, kinds.get(n)), v) for n, v in raw.items()]
    encoder = RowEncoder(columns)
    with atomic_output(path, overwrite, storage_options) as temp:
        sink = ShardSink(
            lambda _name: temp,
            "table",
            compressed=compressed,
            max_file_size=1 << 62,
            level=level,
        )
        try:
            step = max(1, encoder.rows // 100)
            for i, payload in enumerate(encoder.iter_payloads()):
                sink.write(payload)
                if progress is not None and i % step == 0:
                    progress(i / max(1, encoder.rows))
            sink.close()
        except BaseException:
            sink.abort()
            raise
    if progress is not None:
        progress(1.0)
    return storage.abspath(path)
