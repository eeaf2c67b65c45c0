"""Write a raster as an Earth Engine TFRecord export, with rasterio's writer interface.

:class:`EETFRecordWriter` is what ``tfrecord_io.open(path, "w", ...)`` returns. Its constructor
checks every argument and opens the :class:`~tfrecord_io.format.shards.Destination` before
anything is written. Windows may be written in any order and more than once; they go to a raw
*spill* file (band-sequential, the dataset's dtype) in a temporary folder beside the
destination, made by the first write, so memory does not grow with the raster.
:meth:`EETFRecordWriter.close` hands the spill, read back one patch row at a time, to
:func:`~tfrecord_io.image.write.write_export`, which encodes the records, writes the shards and
the mixer, and commits them into the destination; :meth:`EETFRecordWriter.close_from` hands it
any other row source instead (as :func:`tfrecord_io.export` does, with no spill file). Masks
(masked arrays, :meth:`write_mask`) go to spill files of their own, made only when first needed.
"""

from __future__ import annotations

import dataclasses
import os
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from affine import Affine
from rasterio.crs import CRS
from rasterio.windows import Window

from tfrecord_io.errors import OptionError
from tfrecord_io.format import storage
from tfrecord_io.format.records import framed_size
from tfrecord_io.format.storage import StorageOptions
from tfrecord_io.format.upload import AnyDestination, open_destination
from tfrecord_io.image.base import DRIVER, DatasetBase
from tfrecord_io.image.encode import ExportPlan, RowSource, check_kind, plan_export
from tfrecord_io.image.grid import to_int_window
from tfrecord_io.image.options import EE_KEYS, FormatOptions
from tfrecord_io.image.spill import Spill
from tfrecord_io.image.write import crs_text, write_export

__all__ = ["DRIVER", "EETFRecordWriter", "crs_text"]

# GDAL creation options a copied rasterio profile carries; they mean nothing to an export.
_IGNORED_PROFILE_KEYS = {
    "blockxsize",
    "blockysize",
    "tiled",
    "compress",
    "interleave",
    "photometric",
    "predictor",
    "zlevel",
    "bigtiff",
    "blocksize",
    "num_threads",
    "sparse_ok",
}
_FORMAT_KWARGS = set(EE_KEYS.values())


def parse_kinds(kinds: Any, names: Sequence[str], count: int, strict: bool = True) -> list[str]:
    """Expand ``kinds`` (one kind, one per band, or a mapping by name or band number).

    With ``strict`` False, names that are not (yet) band names are passed over.
    """
    if kinds is None:
        return ["float"] * count
    if isinstance(kinds, str):
        return [kinds] * count
    if isinstance(kinds, Mapping):
        out = ["float"] * count
        for key, kind in kinds.items():
            if isinstance(key, int) and 1 <= key <= count:
                out[key - 1] = kind
            elif key in names:
                out[list(names).index(key)] = kind
            elif strict:
                raise OptionError(f"kinds names {key!r}, which is no band number or band name")
        return out
    out = list(kinds)
    if len(out) != count:
        raise OptionError(f"kinds gives {len(out)} kinds for {count} bands")
    return out


class EETFRecordWriter(DatasetBase):
    """An Earth Engine TFRecord export opened for writing, with rasterio's writer interface.

    Made by ``tfrecord_io.open(path, "w", ...)``; nothing appears at ``path`` until
    :meth:`close` succeeds. Arrays are ``(band, row, col)``; bands are numbered from 1.

    Parameters
    ----------
    path : path-like or str
        The export folder (it may exist and hold other exports), or a URL (``gs://...``,
        ``s3://...``, ``memory://...``): the shards are made locally and uploaded, then the
        mixer last.
    width, height, count : int
        Raster size and number of bands.
    dtype : str or numpy.dtype
        The dtype of the bands as written (the spill keeps it; kinds convert it).
    crs : CRS or str
        Written to the mixer (``EPSG:n``, or WKT).
    transform : Affine
        The raster's transform; it becomes the mixer's ``doubleMatrix``.
    nodata : float, optional
        Pixels equal to it are masked and written as ``defaultValue``.
    file_name_prefix : str, optional
        ``PREFIX`` of ``PREFIX-00000.tfrecord.gz``; the folder's name by default.
    format_options : mapping, optional
        Earth Engine's ``formatOptions`` (camelCase keys); the same keys in snake_case may be
        given as keyword arguments.
    kinds : str, sequence or mapping, optional
        Feature kind per band: ``"float"`` (default, Earth Engine's coercion), ``"int64"``
        (``int64_list``) or ``"bytes"`` (one raw uint8 value); by band number or name.
    pad_edges : bool
        Pad the last patch row and column with ``defaultValue`` instead of dropping the pixels
        that do not fill a whole patch (Earth Engine drops them).
    overwrite : bool
        Replace an export with the same prefix in the folder.
    compression_level : int
        zlib level (0-9) of gzip shards; mapped to isal's levels when isal is installed.
    storage_options : dict, optional
        fsspec options when ``path`` is a URL.
    workers : int
        Threads compressing shards beside the encoding.

    Raises
    ------
    OptionError
        An argument is missing, unknown or invalid (checked before anything is written).
    ExportExistsError
        The destination already holds this export and ``overwrite`` is False.
    """

    mode = "w"

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        width: int,
        height: int,
        count: int,
        dtype: Any = "float32",
        crs: Any = None,
        transform: Affine | None = None,
        nodata: float | None = None,
        file_name_prefix: str | None = None,
        format_options: Mapping[str, Any] | None = None,
        kinds: Any = None,
        pad_edges: bool = False,
        overwrite: bool = False,
        compression_level: int = 6,
        workers: int = 2,
        storage_options: StorageOptions = None,
        **kwargs: Any,
    ) -> None:
        self.name = os.fspath(path)
        unknown = set(kwargs) - _FORMAT_KWARGS - _IGNORED_PROFILE_KEYS - {"driver"}
        if unknown:
            raise OptionError(
                f"unknown argument(s) {', '.join(sorted(unknown))} for writing '{self.name}'"
            )
        driver = kwargs.pop("driver", DRIVER) or DRIVER
        if driver != DRIVER:
            raise OptionError(f"driver must be {DRIVER!r}, not {driver!r}")
        self.options = FormatOptions.from_ee(
            format_options, **{k: v for k, v in kwargs.items() if k in _FORMAT_KWARGS}
        )
        for key, value in (("width", width), ("height", height), ("count", count)):
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
                raise OptionError(f"{key} must be a positive integer, not {value!r}")
        self._width, self._height, self._count = int(width), int(height), int(count)
        try:
            self._dtype = np.dtype(dtype)
        except TypeError:
            raise OptionError(f"dtype {dtype!r} is not a numpy dtype") from None
        if crs is None:
            raise OptionError("crs is required: an export's mixer records it (e.g. 'EPSG:4326')")
        try:
            self._crs = CRS.from_user_input(crs)
        except Exception as exc:  # rasterio's CRSError
            raise OptionError(f"crs {crs!r} is not understood: {exc}") from exc
        if transform is None:
            raise OptionError("transform is required: it becomes the mixer's affine")
        if not isinstance(transform, Affine):
            transform = Affine(*tuple(transform)[:6])
        if transform.determinant == 0:
            raise OptionError(f"transform {transform!r} is degenerate")
        self._transform = transform
        self._nodata = None if nodata is None else float(nodata)
        if compression_level not in range(10):
            raise OptionError(f"compression_level must be 0 to 9, not {compression_level!r}")
        self.compression_level = compression_level
        self.workers = workers
        self.pad_edges = bool(pad_edges)
        self._kinds_arg = kinds
        self._descriptions: list[str | None] = [None] * self._count
        self._tags: dict[str, str] = {}
        prefix = file_name_prefix or storage.basename(storage.abspath(self.name))
        self.plan(strict=False)  # every check that does not need band names, before any file
        self._destination = open_destination(path, prefix, overwrite, storage_options)
        self._closed = False
        self.files: list[str] = []
        # The spill file is made by the first write (or by close()), so that close_from() --
        # export() streaming a raster -- never makes one.
        self._spills: list[Spill] = []
        # Without close(), the temporary folder goes when the writer does: nothing committed.
        self._finalizer = weakref.finalize(self, _cleanup, self._destination, self._spills)

    # -- description ---------------------------------------------------------------------

    @property
    def dtype(self) -> np.dtype:
        """The dtype of the bands as written."""
        return self._dtype

    @property
    def dtypes(self) -> tuple[str, ...]:
        """The dtype of each band."""
        return (self._dtype.name,) * self._count

    @property
    def kinds(self) -> tuple[str, ...]:
        """Feature kind of each band."""
        return tuple(parse_kinds(self._kinds_arg, self.descriptions, self._count))

    @property
    def descriptions(self) -> tuple[str, ...]:
        """Band names (feature keys); ``b1``, ``b2``... as Earth Engine names bands by default."""
        return tuple(d if d else f"b{i + 1}" for i, d in enumerate(self._descriptions))

    @descriptions.setter
    def descriptions(self, value: Sequence[str | None]) -> None:
        value = list(value)
        if len(value) != self._count:
            raise OptionError(f"descriptions needs {self._count} names, not {len(value)}")
        self._check_writable()
        self._descriptions = [None if v is None else str(v) for v in value]

    def set_band_description(self, bidx: int, value: str) -> None:
        """Name band ``bidx`` (from 1); the name is its feature key."""
        self._check_writable()
        self._descriptions[self._band(bidx)] = str(value)

    def update_tags(self, bidx: int = 0, ns: str | None = None, **kwargs: Any) -> None:
        """Keep metadata tags on the dataset (exports have nowhere to store them)."""
        self._check_writable()
        if bidx:
            self._band(bidx)
        self._tags.update({str(k): str(v) for k, v in kwargs.items()})

    def tags(self, bidx: int = 0, ns: str | None = None) -> dict[str, str]:
        """Return the tags given to :meth:`update_tags`."""
        return dict(self._tags)

    @property
    def block_shapes(self) -> list[tuple[int, int]]:
        """``(rows, cols)`` of a block, for each band: blocks are the patches to be written."""
        o = self.options
        return [(o.patch_height or self._height, o.patch_width or self._width)] * self._count

    @property
    def profile(self) -> dict[str, Any]:
        """``meta`` plus the patch layout and the format options as keyword arguments."""
        return {**super().profile, "format_options": self.options.to_ee()}

    def plan(self, strict: bool = True) -> ExportPlan:
        """Return the export's plan (features and grid) for the current band names.

        Parameters
        ----------
        strict : bool
            False when band names may still change: kinds given for other names are checked
            against the dtype only.

        Raises
        ------
        OptionError
            The band names, kinds or options do not fit together.
        """
        names = self.descriptions
        kinds = parse_kinds(self._kinds_arg, names, self._count, strict)
        if isinstance(self._kinds_arg, Mapping):
            kinds += [str(k) for k in self._kinds_arg.values()]
        for name, kind in zip((*names, *["?"] * (len(kinds) - len(names))), kinds, strict=True):
            check_kind(kind, self._dtype, name)
        kinds = kinds[: self._count]
        # Array bands are found by name, so before the names are final they are left out.
        options = self.options if strict else dataclasses.replace(self.options, tensor_depths={})
        plan = plan_export(
            names,
            kinds,
            options,
            width=self._width,
            height=self._height,
            transform=self._transform,
            pad_edges=self.pad_edges,
        )
        if framed_size(plan.min_record_size()) > self.options.max_file_size:
            raise OptionError(
                f"one record holds at least {plan.min_record_size()} bytes, more than maxFileSize "
                f"({self.options.max_file_size}), and a record is never split: raise maxFileSize "
                "or use smaller patchDimensions"
            )
        return plan

    # -- writing -------------------------------------------------------------------------

    def write(
        self,
        arr: np.ndarray,
        indexes: int | Sequence[int] | None = None,
        window: Window | tuple | None = None,
        masked: bool | None = None,
    ) -> None:
        """Write an array into bands of the raster, or into a window of them.

        Parameters
        ----------
        arr : numpy.ndarray or numpy.ma.MaskedArray
            ``(bands, rows, cols)``, or ``(rows, cols)`` when ``indexes`` is an int. Masked
            pixels are written as ``defaultValue``.
        indexes : int or sequence of int, optional
            Band numbers; all bands by default.
        window : Window, optional
            Where to write; the whole raster by default. Windows may come in any order.
        masked : bool, optional
            Accepted for rasterio compatibility; a masked array's mask is always honoured.

        Raises
        ------
        OptionError
            The array's shape or dtype does not fit.
        WindowError
            The window is not within the raster.
        """
        self._check_writable()
        bands, arr3 = self._bands_and_array(arr, indexes)
        win = (
            Window(0, 0, self._width, self._height)
            if window is None
            else to_int_window(window, self._width, self._height)
        )
        rows, cols = int(win.height), int(win.width)
        if arr3.shape[1:] != (rows, cols):
            raise OptionError(
                f"the array's rows and columns {arr3.shape[1:]} do not match the window's "
                f"({rows}, {cols}) in '{self.name}'"
            )
        if not np.can_cast(arr3.dtype, self._dtype, casting="same_kind"):
            raise OptionError(
                f"cannot write {arr3.dtype} values into the {self._dtype} bands of '{self.name}': "
                f"convert them, or open with dtype={arr3.dtype.name!r}"
            )
        mask = np.ma.getmask(arr3)
        has_mask = mask is not np.ma.nomask and bool(np.any(mask))
        self._spill.write(
            bands,
            np.ma.getdata(arr3),
            np.broadcast_to(mask, arr3.shape) if has_mask else None,
            int(win.row_off),
            int(win.col_off),
        )

    def write_band(self, bidx: int, arr: np.ndarray, window: Window | None = None) -> None:
        """Write a 2D array into band ``bidx`` (rasterio's older spelling of :meth:`write`)."""
        self.write(arr, bidx, window=window)

    def write_mask(self, mask_array: np.ndarray | bool, window: Window | None = None) -> None:
        """Write the dataset mask: 0 (or False) marks pixels masked in every band."""
        self._check_writable()
        win = (
            Window(0, 0, self._width, self._height)
            if window is None
            else to_int_window(window, self._width, self._height)
        )
        rows, cols = int(win.height), int(win.width)
        invalid = np.broadcast_to(np.asarray(mask_array) == 0, (rows, cols))
        self._spill.write_dataset_mask(invalid, int(win.row_off), int(win.col_off))

    def _bands_and_array(
        self, arr: Any, indexes: int | Sequence[int] | None
    ) -> tuple[list[int], np.ndarray]:
        arr = arr if isinstance(arr, np.ndarray) else np.asanyarray(arr)
        if indexes is None:
            bands = list(range(self._count))
            if arr.ndim == 2 and self._count == 1:
                arr = arr[np.newaxis]
        elif isinstance(indexes, int | np.integer):
            bands = [self._band(int(indexes))]
            if arr.ndim != 2:
                raise OptionError(
                    f"writing one band (indexes={indexes}) takes a 2D array, not shape {arr.shape}"
                )
            arr = arr[np.newaxis]
        else:
            bands = [self._band(i) for i in indexes]
        if arr.ndim != 3 or arr.shape[0] != len(bands):
            raise OptionError(
                f"an array of shape {arr.shape} does not fit {len(bands)} band(s) of "
                f"'{self.name}': give (bands, rows, cols)"
            )
        if arr.dtype.kind not in "biuf":
            raise OptionError(f"cannot write {arr.dtype} values: bands hold real numbers")
        return bands, arr

    def _check_writable(self) -> None:
        """Raise :class:`~tfrecord_io.errors.DatasetClosedError` once written or aborted."""
        self._check_open()

    # -- closing -------------------------------------------------------------------------

    @property
    def _spill(self) -> Spill:
        """The raster written so far, on disk; made when first needed."""
        if not self._spills:
            self._spills.append(
                Spill(
                    self._destination.temp_path,
                    self._count,
                    self._height,
                    self._width,
                    self._dtype,
                    self._nodata,
                )
            )
        return self._spills[0]

    def close(self) -> None:
        """Encode the export, write shards and mixer, and move them into the destination.

        On any error nothing is left in the destination.
        """
        if self._closed:
            return
        self.close_from(self._spill)

    def close_from(
        self,
        source: RowSource | Any,
        progress: Callable[[int, int], None] | None = None,
        write: Callable[..., list[str]] = write_export,
    ) -> list[str]:
        """Encode the export from ``source`` instead of the written windows, and close.

        Used by :func:`tfrecord_io.export` to stream a raster that can be read row by row:
        no spill file is made then.

        Parameters
        ----------
        source : RowSource
            ``read_rows(row_start, row_stop)`` -> ``(values, masked)``; or whatever ``write``
            takes as its rows.
        progress : callable, optional
            ``progress(done_patches, total_patches)``, called after each patch row.
        write : callable
            The write pipeline, called as :func:`~tfrecord_io.image.write.write_export` is
            (a distributed export passes its own).

        Returns
        -------
        list of str
            The files written: shards in order, then the mixer.
        """
        self._check_writable()
        try:
            self.files = write(
                self.plan(),
                source,
                self._destination,
                crs=self._crs,
                level=self.compression_level,
                workers=self.workers,
                progress=progress,
                name=self.name,
            )
            return self.files
        finally:
            self._closed = True
            self._finalizer()

    def abort(self) -> None:
        """Close without writing anything to the destination."""
        if not self._closed:
            self._closed = True
            self._finalizer()

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def _cleanup(destination: AnyDestination, spills: list[Spill]) -> None:
    for spill in spills:
        spill.close()
    destination.abort()
