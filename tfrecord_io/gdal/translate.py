"""Convert exports and rasters as gdal_translate does, in either direction.

:func:`translate` reads an export (or any raster GDAL reads), takes gdal_translate's subset of it
(bands, a pixel or georeferenced window, a size, a type, a nodata value) and writes any raster
format GDAL writes, or, with ``driver="EETFRecord"``, an Earth Engine export whose
``formatOptions`` come from the creation options. Sampling, rounding and clamping follow
gdal_translate so that the same options give the same pixels.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from rasterio.windows import Window, from_bounds

from tfrecord_io.errors import (
    ExportExistsError,
    OptionError,
    TFRecordIOError,
    WindowError,
    WriteError,
)
from tfrecord_io.format import storage
from tfrecord_io.gdal.cpl import gdal_errors
from tfrecord_io.image.dataset import EETFRecordDataset
from tfrecord_io.image.export import export
from tfrecord_io.image.files import is_mixer_file, is_tfrecord_name
from tfrecord_io.image.grid import to_int_window
from tfrecord_io.image.opener import open as open_export

__all__ = ["EE_DRIVER", "Subset", "is_export_path", "open_any", "parse_creation_value", "translate"]

EE_DRIVER = "EETFRecord"

_GDAL_TO_NUMPY = {
    "byte": "uint8",
    "int8": "int8",
    "uint16": "uint16",
    "int16": "int16",
    "uint32": "uint32",
    "int32": "int32",
    "uint64": "uint64",
    "int64": "int64",
    "float32": "float32",
    "float64": "float64",
}


def is_export_path(path: Any) -> bool:
    """Return True if ``path`` names an export (a folder, a mixer, shards), not a raster."""
    if not isinstance(path, str | os.PathLike):
        return True  # a list of shards
    name = os.fspath(path)
    if storage.is_url(name) and "." not in storage.basename(name):
        return True  # a folder URL (prefix): gs://bucket/exports/run1
    return (
        os.path.isdir(name)
        or name.endswith("-mixer.json")
        or is_tfrecord_name(name)
        or (name.lower().endswith(".json") and is_mixer_file(name))
    )


def open_any(path: Any, **options: Any) -> Any:
    """Open an export with :func:`tfrecord_io.open`, or any other raster with rasterio."""
    if is_export_path(path):
        return open_export(path, **options)
    if options:
        raise OptionError(f"'{os.fspath(path)}' is not an export: export options do not apply")
    try:
        return rasterio.open(path)
    except rasterio.errors.RasterioIOError as exc:
        raise OptionError(f"'{os.fspath(path)}' is not a raster GDAL can read: {exc}") from None


@dataclass(frozen=True)
class Subset:
    """What gdal_translate-style options take from a source: bands, a window, a size, a type.

    Attributes
    ----------
    bands : tuple of int, optional
        Band numbers (``-b``), all bands when None.
    srcwin : (xoff, yoff, xsize, ysize), optional
        A pixel window (``-srcwin``).
    projwin : (ulx, uly, lrx, lry), optional
        A window in georeferenced coordinates (``-projwin``).
    outsize : (width, height), optional
        Output size in pixels, or strings ending in ``%``; 0 keeps the aspect ratio (``-outsize``).
    dtype : str, optional
        Output data type, GDAL or numpy name (``-ot``).
    nodata : float, optional
        Nodata value to assign to the output (``-a_nodata``).
    """

    bands: tuple[int, ...] | None = None
    srcwin: tuple[float, float, float, float] | None = None
    projwin: tuple[float, float, float, float] | None = None
    outsize: tuple[int | str, int | str] | None = None
    dtype: str | None = None
    nodata: float | None = None

    def is_identity(self) -> bool:
        """Return True when nothing is subset, resized, cast or reassigned."""
        return self == Subset()


def _numpy_dtype(name: str) -> str:
    key = name.lower()
    try:
        return _GDAL_TO_NUMPY.get(key) or np.dtype(key).name
    except TypeError:
        raise OptionError(
            f"unknown output type {name!r} (-ot): use a GDAL name, e.g. Float32"
        ) from None


def _resolve(src: Any, subset: Subset) -> tuple[list[int], Any, tuple[int, int], str]:
    """Return (bands, source window, (out_height, out_width), dtype) for a subset of ``src``."""
    bands = list(subset.bands or src.indexes)
    for band in bands:
        if band not in src.indexes:
            raise OptionError(f"band {band} (-b) is not one of the source's bands {src.indexes}")
    if subset.srcwin is not None and subset.projwin is not None:
        raise OptionError("-srcwin and -projwin cannot be combined")
    window = Window(0, 0, src.width, src.height)
    if subset.srcwin is not None:
        window = Window(*subset.srcwin)
    elif subset.projwin is not None:
        ulx, uly, lrx, lry = subset.projwin
        window = from_bounds(
            min(ulx, lrx), min(uly, lry), max(ulx, lrx), max(uly, lry), src.transform
        )
    try:
        window = to_int_window(window, src.width, src.height)
    except WindowError as exc:
        raise OptionError(f"the requested window is outside the source: {exc}") from None
    height, width = int(window.height), int(window.width)
    if subset.outsize is not None:
        width, height = _outsize(subset.outsize, width, height)
    dtype = (
        _numpy_dtype(subset.dtype)
        if subset.dtype
        else np.result_type(*(src.dtypes[b - 1] for b in bands)).name
    )
    return bands, window, (height, width), dtype


def _outsize(outsize: tuple[int | str, int | str], width: int, height: int) -> tuple[int, int]:
    def size(value: int | str, full: int) -> int:
        text = str(value)
        if text.endswith("%"):
            return max(1, round(full * float(text[:-1]) / 100))
        return int(text)

    out_w, out_h = size(outsize[0], width), size(outsize[1], height)
    if out_w == 0 and out_h == 0:
        raise OptionError("-outsize cannot have both sizes 0")
    if out_w == 0:
        out_w = max(1, round(width * out_h / height))
    if out_h == 0:
        out_h = max(1, round(height * out_w / width))
    if out_w < 0 or out_h < 0:
        raise OptionError("-outsize takes positive sizes")
    return out_w, out_h


def _streams(ds: Any, window: Any) -> bool:
    """Return True when a whole export is converted: stream it once instead of by windows."""
    return isinstance(ds, EETFRecordDataset) and (
        window.col_off,
        window.row_off,
        window.width,
        window.height,
    ) == (0, 0, ds.width, ds.height)


def _cast(data: Any, dtype: str) -> Any:
    """Convert like gdal_translate -ot: round and clamp to the range of an integer type."""
    target = np.dtype(dtype)
    if target.kind in "iu" and data.dtype.kind == "f":
        info = np.iinfo(target)
        data = np.clip(np.rint(data), info.min, info.max)
    elif target.kind in "iu" and data.dtype.kind in "iu":
        info = np.iinfo(target)
        data = np.clip(data, info.min, info.max)
    return data.astype(target)


def translate(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    *,
    driver: str = "GTiff",
    creation_options: dict[str, str] | None = None,
    subset: Subset | None = None,
    overwrite: bool = False,
    progress: Callable[[float], None] | None = None,
    **options: Any,
) -> None:
    """Convert an export or any raster to a raster file, as gdal_translate does.

    The output is written to a temporary file beside ``dst`` and renamed at the end, so a
    failure leaves nothing at ``dst``. Without resizing, one strip of rows (a row of patches for
    an export) is in memory at a time; with ``outsize``, the resampled output is read at once.

    Parameters
    ----------
    src : path-like
        An export (folder, mixer or shard), or any raster GDAL reads.
    dst : path-like
        The raster file to write.
    driver : str
        GDAL driver short name of the output, or ``"EETFRecord"`` to write an export into the
        folder ``dst``.
    creation_options : dict, optional
        GDAL creation options (for GTiff: tiles, DEFLATE on all cores, by default); for
        ``EETFRecord``,
        ``formatOptions`` keys (``patchDimensions=256,256``, ``kernelSize=32,32``,
        ``compressed=YES``, ``tensorDepths=A:3``...) plus ``fileNamePrefix``, ``kinds``,
        ``padEdges`` and ``compressionLevel``.
    subset : Subset, optional
        Bands, window, size, type and nodata of the output (gdal_translate's options).
    overwrite : bool
        Replace ``dst`` if it exists.
    progress : callable, optional
        Called with the fraction done, from 0 to 1.
    **options
        Passed to :func:`tfrecord_io.open` when ``src`` is an export.

    Raises
    ------
    ExportExistsError
        ``dst`` exists (for an export: one with the same prefix) and ``overwrite`` is False.
    OptionError
        A band, window, size, type or format option is invalid.
    """
    subset = subset or Subset()
    dst = os.fspath(dst)
    if driver == EE_DRIVER:
        remote_options = options.get("storage_options")  # for a URL destination too
        with open_any(src, **options) as ds:
            if subset.is_identity():
                _export_output(ds, dst, creation_options or {}, overwrite, progress, remote_options)
                return
        # A subset goes through a temporary GeoTIFF, then into the export.
        with tempfile.TemporaryDirectory(prefix="tfrecord-io-") as tmp:
            staged = os.path.join(tmp, "subset.tif")
            translate(src, staged, subset=subset, **options)
            with open_any(staged) as ds:
                _export_output(ds, dst, creation_options or {}, overwrite, progress, remote_options)
        return
    if os.path.exists(dst) and not overwrite:
        raise ExportExistsError(f"'{dst}' exists: pass overwrite=True (--overwrite) to replace it")
    if is_export_path(src):
        options.setdefault("cache_size", 0)  # a conversion reads each patch once
    with open_any(src, **options) as ds:
        bands, window, (out_h, out_w), dtype = _resolve(ds, subset)
        resized = (out_h, out_w) != (window.height, window.width)
        # Compose by hand: affine 3 deprecates `*` between transforms, affine 2.4 lacks `@`.
        a, b, c, d, e, f = tuple(ds.window_transform(window))[:6]
        sx, sy = window.width / out_w, window.height / out_h
        transform = Affine(a * sx, b * sy, c, d * sx, e * sy, f)
        read_dtype = np.result_type(*(ds.dtypes[b - 1] for b in bands))
        nodata = subset.nodata if subset.nodata is not None else ds.nodata
        block_height, block_width = ds.block_shapes[0]
        profile: dict[str, Any] = {
            "driver": driver,
            "width": out_w,
            "height": out_h,
            "count": len(bands),
            "dtype": dtype,
            "crs": ds.crs,
            "transform": transform,
            "nodata": nodata,
        }
        if driver == "GTiff":
            tiled = block_width % 16 == 0 and block_height % 16 == 0 and not resized
            profile.update(
                tiled=True,
                blockxsize=block_width if tiled else 256,
                blockysize=block_height if tiled else 256,
                compress="deflate",
                num_threads="ALL_CPUS",
            )
        profile.update(creation_options or {})
        folder, name = os.path.split(os.path.abspath(dst))
        tmp = os.path.join(folder, f".{name}.tmp-{os.getpid()}")
        try:
            with gdal_errors() as gdal, rasterio.open(tmp, "w", **profile) as out:
                for k, band in enumerate(bands, start=1):
                    description = ds.descriptions[band - 1]
                    if description:
                        out.set_band_description(k, description)
                if resized:
                    data = ds.read(
                        bands,
                        window=window,
                        out_shape=(len(bands), out_h, out_w),
                        out_dtype=read_dtype,
                    )
                    out.write(_cast(data, dtype))
                    if progress is not None:
                        progress(1.0)
                elif _streams(ds, window):
                    rows = ds.height // block_height
                    for n, (strip, data) in enumerate(
                        ds.iter_patch_rows(bands, out_dtype=read_dtype)
                    ):
                        out.write(_cast(data, dtype), window=strip)
                        if progress is not None:
                            progress((n + 1) / rows)
                else:
                    strips = range(0, out_h, block_height)
                    for n, row in enumerate(strips):
                        height = min(block_height, out_h - row)
                        strip = Window(window.col_off, window.row_off + row, out_w, height)
                        data = ds.read(bands, window=strip, out_dtype=read_dtype)
                        out.write(_cast(data, dtype), window=Window(0, row, out_w, height))
                        if progress is not None:
                            progress((n + 1) / len(strips))
            # GDAL reports a full disk only in its error state: rasterio's write and close
            # return normally, leaving an unreadable file (D20).
            failure = gdal.failure()
            if failure is not None:
                raise WriteError(
                    f"'{dst}': GDAL could not write the output ({failure}). Free some space "
                    "or choose another destination."
                )
            os.replace(tmp, dst)
        except TFRecordIOError:
            _remove(tmp)
            raise
        except OSError as exc:
            _remove(tmp)
            if getattr(exc, "filename", None) not in (None, tmp, dst):
                raise  # reading the source failed, not writing
            raise WriteError(
                f"'{dst}': writing the output failed ({exc}). Free some space or choose "
                "another destination."
            ) from exc
        except BaseException:
            _remove(tmp)
            raise


def _remove(tmp: str) -> None:
    """Remove a temporary output and its GDAL sidecar, if they exist."""
    for leftover in (tmp, tmp + ".aux.xml"):
        if os.path.exists(leftover):
            os.remove(leftover)


# Creation options of the EETFRecord output that are not formatOptions keys.
_WRITER_OPTIONS = {
    "fileNamePrefix": "file_name_prefix",
    "file_name_prefix": "file_name_prefix",
    "kinds": "kinds",
    "padEdges": "pad_edges",
    "pad_edges": "pad_edges",
    "compressionLevel": "compression_level",
    "compression_level": "compression_level",
}


def parse_creation_value(text: str) -> Any:
    """Parse a ``-co NAME=VALUE`` value: JSON, ``A:3,B:2`` maps, ``256,256`` lists, YES/NO.

    Parameters
    ----------
    text : str
        What follows ``NAME=``, as typed.

    Returns
    -------
    object
        A number, bool, list, dict or the text itself.
    """
    try:
        return json.loads(text)
    except ValueError:
        pass
    if text.upper() in ("YES", "TRUE", "ON"):
        return True
    if text.upper() in ("NO", "FALSE", "OFF"):
        return False
    if ":" in text:
        pairs = [item.split(":", 1) for item in text.split(",") if item]
        return {key.strip(): parse_creation_value(value.strip()) for key, value in pairs}
    if "," in text:
        return [parse_creation_value(item.strip()) for item in text.split(",")]
    return text


def _export_output(
    src: Any,
    dst: str,
    creation_options: dict[str, str],
    overwrite: bool,
    progress: Callable[[float], None] | None,
    storage_options: dict[str, Any] | None = None,
) -> None:
    """Write ``src`` (an open dataset) as an Earth Engine export into the folder or URL ``dst``."""
    format_options: dict[str, Any] = {}
    writer_options: dict[str, Any] = {}
    for name, value in creation_options.items():
        parsed = parse_creation_value(value)
        if name in _WRITER_OPTIONS:
            writer_options[_WRITER_OPTIONS[name]] = parsed
        else:
            format_options[name] = parsed
    try:
        export(
            src,
            dst,
            format_options=format_options,
            progress=None if progress is None else (lambda done, total: progress(done / total)),
            overwrite=overwrite,
            storage_options=storage_options,
            **writer_options,
        )
    except TFRecordIOError:
        raise
    except OSError as exc:  # a full disk, a read-only folder (D21)
        culprit = getattr(exc, "filename", None)
        sources = {os.path.abspath(f) for f in getattr(src, "files", None) or []}
        if culprit is not None and os.path.abspath(os.fsdecode(culprit)) in sources:
            raise  # reading the source failed, not writing
        raise WriteError(
            f"'{dst}': writing the export failed ({exc.strerror or exc}). Free some space or "
            "choose another destination."
        ) from exc
