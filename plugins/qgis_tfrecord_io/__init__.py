"""QGIS plugin: a Processing provider for Google Earth Engine TFRecord image exports.

Loading the plugin does two things before anything else, so that no layer is ever read without
them:

- puts the bundled library (``ext/tfrecord_io``) on ``sys.path`` as the top-level package
  ``tfrecord_io``, unless one is importable already; GDAL imports the VRT's pixel function by
  that exact name (``tfrecord_io.pixelfunction``);
- trusts that one module for GDAL's Python pixel functions (``GDAL_VRT_ENABLE_PYTHON=
  TRUSTED_MODULES``), in QGIS's GDAL and in the environment of child processes. It never sets
  ``YES``, which would trust every VRT on the machine;
- registers the library's GDAL vector driver for table exports in QGIS's GDAL, so that *Add
  Vector Layer* opens them.

The library itself (and with it rasterio) is imported only when an algorithm runs.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import tempfile

#: The pixel-function module GDAL must trust: ``tfrecord_io.pixelfunction.MODULE``. Kept as a
#: constant so that loading the plugin does not import rasterio; a test checks they agree.
PIXEL_FUNCTION_MODULE = "tfrecord_io.pixelfunction"

EXT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ext")

#: The library's GDAL vector driver for table exports (``tfrecord_io.gdal.vrt.DRIVER_FILE``)
#: and the name it registers.
DRIVER_FILE = "ogr_EETFRecordTable.py"
TABLE_DRIVER = "EETFRecordTable"


def add_bundled_library() -> None:
    """Make the bundled ``tfrecord_io`` importable, unless a ``tfrecord_io`` already is."""
    if importlib.util.find_spec("tfrecord_io") is None and os.path.isdir(EXT):
        sys.path.append(EXT)


def gdal_config() -> dict[str, str]:
    """Return the GDAL configuration that lets the bridge's VRTs run, merged with any present.

    A ``GDAL_VRT_PYTHON_TRUSTED_MODULES`` list the user already has is kept and extended; a
    ``GDAL_VRT_ENABLE_PYTHON=YES`` the user chose already trusts the module and is left alone.
    """
    from osgeo import gdal

    enable = gdal.GetConfigOption("GDAL_VRT_ENABLE_PYTHON") or ""
    if enable.upper() in ("YES", "ON", "TRUE"):
        return {}
    current = gdal.GetConfigOption("GDAL_VRT_PYTHON_TRUSTED_MODULES") or ""
    modules = [m.strip() for m in current.split(",") if m.strip()]
    if PIXEL_FUNCTION_MODULE not in modules:
        modules.append(PIXEL_FUNCTION_MODULE)
    return {
        "GDAL_VRT_ENABLE_PYTHON": "TRUSTED_MODULES",
        "GDAL_VRT_PYTHON_TRUSTED_MODULES": ",".join(modules),
    }


def configure_gdal() -> None:
    """Apply :func:`gdal_config` to QGIS's GDAL and to ``os.environ`` (for child processes)."""
    from osgeo import gdal

    for key, value in gdal_config().items():
        gdal.SetConfigOption(key, value)
        os.environ[key] = value


def register_table_driver() -> bool:
    """Register the library's GDAL vector driver for table exports in QGIS's running GDAL.

    GDAL looks for Python drivers when its drivers are registered, which QGIS did at start-up.
    Registering again (``gdal.AllRegister()``) with ``GDAL_PYTHON_DRIVER_PATH`` naming a
    folder that holds only the driver adds it, so *Add Vector Layer* opens table exports (pick
    "All files": QGIS built its file filters before). Returns whether the driver is present.
    """
    from osgeo import gdal

    if gdal.GetDriverByName(TABLE_DRIVER) is not None:
        return True
    spec = importlib.util.find_spec("tfrecord_io")
    if spec is None or not spec.submodule_search_locations:
        return False
    driver = os.path.join(next(iter(spec.submodule_search_locations)), "gdal", DRIVER_FILE)
    if not os.path.isfile(driver):
        return False
    folder = tempfile.mkdtemp(prefix="tfrecord_io-gdal-drivers-")
    os.symlink(driver, os.path.join(folder, DRIVER_FILE))
    current = gdal.GetConfigOption("GDAL_PYTHON_DRIVER_PATH")
    paths = os.pathsep.join(p for p in (current, folder) if p)
    gdal.SetConfigOption("GDAL_PYTHON_DRIVER_PATH", paths)
    os.environ["GDAL_PYTHON_DRIVER_PATH"] = paths
    gdal.AllRegister()
    return gdal.GetDriverByName(TABLE_DRIVER) is not None


def classFactory(iface):
    """Return the plugin instance (QGIS's entry point), after setting up the library and GDAL."""
    add_bundled_library()
    configure_gdal()
    register_table_driver()
    from .plugin import TFRecordIOPlugin

    return TFRecordIOPlugin(iface)
