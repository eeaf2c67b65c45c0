"""GDAL overviews (``.ovr``) for an export's VRT, made in one pass over the export.

Without overviews a zoomed-out view in QGIS (or any decimated read through the VRT) calls the
pixel function for the whole extent and decodes every patch, every time. With ``VRT.ovr``
beside the VRT, GDAL reads the reduced levels from that file instead.

GDAL's own ``BuildOverviews`` on the VRT reads it band by band, so it would decode the export
once per band. Here the first level is computed from the full-resolution mosaic, streamed once
row of patches by row of patches, so its pixels equal a decimated read of the export:

- ``nearest``: output pixel ``i`` takes source pixel ``floor((i + 0.5) * size / out_size)``,
  GDAL's rule for a decimated ``RasterIO``, and what ``tfrecord_io``'s ``read(out_shape=...)``
  gives;
- ``average``: the mean of the source pixels the output pixel covers (a ``factor x factor``
  block, fewer at the right and bottom edges), skipping ``nodata``.

The further levels (each a multiple of the first factor) are GDAL's overviews of the first,
with the same resampling, so the file is what GDAL makes for an external ``.ovr``: the first
level as the image, the others as its internal overviews. For ``average`` and factors that
divide the image, they are the block means of the export; elsewhere they are GDAL's resampling
of the first level.
"""

from __future__ import annotations

import os
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.errors import NotGeoreferencedWarning
from rasterio.windows import Window

from tfrecord_io.errors import OptionError
from tfrecord_io.format.atomic import atomic_file
from tfrecord_io.gdal.pixel import MODULE, options_from_arguments
from tfrecord_io.image.dataset import EETFRecordDataset
from tfrecord_io.image.grid import sample
from tfrecord_io.image.opener import open as open_export

__all__ = ["OverviewResampling", "build_overviews", "default_factors"]

OverviewResampling = Literal["nearest", "average"]
_SMALLEST = 256  # default levels stop once the image fits in one 256 x 256 block


def default_factors(width: int, height: int) -> list[int]:
    """Return 2, 4, 8, ... until the reduced image fits in 256 x 256 pixels (GDAL's habit)."""
    factors: list[int] = []
    factor = 2
    while max(width, height) / (factor // 2) > _SMALLEST:
        factors.append(factor)
        factor *= 2
    return factors


def build_overviews(
    vrt: str | os.PathLike[str],
    factors: Sequence[int] | None = None,
    resampling: OverviewResampling = "average",
    progress: Callable[[float], None] | None = None,
) -> str:
    """Write ``VRT.ovr``: GDAL overviews of a VRT made by :func:`tfrecord_io.build_vrt`.

    Parameters
    ----------
    vrt : path-like
        The VRT; the export and its open options are read from its pixel-function arguments.
    factors : sequence of int, optional
        Reduction factors, increasing, each at least 2; by default 2, 4, 8, ... until the
        smallest level fits in 256 x 256 pixels.
    resampling : {"average", "nearest"}
        How a level's pixel is made from the pixels it covers.
    progress : callable, optional
        Called with the fraction done, from 0 to 1.

    Returns
    -------
    str
        The path of the ``.ovr`` file, written beside the VRT (replacing one that exists).

    Raises
    ------
    OptionError
        The VRT was not made by tfrecord_io, a factor is invalid, or the resampling is unknown.
    """
    if resampling not in ("average", "nearest"):
        raise OptionError(f"resampling must be 'average' or 'nearest', not {resampling!r}")
    path = os.path.abspath(os.fspath(vrt))
    export, options = _export_of(path)
    with open_export(export, **options) as ds:
        levels = (
            sorted(set(factors)) if factors is not None else default_factors(ds.width, ds.height)
        )
        if not levels or levels[0] < 2:
            raise OptionError(f"overview factors must be 2 or more, not {list(factors or [])}")
        if any(f % levels[0] for f in levels):
            raise OptionError(
                f"overview factors {levels} must each be a multiple of the first, {levels[0]}"
            )
        target = path + ".ovr"
        with atomic_file(target, overwrite=True) as temporary:
            _write_first_level(temporary, ds, levels[0], resampling, progress)
            if len(levels) > 1:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", NotGeoreferencedWarning)
                    with rasterio.open(temporary, "r+") as dst:
                        dst.build_overviews(
                            [f // levels[0] for f in levels[1:]], Resampling[resampling]
                        )
    return target


def _export_of(vrt: str) -> tuple[str, dict[str, Any]]:
    """Return the export and the open() options a tfrecord_io VRT names."""
    try:
        band = ET.parse(vrt).getroot().find("VRTRasterBand")
    except (OSError, ET.ParseError) as exc:
        raise OptionError(f"cannot read the VRT '{vrt}': {exc}") from None
    if band is None or band.findtext("PixelFunctionType") != f"{MODULE}.read_band":
        raise OptionError(f"'{vrt}' is not a VRT of tfrecord_io.build_vrt: make one with it")
    arguments = dict(band.find("PixelFunctionArguments").attrib)  # type: ignore[union-attr]
    return arguments["export"], options_from_arguments(arguments)


def _size(length: int, factor: int) -> int:
    return -(-length // factor)  # GDAL's overview size: rounded up


class _Level:
    """One overview level being made from strips of full-resolution rows."""

    def __init__(self, ds: EETFRecordDataset, factor: int, how: str, dtype: np.dtype) -> None:
        self.factor, self.how, self.dtype = factor, how, dtype
        self.height, self.width = _size(ds.height, factor), _size(ds.width, factor)
        self.rows = sample(0, ds.height, self.height)
        self.cols = sample(0, ds.width, self.width)
        self.nodata = ds.nodata
        self.done = 0  # output rows written
        self.pending: np.ndarray | None = None  # full-resolution rows not yet used (average)
        self.pending_top = 0

    def take(self, top: int, strip: np.ndarray, last: bool) -> tuple[int, np.ndarray] | None:
        """Return ``(first output row, rows)`` that ``strip`` (rows from ``top``) completes."""
        if self.how == "nearest":
            bottom = top + strip.shape[1]
            stop = int(np.searchsorted(self.rows, bottom))
            start = self.done
            self.done = stop
            if stop == start:
                return None
            picked = strip[:, self.rows[start:stop] - top][:, :, self.cols]
            return start, picked.astype(self.dtype, copy=False)
        if self.pending is not None:
            strip = np.concatenate([self.pending, strip], axis=1)
            top = self.pending_top
        bottom = top + strip.shape[1]
        stop = self.height if last else bottom // self.factor
        start = self.done
        used = min(stop * self.factor, bottom) - top
        self.pending, self.pending_top = strip[:, used:], top + used
        self.done = stop
        if stop == start:
            return None
        return start, self._average(strip[:, :used])

    def _average(self, rows: np.ndarray) -> np.ndarray:
        bands, height, width = rows.shape
        f = self.factor
        out_h, out_w = _size(height, f), _size(width, f)
        if self.nodata is None and (out_h * f, out_w * f) == (height, width):
            blocks = rows.reshape(bands, out_h, f, out_w, f)
            mean = blocks.sum(axis=(2, 4), dtype=np.float64) / (f * f)
        else:  # edges or nodata: pad to whole blocks, count the pixels that count
            data = np.zeros((bands, out_h * f, out_w * f), np.float64)
            valid = np.zeros(data.shape, np.float64)
            data[:, :height, :width] = rows
            valid[:, :height, :width] = 1.0 if self.nodata is None else rows != self.nodata
            data *= valid
            shape = (bands, out_h, f, out_w, f)
            sums = data.reshape(shape).sum(axis=(2, 4))
            counts = valid.reshape(shape).sum(axis=(2, 4))
            with np.errstate(invalid="ignore", divide="ignore"):
                mean = sums / counts
            if self.nodata is not None:
                mean[counts == 0] = self.nodata
        if self.dtype.kind in "iu":
            mean = np.rint(mean)
        return mean.astype(self.dtype)


def _write_first_level(
    path: str,
    ds: EETFRecordDataset,
    factor: int,
    how: str,
    progress: Callable[[float], None] | None,
) -> None:
    """Stream the export once and write the first level as a tiled GeoTIFF."""
    dtype = np.result_type(*ds.dtypes)
    level = _Level(ds, factor, how, dtype)
    profile = {
        "driver": "GTiff",
        "width": level.width,
        "height": level.height,
        "count": ds.count,
        "dtype": dtype.name,
        "tiled": True,
        "blockxsize": 256,
        "blockysize": 256,
        "interleave": "pixel",
        "nodata": ds.nodata,
        "BIGTIFF": "IF_SAFER",
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path, "w", **profile) as out:
            rows = ds.grid.patch_rows
            for n, (window, strip) in enumerate(ds.iter_patch_rows(out_dtype=dtype)):
                got = level.take(int(window.row_off), strip, last=n == rows - 1)
                if got is not None:
                    first, pixels = got
                    out.write(pixels, window=Window(0, first, level.width, pixels.shape[1]))
                if progress is not None:
                    progress((n + 1) / rows)
