"""``tfrecord_io.export``: any raster, DataArray or Dataset into an export, here or on a cluster.

This is the one public entry point of exports; it picks the source and the runner. A path or a
rasterio dataset is read through :func:`tfrecord_io.image.export.raster_rows`; an xarray
DataArray or Dataset through :func:`tfrecord_io.xarray.source.xarray_source`; with a dask
``client``, the shards are written on the cluster by
:func:`tfrecord_io.dask.export.write_distributed`. xarray, dask and distributed are imported
only when a source or a client needs them.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from typing import Any

import rasterio

from tfrecord_io.errors import OptionError
from tfrecord_io.image.export import export_rows, raster_profile, raster_rows
from tfrecord_io.image.write import write_export

__all__ = ["export", "is_xarray"]


def is_xarray(obj: object) -> bool:
    """Return True for an xarray DataArray or Dataset (without importing xarray)."""
    xr = sys.modules.get("xarray")
    return xr is not None and isinstance(obj, xr.DataArray | xr.Dataset)


def export(
    src: Any,
    dst: str | os.PathLike[str],
    format_options: Mapping[str, Any] | None = None,
    progress: Callable[[int, int], None] | None = None,
    overwrite: bool = False,
    *,
    band_names: Sequence[str] | None = None,
    nodata: float | None = None,
    client: Any = None,
    **options: Any,
) -> list[str]:
    """Write a raster, DataArray or Dataset as an Earth Engine TFRecord export.

    The source is streamed a patch row at a time (margins included), never held whole. With a
    dask ``client``, the shards are encoded and written on its workers in parallel and
    committed by this process: the files are byte for byte those of the serial export.

    Parameters
    ----------
    src : path-like, rasterio dataset, xarray.DataArray or xarray.Dataset
        Any raster rasterio opens (GeoTIFF, COG, VRT...), an open dataset, or an xarray
        object (numpy- or dask-backed) with a rioxarray-style ``spatial_ref`` coordinate
        (see :func:`tfrecord_io.xarray.source.xarray_source`).
    dst : path-like
        The export folder. With a ``client``, the workers write into a temporary folder beside
        it, so it must be on a filesystem they share (any local folder for a ``LocalCluster``).
    format_options : mapping, optional
        Earth Engine's ``formatOptions`` (camelCase keys).
    progress : callable, optional
        ``progress(done_patches, total_patches)``: after each patch row, or each shard on a
        cluster.
    overwrite : bool
        Replace an export with the same prefix in ``dst``.
    band_names : sequence of str, optional
        Feature names; by default the source's band descriptions (a ``band`` coordinate of
        names, or a Dataset's variable names), else ``b1``, ``b2``...
    nodata : float, optional
        Mask pixels equal to this value; by default the source's nodata and masks are used.
    client : distributed.Client, optional
        Write the shards on this dask cluster. A raster is then opened by its path on every
        worker; a numpy-backed xarray object is sent to the workers, a dask-backed one is
        computed there, rows by rows.
    **options
        :class:`~tfrecord_io.image.writer.EETFRecordWriter`'s options: ``file_name_prefix``
        (``PREFIX`` of the files; the folder's name by default), ``kinds`` (feature kind per
        band: ``"float"``, ``"int64"``, ``"bytes"``), ``pad_edges`` (pad the last patch row and
        column instead of dropping what does not fill a patch), ``compression_level`` (zlib
        level of gzip shards), ``workers`` (threads compressing beside the encoding), and
        format options in snake_case (``patch_dimensions=[256, 256]``, ...).

    Returns
    -------
    list of str
        The files written: shards in order, then the mixer.

    Raises
    ------
    TFRecordIOError
        An option is invalid or the destination exists (before anything is written), or a
        worker failed (then nothing is left in the destination).
    """
    write: Callable[..., list[str]] = write_export
    if client is not None:
        from tfrecord_io.dask.export import write_distributed

        write = functools.partial(write_distributed, client=client)
    with ExitStack() as stack:
        source, profile = _source(src, nodata, client, stack)
        return export_rows(
            source,
            dst,
            profile,
            band_names=band_names,
            progress=progress,
            write=write,
            format_options=format_options,
            overwrite=overwrite,
            **options,
        )


def _source(src: Any, nodata: float | None, client: Any, stack: ExitStack) -> tuple[Any, Any]:
    """Return the rows and profile of ``src``, as the write pipeline (or ``client``) takes them."""
    if is_xarray(src):
        from tfrecord_io.xarray.source import xarray_source

        return xarray_source(src, nodata)
    if client is None:
        return stack.enter_context(raster_rows(src, nodata))
    from tfrecord_io.dask.tasks import RasterPath

    path = _raster_path(src)
    with rasterio.open(path) as dataset:
        return RasterPath(path, nodata), raster_profile(dataset, nodata)


def _raster_path(src: Any) -> str:
    """Return the path (or URL) every worker opens a raster by."""
    name = os.fspath(src) if isinstance(src, str | os.PathLike) else getattr(src, "name", None)
    if not isinstance(name, str) or not name or name.startswith("/vsimem/"):
        raise OptionError(
            f"a distributed export opens the raster on every worker by its path, and {src!r} "
            "has none the workers can open: pass the raster's path (or URL)"
        )
    return os.path.abspath(name) if os.path.exists(name) else name
