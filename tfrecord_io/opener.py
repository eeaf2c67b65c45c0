"""``tfrecord_io.open``: the one entry point, for reading (``"r"``) and writing (``"w"``).

Arguments are checked here, before anything is opened; reading gives an
:class:`~tfrecord_io.image.dataset.EETFRecordDataset`, writing an
:class:`~tfrecord_io.image.writer.EETFRecordWriter`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from tfrecord_io.errors import MissingMixerError, MissingShardError, OptionError
from tfrecord_io.image.dataset import EETFRecordDataset
from tfrecord_io.image.layout import ArrayLayout
from tfrecord_io.image.mixer import Mixer
from tfrecord_io.image.writer import EETFRecordWriter
from tfrecord_io.table.files import refuse_table

__all__ = ["open"]


def open(  # noqa: A001 - rasterio's name, on purpose
    path: str | os.PathLike[str],
    mode: str = "r",
    *,
    kernel_size: int | tuple[int, int] | None = None,
    mixer: str | os.PathLike[str] | Mixer | dict[str, Any] | None = None,
    band_order: Sequence[str] | None = None,
    nodata: float | None = None,
    array_layout: ArrayLayout = "depth_major",
    sequence_data: bool | None = None,
    cache_size: int = 256 << 20,
    **write_options: Any,
) -> Any:
    """Open an Earth Engine TFRecord image export as a lazy, georeferenced dataset.

    Only the mixer and the first record are read here; pixels are decoded when read.
    ``mode="w"`` returns an :class:`~tfrecord_io.image.writer.EETFRecordWriter` instead, taking
    rasterio's profile keywords (``width``, ``height``, ``count``, ``dtype``, ``crs``,
    ``transform``, ``nodata``), ``file_name_prefix``, ``format_options`` (Earth Engine's
    ``formatOptions``) and the same options in snake_case; see that class.

    Parameters
    ----------
    path : path-like
        The export's folder, its ``PREFIX-mixer.json``, or one of its shards.
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
    **write_options
        With ``mode="w"``: the writer's keyword arguments.

    Returns
    -------
    EETFRecordDataset or EETFRecordWriter

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
        return _open_writer(
            path,
            kernel_size=kernel_size,
            mixer=mixer,
            band_order=band_order,
            nodata=nodata,
            array_layout=array_layout,
            sequence_data=sequence_data,
            cache_size=cache_size,
            **write_options,
        )
    if mode != "r":
        raise OptionError(f"mode must be 'r' or 'w', not {mode!r}")
    if write_options:
        raise OptionError(f"unknown argument(s) for reading: {', '.join(sorted(write_options))}")
    if cache_size < 0:
        raise OptionError(f"cache_size must be >= 0, not {cache_size}")
    if not os.path.exists(path):
        raise MissingShardError(f"'{os.fspath(path)}' does not exist")
    try:
        return EETFRecordDataset(
            path,
            nodata=nodata,
            kernel_size=kernel_size,
            mixer=mixer,
            band_order=band_order,
            array_layout=array_layout,
            sequence_data=sequence_data,
            cache_bytes=cache_size,
        )
    except (MissingShardError, MissingMixerError) as exc:
        refuse_table(path, exc)  # a table export: say so and name open_table
        raise


def _open_writer(
    path: str | os.PathLike[str],
    *,
    kernel_size: Any,
    mixer: Any,
    band_order: Any,
    nodata: float | None,
    array_layout: str,
    sequence_data: bool | None,
    cache_size: int,
    **options: Any,
) -> EETFRecordWriter:
    """Make the writer of ``open(path, "w", ...)``; the read-only arguments are refused."""
    read_only = {
        "mixer": mixer is not None,
        "band_order": band_order is not None,
        "array_layout": array_layout != "depth_major",
        "cache_size": cache_size != 256 << 20,
    }
    refused = [name for name, given in read_only.items() if given]
    if refused:
        raise OptionError(f"{', '.join(refused)} only apply to reading, not to mode='w'")
    if kernel_size is not None:
        options["kernel_size"] = kernel_size
    if sequence_data is not None:
        options["sequence_data"] = sequence_data
    return EETFRecordWriter(path, nodata=nodata, **options)
