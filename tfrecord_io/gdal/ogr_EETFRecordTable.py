# gdal: DRIVER_NAME = "EETFRecordTable"
# gdal: DRIVER_SUPPORTED_API_VERSION = [1]
# gdal: DRIVER_DCAP_VECTOR = "YES"
# gdal: DRIVER_DMD_LONGNAME = "Earth Engine table export (TFRecord, tfrecord_io)"
# gdal: DRIVER_DMD_EXTENSIONS = "tfrecord gz tfrecords tfr"
# gdal: DRIVER_DMD_OPENOPTIONLIST = "<OpenOptionList><Option name='X' type='string' description='Column of point x (longitude by default)'/><Option name='Y' type='string' description='Column of point y (latitude by default)'/><Option name='CRS' type='string' description='CRS of the points' default='EPSG:4326'/></OpenOptionList>"
# ruff: noqa: E501 (GDAL reads each "# gdal:" item from one line)
"""GDAL vector driver (read-only) for Earth Engine table exports, made of tfrecord_io.

GDAL reads the ``# gdal:`` lines above without Python; it loads this file as a module the
first time it asks this driver about a file, so the module imports nothing from tfrecord_io
(nor numpy) until a file's name looks like a TFRecord file. The logic lives in
:mod:`tfrecord_io.gdal.ogr`. GDAL finds this file through ``GDAL_PYTHON_DRIVER_PATH``, a folder
that :func:`tfrecord_io.gdal.vrt.gdal_driver_path` makes with a link to it (the file name must
start with ``ogr_``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from gdal_python_driver import BaseDataset, BaseDriver, BaseLayer

_SUFFIX = re.compile(r"\.(tfrecords?|tfr)(\.gz)?$", re.IGNORECASE)
_GDAL_OF_UPDATE = 0x01
_VSIGZIP = "/vsigzip/"


def _local(filename: str) -> str:
    """Return the file itself: QGIS hands GDAL a ``.gz`` file as ``/vsigzip/PATH``."""
    return filename[len(_VSIGZIP) :] if filename.startswith(_VSIGZIP) else filename


class Layer(BaseLayer):
    """One table export as an OGR layer, streamed batch by batch."""

    def __init__(self, source: Any) -> None:
        self.source = source
        self.name = source.name
        self.fields = source.fields
        self.geometry_fields = source.geometry_fields

    def test_capability(self, cap: str) -> bool:
        """Strings are UTF-8; nothing else is fast (counting inflates the file)."""
        return cap == BaseLayer.StringsAsUTF8

    def feature_count(self, force: int) -> int:
        """Return the number of rows, or GDAL's count by iteration when a filter is set."""
        if self.attribute_filter is not None or self.spatial_filter is not None:
            return super().feature_count(force)
        return self.source.feature_count()

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return self.source.iter_features()


class Dataset(BaseDataset):
    """A table export file: one layer."""

    def __init__(self, source: Any) -> None:
        self.layers = [Layer(source)]


class Driver(BaseDriver):
    """Claims only files that are table exports (name, first bytes, then the first record)."""

    def identify(
        self, filename: str, first_bytes: bytes, open_flags: int, open_options: Any = None
    ) -> bool:
        """Whether ``filename`` is a table export this driver reads."""
        if open_flags & _GDAL_OF_UPDATE or not _SUFFIX.search(filename):
            return False
        from tfrecord_io.gdal.ogr import is_table_file

        path = _local(filename)
        if path != filename:  # GDAL gave the inflated bytes: read the file's own first bytes
            with open(path, "rb") as f:
                first_bytes = f.read(1024)
        return is_table_file(path, first_bytes)

    def open(
        self, filename: str, first_bytes: bytes, open_flags: int, open_options: Any = None
    ) -> Dataset | None:
        """Open a table export, or return None for anything else."""
        if not self.identify(filename, first_bytes, open_flags):
            return None
        from tfrecord_io.gdal.ogr import TableLayerSource

        options = {k.upper(): v for k, v in (open_options or {}).items()}
        source = TableLayerSource(
            _local(filename),
            x=options.get("X"),
            y=options.get("Y"),
            crs=options.get("CRS", "EPSG:4326"),
        )
        return Dataset(source)
