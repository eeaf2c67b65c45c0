"""The GDAL pixel function that fills the bands of tfrecord_io's VRTs.

GDAL imports this module by name when a VRT band says
``<PixelFunctionType>tfrecord_io.pixelfunction.read_band</PixelFunctionType>``; it runs only
when ``GDAL_VRT_ENABLE_PYTHON=TRUSTED_MODULES`` and ``GDAL_VRT_PYTHON_TRUSTED_MODULES`` names
this module (:func:`tfrecord_io.gdal_env`). GDAL caches nothing for such bands, so opened
exports (and with them their record index and decoded-patch cache) are kept here between calls,
a few at a time. Errors propagate: GDAL reports them as read failures, never as zeros.
"""

from __future__ import annotations

import atexit
import json
import threading
from collections import OrderedDict
from typing import Any

import numpy as np
from rasterio.windows import Window

from tfrecord_io.image.dataset import EETFRecordDataset
from tfrecord_io.opener import open as open_export

__all__ = ["MODULE", "read_band"]

MODULE = __name__
_MAX_OPEN = 8
_open: OrderedDict[tuple[tuple[str, str], ...], EETFRecordDataset] = OrderedDict()
_lock = threading.Lock()


@atexit.register
def _close_all() -> None:
    """Close the exports kept open between calls when the process ends."""
    with _lock:
        while _open:
            _, ds = _open.popitem()
            ds.close()


def _options(args: dict[str, str]) -> dict[str, Any]:
    """Turn the VRT's PixelFunctionArguments (strings) into :func:`open` keywords."""
    options: dict[str, Any] = {}
    if "kernel_x" in args:
        options["kernel_size"] = (int(args["kernel_x"]), int(args["kernel_y"]))
    if args.get("band_order"):
        options["band_order"] = args["band_order"].split(",")
    if args.get("mixer"):
        options["mixer"] = args["mixer"]
    if args.get("array_layout"):
        options["array_layout"] = args["array_layout"]
    if args.get("sequence_data"):
        options["sequence_data"] = args["sequence_data"] == "true"
    if args.get("nodata"):
        options["nodata"] = float(args["nodata"])
    if args.get("allow_missing") == "true":
        options["allow_missing"] = True
    return options


def _dataset(args: dict[str, str]) -> EETFRecordDataset:
    key = tuple(sorted((k, v) for k, v in args.items() if k != "band"))
    with _lock:
        ds = _open.get(key)
        if ds is not None:
            _open.move_to_end(key)
            return ds
    # A VRT of renamed or listed files carries its shards as a JSON list, in export order.
    export = json.loads(args["shards"]) if args.get("shards") else args["export"]
    ds = open_export(export, **_options(args))
    with _lock:
        _open[key] = ds
        while len(_open) > _MAX_OPEN:
            _, old = _open.popitem(last=False)
            old.close()
    return ds


def read_band(
    in_ar: Any,
    out_ar: np.ndarray,
    xoff: int,
    yoff: int,
    xsize: int,
    ysize: int,
    raster_xsize: int,
    raster_ysize: int,
    buf_radius: int,
    gt: Any,
    **kwargs: bytes | str,
) -> None:
    """Fill ``out_ar`` with one band of an export over a window (GDAL's pixel-function call).

    Parameters
    ----------
    in_ar : list
        Source arrays (none: the band has no sources).
    out_ar : numpy.ndarray
        The buffer to fill; smaller than the window for a decimated read.
    xoff, yoff, xsize, ysize : int
        The window of the band being read.
    raster_xsize, raster_ysize, buf_radius, gt
        Unused: the export knows its own geometry.
    **kwargs : bytes
        The VRT's ``PixelFunctionArguments``: ``export`` (absolute path), ``band`` and the
        options the VRT was built with.
    """
    args = {k: v.decode() if isinstance(v, bytes) else str(v) for k, v in kwargs.items()}
    ds = _dataset(args)
    out_ar[...] = ds.read(
        int(args["band"]),
        window=Window(xoff, yoff, xsize, ysize),
        out_shape=out_ar.shape,
        out_dtype=out_ar.dtype,
    )
