"""Stream any rasterio-readable raster (GeoTIFF, COG, VRT...) into an Earth Engine export.

:func:`export` hands the source, as :class:`RasterioRows` with its :func:`raster_profile`, to
:func:`export_rows`, the body every export shares (xarray sources and distributed exports
included, through :func:`tfrecord_io.export`): it checks the arguments as
:class:`~tfrecord_io.image.writer.EETFRecordWriter` does (the same writer, which opens the
destination but makes no spill file until a window is written) and hands the rows to the one
write pipeline, :func:`~tfrecord_io.image.write.write_export`. The source is read one patch row
at a time, straight into the encoder: no spill file and no copy of the raster in memory, so
memory is bounded by one strip of ``patch_height + 2 * margin`` rows, whatever its height.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any

import numpy as np
import rasterio
from rasterio.enums import MaskFlags
from rasterio.windows import Window

from tfrecord_io.image.encode import RowSource
from tfrecord_io.image.write import write_export
from tfrecord_io.image.writer import EETFRecordWriter

__all__ = ["RasterioRows", "export", "export_rows", "raster_profile", "raster_rows"]


class RasterioRows:
    """Rows of a rasterio dataset, as the encoder reads them (a ``RowSource``).

    Parameters
    ----------
    src : rasterio dataset
        Anything with rasterio's ``read`` (and ``read_masks``).
    nodata : float, optional
        Mask pixels equal to it, instead of the source's own masks.
    """

    def __init__(self, src: Any, nodata: float | None = None) -> None:
        self.src = src
        self.nodata = nodata
        flags = getattr(src, "mask_flag_enums", None)
        self.use_masks = (
            nodata is None
            and flags is not None
            and any(list(f) != [MaskFlags.all_valid] for f in flags)
        )

    def read_rows(self, row_start: int, row_stop: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Return the values and mask of rows ``row_start`` to ``row_stop`` (exclusive)."""
        window = Window(0, row_start, self.src.width, row_stop - row_start)
        values = self.src.read(window=window)
        if self.nodata is not None:
            if np.isnan(self.nodata):
                return values, np.isnan(values)
            return values, values == np.asarray(self.nodata).astype(values.dtype)
        if self.use_masks:
            return values, self.src.read_masks(window=window) == 0
        return values, None


def export(
    src: str | os.PathLike[str] | Any,
    dst: str | os.PathLike[str],
    *,
    nodata: float | None = None,
    **options: Any,
) -> list[str]:
    """Write a raster as an Earth Engine TFRecord export, streaming it a patch row at a time.

    The serial raster path of :func:`tfrecord_io.export`, which documents the parameters, the
    files returned and the errors; it lives here, below the integrations, for the GDAL bridge.
    ``src`` is a path rasterio opens or an open dataset, and ``options`` are the keywords of
    :func:`export_rows` (``band_names``, ``progress``, and ``format_options``, ``overwrite`` and
    the other options of :class:`~tfrecord_io.image.writer.EETFRecordWriter`).
    """
    with raster_rows(src, nodata) as (rows, profile):
        return export_rows(rows, dst, profile, **options)


@contextmanager
def raster_rows(
    src: str | os.PathLike[str] | Any, nodata: float | None = None
) -> Iterator[tuple[RasterioRows, dict[str, Any]]]:
    """Yield the rows and :func:`raster_profile` of a raster, opening a path for the block.

    Parameters
    ----------
    src : path-like or rasterio dataset
        Any raster rasterio opens (GeoTIFF, COG, VRT...), or an open dataset (left open).
    nodata : float, optional
        Mask pixels equal to it, instead of the source's own nodata and masks.

    Yields
    ------
    rows : RasterioRows
        The rows, as the encoder reads them.
    profile : dict
        What :func:`export_rows` needs besides the pixels.
    """
    with ExitStack() as stack:
        if isinstance(src, str | os.PathLike):
            src = stack.enter_context(rasterio.open(src))
        yield RasterioRows(src, nodata), raster_profile(src, nodata)


def raster_profile(src: Any, nodata: float | None = None) -> dict[str, Any]:
    """Return what an export needs to know of a rasterio dataset besides its pixels.

    Parameters
    ----------
    src : rasterio dataset
        The source.
    nodata : float, optional
        Overrides the source's nodata.

    Returns
    -------
    dict
        ``width``, ``height``, ``count``, ``dtype`` (one for all bands), ``crs``,
        ``transform``, ``nodata`` and ``descriptions``: the keys :func:`export_rows` takes.
    """
    return {
        "width": src.width,
        "height": src.height,
        "count": src.count,
        "dtype": np.result_type(*[np.dtype(d) for d in src.dtypes]),
        "crs": src.crs,
        "transform": src.transform,
        "nodata": nodata if nodata is not None else src.nodata,
        "descriptions": tuple(src.descriptions),
    }


def export_rows(
    rows: RowSource | Any,
    dst: str | os.PathLike[str],
    profile: Mapping[str, Any],
    *,
    band_names: Sequence[str] | None = None,
    progress: Callable[[int, int], None] | None = None,
    write: Callable[..., list[str]] = write_export,
    **writer_options: Any,
) -> list[str]:
    """Write the rows of a raster described by ``profile`` as an export.

    Parameters
    ----------
    rows : RowSource
        The raster's rows, or what ``write`` takes as its rows.
    dst : path-like
        The export folder.
    profile : mapping
        The keys of :func:`raster_profile`.
    band_names : sequence of str, optional
        Feature names; ``profile["descriptions"]`` (or ``b1``, ``b2``...) by default.
    progress : callable, optional
        ``progress(done_patches, total_patches)``.
    write : callable
        The write pipeline (:func:`~tfrecord_io.image.write.write_export` by default).
    **writer_options
        Keyword arguments of :class:`~tfrecord_io.image.writer.EETFRecordWriter`.

    Returns
    -------
    list of str
        The files written: shards in order, then the mixer.
    """
    writer = EETFRecordWriter(
        dst,
        width=profile["width"],
        height=profile["height"],
        count=profile["count"],
        dtype=profile["dtype"],
        crs=profile["crs"],
        transform=profile["transform"],
        nodata=profile["nodata"],
        **writer_options,
    )
    try:
        writer.descriptions = band_names if band_names is not None else profile["descriptions"]
        return writer.close_from(rows, progress, write)
    finally:
        writer.abort()
