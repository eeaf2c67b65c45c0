"""Whole-export operations: the guts of the commands, without argument parsing.

:func:`validate` reads every record of an export and reports every problem it finds, not just
the first, so a user can see at once whether a download is complete and intact. :func:`info`
describes an export as gdalinfo does; :func:`translate` converts an export (or any raster)
as gdal_translate does, one row of patches at a time.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tfrecord_io.errors import (
    ExportExistsError,
    MissingShardError,
    OptionError,
    RecordCountError,
    RecordError,
    TFRecordIOError,
    WindowError,
    location,
)
from tfrecord_io.mixer import Mixer
from tfrecord_io.reader import ExportReader, find_export
from tfrecord_io.records import scan_records

__all__ = [
    "Problem",
    "Subset",
    "format_info",
    "info",
    "is_export_path",
    "open_any",
    "translate",
    "validate",
]

_MAX_RECORD_PROBLEMS = 1000


@dataclass(frozen=True)
class Problem:
    """One problem found in an export.

    Attributes
    ----------
    path : str
        The file it is in (the folder for export-wide problems).
    record : int or None
        Index of the record in the whole export, where it applies.
    error : str
        Name of the :class:`TFRecordIOError` subclass that reading would raise.
    message : str
        What is wrong and what to do.
    """

    path: str
    record: int | None
    error: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        """Return the problem as a JSON-ready dict."""
        return {
            "path": self.path,
            "record": self.record,
            "error": self.error,
            "message": self.message,
        }


def _problem(path: str, exc: TFRecordIOError, record: int | None = None) -> Problem:
    return Problem(path, record, type(exc).__name__, str(exc))


def validate(path: str | os.PathLike[str], **options: Any) -> list[Problem]:
    """Check a whole export and return every problem found (an empty list when it is sound).

    Checks: gaps in the shard numbers; the mixer (present, well formed); the framing and
    CRC-32C of every record of every shard; the gzip streams; every record decoded against the
    first record's bands and the grid; the record count against ``totalPatches``.

    Parameters
    ----------
    path : path-like
        The export folder, its mixer, or one of its shards.
    **options
        Passed to :class:`~tfrecord_io.reader.ExportReader` (``kernel_size``, ``mixer``, ...).

    Returns
    -------
    list of Problem
        In the order found.
    """
    problems: list[Problem] = []
    try:
        files = find_export(path, strict=False)
    except TFRecordIOError as exc:
        return [_problem(os.fspath(path), exc)]
    for name in files.missing:
        problems.append(
            Problem(
                os.path.join(files.folder, name),
                None,
                MissingShardError.__name__,
                f"'{os.path.join(files.folder, name)}' is missing, so every later patch would "
                "be shifted. Download it again.",
            )
        )
    layout, expected = None, None
    if not files.missing:
        try:
            reader = ExportReader(path, **options)
            layout, expected = reader.layout, reader.expected_records
        except RecordError:
            pass  # the scan below reports it with its shard and record
        except TFRecordIOError as exc:
            problems.append(_problem(files.mixer or files.folder, exc))
            expected = _mixer_total(files.mixer)
    total = 0
    record_problems = 0

    def report(problem: Problem) -> None:
        nonlocal record_problems
        record_problems += 1
        if record_problems <= _MAX_RECORD_PROBLEMS:
            problems.append(problem)

    for shard in files.shards:
        first = total
        try:
            for index, offset, payload, error in scan_records(shard, first_index=first):
                total = index + 1
                if error is not None:
                    report(_problem(shard, error, index))
                elif layout is not None and not layout.sequence:
                    try:
                        layout.decode(payload, location(shard, index, offset))
                    except TFRecordIOError as exc:
                        report(_problem(shard, exc, index))
        except RecordError as exc:
            # The framing is lost: nothing after this point of the shard can be located.
            problems.append(_problem(shard, exc, exc.record))
            total = exc.record if exc.record is not None else total
    if record_problems > _MAX_RECORD_PROBLEMS:
        problems.append(
            Problem(
                files.folder,
                None,
                "TooManyProblems",
                f"{record_problems - _MAX_RECORD_PROBLEMS} more record problems not listed",
            )
        )
    if expected is not None and not files.missing and total != expected:
        hint = (
            "A shard may be missing at the end: download it."
            if total < expected
            else "Shards of another export may be mixed in."
        )
        problems.append(
            Problem(
                files.folder,
                None,
                RecordCountError.__name__,
                f"'{files.folder}' holds {total} records in {len(files.shards)} shard(s), but "
                f"the mixer's grid needs {expected}. {hint}",
            )
        )
    return problems


def _mixer_total(path: str | None) -> int | None:
    """Return the mixer's totalPatches, or None when there is no readable mixer."""
    if path is None:
        return None
    try:
        return Mixer.from_file(path).total_patches
    except TFRecordIOError:
        return None


def info(path: str | os.PathLike[str], **options: Any) -> dict[str, Any]:
    """Describe an export as ``gdalinfo -json`` describes a raster (a subset of its keys).

    Parameters
    ----------
    path : path-like
        The export folder, its mixer, or one of its shards.
    **options
        Passed to :func:`tfrecord_io.open`.

    Returns
    -------
    dict
        JSON-ready: driver, files, size, coordinate system, geotransform, corner coordinates,
        the export's own metadata and one entry per band.
    """
    import pyproj

    from tfrecord_io.dataset import open as open_export

    with open_export(path, **options) as ds:
        a, b, c, d, e, f = tuple(ds.transform)[:6]
        corners = {
            "upperLeft": (0, 0),
            "lowerLeft": (0, ds.height),
            "lowerRight": (ds.width, ds.height),
            "upperRight": (ds.width, 0),
            "center": (ds.width / 2, ds.height / 2),
        }
        block_height, block_width = ds.block_shapes[0]
        return {
            "description": ds.name,
            "driverShortName": ds.driver,
            "driverLongName": "Earth Engine TFRecord image export",
            "files": ds.files,
            "size": [ds.width, ds.height],
            "coordinateSystem": {
                "wkt": pyproj.CRS.from_user_input(ds.crs.to_wkt()).to_wkt(pretty=True),
                "epsg": ds.crs.to_epsg(),
            },
            "geoTransform": [c, a, b, f, d, e],
            "cornerCoordinates": {k: list(ds.transform * v) for k, v in corners.items()},
            "metadata": {"EETFRecord": ds.tags(ns="EETFRecord")},
            "bands": [
                {
                    "band": i,
                    "block": [block_width, block_height],
                    "type": ds.dtypes[i - 1],
                    "description": ds.descriptions[i - 1],
                    "noDataValue": ds.nodata,
                }
                for i in ds.indexes
            ],
        }


def format_info(description: dict[str, Any]) -> str:
    """Return :func:`info`'s result as ``gdalinfo``-like text."""
    origin = description["geoTransform"]
    lines = [
        f"Driver: {description['driverShortName']}/{description['driverLongName']}",
        "Files: " + "\n       ".join(description["files"]),
        "Size is {}, {}".format(*description["size"]),
        "Coordinate System is:",
        description["coordinateSystem"]["wkt"],
        f"Origin = ({origin[0]:.15f},{origin[3]:.15f})",
        f"Pixel Size = ({origin[1]:.15f},{origin[5]:.15f})",
        "Metadata (EETFRecord):",
        *(f"  {k}={v}" for k, v in description["metadata"]["EETFRecord"].items()),
        "Corner Coordinates:",
    ]
    labels = {
        "upperLeft": "Upper Left",
        "lowerLeft": "Lower Left",
        "upperRight": "Upper Right",
        "lowerRight": "Lower Right",
        "center": "Center",
    }
    for key, label in labels.items():
        x, y = description["cornerCoordinates"][key]
        lines.append(f"{label:<12}({x:15.3f},{y:15.3f})")
    for band in description["bands"]:
        width, height = band["block"]
        lines.append(f"Band {band['band']} Block={width}x{height} Type={_gdal_type(band['type'])}")
        lines.append(f"  Description = {band['description']}")
        if band["noDataValue"] is not None:
            lines.append(f"  NoData Value={band['noDataValue']}")
    return "\n".join(lines)


def _gdal_type(dtype: str) -> str:
    return {"float32": "Float32", "int64": "Int64", "uint8": "Byte", "float64": "Float64"}.get(
        dtype, dtype
    )


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


def is_export_path(path: str | os.PathLike[str]) -> bool:
    """Return True if ``path`` names an export (a folder, a mixer or a shard), not a raster."""
    name = os.fspath(path)
    return os.path.isdir(name) or name.endswith(("-mixer.json", ".tfrecord", ".tfrecord.gz"))


def open_any(path: str | os.PathLike[str], **options: Any) -> Any:
    """Open an export with :func:`tfrecord_io.open`, or any other raster with rasterio."""
    import rasterio

    from tfrecord_io.dataset import open as open_export

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
    import numpy as np

    key = name.lower()
    try:
        return _GDAL_TO_NUMPY.get(key) or np.dtype(key).name
    except TypeError:
        raise OptionError(
            f"unknown output type {name!r} (-ot): use a GDAL name, e.g. Float32"
        ) from None


def _resolve(src: Any, subset: Subset) -> tuple[list[int], Any, tuple[int, int], str]:
    """Return (bands, source window, (out_height, out_width), dtype) for a subset of ``src``."""
    import numpy as np
    from rasterio.windows import Window, from_bounds

    from tfrecord_io.grid import to_int_window

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


def _cast(data: Any, dtype: str) -> Any:
    """Convert like gdal_translate -ot: round and clamp to the range of an integer type."""
    import numpy as np

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
        GDAL driver short name of the output.
    creation_options : dict, optional
        GDAL creation options; for GTiff, tiles and DEFLATE by default.
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
        ``dst`` exists and ``overwrite`` is False.
    OptionError
        A band, window, size or type is invalid.
    """
    import numpy as np
    import rasterio
    from affine import Affine
    from rasterio.windows import Window

    subset = subset or Subset()
    dst = os.fspath(dst)
    if os.path.exists(dst) and not overwrite:
        raise ExportExistsError(f"'{dst}' exists: pass overwrite=True (--overwrite) to replace it")
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
            )
        profile.update(creation_options or {})
        folder, name = os.path.split(os.path.abspath(dst))
        tmp = os.path.join(folder, f".{name}.tmp-{os.getpid()}")
        try:
            with rasterio.open(tmp, "w", **profile) as out:
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
                else:
                    strips = range(0, out_h, block_height)
                    for n, row in enumerate(strips):
                        height = min(block_height, out_h - row)
                        strip = Window(window.col_off, window.row_off + row, out_w, height)
                        data = ds.read(bands, window=strip, out_dtype=read_dtype)
                        out.write(_cast(data, dtype), window=Window(0, row, out_w, height))
                        if progress is not None:
                            progress((n + 1) / len(strips))
            os.replace(tmp, dst)
        except BaseException:
            for leftover in (tmp, tmp + ".aux.xml"):
                if os.path.exists(leftover):
                    os.remove(leftover)
            raise
