"""``tfrecord_io.open``: the one entry point, for reading (``"r"``) and writing (``"w"``).

Arguments are checked here, before anything is opened; reading gives an
:class:`~tfrecord_io.image.dataset.EETFRecordDataset`, writing an
:class:`~tfrecord_io.image.writer.EETFRecordWriter`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, Literal, overload

from tfrecord_io.errors import MissingMixerError, MissingShardError, OptionError
from tfrecord_io.format import storage
from tfrecord_io.format.kinds import refuse_table
from tfrecord_io.image.dataset import EETFRecordDataset
from tfrecord_io.image.layout import ArrayLayout
from tfrecord_io.image.mixer import Mixer
from tfrecord_io.image.writer import EETFRecordWriter

__all__ = ["READ_OPTIONS", "open"]

# Arguments of reading only (refused by mode="w" unless left at these defaults), and arguments
# both modes take.
_READ_DEFAULTS: dict[str, Any] = {
    "mixer": None,
    "band_order": None,
    "array_layout": "depth_major",
    "cache_size": 256 << 20,
    "allow_missing": False,
}
_SHARED = ("kernel_size", "nodata", "sequence_data", "storage_options")
READ_OPTIONS: tuple[str, ...] = (*_READ_DEFAULTS, *_SHARED)
"""The keyword arguments of ``open(path, "r")``."""


@overload
def open(
    path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    mode: Literal["r"] = "r",
    *,
    kernel_size: int | tuple[int, int] | None = None,
    mixer: str | os.PathLike[str] | Mixer | dict[str, Any] | None = None,
    band_order: Sequence[str] | None = None,
    nodata: float | None = None,
    array_layout: ArrayLayout = "depth_major",
    sequence_data: bool | None = None,
    cache_size: int = 256 << 20,
    storage_options: dict[str, Any] | None = None,
    allow_missing: bool = False,
) -> EETFRecordDataset: ...


@overload
def open(
    path: str | os.PathLike[str], mode: Literal["w"], **write_options: Any
) -> EETFRecordWriter: ...


@overload
def open(
    path: str | os.PathLike[str], mode: str, **options: Any
) -> EETFRecordDataset | EETFRecordWriter: ...


def open(
    path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    mode: str = "r",
    **options: Any,
) -> EETFRecordDataset | EETFRecordWriter:
    """Open an Earth Engine TFRecord image export as a lazy, georeferenced dataset.

    Only the mixer and the first record are read here, pixels being decoded when read; except
    that a partial export (``allow_missing``), a sequence export without ``kernel_size`` and a
    grid given by hand without ``total_patches`` need every record counted or placed first.
    ``mode="w"`` returns an :class:`~tfrecord_io.image.writer.EETFRecordWriter` instead, taking
    rasterio's profile keywords (``width``, ``height``, ``count``, ``dtype``, ``crs``,
    ``transform``, ``nodata``), ``file_name_prefix``, ``format_options`` (Earth Engine's
    ``formatOptions``) and the same options in snake_case; see that class.

    Parameters
    ----------
    path : path-like, str or sequence of path-like
        The export's folder, its ``PREFIX-mixer.json``, or one of its shards; under Earth
        Engine's names or any other (a folder of renamed files holding one mixer JSON, a shard
        with ``mixer=`` given); or a list of shards in export order. A local path, or a URL
        (``gs://bucket/prefix/``, ``s3://...``, ``https://...`` for reading, ``memory://...``)
        read through fsspec (the ``tfrecord_io[cloud]`` extra).
    mode : {"r", "w"}
        Open for reading, or create an export (``"w"``).
    kernel_size : int or (int, int), optional
        ``kernelSize`` of the export; inferred from the first record when not given.
    mixer : path-like, Mixer or dict, optional
        Another mixer to use (predictions), or the grid by hand for an export written without
        one: ``{"patch_size": (w, h), "patches_per_row": n, "crs": ..., "transform": ...}``.
    band_order : sequence of str, optional
        Feature names in the band order wanted (also selects a subset); wire order otherwise.
    nodata : float, optional
        Value to treat as nodata (exports store none; Earth Engine writes ``defaultValue``).
    array_layout : {"depth_major", "pixel_major"}
        Layout of array-band features (``tensorDepths``, ``collapseBands``).
    sequence_data : bool, optional
        Read as one SequenceExample per pixel; detected from the first record when not given.
    cache_size : int
        Bytes of decoded patches kept in the LRU cache.
    storage_options : dict, optional
        Passed to fsspec when ``path`` is a URL (``token``, ``anon``, ``key``/``secret``,
        ``endpoint_url``, ...); for both modes.
    allow_missing : bool
        Open a partial export (shards missing from the numbering): patches of the missing
        shards read as nodata (masked), when the positions of the others are certain.
    **options
        The keyword arguments above; with ``mode="w"``, the writer's instead.

    Returns
    -------
    EETFRecordDataset or EETFRecordWriter
        The dataset for ``mode="r"``, the writer for ``mode="w"`` (as the overloads tell a type
        checker).

    Raises
    ------
    MissingShardError, MissingMixerError, MixerError, GridError, KernelSizeError, RecordError
        The export is incomplete or malformed; the message says which file and what to do.
    ExportKindError
        The path is a table export (read it with :func:`tfrecord_io.open_table`).
    OptionError
        An argument is invalid.
    """
    if mode == "w":
        if not isinstance(path, str | os.PathLike):
            raise OptionError("mode='w' takes one destination folder, not a list")
        return _open_writer(path, **options)
    if mode != "r":
        raise OptionError(f"mode must be 'r' or 'w', not {mode!r}")
    unknown = sorted(set(options) - set(READ_OPTIONS))
    if unknown:
        raise OptionError(f"unknown argument(s) for reading: {', '.join(unknown)}")
    cache_size = options.pop("cache_size", _READ_DEFAULTS["cache_size"])
    if cache_size < 0:
        raise OptionError(f"cache_size must be >= 0, not {cache_size}")
    for name in [path] if isinstance(path, str | os.PathLike) else path:
        if not storage.exists(name, options.get("storage_options")):
            raise MissingShardError(f"'{os.fspath(name)}' does not exist")
    try:
        return EETFRecordDataset(path, cache_bytes=cache_size, **options)
    except (MissingShardError, MissingMixerError) as exc:
        if isinstance(path, str | os.PathLike):
            refuse_table(path, exc)  # a table export: say so and name open_table
        raise


def _open_writer(path: str | os.PathLike[str], **options: Any) -> EETFRecordWriter:
    """Make the writer of ``open(path, "w", ...)``; the read-only arguments are refused."""
    refused = [
        name for name, default in _READ_DEFAULTS.items() if options.get(name, default) != default
    ]
    if refused:
        raise OptionError(f"{', '.join(refused)} only apply to reading, not to mode='w'")
    for name in _READ_DEFAULTS:
        options.pop(name, None)
    for name in _SHARED:
        if options.get(name, 0) is None:
            del options[name]  # unset: let the writer apply its own default
    return EETFRecordWriter(path, **options)
