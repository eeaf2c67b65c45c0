"""What the reading and the writing face of an export share: :class:`DatasetBase`.

As rasterio's ``DatasetBase`` sits under ``DatasetReaderBase`` and ``DatasetWriterBase``, this
class holds the rasterio-style description both faces give (driver, size, bands, georeferencing,
``meta`` and ``profile``), the band-number check, the closed check and the context manager.
:class:`~tfrecord_io.image.dataset.EETFRecordDataset` and
:class:`~tfrecord_io.image.writer.EETFRecordWriter` derive from it.
"""

from __future__ import annotations

import math
from typing import Any, Generic, Self, TypeVar, overload

import numpy as np
from affine import Affine
from rasterio.coords import BoundingBox
from rasterio.crs import CRS
from rasterio.transform import TransformMethodsMixin
from rasterio.windows import WindowMethodsMixin

from tfrecord_io.errors import BandIndexError, DatasetClosedError

__all__ = ["DRIVER", "DatasetBase"]

DRIVER = "EETFRecord"


_T = TypeVar("_T")


class _ReadOnly(Generic[_T]):
    """A read-only public attribute ``name`` that gives the subclass's ``_name``.

    rasterio's datasets expose their description as read-only properties; this stands for the
    one-line getters, one per attribute, that would otherwise repeat.
    """

    def __init__(self, doc: str) -> None:
        self.__doc__ = doc
        self._private = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self._private = f"_{name}"

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> Self: ...
    @overload
    def __get__(self, obj: object, owner: type | None = None) -> _T: ...
    def __get__(self, obj: object | None, owner: type | None = None) -> _T | Self:
        if obj is None:
            return self
        value: _T = getattr(obj, self._private)
        return value

    def __set__(self, obj: object, value: _T) -> None:
        raise AttributeError(f"{self._private[1:]!r} is read-only")


class DatasetBase(WindowMethodsMixin, TransformMethodsMixin):
    """The rasterio-shaped description shared by an export opened for reading or writing.

    Subclasses set ``name``, ``_closed``, ``_width``, ``_height``, ``_count``, ``_crs``,
    ``_transform`` and ``_nodata`` in their constructor, and give ``dtypes``,
    ``block_shapes``, ``descriptions``, ``tags`` and ``close``.
    """

    driver = DRIVER
    mode: str
    name: str
    _closed: bool
    _width: int
    _height: int
    _count: int
    _crs: CRS
    _transform: Affine
    _nodata: float | None

    # -- description -----------------------------------------------------------------------

    closed: _ReadOnly[bool] = _ReadOnly("True once the dataset is closed.")
    width: _ReadOnly[int] = _ReadOnly("Width in pixels (of the unpadded mosaic, for an export).")
    height: _ReadOnly[int] = _ReadOnly("Height in pixels (of the unpadded mosaic, for an export).")
    count: _ReadOnly[int] = _ReadOnly("Number of bands.")
    crs: _ReadOnly[CRS] = _ReadOnly("The CRS (the mixer's ``crs``).")
    transform: _ReadOnly[Affine] = _ReadOnly(
        "The affine transform of the unpadded grid's top-left corner (``doubleMatrix``)."
    )
    nodata: _ReadOnly[float | None] = _ReadOnly(
        "The nodata value: masked when read, written as ``defaultValue`` (exports store none)."
    )

    @property
    def shape(self) -> tuple[int, int]:
        """``(height, width)``."""
        return self._height, self._width

    @property
    def indexes(self) -> tuple[int, ...]:
        """Band numbers, from 1."""
        return tuple(range(1, self._count + 1))

    @property
    def dtypes(self) -> tuple[str, ...]:
        """The dtype of each band."""
        raise NotImplementedError

    @property
    def block_shapes(self) -> list[tuple[int, int]]:
        """``(rows, cols)`` of a block, for each band: blocks are the export's patches."""
        raise NotImplementedError

    @property
    def nodatavals(self) -> tuple[float | None, ...]:
        """The nodata value of each band."""
        return (self._nodata,) * self._count

    @property
    def bounds(self) -> BoundingBox:
        """``(left, bottom, right, top)``, as rasterio computes it."""
        a, b, c, d, e, f = tuple(self._transform)[:6]
        if b == d == 0:
            return BoundingBox(c, f + e * self._height, c + a * self._width, f)
        corners = ((0, 0), (0, self._height), (self._width, self._height), (self._width, 0))
        xs, ys = zip(*(self._transform * corner for corner in corners), strict=True)
        return BoundingBox(min(xs), min(ys), max(xs), max(ys))

    @property
    def res(self) -> tuple[float, float]:
        """``(x, y)`` pixel size, as rasterio computes it."""
        a, b, _, d, e, _ = tuple(self._transform)[:6]
        if b == d == 0:
            return abs(a), abs(e)
        return math.sqrt(a * a + d * d), math.sqrt(b * b + e * e)

    @property
    def units(self) -> tuple[str | None, ...]:
        """Band units (exports record none)."""
        return (None,) * self._count

    @property
    def scales(self) -> tuple[float, ...]:
        """Band scales (always 1)."""
        return (1.0,) * self._count

    @property
    def offsets(self) -> tuple[float, ...]:
        """Band offsets (always 0)."""
        return (0.0,) * self._count

    @property
    def meta(self) -> dict[str, Any]:
        """Rasterio's basic metadata: driver, dtype, nodata, size, count, crs, transform."""
        return {
            "driver": DRIVER,
            "dtype": self.dtypes[0],
            "nodata": self._nodata,
            "width": self._width,
            "height": self._height,
            "count": self._count,
            "crs": self._crs,
            "transform": self._transform,
        }

    @property
    def profile(self) -> dict[str, Any]:
        """``meta`` plus the block (patch) layout, as rasterio's profile."""
        block_height, block_width = self.block_shapes[0]
        return {**self.meta, "blockxsize": block_width, "blockysize": block_height, "tiled": True}

    # -- lifecycle -------------------------------------------------------------------------

    def close(self) -> None:
        """Close the dataset."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<{state} {type(self).__name__} name='{self.name}' mode='{self.mode}'>"

    # -- checks ----------------------------------------------------------------------------

    def _check_open(self) -> None:
        """Raise :class:`DatasetClosedError` if the dataset is closed."""
        if self._closed:
            raise DatasetClosedError(
                f"'{self.name}' is closed: open it again with tfrecord_io.open() to use it"
            )

    def _band(self, bidx: int) -> int:
        """Return the position (from 0) of band number ``bidx`` (from 1), checked."""
        if (
            isinstance(bidx, bool)
            or not isinstance(bidx, int | np.integer)
            or not (1 <= bidx <= self._count)
        ):
            raise BandIndexError(f"band index {bidx} out of range (not in {self.indexes})")
        return int(bidx) - 1
