"""The rasterio-shaped reading face of an export: :class:`EETFRecordDataset`.

The dataset presents the reassembled, unpadded mosaic with rasterio's reader interface. Window
and transform helpers (``window``, ``window_transform``, ``window_bounds``, ``xy``, ``index``)
are rasterio's own mixins, so they behave exactly as on a GeoTIFF; ``bounds`` and ``res`` follow
rasterio's definitions (a south-up grid keeps its positive y scale).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from rasterio.enums import Resampling
from rasterio.windows import Window

from tfrecord_io.errors import OptionError, WindowError
from tfrecord_io.format.storage import Store
from tfrecord_io.image.base import DRIVER, DatasetBase
from tfrecord_io.image.files import ExportFiles
from tfrecord_io.image.grid import PatchGrid, PatchSample, sample
from tfrecord_io.image.mixer import Mixer
from tfrecord_io.image.reader import ExportReader

__all__ = ["DRIVER", "EETFRecordDataset"]


class EETFRecordDataset(DatasetBase):
    """An Earth Engine TFRecord image export opened for reading, as a rasterio dataset.

    Made by :func:`tfrecord_io.open`. Arrays are ``(band, row, col)``; bands are numbered from 1.
    """

    mode = "r"

    def __init__(
        self,
        path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
        *,
        nodata: float | None = None,
        **options: Any,
    ):
        self.name = (
            os.fspath(path)
            if isinstance(path, str | os.PathLike)
            else ", ".join(os.fspath(p) for p in path)
        )
        self._reader = ExportReader(path, **options)
        self._closed = False
        layout = self._reader.layout
        self._bands = [
            (f, d) for f, feature in enumerate(layout.features) for d in range(feature.depth)
        ]
        self._count = len(self._bands)
        # Computed once: a per-band lookup into a tuple rebuilt each time made reads quadratic
        # in the band count.
        self._dtypes = layout.dtypes
        self._descriptions = layout.names
        self._width, self._height = self._reader.grid.width, self._reader.grid.height
        self._transform = self._reader.grid.transform
        self._nodata = nodata
        self._crs = self._reader.crs

    # -- descriptive properties -----------------------------------------------------------

    @property
    def dtypes(self) -> tuple[str, ...]:
        """Band dtypes: float32 for float lists, int64 for int64 lists, uint8 for bytes."""
        return self._dtypes

    @property
    def descriptions(self) -> tuple[str, ...]:
        """Band names: feature names in wire order (array bands as ``NAME_i``)."""
        return self._descriptions

    @property
    def block_shapes(self) -> list[tuple[int, int]]:
        """``(rows, cols)`` of a block, for each band: blocks are the export's patches."""
        grid = self._reader.grid
        return [(grid.patch_height, grid.patch_width)] * self.count

    @property
    def grid(self) -> PatchGrid:
        """The export's patch grid: patch size, grid size, transform and kernel margins."""
        return self._reader.grid

    @property
    def export_files(self) -> ExportFiles:
        """The export's folder, prefix, shards in order and mixer path (None without one)."""
        return self._reader.files

    @property
    def files(self) -> list[str]:
        """The export's files: shards in order, then the mixer."""
        files = list(self._reader.files.shards)
        if self._reader.files.mixer:
            files.append(self._reader.files.mixer)
        return files

    @property
    def store(self) -> Store:
        """Where the export's files are read from: fsspec's storage options for a URL."""
        return self._reader.store

    @property
    def missing_patches(self) -> frozenset[int]:
        """Patches of a partial export (``allow_missing=True``) whose shard is missing."""
        return self._reader.missing_patches

    @property
    def kernel_size(self) -> tuple[int, int]:
        """``(x, y)`` kernel size whose margins were trimmed (even, or 1 for none)."""
        return self._reader.grid.kernel_size

    @property
    def mixer(self) -> Mixer:
        """The export's mixer."""
        return self._reader.mixer

    def tags(self, bidx: int = 0, ns: str | None = None) -> dict[str, str]:
        """Return metadata as strings; ``ns="EETFRecord"`` gives the export's own.

        Parameters
        ----------
        bidx : int
            Band number, or 0 for the dataset.
        ns : str, optional
            Namespace.
        """
        self._check_open()
        if bidx:
            self._band(bidx)
        if ns != DRIVER:
            return {}
        grid, files = self._reader.grid, self._reader.files
        if bidx:
            feature_index, depth = self._bands[self._band(bidx)]
            feature = self._reader.layout.features[feature_index]
            return {
                "FEATURE": feature.name,
                "KIND": feature.kind,
                "DEPTH_INDEX": str(depth),
            }
        return {
            "PATCH_WIDTH": str(grid.patch_width),
            "PATCH_HEIGHT": str(grid.patch_height),
            "KERNEL_X": str(grid.kernel_size[0]),
            "KERNEL_Y": str(grid.kernel_size[1]),
            "PATCHES_PER_ROW": str(grid.patches_per_row),
            "TOTAL_PATCHES": str(grid.total_patches),
            "SHARDS": str(len(files.shards)),
            "PREFIX": files.prefix,
            "SHARD_ORDER": files.order,
            "MISSING_PATCHES": str(len(self._reader.missing_patches)),
            "SEQUENCE_DATA": str(self._reader.layout.sequence).upper(),
        }

    def build_index(self) -> None:
        """Index every record of every shard now (otherwise done lazily, shard by shard).

        Reads each shard once; for gzip shards it keeps seek points so that a later window
        read inflates at most a few MiB. Checks the record count against the mixer.

        Raises
        ------
        RecordCountError
            The records do not add up to the mixer's grid.
        """
        self._check_open()
        self._reader.record_count()

    # -- blocks -------------------------------------------------------------------------

    def block_windows(self, bidx: int = 0) -> Iterator[tuple[tuple[int, int], Window]]:
        """Yield ``((row, col), window)`` for each block (patch), in export order."""
        self._check_open()
        if bidx:
            self._band(bidx)
        grid = self._reader.grid
        for index in range(grid.total_patches):
            yield grid.patch_rowcol(index), grid.patch_window(index)

    def block_window(self, bidx: int, i: int, j: int) -> Window:
        """Return the window of block ``(i, j)`` (patch row ``i``, column ``j``)."""
        self._band(bidx)
        grid = self._reader.grid
        return grid.patch_window(grid.patch_index(i, j))

    # -- reading ------------------------------------------------------------------------

    def read(
        self,
        indexes: int | Sequence[int] | None = None,
        out: np.ndarray | None = None,
        window: Window | None = None,
        masked: bool = False,
        out_shape: tuple[int, ...] | None = None,
        boundless: bool = False,
        resampling: Resampling = Resampling.nearest,
        fill_value: float | None = None,
        out_dtype: str | np.dtype | None = None,
    ) -> np.ndarray:
        """Read bands of the mosaic, or of a window of it, decoding only the patches it touches.

        Parameters
        ----------
        indexes : int or list of int, optional
            Band numbers; an int gives a 2D array, a list (or None: all bands) a 3D array.
        out : numpy.ndarray, optional
            Array to fill; its shape sets the output size (decimation) like ``out_shape``.
        window : Window, optional
            Region to read; the whole mosaic by default.
        masked : bool
            Return a masked array, masking ``nodata`` and anything outside the mosaic.
        out_shape : tuple, optional
            ``(rows, cols)`` or ``(bands, rows, cols)``: nearest-neighbour resampling to it.
        boundless : bool
            Allow the window to extend beyond the mosaic, filled with ``fill_value``;
            otherwise a window is cropped to the mosaic, as rasterio does.
        resampling : Resampling
            Only ``Resampling.nearest`` is supported.
        fill_value : scalar, optional
            Fill outside the mosaic; ``nodata`` or 0 by default.
        out_dtype : str or numpy.dtype, optional
            Cast to this dtype; required when reading bands of different dtypes together.

        Returns
        -------
        numpy.ndarray or numpy.ma.MaskedArray

        Raises
        ------
        BandIndexError
            A band number is out of range.
        WindowError
            The window is not a window, or has a negative size.
        TFRecordIOError
            A record is corrupt, missing or does not fit the grid.
        """
        self._check_open()
        bands, return2d = self._band_list(indexes)
        dtype = self._dtype_for(bands, out_dtype)
        if out is not None and out_shape is not None:
            raise OptionError("out and out_shape cannot be combined")
        if resampling != Resampling.nearest:
            raise OptionError(f"only Resampling.nearest is supported, not {resampling!r}")
        win = self._read_window(window, boundless)
        if out is not None:
            out_shape = out.shape
        natural = win.round_lengths()
        size = (
            (int(natural.height), int(natural.width))
            if out_shape is None
            else (int(out_shape[-2]), int(out_shape[-1]))
        )
        if fill_value is None:
            fill_value = self._nodata if self._nodata is not None else 0
        # The output is sized from the mixer's claim: check the records exist first (D8).
        last = self._reader.grid.last_patch(win)
        if last is not None:
            self._reader.require_patch(last)
        data = np.empty((len(bands), *size), dtype=dtype)
        inside = self._fill(data, bands, win, fill_value)
        if masked:
            mask = ~inside[np.newaxis] if not inside.all() else np.zeros(data.shape, bool)
            if self._nodata is not None:
                mask = mask | (data == np.asarray(self._nodata).astype(dtype))
            result: np.ndarray = np.ma.MaskedArray(
                data,
                mask=np.broadcast_to(mask, data.shape),
                fill_value=self._nodata if self._nodata is not None else fill_value,
            )
        else:
            result = data
        if out is not None:
            if out.shape[-2:] != data.shape[-2:] or out.size != data.size:
                raise OptionError(f"out has shape {out.shape}, the read gives {data.shape}")
            out[...] = result.reshape(out.shape)
            result = out
        return result[0] if return2d and result.ndim == 3 else result

    def _read_window(self, window: Any, boundless: bool) -> Window:
        """Return the window to read, as rasterio takes it: cropped unless boundless.

        Like rasterio, a window that leaves the dataset is cropped to it (boundless=False) and
        a fractional window is sampled with nearest neighbour, its size rounded by
        ``Window.round_lengths``.
        """
        if window is None:
            return Window(0, 0, self.width, self.height)
        if not isinstance(window, Window):
            try:
                window = Window.from_slices(
                    *window, height=self.height, width=self.width, boundless=boundless
                )
            except (TypeError, ValueError) as exc:
                raise WindowError(f"not a window: {window!r} ({exc})") from None
        if window.width < 0 or window.height < 0:
            raise WindowError(f"the window {window!r} has a negative size")
        if not boundless:
            window = window.crop(self.height, self.width)
        return window

    def _fill(self, data: np.ndarray, bands: list[int], win: Window, fill: float) -> np.ndarray:
        """Fill ``data`` (bands, rows, cols) from window ``win``; return the inside mask."""
        rows, cols = data.shape[1:]
        grid = self._reader.grid
        src_rows = sample(win.row_off, win.height, rows)
        src_cols = sample(win.col_off, win.width, cols)
        inside_rows = (src_rows >= 0) & (src_rows < self.height)
        inside_cols = (src_cols >= 0) & (src_cols < self.width)
        inside = inside_rows[:, np.newaxis] & inside_cols[np.newaxis, :]
        if not inside.all():
            data[...] = fill
        if not inside.any():
            return inside
        parts = list(grid.iter_samples(src_rows, src_cols))
        missing = self._reader.missing_patches
        if missing:
            for part in (p for p in parts if p.index in missing):
                data[(slice(None), *part.out_index)] = fill
                inside[part.out_index] = False
            parts = [p for p in parts if p.index not in missing]
        elif len(parts) == grid.total_patches and not self._reader.is_cached(
            part.index for part in parts
        ):
            # Every patch is needed (a whole read, a thumbnail) and not all are cached: stream
            # the export once, on two threads, instead of finding each patch through the index.
            by_index = {part.index: part for part in parts}
            self._reader.read_all(lambda i, tile: self._copy(data, bands, tile, by_index[i]))
            return inside
        for part in parts:
            self._copy(data, bands, self._reader.tile(part.index), part)
        return inside

    def _copy(
        self, data: np.ndarray, bands: list[int], tile: tuple[np.ndarray, ...], part: PatchSample
    ) -> None:
        """Copy the pixels ``part`` says a tile gives into ``data`` (bands, rows, cols)."""
        out_index, tile_index = part.out_index, part.tile_index
        for k, band in enumerate(bands):
            feature, depth = self._bands[band]
            data[k][out_index] = tile[feature][depth][tile_index]

    def _strip_part(self, index: int) -> PatchSample:
        """Where patch ``index`` goes in a strip one row of patches high (unpadded)."""
        grid = self._reader.grid
        col = (index % grid.patches_per_row) * grid.patch_width
        tile_rows, tile_cols = grid.interior
        return PatchSample(
            index,
            tile_rows,
            tile_cols,
            slice(0, grid.patch_height),
            slice(col, col + grid.patch_width),
        )

    def iter_tiles(self) -> Iterator[tuple[int, tuple[np.ndarray, ...]]]:
        """Yield ``(index, tile)`` for every patch in export order, streaming each shard once.

        A tile is what the record stores, margins included: one ``(depth, tile_height,
        tile_width)`` array per feature, in the dataset's band order (see :attr:`grid`).

        Raises
        ------
        RecordCountError
            The records do not add up to the mixer's grid.
        """
        self._check_open()
        return self._reader.iter_tiles()

    def iter_patch_rows(
        self, indexes: int | Sequence[int] | None = None, out_dtype: Any = None
    ) -> Iterator[tuple[Window, np.ndarray]]:
        """Yield each row of patches as ``(window, array)``, streaming every shard once.

        For converting a whole export row by row: unlike windowed reads, this inflates each shard
        once, on a second thread, and keeps one row of patches in memory.

        Parameters
        ----------
        indexes : int or list of int, optional
            Band numbers; all bands by default.
        out_dtype : str or numpy.dtype, optional
            Cast to this dtype; required for bands of different dtypes.

        Yields
        ------
        tuple of (Window, numpy.ndarray)
            The row's window of the mosaic, and its ``(bands, patch_height, width)`` pixels.
        """
        self._check_open()
        bands, _ = self._band_list(indexes)
        dtype = self._dtype_for(bands, out_dtype)
        grid = self._reader.grid
        strip = np.empty((len(bands), grid.patch_height, self.width), dtype)
        tiles: Iterator[tuple[int, Any]] = self._reader.iter_tiles(prefetch=True)
        if self._reader.missing_patches:
            tiles = _with_gaps(tiles, grid.total_patches)
        fill = self._nodata if self._nodata is not None else 0
        for index, tile in tiles:
            prow, pcol = divmod(index, grid.patches_per_row)
            part = self._strip_part(index)
            if tile is None:
                strip[:, part.out_rows, part.out_cols] = fill
            else:
                self._copy(strip, bands, tile, part)
            if pcol == grid.patches_per_row - 1:
                yield Window(0, prow * grid.patch_height, self.width, grid.patch_height), strip
                strip = np.empty_like(strip)

    def read_masks(
        self,
        indexes: int | Sequence[int] | None = None,
        out: np.ndarray | None = None,
        out_shape: tuple[int, ...] | None = None,
        window: Window | None = None,
        boundless: bool = False,
        resampling: Resampling = Resampling.nearest,
    ) -> np.ndarray:
        """Return GDAL-style masks: 255 where a band holds data, 0 at nodata or outside.

        Parameters are those of :meth:`read`.
        """
        bands, return2d = self._band_list(indexes)
        data = self.read(
            [b + 1 for b in bands],
            window=window,
            masked=True,
            out_shape=out_shape,
            boundless=boundless,
            resampling=resampling,
            out_dtype=np.result_type(*{self._dtypes[b] for b in bands}),
        )
        masks = np.where(np.ma.getmaskarray(data), 0, 255).astype(np.uint8)
        if out is not None:
            out[...] = masks.reshape(out.shape)
            masks = out
        return masks[0] if return2d and masks.ndim == 3 else masks

    def dataset_mask(
        self,
        out: np.ndarray | None = None,
        out_shape: tuple[int, ...] | None = None,
        window: Window | None = None,
        boundless: bool = False,
        resampling: Resampling = Resampling.nearest,
    ) -> np.ndarray:
        """Return the dataset mask: 255 where any band holds data, else 0."""
        masks = self.read_masks(
            None, out_shape=out_shape, window=window, boundless=boundless, resampling=resampling
        )
        result = masks.max(axis=0)
        if out is not None:
            out[...] = result
            return out
        return result

    # -- lifecycle ----------------------------------------------------------------------

    def close(self) -> None:
        """Close the dataset and release its files and cache."""
        if not self._closed:
            self._reader.close()
            self._closed = True

    # -- helpers ------------------------------------------------------------------------

    def _band_list(self, indexes: int | Sequence[int] | None) -> tuple[list[int], bool]:
        if indexes is None:
            return list(range(self.count)), False
        if isinstance(indexes, int | np.integer):
            return [self._band(int(indexes))], True
        return [self._band(bidx) for bidx in indexes], False

    def _dtype_for(self, bands: list[int], out_dtype: Any) -> np.dtype:
        if out_dtype is not None:
            return np.dtype(out_dtype)
        dtypes = self._dtypes
        kinds = {dtypes[b] for b in bands}
        if len(kinds) > 1:
            raise OptionError(
                f"the bands read have different dtypes ({', '.join(sorted(kinds))}): read them "
                "one at a time or pass out_dtype"
            )
        return np.dtype(kinds.pop())


def _with_gaps(tiles: Iterator[tuple[int, Any]], total: int) -> Iterator[tuple[int, Any]]:
    """Yield ``(index, tile)`` for every patch, ``(index, None)`` where a patch is missing."""
    following = next(tiles, None)
    for index in range(total):
        if following is not None and following[0] == index:
            yield following
            following = next(tiles, None)
        else:
            yield index, None
