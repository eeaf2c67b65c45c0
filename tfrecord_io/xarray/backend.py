"""The xarray backend: an export as a lazy :class:`xarray.Dataset`, chunked by patch.

Registered under the ``xarray.backends`` entry point as ``"eetfrecord"``, so::

    ds = xr.open_dataset("export/", engine="eetfrecord", chunks={})

gives one data variable per band with dims ``("y", "x")`` (or, with ``stack_bands=True``, one
variable ``band_data`` with dims ``("band", "y", "x")`` and the band names as the ``band``
coordinate), pixel-centre ``x``/``y`` coordinates from the mixer's affine (south-up included),
and a ``spatial_ref`` coordinate in rioxarray's convention (``crs_wkt``, ``spatial_ref`` and
``GeoTransform`` attributes, ``grid_mapping`` on every variable). Each variable's
``encoding["preferred_chunks"]`` is one patch, so ``chunks={}`` aligns dask chunks to patches.
"""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import Iterable
from typing import Any, Literal

import numpy as np
import pyproj
import xarray as xr
from xarray.backends import BackendEntrypoint
from xarray.core import indexing

from tfrecord_io.errors import OptionError
from tfrecord_io.format.storage import is_url
from tfrecord_io.image.dataset import EETFRecordDataset
from tfrecord_io.image.opener import READ_OPTIONS
from tfrecord_io.xarray.array import EETFRecordBackendArray, SourceSpec, patch_store, release

__all__ = ["STACKED_NAME", "EETFRecordBackendEntrypoint", "open_export"]

STACKED_NAME = "band_data"
"""Name of the one data variable of ``stack_bands=True`` (rioxarray's name for it)."""

GRID_MAPPING = "spatial_ref"


class EETFRecordBackendEntrypoint(BackendEntrypoint):
    """xarray engine ``"eetfrecord"`` for Earth Engine TFRecord image exports."""

    description = "Earth Engine TFRecord image exports, lazily, chunked by patch"
    url = "https://github.com/tfrecord-io/tfrecord_io"
    open_dataset_parameters = (
        "filename_or_obj",
        "drop_variables",
        "mask_and_scale",
        "decode_coords",
        "stack_bands",
        *READ_OPTIONS,
    )

    def open_dataset(  # type: ignore[override]
        self,
        filename_or_obj: Any,
        *,
        drop_variables: str | Iterable[str] | None = None,
        **options: Any,
    ) -> xr.Dataset:
        """Open an export as a lazy Dataset; see :func:`open_export` for the parameters.

        ``options`` are the others named in ``open_dataset_parameters`` (xarray passes no
        others): ``mask_and_scale``, ``decode_coords``, ``stack_bands`` and the options of
        :func:`tfrecord_io.open`.
        """
        return open_export(filename_or_obj, drop_variables=drop_variables, **options)

    def guess_can_open(self, filename_or_obj: Any) -> bool:
        """Return True for an export's mixer or shard file names."""
        if not isinstance(filename_or_obj, str | os.PathLike):
            return False
        name = os.fspath(filename_or_obj)
        return name.endswith((".tfrecord", ".tfrecord.gz", "-mixer.json"))


def open_export(
    path: Any,
    *,
    drop_variables: str | Iterable[str] | None = None,
    mask_and_scale: bool = True,
    decode_coords: bool | Literal["coordinates", "all"] = True,
    stack_bands: bool = False,
    **options: Any,
) -> xr.Dataset:
    """Open an export as a lazy :class:`xarray.Dataset` (what ``engine="eetfrecord"`` does).

    Parameters
    ----------
    path : path-like or str
        The export's folder, its mixer or one of its shards; a local path or a URL
        (``gs://bucket/prefix/``, ``s3://...``, ``memory://...``) with ``storage_options``.
    drop_variables : str or iterable of str, optional
        Variables (band names, ``band_data``, ``x``, ``y``, ``spatial_ref``) to leave out;
        dropped bands are not read.
    mask_and_scale : bool
        With ``nodata``: pixels equal to it become NaN (xarray's CF ``_FillValue`` decoding,
        which makes integer bands floating point). Without ``nodata`` there is nothing to mask.
    decode_coords : bool or {"coordinates", "all"}
        Passed to :func:`xarray.decode_cf`; ``"all"`` moves ``grid_mapping`` to the encoding.
    stack_bands : bool
        One variable ``band_data`` with dims ``("band", "y", "x")`` and the band names as the
        ``band`` coordinate, instead of one variable per band.
    **options
        Options of :func:`tfrecord_io.open`: ``kernel_size``, ``mixer``, ``band_order``,
        ``nodata``, ``array_layout``, ``sequence_data``, ``cache_size``, ``storage_options``
        (fsspec options of a URL; pickled with the arrays, so dask workers open the URL with
        them: give credentials through the environment rather than here).

    Returns
    -------
    xarray.Dataset

    Raises
    ------
    TFRecordIOError
        The export is incomplete or malformed, or an option is invalid.
    """
    if isinstance(drop_variables, str):
        drop_variables = [drop_variables]
    dropped = set(drop_variables or ())
    nodata = options.pop("nodata", None)
    path = os.fspath(path)
    spec = SourceSpec(
        path if is_url(path) else os.path.abspath(path),
        tuple(sorted((k, v) for k, v in options.items() if v is not None)),
        uuid.uuid4().hex,
    )
    dataset = spec.open()
    try:
        store = patch_store(spec, dataset)
        names = dataset.descriptions
        if len(set(names)) != len(names):
            raise OptionError(f"'{path}' has repeated band names {names}: pass band_order")
        clash = set(names) & {"x", "y", "band", GRID_MAPPING}
        if clash and not stack_bands:
            raise OptionError(
                f"'{path}' has bands named {sorted(clash)}, which are coordinate names: open it "
                "with stack_bands=True"
            )
        variables = _data_variables(spec, store.dataset, names, dropped, stack_bands, nodata)
        coords = {
            k: v
            for k, v in _coordinates(store.dataset, names, stack_bands).items()
            if k not in dropped
        }
    except BaseException:
        release(spec)
        raise
    ds = xr.Dataset(variables, coords=coords, attrs=_attrs(dataset))
    ds = xr.decode_cf(
        ds, mask_and_scale=mask_and_scale, decode_times=False, decode_coords=decode_coords
    )
    preferred = _preferred_chunks(dataset, stack_bands)
    for var in ds.data_vars.values():
        var.encoding["preferred_chunks"] = {d: preferred[str(d)] for d in var.dims}
    ds.set_close(functools.partial(release, spec))  # picklable, unlike a lambda
    return ds


def _data_variables(
    spec: SourceSpec,
    dataset: EETFRecordDataset,
    names: tuple[str, ...],
    dropped: set[str],
    stack_bands: bool,
    nodata: float | None,
) -> dict[str, xr.Variable]:
    """Make the lazy data variables, encoded (``_FillValue`` in attrs, decoded afterwards)."""
    attrs: dict[str, Any] = {"grid_mapping": GRID_MAPPING}
    if nodata is not None:
        attrs["_FillValue"] = nodata
    shape = (dataset.height, dataset.width)
    if stack_bands:
        if STACKED_NAME in dropped:
            return {}
        bands = tuple(range(1, dataset.count + 1))
        dtype = np.result_type(*dataset.dtypes)
        array = EETFRecordBackendArray(spec, bands, bands, (len(bands), *shape), dtype)
        lazy = indexing.LazilyIndexedArray(array)
        return {STACKED_NAME: xr.Variable(("band", "y", "x"), lazy, attrs=dict(attrs))}
    group = tuple(b for b, name in enumerate(names, start=1) if name not in dropped)
    variables = {}
    for band in group:
        dtype = np.dtype(dataset.dtypes[band - 1])
        array = EETFRecordBackendArray(spec, (band,), group, shape, dtype)
        lazy = indexing.LazilyIndexedArray(array)
        variables[names[band - 1]] = xr.Variable(("y", "x"), lazy, attrs=dict(attrs))
    return variables


def _coordinates(
    dataset: EETFRecordDataset, names: tuple[str, ...], stack_bands: bool
) -> dict[str, xr.Variable]:
    """Pixel-centre ``x``/``y`` (for an unrotated grid), ``band`` and ``spatial_ref``."""
    a, b, c, d, e, f = tuple(dataset.transform)[:6]
    coords: dict[str, xr.Variable] = {}
    if b == d == 0:
        x = c + a * (np.arange(dataset.width) + 0.5)
        y = f + e * (np.arange(dataset.height) + 0.5)
        coords["x"] = xr.Variable("x", x, attrs=_axis_attrs("x", dataset))
        coords["y"] = xr.Variable("y", y, attrs=_axis_attrs("y", dataset))
    if stack_bands:
        coords["band"] = xr.Variable("band", np.array(names, dtype=object))
    coords[GRID_MAPPING] = xr.Variable((), np.int64(0), attrs=_grid_mapping_attrs(dataset))
    return coords


def _axis_attrs(axis: str, dataset: EETFRecordDataset) -> dict[str, str]:
    """CF attributes of an ``x`` or ``y`` coordinate, as rioxarray writes them."""
    if dataset.crs.is_geographic:
        name = "longitude" if axis == "x" else "latitude"
        return {"standard_name": name, "long_name": name, "units": f"degrees_{name[:3]}"}
    return {
        "standard_name": f"projection_{axis}_coordinate",
        "long_name": f"{axis}-coordinate in projected coordinate system",
        "units": "metre",
    }


def _grid_mapping_attrs(dataset: EETFRecordDataset) -> dict[str, Any]:
    """Return rioxarray's ``spatial_ref`` attributes: CF grid mapping, WKT, GeoTransform."""
    wkt = dataset.crs.to_wkt()
    try:
        attrs: dict[str, Any] = dict(pyproj.CRS.from_wkt(wkt).to_cf())
    except pyproj.exceptions.CRSError:
        attrs = {}
    a, b, c, d, e, f = tuple(dataset.transform)[:6]
    attrs["crs_wkt"] = wkt
    attrs["spatial_ref"] = wkt
    attrs["GeoTransform"] = " ".join(repr(float(v)) for v in (c, a, b, f, d, e))
    return attrs


def _attrs(dataset: EETFRecordDataset) -> dict[str, Any]:
    """Dataset attributes: the export's grid, as the EETFRecord tags name it."""
    kx, ky = dataset.kernel_size
    tags = dataset.tags(ns="EETFRecord")
    return {
        "patch_width": int(tags["PATCH_WIDTH"]),
        "patch_height": int(tags["PATCH_HEIGHT"]),
        "kernel_size": [kx, ky],
        "patches_per_row": int(tags["PATCHES_PER_ROW"]),
        "total_patches": int(tags["TOTAL_PATCHES"]),
    }


def _preferred_chunks(dataset: EETFRecordDataset, stack_bands: bool) -> dict[str, int]:
    """One patch: ``block_shapes`` are ``(rows, cols)`` of the patches."""
    rows, cols = dataset.block_shapes[0]
    chunks = {"y": int(rows), "x": int(cols)}
    if stack_bands:
        chunks["band"] = dataset.count
    return chunks
