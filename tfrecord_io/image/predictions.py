"""Model predictions: patches out of an export in its order, and back in ready to upload.

:func:`iter_patches` yields an export's stored tiles (margins included, as a model with that
kernel consumes them) in export order. :func:`write_predictions` writes one Example per patch in
the same order, cropped to the unpadded patch size (the form Earth Engine's own example uploads
[doc]), integer arrays as ``int64_list`` and floats as ``float_list``, and copies the export's
mixer beside them as ``PREFIX-mixer.json``, so that
``earthengine upload image --asset_id=ID PREFIX-00000.tfrecord ... PREFIX-mixer.json`` works
and ``tfrecord_io.open(folder)`` reads them back as a georeferenced mosaic. The Examples, already
encoded here, go through the write pipeline's lower half,
:func:`~tfrecord_io.image.write.write_records` (shards, then an atomic commit with the mixer
last), as every export does.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
from rasterio.windows import Window

from tfrecord_io.errors import MissingMixerError, OptionError, RecordCountError
from tfrecord_io.format import example as wire
from tfrecord_io.format import storage
from tfrecord_io.format.storage import StorageOptions
from tfrecord_io.format.upload import open_destination
from tfrecord_io.image.blocks import iter_chunked_patches
from tfrecord_io.image.dataset import EETFRecordDataset
from tfrecord_io.image.files import find_export
from tfrecord_io.image.grid import PatchGrid
from tfrecord_io.image.mixer import Mixer
from tfrecord_io.image.options import DEFAULT_MAX_FILE_SIZE
from tfrecord_io.image.reader import ExportReader
from tfrecord_io.image.write import write_records

__all__ = ["iter_patches", "write_predictions"]


def iter_patches(
    export: str | os.PathLike[str] | Sequence[str] | EETFRecordDataset,
    *,
    trim: bool = False,
    **options: Any,
) -> Iterator[tuple[int, Window, np.ndarray]]:
    """Yield ``(index, window, array)`` for every patch of an export, in export order.

    Each shard is streamed once.

    Parameters
    ----------
    export : path-like or EETFRecordDataset
        The export (folder, mixer or shard), or an open dataset.
    trim : bool
        Cut the kernel margins off, giving the unpadded patch.
    **options
        Passed to :func:`tfrecord_io.open` (``kernel_size``, ``band_order``...).

    Yields
    ------
    index : int
        The patch's position in the export.
    window : Window
        The unpadded patch in the mosaic.
    array : numpy.ndarray
        ``(bands, tile_height, tile_width)`` (``(bands, patch_height, patch_width)`` with
        ``trim``), bands as the dataset numbers them.
    """
    if isinstance(export, EETFRecordDataset):
        yield from _iter_arrays(export.grid, export.iter_tiles(), trim)
        return
    reader = ExportReader(export, **options)
    try:
        yield from _iter_arrays(reader.grid, reader.iter_tiles(), trim)
    finally:
        reader.close()


def _iter_arrays(
    grid: PatchGrid, tiles: Iterator[tuple[int, tuple[np.ndarray, ...]]], trim: bool
) -> Iterator[tuple[int, Window, np.ndarray]]:
    """Yield ``(index, window, array)`` for each tile, its features stacked as bands."""
    interior = (slice(None), *grid.interior)
    for index, tile in tiles:
        array = (
            tile[0]
            if len(tile) == 1
            else np.concatenate([t.astype(np.result_type(*tile), copy=False) for t in tile])
        )
        yield index, grid.patch_window(index), array[interior] if trim else array


def _mixer_of(
    source: Any, store: storage.Store
) -> tuple[Mixer, str | None, tuple[int, int] | None]:
    """Return the mixer, its exact text when read from a file, and the margins when known."""
    if isinstance(source, Mixer):
        return source, None, None
    if isinstance(source, EETFRecordDataset):
        mixer_path = source.export_files.mixer
        text = storage.read_text(mixer_path, source.store) if mixer_path else None
        return source.mixer, text, (source.grid.margin_x, source.grid.margin_y)
    path: str | list[str] = (
        os.fspath(source) if isinstance(source, str | os.PathLike) else list(source)
    )
    if (
        isinstance(path, str)
        and path.endswith(".json")
        and storage.exists(path, store)
        and not storage.isdir(path, store)
    ):
        text = storage.read_text(path, store)
        return Mixer.from_json(text, f"'{path}'"), text, None
    files = find_export(path, storage_options=store)  # a folder, a shard, or a list of shards
    if files.mixer is None:
        raise MissingMixerError(
            f"'{files.folder}' has no {files.prefix}-mixer.json, so predictions cannot be placed: "
            "Earth Engine writes none when maskedThreshold is below 1. Export again with "
            "maskedThreshold 1, or pass a Mixer."
        )
    reader = ExportReader(path, storage_options=store, files=files)
    try:
        return reader.mixer, reader.mixer_text, (reader.grid.margin_x, reader.grid.margin_y)
    finally:
        reader.close()


def _patch_array(item: Any, position: int) -> np.ndarray:
    """Return the array of one item of ``patches``: an array, or a tuple ending in one."""
    if isinstance(item, tuple):
        if item and isinstance(item[0], int | np.integer) and int(item[0]) != position:
            raise OptionError(
                f"patch {int(item[0])} arrived where patch {position} was due: predictions "
                "must come in export order"
            )
        item = item[-1]
    array = np.asarray(item)
    return array[np.newaxis] if array.ndim == 2 else array


def write_predictions(
    export_or_mixer: str | os.PathLike[str] | Sequence[str] | EETFRecordDataset | Mixer,
    dst: str | os.PathLike[str],
    patches: Iterable[Any],
    band_names: Sequence[str],
    *,
    file_name_prefix: str | None = None,
    storage_options: StorageOptions = None,
    overwrite: bool = False,
    compressed: bool = False,
    max_file_size: int = DEFAULT_MAX_FILE_SIZE,
    compression_level: int = 6,
    workers: int = 2,
) -> list[str]:
    """Write model predictions as TFRecords Earth Engine can upload, with the export's mixer.

    Parameters
    ----------
    export_or_mixer : path-like, sequence of path-like, EETFRecordDataset or Mixer
        The export the patches came from (folder, shard under any name, list of shards, or
        open dataset), its mixer file (any name), or a Mixer.
    dst : path-like
        The folder to write (it may exist and hold other files).
    patches : iterable or dask array
        One item per patch, in export order: an array ``(bands, rows, cols)`` (or
        ``(rows, cols)`` for one band), or a tuple ending in one, such as the
        ``(index, window, array)`` of :func:`iter_patches` (the index is checked). Arrays are
        the unpadded patch size, or the stored tile size, whose margins are trimmed. A dask
        array ``(patches, bands, rows, cols)`` is computed one chunk of patches at a time.
    band_names : sequence of str
        A feature name per band.
    file_name_prefix : str, optional
        ``PREFIX`` of ``PREFIX-00000.tfrecord``; the folder's name by default.
    storage_options : dict, optional
        fsspec options for URLs, used for both ``export_or_mixer`` and ``dst``: predictions go
        straight to ``gs://bucket/folder`` for ``earthengine upload image``.
    overwrite : bool
        Replace predictions with the same prefix in ``dst``.
    compressed : bool
        Gzip the files (``.tfrecord.gz``); Earth Engine's example uploads them uncompressed.
    max_file_size : int
        Bytes per file before compression.
    compression_level : int
        zlib level (0-9) when ``compressed``.
    workers : int
        Threads compressing beside the encoding.

    Returns
    -------
    list of str
        The files written: TFRecords in order, then ``PREFIX-mixer.json``.

    Raises
    ------
    RecordCountError
        The number of patches differs from the mixer's ``totalPatches`` (nothing is written).
    OptionError
        A patch has the wrong shape, band count or dtype, or arrives out of order.
    MissingMixerError
        The export has no mixer.
    """
    patches = iter_chunked_patches(patches)
    store = storage.as_store(storage_options)
    mixer, text, margins = _mixer_of(export_or_mixer, store)
    names = [str(n) for n in band_names]
    if not names or len(set(names)) != len(names) or not all(names):
        raise OptionError(f"band_names must be distinct, non-empty names, not {band_names!r}")
    prefix = file_name_prefix or storage.basename(storage.abspath(dst))
    return write_records(
        _iter_payloads(patches, names, mixer, margins),
        open_destination(dst, prefix, overwrite, store),
        compressed=compressed,
        max_file_size=max_file_size,
        level=compression_level,
        workers=workers,
        mixer_text=text if text is not None else mixer.to_json(),
    )


def _iter_payloads(
    patches: Iterable[Any], names: list[str], mixer: Mixer, margins: tuple[int, int] | None
) -> Iterator[bytes]:
    """Encode one Example per patch, checking each patch and, at the end, the patch count."""
    pw, ph = mixer.patch_width, mixer.patch_height
    kinds: list[str] | None = None
    count = 0
    for item in patches:
        if count >= mixer.total_patches:
            raise RecordCountError(
                f"more patches than the mixer's totalPatches ({mixer.total_patches}): "
                "the predictions do not belong to this export"
            )
        array = _patch_array(item, count)
        if array.ndim != 3 or array.shape[0] != len(names):
            raise OptionError(
                f"patch {count} has shape {array.shape}, not ({len(names)} bands, rows, "
                f"cols) for band_names {names}"
            )
        array, margins = _trim(array, pw, ph, margins, count)
        kinds = _kinds(array, kinds, count)
        features = {
            name: wire.Feature(kind, np.ascontiguousarray(plane))  # type: ignore[arg-type]
            for name, kind, plane in zip(names, kinds, array, strict=True)
        }
        yield wire.encode_example(features)
        count += 1
    if count != mixer.total_patches:
        raise RecordCountError(
            f"{count} patches were given but the mixer's grid has {mixer.total_patches}: "
            "Earth Engine needs one prediction per exported patch, in export order"
        )


def _trim(
    array: np.ndarray, pw: int, ph: int, margins: tuple[int, int] | None, index: int
) -> tuple[np.ndarray, tuple[int, int]]:
    """Return a patch cut to ``ph x pw`` (rows x cols), and the margins its tile had."""
    rows, cols = array.shape[1:]
    if (rows, cols) == (ph, pw):
        return array, margins or (0, 0)
    extra_x, extra_y = cols - pw, rows - ph
    fits = extra_x >= 0 and extra_y >= 0 and extra_x % 2 == 0 and extra_y % 2 == 0
    known = None if margins is None else _tile_grid(pw, ph, margins)
    if known is not None and (rows, cols) != (known.tile_height, known.tile_width):
        fits = False
    if not fits:
        tile = (
            "" if known is None else f" or the stored tile {known.tile_height} x {known.tile_width}"
        )
        raise OptionError(
            f"patch {index} is {rows} x {cols} (rows x cols), which is neither the unpadded "
            f"patch {ph} x {pw}{tile}"
        )
    grid = _tile_grid(pw, ph, (extra_x // 2, extra_y // 2))
    return array[(slice(None), *grid.interior)], (grid.margin_x, grid.margin_y)


def _tile_grid(pw: int, ph: int, margins: tuple[int, int]) -> PatchGrid:
    """Return the geometry of one stored tile: a one-patch grid with the given margins."""
    return PatchGrid(pw, ph, 1, 1, margin_x=margins[0], margin_y=margins[1])


def _kinds(array: np.ndarray, kinds: list[str] | None, index: int) -> list[str]:
    if array.dtype.kind in "biu":
        if array.dtype == np.uint64 and array.size and int(array.max()) > np.iinfo(np.int64).max:
            raise OptionError(f"patch {index} holds values beyond int64")
        kind = "int64"
    elif array.dtype.kind == "f":
        kind = "float"
    else:
        raise OptionError(f"patch {index} has dtype {array.dtype}: give integers or floats")
    if kinds is None:
        return [kind] * array.shape[0]
    if kinds[0] == "int64" and kind == "float":
        raise OptionError(
            f"patch {index} holds floats where earlier patches held integers: every patch of a "
            "band must have one kind; cast the predictions to one dtype"
        )
    return kinds
