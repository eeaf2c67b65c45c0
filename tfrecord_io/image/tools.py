"""Whole-export operations: the guts of the commands, without argument parsing.

:func:`validate` reads every record of an export and reports every problem it finds, not just
the first, so a user can see at once whether a download is complete and intact. :func:`info`
describes an export as gdalinfo does; conversions are in :mod:`tfrecord_io.gdal.translate`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from tfrecord_io.errors import (
    MissingShardError,
    OptionError,
    RecordCountError,
    RecordError,
    TFRecordIOError,
    location,
)
from tfrecord_io.format import storage
from tfrecord_io.format.index import SAVED_SPACING
from tfrecord_io.format.records import scan_records
from tfrecord_io.format.sidecar import sidecar_path
from tfrecord_io.image.files import ExportFiles, find_export
from tfrecord_io.image.indexing import load_saved_indexes, save_indexes
from tfrecord_io.image.layout import BandLayout
from tfrecord_io.image.mixer import Mixer
from tfrecord_io.image.neighbours import iter_disagreements
from tfrecord_io.image.opener import READ_OPTIONS
from tfrecord_io.image.opener import open as open_export
from tfrecord_io.image.reader import ExportReader

__all__ = ["Problem", "ValidationReport", "build_index", "format_info", "info", "validate"]

_MAX_RECORD_PROBLEMS = 1000
_MIN_SPACING = 64 << 10  # twice the deflate window (indexed_gzip needs more than one window)


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

    def describe(self) -> str:
        """Return the problem as one line for a user: ``ErrorName: message``."""
        return f"{self.error}: {self.message}"


@dataclass(frozen=True)
class ValidationReport:
    """What :func:`validate` found in one export, in the forms shown to a user.

    The ``validate`` command and the QGIS plugin's algorithm both show this.

    Attributes
    ----------
    path : str
        The export as the user named it.
    problems : tuple of Problem
        In the order found; empty when the export is sound.
    """

    path: str
    problems: tuple[Problem, ...]

    @classmethod
    def from_path(cls, path: Any, **options: Any) -> ValidationReport:
        """Validate the export at ``path`` (see :func:`validate` for ``options``)."""
        return cls(_name(path), tuple(validate(path, **options)))

    @property
    def valid(self) -> bool:
        """True when no problem was found."""
        return not self.problems

    def summary(self) -> str:
        """Return one line: ``PATH: valid`` or ``PATH: N problem(s)``."""
        return f"{self.path}: {'valid' if self.valid else f'{len(self.problems)} problem(s)'}"

    def to_text(self) -> str:
        """Return one line per problem, then the summary."""
        return "\n".join([*(p.describe() for p in self.problems), self.summary()])

    def to_dict(self) -> dict[str, Any]:
        """Return the report as a JSON-ready dict: ``path``, ``valid`` and ``problems``."""
        return {
            "path": self.path,
            "valid": self.valid,
            "problems": [p.to_dict() for p in self.problems],
        }

    def to_json(self) -> str:
        """Return :meth:`to_dict` as indented JSON text."""
        return json.dumps(self.to_dict(), indent=2)


def _problem(path: str, exc: TFRecordIOError, record: int | None = None) -> Problem:
    return Problem(path, record, type(exc).__name__, str(exc))


def _name(path: Any) -> str:
    """Return a path, or a list of shards, as text for a report."""
    if isinstance(path, str | os.PathLike):
        return os.fspath(path)
    return ", ".join(os.fspath(p) for p in path)


def _ranges(indexes: Iterable[int]) -> str:
    """Return ``0-9, 12-14`` for the sorted indexes 0..9, 12, 13, 14."""
    runs: list[list[int]] = []
    for index in sorted(indexes):
        if runs and index == runs[-1][1] + 1:
            runs[-1][1] = index
        else:
            runs.append([index, index])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


def validate(path: Any, **options: Any) -> list[Problem]:
    """Check a whole export and return every problem found (an empty list when it is sound).

    Checks: gaps in the shard numbers (with ``allow_missing``, the patches they leave out);
    the mixer (present, well formed, a CRS GDAL knows); the framing and CRC-32C of every record
    of every shard; the gzip streams; every record decoded against the first record's bands and
    the grid; the record count against ``totalPatches``; and, with a kernel above 1, that
    neighbouring tiles agree where their margins overlap (``MarginMismatch``: records swapped,
    dropped next to a duplicate, or shards out of order).

    Parameters
    ----------
    path : path-like or sequence of path-like
        What :func:`tfrecord_io.open` takes: the export folder, its mixer, a shard, or a list of
        shards.
    **options
        Every option :func:`tfrecord_io.open` takes for reading (``kernel_size``, ``mixer``,
        ``nodata``, ``cache_size``, ``allow_missing``, ...).

    Returns
    -------
    list of Problem
        In the order found.

    Raises
    ------
    OptionError
        An option is not one :func:`tfrecord_io.open` takes.
    """
    unknown = sorted(set(options) - set(READ_OPTIONS))
    if unknown:
        raise OptionError(f"unknown argument(s) for validate: {', '.join(unknown)}")
    allow_missing = bool(options.pop("allow_missing", False))
    store = storage.as_store(options.pop("storage_options", None))
    options.pop("nodata", None)  # changes no check
    cache_size = options.pop("cache_size", None)
    if cache_size is not None:
        options["cache_bytes"] = cache_size
    problems: list[Problem] = []
    try:
        files = find_export(path, strict=False, mixer=options.get("mixer"), storage_options=store)
    except TFRecordIOError as exc:
        return [_problem(_name(path), exc)]
    if not allow_missing:
        for name in files.missing:
            problems.append(
                Problem(
                    storage.join(files.folder, name),
                    None,
                    MissingShardError.__name__,
                    f"'{storage.join(files.folder, name)}' is missing, so every later patch "
                    "would be shifted. Download it again, or validate with allow_missing=True.",
                )
            )
    reader: ExportReader | None = None
    opened: TFRecordIOError | None = None
    if allow_missing or not files.missing:
        try:
            reader = ExportReader(
                path, allow_missing=allow_missing, storage_options=store, files=files, **options
            )
        except TFRecordIOError as exc:
            opened = exc
    if reader is not None and reader.missing_patches:
        problems.append(
            Problem(
                files.folder,
                None,
                "MissingPatches",
                f"'{files.folder}': patches {_ranges(reader.missing_patches)} are in missing "
                f"shards ({len(reader.missing_patches)} of {reader.grid.total_patches}); they "
                "read as nodata.",
            )
        )
    if opened is not None and not isinstance(opened, RecordError | MissingShardError):
        problems.append(_problem(files.mixer or files.folder, opened))
    layout = reader.layout if reader is not None else None
    expected = (
        reader.expected_records
        if reader is not None
        else _mixer_total(options.get("mixer") or files.mixer, store)
    )
    found_before = len(problems)
    total = _scan(files, layout, problems, store)
    if isinstance(opened, RecordError):
        # Opening reads the first record; one that framing passes but that does not decode is
        # reported here, since the scan had no layout to decode with.
        record = 0 if opened.record is None else opened.record
        if not any(p.record == record for p in problems[found_before:]):
            problems.append(_problem(opened.path or files.shards[0], opened, record))
    if isinstance(opened, MissingShardError) and allow_missing:
        problems.append(_problem(files.folder, opened))
    if reader is not None:
        sound = len(problems) == found_before and (files.missing or total == expected)
        if sound and not reader.layout.sequence:
            problems.extend(_margin_problems(reader))
        reader.close()
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


def _margin_problems(reader: ExportReader) -> list[Problem]:
    """Report neighbours whose overlapping kernel margins differ: records out of place."""
    problems = []
    try:
        for found in iter_disagreements(reader.grid, reader.iter_tiles(prefetch=True)):
            problems.append(
                Problem(
                    reader.files.folder,
                    found.second,
                    "MarginMismatch",
                    f"records {found.first} and {found.second} (the patch "
                    f"{'below' if found.side == 'below' else 'to the right of'} it) do not "
                    "agree where their kernel margins overlap: records are swapped, "
                    "dropped or duplicated, or shards are out of order. Download the export "
                    "again, or check the order of renamed shards.",
                )
            )
            if len(problems) >= _MAX_RECORD_PROBLEMS:
                break
    except TFRecordIOError as exc:
        problems.append(_problem(reader.files.folder, exc))
    return problems


def _scan(
    files: ExportFiles,
    layout: BandLayout | None,
    problems: list[Problem],
    store: storage.Store | None = None,
) -> int:
    """Check the framing (and with a layout, the decoding) of every record; return the count."""
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
            for index, offset, payload, error in scan_records(
                shard, first_index=first, storage_options=store
            ):
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
    return total


def _mixer_total(path: Any, store: storage.Store) -> int | None:
    """Return the mixer's totalPatches, or None when there is no readable mixer file."""
    if not isinstance(path, str | os.PathLike):
        return None
    try:
        return Mixer.from_file(path, store).total_patches
    except TFRecordIOError:
        return None


def info(path: Any, **options: Any) -> dict[str, Any]:
    """Describe an export as ``gdalinfo -json`` describes a raster (a subset of its keys).

    Parameters
    ----------
    path : path-like or sequence of path-like
        What :func:`tfrecord_io.open` takes: the export folder, its mixer, a shard, or a list
        of shards.
    **options
        Passed to :func:`tfrecord_io.open`.

    Returns
    -------
    dict
        JSON-ready: driver, files, size, coordinate system, geotransform, corner coordinates,
        the export's own metadata and one entry per band.
    """
    import pyproj

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


def build_index(
    path: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    spacing: int = SAVED_SPACING,
    **options: Any,
) -> str:
    """Write the export's record index to ``PREFIX-index.tfrindex`` beside its shards.

    Every shard is read once. Afterwards :func:`tfrecord_io.open` in any process loads the
    index instead of scanning the shards, so a window costs what it costs with a warm index.
    The sidecar is a cache, checked against each shard's size and modification time when it
    is loaded; records are still CRC-checked when read.

    Parameters
    ----------
    path : path-like
        The export folder, its mixer or one of its shards.
    overwrite : bool
        Rebuild the sidecar even when the current one still matches the shards (a stale or
        unreadable one is always rebuilt).
    spacing : int
        Uncompressed bytes between gzip seek points: a window read inflates up to this much
        per record; each point costs about 12 KB of sidecar (its 32 KiB window, compressed).
    **options
        Options of :func:`tfrecord_io.open` (``mixer=`` for an export without a mixer, ...).

    Returns
    -------
    str
        The sidecar's path.

    Raises
    ------
    RecordCountError
        The shards do not hold the mixer grid's number of records.
    ChecksumError, TruncatedRecordError, RecordError
        A shard is broken: nothing is written.
    OptionError
        ``spacing`` is under 64 KiB.
    """
    if spacing < _MIN_SPACING:
        raise OptionError(f"spacing must be at least {_MIN_SPACING} bytes, not {spacing}")
    reader = ExportReader(path, **options)
    try:
        files = reader.files
        if not overwrite and load_saved_indexes(files, False, reader.store) is not None:
            return sidecar_path(files.folder, files.prefix)
        return save_indexes(files, reader.expected_records, spacing, reader.store)
    finally:
        reader.close()
