"""An xarray DataArray or Dataset as the source of an export: :func:`xarray_source`.

``tfrecord_io.export(da, "out/")`` takes the grid from a rioxarray-style ``spatial_ref``
coordinate (the ``crs_wkt`` or ``spatial_ref`` attribute and ``GeoTransform``; the transform
may also come from the ``x``/``y`` pixel-centre coordinates), or through ``.rio`` when
rioxarray is installed; band names from a ``band`` coordinate of names, rioxarray's
``long_name`` attribute, or a Dataset's variable names. This is what the ``"eetfrecord"``
engine makes, so an opened export exports again unchanged.

:class:`XarrayRows` streams the rows an export needs (a
:class:`~tfrecord_io.image.encode.RowSource`): a numpy-backed array is sliced, a lazily indexed
one (an engine Dataset opened without ``chunks``) reads only those rows, and a dask-backed one
computes only the chunks that hold them, each chunk once (the rows of a chunk beyond a patch row
are kept for the next). It pickles, so a distributed export sends it to the workers.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr
from affine import Affine
from rasterio.crs import CRS

from tfrecord_io.errors import OptionError

__all__ = ["XarrayRows", "xarray_source"]


class XarrayRows:
    """Rows of xarray arrays ``(band, y, x)``, stacked along the band axis (a ``RowSource``).

    Parameters
    ----------
    arrays : list of xarray.DataArray
        Arrays of dims ``(band, y, x)`` (any names, in that order), all of one height and width.
    nodata : list of (float or None)
        Per array, the value that marks a masked pixel (NaN included); None masks nothing.
    """

    def __init__(self, arrays: list[xr.DataArray], nodata: list[float | None]) -> None:
        self.arrays = arrays
        self.nodata = nodata
        self._blocks: list[tuple[int, np.ndarray] | None] = [None] * len(arrays)

    def __getstate__(self) -> dict[str, Any]:
        return {"arrays": self.arrays, "nodata": self.nodata}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["arrays"], state["nodata"])  # type: ignore[misc]

    def read_rows(self, row_start: int, row_stop: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Return the values and mask of rows ``row_start`` to ``row_stop`` (exclusive)."""
        parts = self._read(row_start, row_stop)
        masks = [_mask(part, nodata) for part, nodata in zip(parts, self.nodata, strict=True)]
        values = np.concatenate(parts) if len(parts) > 1 else parts[0]
        if all(m is None for m in masks):
            return values, None
        full = [
            np.zeros(p.shape, bool) if m is None else m for p, m in zip(parts, masks, strict=True)
        ]
        return values, np.concatenate(full) if len(full) > 1 else full[0]

    def _read(self, row_start: int, row_stop: int) -> list[np.ndarray]:
        """Rows of each array, from its kept block or computed (dask arrays together)."""
        parts: list[np.ndarray | None] = [None] * len(self.arrays)
        lazy: dict[int, tuple[int, Any]] = {}
        for i, array in enumerate(self.arrays):
            block = self._blocks[i]
            if (
                block is not None
                and block[0] <= row_start
                and row_stop <= block[0] + block[1].shape[1]
            ):
                parts[i] = block[1][:, row_start - block[0] : row_stop - block[0]]
                continue
            stop = _chunk_end(array, row_stop)
            rows = array[:, row_start:stop]
            if rows.chunks is not None:
                lazy[i] = (stop, rows.data)
            else:
                parts[i] = np.asarray(rows.values)
                self._blocks[i] = None
        if lazy:
            import dask

            computed = dask.compute(*[data for _, data in lazy.values()])
            for (i, (stop, _)), values in zip(lazy.items(), computed, strict=True):
                values = np.asarray(values)
                self._blocks[i] = (row_start, values) if stop > row_stop else None
                parts[i] = values[:, : row_stop - row_start]
        return parts  # type: ignore[return-value]


def _chunk_end(array: xr.DataArray, row_stop: int) -> int:
    """Return the end of the dask chunk holding row ``row_stop - 1`` (unchunked: ``row_stop``)."""
    if array.chunks is None:
        return row_stop
    end = 0
    for size in array.chunks[1]:
        end += size
        if end >= row_stop:
            return end
    return row_stop


def _mask(values: np.ndarray, nodata: float | None) -> np.ndarray | None:
    if nodata is None:
        return None
    if np.isnan(nodata):
        return np.isnan(values) if values.dtype.kind == "f" else None
    return values == np.asarray(nodata).astype(values.dtype)


def xarray_source(
    obj: xr.DataArray | xr.Dataset, nodata: float | None = None
) -> tuple[XarrayRows, dict[str, Any]]:
    """Return the rows of a DataArray or Dataset and what an export needs to know of it.

    Parameters
    ----------
    obj : xarray.DataArray or xarray.Dataset
        A DataArray of dims ``(y, x)`` or ``(band, y, x)``, or a Dataset of such variables
        (the bands of each, in order). Numpy-, lazily- or dask-backed.
    nodata : float, optional
        Mask pixels equal to it. By default a ``_FillValue`` (or rioxarray's ``nodata``)
        attribute masks pixels equal to it, and a ``_FillValue`` that xarray decoded (in the
        encoding) masks the NaN pixels it became.

    Returns
    -------
    rows : XarrayRows
        The rows.
    profile : dict
        The keys of :func:`~tfrecord_io.image.export.raster_profile`.

    Raises
    ------
    OptionError
        The arrays' dims or sizes do not fit together, or no CRS or transform is found.
    """
    variables = [obj] if isinstance(obj, xr.DataArray) else list(obj.data_vars.values())
    if not variables:
        raise OptionError("the Dataset has no data variables to export")
    arrays = [_as_bands(v) for v in variables]
    dims = arrays[0].dims[1:]
    shape = arrays[0].shape[1:]
    for name, array in zip(_names(variables), arrays, strict=True):
        if array.shape[1:] != shape:
            raise OptionError(
                f"the variable {name!r} is {array.shape[1:]} (y, x), not {shape} as the first: "
                "every variable of an exported Dataset has the same y and x"
            )
    crs, transform = _georeference(obj, variables[0], dims)
    masks = [nodata if nodata is not None else _source_nodata(v) for v in variables]
    profile = {
        "width": int(shape[1]),
        "height": int(shape[0]),
        "count": sum(a.shape[0] for a in arrays),
        "dtype": np.result_type(*[a.dtype for a in arrays]),
        "crs": crs,
        "transform": transform,
        "nodata": nodata,
        "descriptions": tuple(n for v in variables for n in _band_names(v)),
    }
    return XarrayRows(arrays, masks), profile


def _names(variables: list[xr.DataArray]) -> list[str]:
    return [str(v.name) if v.name is not None else f"variable {i}" for i, v in enumerate(variables)]


def _as_bands(array: xr.DataArray) -> xr.DataArray:
    """Return the array as ``(band, y, x)``: a ``band`` dim first, a 2D array given one band."""
    if "band" in array.dims:
        array = array.transpose("band", ...)
    elif array.ndim == 2:
        array = array.expand_dims("band")
    if array.ndim != 3:
        raise OptionError(
            f"the array {array.name!r} has dims {array.dims}: export takes (y, x) or "
            "(band, y, x) arrays"
        )
    return array


def _band_names(array: xr.DataArray) -> list[str | None]:
    """Names from a ``band`` coordinate of strings, ``long_name``, or the 2D array's name."""
    if "band" not in array.dims:
        return [str(array.name) if array.name is not None else None]
    count = array.sizes["band"]
    if "band" in array.coords and array.coords["band"].dtype.kind in "OUS":
        return [str(v) for v in array.coords["band"].values]
    long_name = array.attrs.get("long_name")
    if isinstance(long_name, list | tuple) and len(long_name) == count:
        return [str(v) for v in long_name]
    return [None] * count


def _source_nodata(array: xr.DataArray) -> float | None:
    for key in ("_FillValue", "nodata"):
        if array.attrs.get(key) is not None:
            return float(array.attrs[key])
    if "_FillValue" in array.encoding and array.dtype.kind == "f":
        return float("nan")  # decoded by xarray: masked pixels are NaN now
    return None


def _georeference(
    obj: xr.DataArray | xr.Dataset, first: xr.DataArray, dims: tuple[Any, ...]
) -> tuple[CRS, Affine]:
    """CRS and transform from the grid mapping coordinate, the x/y coordinates or ``.rio``."""
    names = [first.attrs.get("grid_mapping"), first.encoding.get("grid_mapping"), "spatial_ref"]
    attrs: dict[str, Any] = {}
    for name in names:
        if name is not None and name in obj.coords:
            attrs = dict(obj.coords[name].attrs)
            break
    wkt = attrs.get("crs_wkt") or attrs.get("spatial_ref")
    transform = None
    if attrs.get("GeoTransform"):
        transform = Affine.from_gdal(*[float(v) for v in str(attrs["GeoTransform"]).split()])
    elif all(d in obj.coords and obj.sizes[d] > 1 for d in dims):
        transform = _transform_from_centres(obj.coords[dims[1]].values, obj.coords[dims[0]].values)
    if wkt and transform is not None:
        return CRS.from_wkt(wkt), transform
    try:
        import rioxarray  # noqa: F401  (registers the .rio accessor)
    except ImportError:
        rio = None
    else:
        rio = first.rio
    if rio is not None and rio.crs is not None:
        return CRS.from_user_input(rio.crs), transform or rio.transform()
    raise OptionError(
        "the array has no CRS and transform: give it a 'spatial_ref' coordinate with 'crs_wkt' "
        "and 'GeoTransform' attributes (rioxarray's da.rio.write_crs(...) and "
        "da.rio.write_transform(...) do), as tfrecord_io's engine and rioxarray's open_rasterio "
        "make"
    )


def _transform_from_centres(x: np.ndarray, y: np.ndarray) -> Affine:
    """Return the affine of evenly spaced pixel-centre coordinates."""
    a = float(x[1] - x[0])
    e = float(y[1] - y[0])
    return Affine(a, 0.0, float(x[0]) - a / 2, 0.0, e, float(y[0]) - e / 2)
