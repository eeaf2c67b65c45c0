"""The table tools behind ``tfrecord-io table info`` and ``tfrecord-io table convert``.

Conversions go both ways. A table export becomes CSV, Parquet, GeoParquet, GeoPackage, GeoJSON or
FlatGeobuf (format from ``format=`` or the extension); and any of these, or any vector file OGR
reads, becomes a table TFRecord ready for ``earthengine upload table``. Points are made from the
``x``/``y`` columns (``longitude``/``latitude`` when they exist and the format has geometry).
Formats without array fields (CSV and OGR's) get an array column as ``NAME_0 .. NAME_{n-1}``;
Parquet keeps it as a ``fixed_shape_tensor``. Every output is written atomically. The whole
table is held in memory during a conversion.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

import numpy as np

from tfrecord_io.errors import OptionError, SchemaError, TableError, TFRecordIOError
from tfrecord_io.format.atomic import check_writable
from tfrecord_io.format.storage import abspath, basename, is_url
from tfrecord_io.format.upload import atomic_output
from tfrecord_io.table import arrow
from tfrecord_io.table._deps import require
from tfrecord_io.table.reader import TableExport, open_table
from tfrecord_io.table.writer import write_table

__all__ = ["FORMATS", "convert_table", "format_for", "format_table_info", "table_info"]

FORMATS = {
    "CSV": (".csv",),
    "Parquet": (".parquet", ".pq"),
    "GeoParquet": (".geoparquet",),
    "GPKG": (".gpkg",),
    "GeoJSON": (".geojson", ".json"),
    "FlatGeobuf": (".fgb",),
    "TFRecord": (".tfrecord.gz", ".tfrecord", ".tfrecords", ".tfr", ".tfrecord.gzip"),
}
"""Output formats and the extensions that select them."""

_OGR_DRIVERS = {"GPKG": "GPKG", "GeoJSON": "GeoJSON", "FlatGeobuf": "FlatGeobuf"}
_GEO_FORMATS = {"GeoParquet", *_OGR_DRIVERS}

Progress = Callable[[float], None] | None


def format_for(path: str | os.PathLike[str], format: str | None = None) -> str:
    """Return the output format for ``path``: ``format`` when given, else from the extension.

    Raises
    ------
    OptionError
        The format is unknown, or the extension names none.
    """
    if format is not None:
        wanted = "gpkg" if format.lower() == "geopackage" else format.lower()
        for name in FORMATS:
            if name.lower() == wanted:
                return name
        raise OptionError(f"unknown table format {format!r}: use one of {', '.join(FORMATS)}")
    lower = os.fspath(path).lower()
    for name, extensions in FORMATS.items():
        if lower.endswith(extensions):
            return name
    raise OptionError(
        f"cannot tell the format of '{os.fspath(path)}' from its extension: pass -f/format= "
        f"with one of {', '.join(FORMATS)}"
    )


def table_info(path: str | os.PathLike[str], **options: Any) -> dict[str, Any]:
    """Describe a table export: its files, row count and columns.

    Parameters
    ----------
    path : path-like
        A table file, folder or glob, as :func:`open_table` takes it.
    **options
        :func:`open_table`'s keyword arguments (``shapes=``, ``ragged=``, ...).

    Returns
    -------
    dict
        ``{"files": [...], "rows": N, "columns": [{"name", "kind", "dtype", "shape"}, ...]}``.
    """
    table = open_table(path, **options)
    return {
        "files": list(table.files),
        "rows": len(table),
        "columns": [c.to_dict() | {"shape": list(c.shape)} for c in table.schema.columns],
    }


def format_table_info(info: dict[str, Any]) -> str:
    """Format :func:`table_info`'s result as text, one column a line."""
    lines = [f"Table export: {len(info['files'])} file(s), {info['rows']} rows"]
    lines += [f"  {f}" for f in info["files"]]
    lines.append(f"Columns ({len(info['columns'])}):")
    for c in info["columns"]:
        shape = "scalar" if not c["shape"] else "x".join(map(str, c["shape"])).replace("-1", "*")
        lines.append(f"  {c['name']}: {c['dtype']} ({c['kind']}_list), {shape}")
    return "\n".join(lines)


def _read_columns(table: TableExport, progress: Progress) -> dict[str, np.ndarray]:
    """Read every column, reporting the fraction of rows read (the count costs one pass)."""
    if progress is None:
        return table.to_numpy()
    total = max(1, len(table))
    parts: dict[str, list[np.ndarray]] = {n: [] for n in table.schema.names}
    done = 0
    for batch in table.iter_batches():
        for name, values in batch.items():
            parts[name].append(values)
        done += len(next(iter(batch.values()))) if batch else 0
        progress(0.9 * done / total)
    return {
        c.name: np.concatenate(parts[c.name])
        if parts[c.name]
        else np.empty((0, *c.shape), c.numpy_dtype)
        for c in table.schema.columns
    }


def _flat_frame(table: TableExport, columns: dict[str, np.ndarray]) -> Any:
    """Return a DataFrame with array columns spread over ``NAME_0 .. NAME_{n-1}``."""
    pd = require("pandas", "converting a table")
    data: dict[str, Any] = {}
    for column in table.schema.columns:
        values = columns[column.name]
        if column.is_ragged:
            raise SchemaError(
                f"'{table.files[0]}': column '{column.name}' is ragged, which this format cannot "
                "hold: write Parquet, or pass columns= without it"
            )
        if column.shape == ():
            data[column.name] = values
            continue
        flat = values.reshape(len(values), -1)
        for i in range(flat.shape[1]):
            data[f"{column.name}_{i}"] = flat[:, i]
    return pd.DataFrame(data)


def _points_for(
    table: TableExport, dst_format: str, x: str | None, y: str | None
) -> tuple[str, str] | None:
    if x is not None or y is not None:
        if x is None or y is None:
            raise OptionError("give both x and y (--x and --y) to make points")
        return x, y
    if dst_format in _GEO_FORMATS and {"longitude", "latitude"} <= set(table.schema.names):
        return "longitude", "latitude"
    if dst_format == "GeoParquet":
        raise OptionError(
            "GeoParquet needs points: the table has no longitude/latitude columns, so pass "
            "--x and --y (x=, y=) naming its coordinate columns"
        )
    return None


def _geoparquet(table: TableExport, columns: dict[str, np.ndarray], points: Any, crs: Any) -> Any:
    """Return an Arrow table with a WKB ``geometry`` column and GeoParquet 1.0 metadata."""
    pa = require("pyarrow", "writing GeoParquet")
    shapely = require("shapely", "writing GeoParquet")
    pyproj = require("pyproj", "writing GeoParquet")
    data = arrow.to_arrow(table.schema, columns)
    x, y = points
    geometry = shapely.points(columns[x].astype(np.float64), columns[y].astype(np.float64))
    data = data.append_column("geometry", pa.array(shapely.to_wkb(geometry), type=pa.binary()))
    bbox = list(shapely.total_bounds(geometry)) if len(geometry) else []
    geo = {
        "version": "1.0.0",
        "primary_column": "geometry",
        "columns": {
            "geometry": {
                "encoding": "WKB",
                "geometry_types": ["Point"],
                "crs": pyproj.CRS.from_user_input(crs).to_json_dict(),
                **({"bbox": bbox} if bbox else {}),
            }
        },
    }
    metadata = dict(data.schema.metadata or {})
    metadata[b"geo"] = json.dumps(geo).encode("utf-8")
    return data.replace_schema_metadata(metadata)


def _export_table(
    src: Any,
    dst: str,
    dst_format: str,
    x: str | None,
    y: str | None,
    crs: Any,
    overwrite: bool,
    progress: Progress,
    options: dict[str, Any],
) -> str:
    storage_options = options.get("storage_options")
    table = open_table(src, **options)
    points = _points_for(table, dst_format, x, y)
    for name in points or ():
        if name not in table.schema:
            raise SchemaError(
                f"'{table.files[0]}': no column '{name}' to make points from. Columns: "
                f"{', '.join(table.schema.names)}"
            )
    if not is_url(dst):
        check_writable(dst, overwrite)
    columns = _read_columns(table, progress)
    with atomic_output(dst, overwrite, storage_options) as temp:
        try:
            _write_format(table, columns, temp, dst, dst_format, points, crs)
        except Exception as exc:  # the writing library's own errors, as one line
            if isinstance(exc, TFRecordIOError):
                raise
            raise TableError(f"writing '{dst}' as {dst_format} failed: {exc}") from exc
    if progress is not None:
        progress(1.0)
    return abspath(dst)


def _write_format(
    table: TableExport,
    columns: dict[str, np.ndarray],
    temp: str,
    dst: str,
    dst_format: str,
    points: tuple[str, str] | None,
    crs: Any,
) -> None:
    if dst_format == "Parquet" and points is None:
        require("pyarrow.parquet", "writing Parquet").write_table(
            arrow.to_arrow(table.schema, columns), temp
        )
    elif dst_format in ("Parquet", "GeoParquet"):
        require("pyarrow.parquet", "writing GeoParquet").write_table(
            _geoparquet(table, columns, points, crs), temp
        )
    elif dst_format == "CSV":
        _flat_frame(table, columns).to_csv(temp, index=False)
    else:
        gpd = require("geopandas", f"writing {dst_format}")
        geometry, options = None, {}
        if points is not None:
            x, y = (columns[p].astype(np.float64) for p in points)
            geometry = gpd.points_from_xy(x, y)
        elif dst_format == "FlatGeobuf":
            options["SPATIAL_INDEX"] = "NO"  # its spatial index refuses rows without geometry
        frame = gpd.GeoDataFrame(
            _flat_frame(table, columns), geometry=geometry, crs=crs if points else None
        )
        layer = basename(dst).split(".")[0] or "table"
        frame.to_file(
            temp, driver=_OGR_DRIVERS[dst_format], layer=layer, engine="pyogrio", **options
        )


def _is_tfrecord(src: str) -> bool:
    try:
        return format_for(src) == "TFRecord" or os.path.isdir(src)
    except OptionError:
        return False


def _read_vector(src: str) -> Any:
    """Read a CSV, Parquet, GeoParquet or any OGR-readable file as a (Geo)DataFrame or table."""
    lower = src.lower()
    if lower.endswith(".csv"):  # coordinates stay plain columns
        return require("pandas", "reading CSV").read_csv(src)
    if lower.endswith((".parquet", ".pq", ".geoparquet")):
        pq = require("pyarrow.parquet", "reading Parquet")
        if b"geo" in (pq.read_schema(src).metadata or {}):
            return require("geopandas", "reading GeoParquet").read_parquet(src)
        return pq.read_table(src)
    return require("geopandas", "reading vector files").read_file(src, engine="pyogrio")


def convert_table(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    *,
    format: str | None = None,
    x: str | None = None,
    y: str | None = None,
    crs: Any = None,
    overwrite: bool = False,
    progress: Progress = None,
    **options: Any,
) -> str:
    """Convert a table export to another format, or a vector or tabular file to a table export.

    The direction follows ``dst``: a TFRecord output (``format="TFRecord"``, or a ``.tfrecord.gz``
    or other TFRecord name) is written from any source, any other output from a table export.

    Parameters
    ----------
    src : path-like
        A table export (file, folder or glob), or a CSV, Parquet, GeoParquet or OGR-readable
        vector file (GeoPackage, GeoJSON, FlatGeobuf, Shapefile, ...).
    dst : path-like
        The file to write.
    format : str, optional
        One of :data:`FORMATS` (``"GPKG"``, ``"GeoParquet"``, ``"TFRecord"``, ...); from
        ``dst``'s extension when not given.
    x, y : str, optional
        Coordinate columns to make points from (default ``longitude``/``latitude`` when the
        table has them and the format has geometry); for a TFRecord output, the names the
        points' coordinates are written under.
    crs : str or pyproj.CRS, optional
        The points' CRS (default EPSG:4326); for a TFRecord output, the CRS the points are
        reprojected to.
    overwrite : bool
        Replace ``dst`` if it exists.
    progress : callable, optional
        Called with the fraction done, from 0 to 1.
    **options
        :func:`open_table`'s keyword arguments for a table source (``shapes=``, ...), and
        ``storage_options`` (fsspec options) when ``src`` or ``dst`` is a URL: a URL source
        is read as a table export, a URL destination written locally and put as one object.

    Returns
    -------
    str
        The path (or URL) written.

    Raises
    ------
    OptionError
        Unknown format, or x without y.
    SchemaError
        A coordinate column is missing, or a ragged column meets a format that cannot hold it.
    ExportExistsError
        ``dst`` exists and ``overwrite`` is False.
    """
    src, dst = os.fspath(src), os.fspath(dst)
    dst_format = format_for(dst, format)
    crs = crs or "EPSG:4326"
    if dst_format != "TFRecord":
        return _export_table(src, dst, dst_format, x, y, crs, overwrite, progress, options)
    if not is_url(dst):
        check_writable(dst, overwrite)
    if is_url(src) or _is_tfrecord(src) or not os.path.exists(src):  # a glob of table files
        data = open_table(src, **options).to_arrow()
    else:
        data = _read_vector(src)
    return write_table(
        data,
        dst,
        x=x or "longitude",
        y=y or "latitude",
        crs=crs,
        overwrite=overwrite,
        progress=progress,
        storage_options=options.get("storage_options"),
    )
