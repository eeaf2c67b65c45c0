"""What the GDAL vector driver serves: a table export's rows as OGR fields and point features.

GDAL's Python driver interface (``gdal_python_driver``, GDAL >= 3.1) asks a layer for its
fields as ``{"name", "type"}`` dicts and for its features as dicts of field values with
geometries as WKT. This module makes both from :func:`~tfrecord_io.table.reader.open_table`,
streaming with :meth:`~tfrecord_io.table.reader.TableExport.iter_batches` (one batch in memory
at a time), so the driver file itself (``ogr_EETFRecordTable.py``) only wires it to GDAL and
everything here can be tested without GDAL.

Mapping: float columns are ``Real``, int64 ``Integer64``, text ``String``, raw bytes
``Binary``; an array column becomes one field per value, ``NAME_0 ... NAME_{n-1}`` in
row-major order; a ragged column is one ``String`` of comma-separated values. Points come from
the scalar number columns ``longitude`` and ``latitude`` (Earth Engine's and
``earthengine upload table``'s names), in EPSG:4326, unless other columns are named.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import Any

import numpy as np

from tfrecord_io.errors import TFRecordIOError
from tfrecord_io.format import example as wire
from tfrecord_io.format.kinds import first_record
from tfrecord_io.table.files import image_export_reason
from tfrecord_io.table.reader import TableExport, open_table
from tfrecord_io.table.schema import Column

__all__ = ["OGR_TYPES", "TableLayerSource", "is_table_file", "looks_like_tfrecord"]

OGR_TYPES = {"float32": "Real", "int64": "Integer64", "str": "String", "bytes": "Binary"}
DRIVER_NAME = "EETFRecordTable"
_SUFFIX = re.compile(r"\.(tfrecords?|tfr)(\.gz)?$", re.IGNORECASE)
_BATCH = 4096
_VALUES_PER_BATCH = 1 << 20


def looks_like_tfrecord(path: str, first_bytes: bytes) -> bool:
    """Whether a file's name and first bytes may be a TFRecord file: the cheap test, no decode.

    Parameters
    ----------
    path : str
        The file's name (``.tfrecord``, ``.tfrecords``, ``.tfr``, optionally ``.gz``).
    first_bytes : bytes
        Its first bytes, as GDAL gives them: gzip's magic, or a record header whose 8-byte
        length is plausible (under 1 TiB).
    """
    if not _SUFFIX.search(path) or len(first_bytes) < 12:
        return False
    if first_bytes[:2] == b"\x1f\x8b":
        return True
    length = int.from_bytes(first_bytes[:8], "little")
    return 0 < length < (1 << 40)


def is_table_file(path: str, first_bytes: bytes) -> bool:
    """Whether GDAL should open ``path`` as a table export (never an image export).

    The name and first bytes are checked first; only then is the first record read. The file
    is claimed when its first record is an Example and ``open_table``'s rule
    (:func:`~tfrecord_io.table.files.image_export_reason`) does not find an image export, so
    the driver claims the files :func:`~tfrecord_io.table.reader.open_table` accepts, a table
    of patches named like a shard included.
    """
    if not os.path.isfile(path) or not looks_like_tfrecord(path, first_bytes):
        return False
    try:
        payload = first_record(path)
        if payload is None or image_export_reason(path, payload) is not None:
            return False
        wire.decode_example(payload)
    except (TFRecordIOError, OSError, ValueError):
        return False
    return True


def _point_columns(table: TableExport, x: str | None, y: str | None) -> tuple[str, str] | None:
    """Return the coordinate columns: those named, else longitude/latitude when present."""
    if x is None and y is None:
        names = {name.lower(): name for name in table.schema.names}
        if "longitude" not in names or "latitude" not in names:
            return None
        x, y = names["longitude"], names["latitude"]
    x, y = str(x), str(y)
    table.check_point_columns(x, y)
    return x, y


def _field_names(column: Column) -> list[str]:
    if column.shape in ((), (-1,)):
        return [column.name]
    return [f"{column.name}_{i}" for i in range(column.size)]


def _values(column: Column, data: np.ndarray) -> list[list[Any]]:
    """Return the column's values of one batch, as one Python list per field."""
    if column.is_ragged:
        return [[",".join(str(v) for v in np.asarray(cell).tolist()) for cell in data]]
    if column.shape == ():
        return [data.tolist() if data.dtype != object else list(data)]
    flat = data.reshape(len(data), -1)
    if flat.dtype == object:
        return [list(flat[:, i]) for i in range(flat.shape[1])]
    return flat.T.tolist()


class TableLayerSource:
    """A table export as one OGR layer: fields, geometry field and a feature stream.

    Parameters
    ----------
    path : str
        The table file.
    x, y : str, optional
        Coordinate columns for points; ``longitude``/``latitude`` when they exist by default.
    crs : str
        Their CRS, as GDAL reads it (``EPSG:4326`` by default).

    Raises
    ------
    TFRecordIOError
        The file cannot be opened as a table, or a coordinate column does not fit.
    """

    def __init__(
        self, path: str, x: str | None = None, y: str | None = None, crs: str = "EPSG:4326"
    ) -> None:
        self.table = open_table(path)
        self.name = _SUFFIX.sub("", os.path.basename(path)) or "table"
        self.points = _point_columns(self.table, x, y)
        self.crs = crs
        self.fields = [
            {"name": name, "type": "String" if c.is_ragged else OGR_TYPES[c.dtype]}
            for c in self.table.schema.columns
            for name in _field_names(c)
        ]
        self.geometry_fields = (
            [{"name": "geometry", "type": "Point", "srs": crs}] if self.points else []
        )

    def feature_count(self) -> int:
        """Rows of the table: its records framed once, not decoded; the table keeps the count."""
        return len(self.table)

    def iter_features(self, batch_size: int | None = None) -> Iterator[dict[str, Any]]:
        """Yield GDAL feature dicts, ids from 0 in row order, one batch decoded at a time.

        Parameters
        ----------
        batch_size : int, optional
            Rows decoded at a time; by default up to 4096, fewer for wide tables, so that a
            batch holds about a million values as Python objects.
        """
        names = [f["name"] for f in self.fields]
        if batch_size is None:
            batch_size = max(1, min(_BATCH, _VALUES_PER_BATCH // max(1, len(names))))
        fid = 0
        for batch in self.table.iter_batches(batch_size):
            columns: list[list[Any]] = []
            for column in self.table.schema.columns:
                columns += _values(column, batch[column.name])
            points: list[str] | None = None
            if self.points is not None:
                xs = batch[self.points[0]].tolist()
                ys = batch[self.points[1]].tolist()
                points = [f"POINT ({x!r} {y!r})" for x, y in zip(xs, ys, strict=True)]
            for i, row in enumerate(zip(*columns, strict=True)):
                feature: dict[str, Any] = {
                    "type": "OGRFeature",
                    "id": fid,
                    "fields": dict(zip(names, row, strict=True)),
                }
                if points is not None:
                    feature["geometry_fields"] = {"geometry": points[i]}
                yield feature
                fid += 1
