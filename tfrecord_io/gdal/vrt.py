"""The GDAL bridge: a VRT whose bands a Python pixel function of tfrecord_io fills.

With it, ``rasterio.open``, ``gdal_translate``, ``gdalinfo`` and QGIS read an export through
GDAL itself. The VRT has one ``VRTDerivedRasterBand`` per band with no sources; each names the
module function :func:`tfrecord_io.pixelfunction.read_band` (never inline code) and carries
absolute paths in its arguments, since the function is not told where the VRT is. GDAL runs it
only with the configuration :func:`gdal_env` returns, which trusts that one module.
"""

from __future__ import annotations

import contextlib
import json
import os
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from typing import Any

from tfrecord_io.errors import OptionError
from tfrecord_io.format import storage
from tfrecord_io.format.atomic import atomic_file, check_writable
from tfrecord_io.gdal.pixel import MODULE
from tfrecord_io.image.opener import open as open_export

__all__ = ["DRIVER_FILE", "build_vrt", "gdal_driver_path", "gdal_env", "gdal_pythonpath"]

_GDAL_TYPES = {
    "uint8": "Byte",
    "int16": "Int16",
    "int32": "Int32",
    "int64": "Int64",
    "float32": "Float32",
    "float64": "Float64",
}


DRIVER_FILE = "ogr_EETFRecordTable.py"
"""The GDAL vector driver's file in this folder (GDAL loads ``gdal_*.py``/``ogr_*.py`` files)."""


def gdal_env() -> dict[str, str]:
    """Return the GDAL configuration for tfrecord_io's pixel function and vector driver.

    It trusts exactly the module :mod:`tfrecord_io.pixelfunction`, never every module
    (``GDAL_VRT_ENABLE_PYTHON=YES`` would trust any VRT on the machine), and points
    ``GDAL_PYTHON_DRIVER_PATH`` at a folder holding only the table driver
    (:func:`gdal_driver_path`, made on first call; left out when no cache folder can be
    written), so one environment serves rasters (VRTs)
    and tables (``ogrinfo``, ``ogr2ogr``). Use it as ``rasterio.Env(**tfrecord_io.gdal_env())``,
    or export it to the environment; GDAL looks for Python drivers once, when it registers its
    drivers, so the driver path must be set before GDAL starts (before ``import pyogrio``, or
    before QGIS starts).
    """
    env = {
        "GDAL_VRT_ENABLE_PYTHON": "TRUSTED_MODULES",
        "GDAL_VRT_PYTHON_TRUSTED_MODULES": MODULE,
    }
    # Without a writable cache folder rasters still work; tables then need the path set.
    with contextlib.suppress(OSError):
        env["GDAL_PYTHON_DRIVER_PATH"] = gdal_driver_path()
    return env


def _linking_folder(folder: str | os.PathLike[str] | None, default: str, target: str) -> str:
    """Make ``folder`` (in tfrecord_io's cache by default) hold a link to ``target``."""
    if folder is None:
        cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        folder = os.path.join(cache, "tfrecord_io", default)
    folder = os.path.abspath(os.fspath(folder))
    link = os.path.join(folder, os.path.basename(target))
    os.makedirs(folder, exist_ok=True)
    if os.path.realpath(link) != os.path.realpath(target):
        # Made aside and renamed over: processes doing this at once never see a missing link.
        temporary = f"{link}.{os.getpid()}.tmp"
        if os.path.lexists(temporary):
            os.remove(temporary)
        os.symlink(target, temporary)
        os.replace(temporary, link)
    return folder


def gdal_pythonpath(folder: str | os.PathLike[str] | None = None) -> str:
    """Return a folder to put on ``PYTHONPATH`` for command-line GDAL: it holds only this package.

    Debian's ``gdal_translate``, ``gdalinfo`` and ``ogrinfo`` run tfrecord_io in Debian's
    Python with Debian's numpy and rasterio (``apt install python3-rasterio python3-crc32c``),
    which share their GDAL. Putting a virtualenv's site-packages on ``PYTHONPATH`` would load
    the venv's rasterio and its own bundled GDAL into the same process; a folder holding only a
    link to ``tfrecord_io`` avoids that.

    Parameters
    ----------
    folder : path-like, optional
        Where to make it; ``$XDG_CACHE_HOME/tfrecord_io/gdal-python`` (``~/.cache/...``) by
        default.
    """
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # tfrecord_io/
    return _linking_folder(folder, "gdal-python", package)


def gdal_driver_path(folder: str | os.PathLike[str] | None = None) -> str:
    """Return a folder for ``GDAL_PYTHON_DRIVER_PATH``: it holds only the table driver's file.

    GDAL runs every ``gdal_*.py``/``ogr_*.py`` file of that folder's as a driver, so the
    folder holds a link to ``tfrecord_io/gdal/ogr_EETFRecordTable.py`` and nothing else.

    Parameters
    ----------
    folder : path-like, optional
        Where to make it; ``$XDG_CACHE_HOME/tfrecord_io/gdal-drivers`` (``~/.cache/...``) by
        default.
    """
    driver = os.path.join(os.path.dirname(os.path.abspath(__file__)), DRIVER_FILE)
    return _linking_folder(folder, "gdal-drivers", driver)


def build_vrt(
    export: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    dst: str | os.PathLike[str] | None = None,
    *,
    overwrite: bool = True,
    **options: Any,
) -> str:
    """Write a GDAL VRT that reads an export through tfrecord_io's pixel function.

    Parameters
    ----------
    export : path-like, str or sequence of path-like
        What :func:`tfrecord_io.open` takes: the export folder, its mixer, a shard (under any
        name), or a list of shards in export order; a path or a URL (the VRT then records the
        URL and ``storage_options``, and the pixel function reads through fsspec). The VRT
        records the shards and the mixer found, so GDAL reopens exactly those files.
    dst : path-like, optional
        Where to write the VRT (a local file); ``PREFIX.vrt`` beside a local export by
        default, required for a URL.
    overwrite : bool
        Replace an existing file at ``dst``.
    **options
        :func:`tfrecord_io.open` options (``kernel_size``, ``band_order``, ``mixer`` as a path,
        ``array_layout``, ``sequence_data``, ``nodata``, ``storage_options``), recorded in the
        VRT so GDAL opens the export the same way. ``storage_options`` are written as JSON in
        clear: prefer credentials from the environment to secrets in them.

    Returns
    -------
    str
        The VRT's absolute path.

    Raises
    ------
    OptionError
        An option cannot be recorded in a VRT (a mixer given as an object, not a path;
        ``storage_options`` that are not JSON), or a URL export was given no ``dst``.
    ExportExistsError
        ``dst`` exists and ``overwrite`` is False.
    """
    mixer = options.get("mixer")
    if mixer is not None and not isinstance(mixer, str | os.PathLike):
        raise OptionError("build_vrt needs the mixer as a file path, so GDAL can open it too")
    if dst is None and isinstance(export, str | os.PathLike) and storage.is_url(os.fspath(export)):
        raise OptionError(f"'{os.fspath(export)}' is a URL: pass dst, a local path for the VRT")
    with open_export(export, **options) as ds:  # type: ignore[call-overload]
        files = ds.export_files
        path = os.path.abspath(
            os.fspath(dst) if dst is not None else os.path.join(files.folder, files.prefix + ".vrt")
        )
        check_writable(path, overwrite)  # before any work; checked again at the rename
        root = ET.Element("VRTDataset", rasterXSize=str(ds.width), rasterYSize=str(ds.height))
        ET.SubElement(
            root, "SRS", dataAxisToSRSAxisMapping=_axis_mapping(ds.crs)
        ).text = ds.crs.to_wkt()
        a, b, c, d, e, f = tuple(ds.transform)[:6]
        ET.SubElement(root, "GeoTransform").text = ", ".join(repr(v) for v in (c, a, b, f, d, e))
        block_height, block_width = ds.block_shapes[0]
        arguments = _arguments(ds, options)
        for band in ds.indexes:
            dtype = ds.dtypes[band - 1]
            element = ET.SubElement(
                root,
                "VRTRasterBand",
                dataType=_GDAL_TYPES[dtype],
                band=str(band),
                subClass="VRTDerivedRasterBand",
                blockXSize=str(block_width),
                blockYSize=str(block_height),
            )
            ET.SubElement(element, "Description").text = ds.descriptions[band - 1]
            if ds.nodata is not None:
                ET.SubElement(element, "NoDataValue").text = repr(float(ds.nodata))
            ET.SubElement(element, "PixelFunctionType").text = f"{MODULE}.read_band"
            ET.SubElement(element, "PixelFunctionLanguage").text = "Python"
            ET.SubElement(element, "PixelFunctionArguments", {"band": str(band), **arguments})
    ET.indent(root)
    with atomic_file(path, overwrite) as temporary:
        ET.ElementTree(root).write(temporary, encoding="unicode")
    return path


def _arguments(ds: Any, options: dict[str, Any]) -> dict[str, str]:
    """Return the open() options as PixelFunctionArguments: strings, with absolute paths."""
    kernel_x, kernel_y = ds.kernel_size
    files = ds.export_files
    arguments = {
        "export": storage.abspath(files.shards[0]),
        "kernel_x": str(kernel_x),
        "kernel_y": str(kernel_y),
    }
    if files.order != "shard-number":
        # Renamed or listed files: record the list, so the pixel function opens those shards
        # in that order, not what the first shard's name would find.
        arguments["shards"] = json.dumps([storage.abspath(s) for s in files.shards])
    if files.mixer and not options.get("mixer"):
        arguments["mixer"] = storage.abspath(files.mixer)
    if options.get("allow_missing"):
        arguments["allow_missing"] = "true"
    if options.get("band_order"):
        arguments["band_order"] = ",".join(options["band_order"])
    if options.get("mixer"):
        arguments["mixer"] = storage.abspath(options["mixer"])
    if options.get("storage_options"):
        try:
            arguments["storage_options"] = json.dumps(options["storage_options"], sort_keys=True)
        except TypeError as exc:
            raise OptionError(
                f"storage_options must be JSON (strings, numbers, lists, dicts) to be recorded "
                f"in a VRT: {exc}"
            ) from None
    if options.get("array_layout"):
        arguments["array_layout"] = str(options["array_layout"])
    if options.get("sequence_data") is not None:
        arguments["sequence_data"] = "true" if options["sequence_data"] else "false"
    if ds.nodata is not None:
        arguments["nodata"] = repr(float(ds.nodata))
    return arguments


def _axis_mapping(crs: Any) -> str:
    """GDAL's traditional GIS order (x = easting/longitude) for the VRT's SRS."""
    return "1,2" if crs is not None else ""
