"""The GDAL pixel function that fills the bands of tfrecord_io's VRTs.

GDAL imports :mod:`tfrecord_io.pixelfunction` by name when a VRT band says
``<PixelFunctionType>tfrecord_io.pixelfunction.read_band</PixelFunctionType>``; that module's
name is fixed (users' VRTs name it) and it re-exports :func:`read_band` from here. It runs only
when ``GDAL_VRT_ENABLE_PYTHON=TRUSTED_MODULES`` and ``GDAL_VRT_PYTHON_TRUSTED_MODULES`` names
it (:func:`tfrecord_io.gdal_env`). GDAL caches nothing for such bands, so opened
exports (and with them their record index and decoded-patch cache) are kept here between calls,
a few at a time. Full-resolution reads that move down the mosaic from its top-left corner (as
``gdal_translate`` and ``BuildOverviews`` make them) are answered from one pass over the export
that decodes a whole row of patches at a time (:class:`tfrecord_io.gdal.readahead.RowStream`);
other reads go through the record index. Errors propagate: GDAL reports them as read failures,
never as zeros.
"""

from __future__ import annotations

import atexit
import json
import threading
from collections import OrderedDict
from typing import Any

import numpy as np
from rasterio.windows import Window

from tfrecord_io.gdal.readahead import DecimatedReads, RowStream
from tfrecord_io.image.dataset import EETFRecordDataset
from tfrecord_io.image.opener import open as open_export

__all__ = ["MODULE", "options_from_arguments", "read_band"]

MODULE = "tfrecord_io.pixelfunction"  # the trusted module GDAL imports; never rename it
_MAX_OPEN = 8
_open: OrderedDict[
    tuple[tuple[str, str], ...], tuple[EETFRecordDataset, RowStream, DecimatedReads]
] = OrderedDict()
_lock = threading.Lock()


@atexit.register
def _close_all() -> None:
    """Close the exports kept open between calls when the process ends."""
    with _lock:
        while _open:
            _, (ds, stream, _) = _open.popitem()
            stream.close()
            ds.close()


def options_from_arguments(args: dict[str, str]) -> dict[str, Any]:
    """Turn a VRT's PixelFunctionArguments (strings) into :func:`tfrecord_io.open` keywords."""
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
    if args.get("storage_options"):
        options["storage_options"] = json.loads(args["storage_options"])
    if args.get("allow_missing") == "true":
        options["allow_missing"] = True
    return options


def _dataset(args: dict[str, str]) -> tuple[EETFRecordDataset, RowStream, DecimatedReads]:
    key = tuple(sorted((k, v) for k, v in args.items() if k != "band"))
    with _lock:
        entry = _open.get(key)
        if entry is not None:
            _open.move_to_end(key)
            return entry
    # A VRT of renamed or listed files carries its shards as a JSON list, in export order.
    export = json.loads(args["shards"]) if args.get("shards") else args["export"]
    ds = open_export(export, **options_from_arguments(args))
    entry = (ds, RowStream(ds), DecimatedReads(ds))
    with _lock:
        _open[key] = entry
        while len(_open) > _MAX_OPEN:
            _, (old, stream, _) = _open.popitem(last=False)
            stream.close()
            old.close()
    return entry


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
        The VRT's ``PixelFunctionArguments``: ``export`` (absolute path or URL), ``band`` and the
        options the VRT was built with.
    """
    args = {k: v.decode() if isinstance(v, bytes) else str(v) for k, v in kwargs.items()}
    ds, stream, decimated = _dataset(args)
    band, window = int(args["band"]), Window(xoff, yoff, xsize, ysize)
    if stream.read(band, window, out_ar):
        return
    if out_ar.shape != (ysize, xsize) and ds.count > 1:
        decimated.read(band, window, out_ar)
        return
    out_ar[...] = ds.read(
        band,
        window=window,
        out_shape=out_ar.shape,
        out_dtype=out_ar.dtype,
    )
