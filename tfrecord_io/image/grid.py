"""Patch-grid geometry: pure arithmetic, no I/O.

An export cuts the image into ``patches_per_row x patch_rows`` patches of
``patch_width x patch_height`` pixels, in row-major order. Each stored tile is the patch plus a
margin of ``floor(kernel / 2)`` pixels on every side ([seen] for even kernels, [inferred] for odd
ones; :func:`margin_for_kernel` is the one place that rule lives). The mixer's transform places
the top-left corner of the unpadded grid, so it is the mosaic's transform as it is.

Arrays are ``(band, row, col)``; windows are rasterio's :class:`~rasterio.windows.Window`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from affine import Affine
from rasterio.windows import Window

from tfrecord_io.errors import GridError, KernelSizeError, WindowError

_IDENTITY = Affine.identity()  # frozen: one shared default is safe

if TYPE_CHECKING:
    from tfrecord_io.image.mixer import Mixer

__all__ = [
    "PatchGrid",
    "PatchSample",
    "as_index",
    "infer_margins",
    "kernel_for_margin",
    "margin_for_kernel",
    "sample",
    "to_int_window",
]


def margin_for_kernel(kernel: int) -> int:
    """Return the margin stored on each side of a patch for a kernel size: ``floor(k / 2)``."""
    if kernel < 1:
        raise GridError(f"kernel sizes are positive integers, not {kernel}")
    return kernel // 2


def kernel_for_margin(margin: int) -> int:
    """Return the smallest kernel size giving ``margin``: 1 for none, else ``2 * margin``.

    A kernel ``2m`` and ``2m + 1`` store the same margin, so a reader cannot tell them apart.
    """
    return 2 * margin if margin else 1


@dataclass(frozen=True, eq=False)
class PatchSample:
    """The output pixels one patch fills: rows and columns as slices where they run, else arrays.

    ``out[out_rows, out_cols]`` takes ``tile[tile_rows, tile_cols]`` (with :func:`numpy.ix_`
    where an index is an array).
    """

    index: int
    tile_rows: slice | np.ndarray
    tile_cols: slice | np.ndarray
    out_rows: slice | np.ndarray
    out_cols: slice | np.ndarray

    @property
    def is_block(self) -> bool:
        """True when every index is a slice, so the copy is one rectangular block."""
        return all(
            isinstance(i, slice)
            for i in (self.tile_rows, self.tile_cols, self.out_rows, self.out_cols)
        )

    @property
    def out_index(self) -> Any:
        """Index of the output pixels: a pair of slices for a block, else :func:`numpy.ix_`."""
        if self.is_block:  # every unscaled read: plain slicing, no fancy indexing
            return (self.out_rows, self.out_cols)
        return np.ix_(_indices(self.out_rows), _indices(self.out_cols))

    @property
    def tile_index(self) -> Any:
        """Index of the tile pixels, as :attr:`out_index`."""
        if self.is_block:
            return (self.tile_rows, self.tile_cols)
        return np.ix_(_indices(self.tile_rows), _indices(self.tile_cols))


def _indices(index: slice | np.ndarray) -> np.ndarray:
    """Return an index as an array (for :func:`numpy.ix_`)."""
    if isinstance(index, slice):
        return np.arange(index.start, index.stop)
    return index


def sample(offset: float, length: float, size: int) -> np.ndarray:
    """Return the source pixel of each of ``size`` output pixels over a window's axis.

    GDAL's nearest-neighbour rule: output pixel ``i`` takes source pixel
    ``floor(offset + (i + 0.5) * length / size)``, which for ``size == length`` and a whole
    ``offset`` is simply ``offset + i``.
    """
    if size == length and offset == int(offset):
        return np.arange(int(offset), int(offset) + size)
    if size == 0:
        return np.zeros(0, dtype=np.int64)
    return np.floor(offset + (np.arange(size) + 0.5) * (length / size)).astype(np.int64)


def as_index(values: np.ndarray) -> slice | np.ndarray:
    """Return a slice for a run of consecutive integers, else the array itself."""
    if len(values) and bool(np.all(np.diff(values) == 1)):
        return slice(int(values[0]), int(values[-1]) + 1)
    return values


@dataclass(frozen=True)
class PatchGrid:
    """The geometry of an export's patch grid.

    Attributes
    ----------
    patch_width, patch_height : int
        Unpadded patch size in pixels.
    patches_per_row, patch_rows : int
        Grid size in patches.
    transform : Affine
        Transform of the unpadded mosaic (the mixer's ``doubleMatrix``).
    margin_x, margin_y : int
        Kernel margin stored on each side of a patch.
    """

    patch_width: int
    patch_height: int
    patches_per_row: int
    patch_rows: int
    transform: Affine = _IDENTITY
    margin_x: int = 0
    margin_y: int = 0

    def __post_init__(self) -> None:
        for name in ("patch_width", "patch_height", "patches_per_row", "patch_rows"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise GridError(f"{name} must be a positive integer, not {value!r}")
        for name in ("margin_x", "margin_y"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise GridError(f"{name} must be a non-negative integer, not {value!r}")

    @classmethod
    def from_mixer(cls, mixer: Mixer, margin_x: int = 0, margin_y: int = 0) -> PatchGrid:
        """Return the grid a mixer describes, with the kernel margins stored around each patch.

        Parameters
        ----------
        mixer : Mixer
            Gives the patch size, the grid size and the transform.
        margin_x, margin_y : int
            Pixels stored on each side of a patch (see :func:`margin_for_kernel`).

        Raises
        ------
        GridError
            A size is not a positive integer, or a margin is negative.
        """
        return cls(
            patch_width=mixer.patch_width,
            patch_height=mixer.patch_height,
            patches_per_row=mixer.patches_per_row,
            patch_rows=mixer.patch_rows,
            transform=mixer.transform,
            margin_x=margin_x,
            margin_y=margin_y,
        )

    @property
    def interior(self) -> tuple[slice, slice]:
        """``(rows, cols)`` of a stored tile that hold its patch: the tile without margins.

        ``tile[..., rows, cols]`` is the unpadded ``patch_height x patch_width`` patch.
        """
        return (
            slice(self.margin_y, self.margin_y + self.patch_height),
            slice(self.margin_x, self.margin_x + self.patch_width),
        )

    @property
    def kernel_size(self) -> tuple[int, int]:
        """``(x, y)`` kernel size implied by the margins (even, or 1 for none)."""
        return kernel_for_margin(self.margin_x), kernel_for_margin(self.margin_y)

    @property
    def total_patches(self) -> int:
        """Number of patches (records of an image export)."""
        return self.patches_per_row * self.patch_rows

    @property
    def width(self) -> int:
        """Mosaic width in pixels."""
        return self.patch_width * self.patches_per_row

    @property
    def height(self) -> int:
        """Mosaic height in pixels."""
        return self.patch_height * self.patch_rows

    @property
    def tile_width(self) -> int:
        """Stored tile width: the patch plus both margins."""
        return self.patch_width + 2 * self.margin_x

    @property
    def tile_height(self) -> int:
        """Stored tile height: the patch plus both margins."""
        return self.patch_height + 2 * self.margin_y

    @property
    def tile_pixels(self) -> int:
        """Values per band in one stored tile."""
        return self.tile_width * self.tile_height

    def patch_rowcol(self, index: int) -> tuple[int, int]:
        """Return the ``(row, col)`` of patch ``index`` in the grid."""
        if not 0 <= index < self.total_patches:
            raise GridError(f"patch {index} is outside the grid of {self.total_patches} patches")
        return divmod(index, self.patches_per_row)

    def patch_index(self, row: int, col: int) -> int:
        """Return the index of the patch at ``(row, col)``."""
        if not (0 <= row < self.patch_rows and 0 <= col < self.patches_per_row):
            raise GridError(
                f"patch ({row}, {col}) is outside the {self.patch_rows} x "
                f"{self.patches_per_row} grid"
            )
        return row * self.patches_per_row + col

    def patch_window(self, index: int) -> Window:
        """Return the window of patch ``index`` in the mosaic (without margins)."""
        row, col = self.patch_rowcol(index)
        return Window(
            col * self.patch_width, row * self.patch_height, self.patch_width, self.patch_height
        )

    def last_patch(self, window: Window) -> int | None:
        """Return the index of the last patch a window touches (None if it touches none)."""
        row_end = min(window.row_off + window.height, self.height)
        col_end = min(window.col_off + window.width, self.width)
        if row_end <= max(window.row_off, 0) or col_end <= max(window.col_off, 0):
            return None
        last_row = (math.ceil(row_end) - 1) // self.patch_height
        last_col = (math.ceil(col_end) - 1) // self.patch_width
        return self.patch_index(last_row, last_col)

    def iter_samples(self, rows: np.ndarray, cols: np.ndarray) -> Iterator[PatchSample]:
        """Yield, in export order, which output pixels each patch fills.

        Parameters
        ----------
        rows, cols : numpy.ndarray
            The mosaic row (column) each output row (column) takes, non-decreasing (see
            :func:`sample`); values outside the mosaic are left out.

        Yields
        ------
        PatchSample
            For each patch touched, its tile's rows and columns and the output's.
        """
        ph, pw = self.patch_height, self.patch_width
        # One pass over the rows and one over the columns: the samples are non-decreasing, so
        # each patch row (column) is one run of them.
        col_runs = [
            (pcol, as_index(cols[out] - pcol * pw + self.margin_x), as_index(out))
            for pcol, out in _runs(cols, (cols >= 0) & (cols < self.width), pw)
        ]
        for prow, out_rows in _runs(rows, (rows >= 0) & (rows < self.height), ph):
            tile_rows = as_index(rows[out_rows] - prow * ph + self.margin_y)
            out_rows_index = as_index(out_rows)
            for pcol, tile_cols, out_cols in col_runs:
                yield PatchSample(
                    index=self.patch_index(prow, pcol),
                    tile_rows=tile_rows,
                    tile_cols=tile_cols,
                    out_rows=out_rows_index,
                    out_cols=out_cols,
                )


def _runs(values: np.ndarray, inside: np.ndarray, size: int) -> list[tuple[int, np.ndarray]]:
    """Return ``(cell, positions)`` for each run of non-decreasing ``values // size`` inside."""
    positions = np.flatnonzero(inside)
    if not positions.size:
        return []
    cells = values[positions] // size
    starts = np.flatnonzero(np.r_[True, cells[1:] != cells[:-1]])
    ends = np.r_[starts[1:], positions.size]
    return [
        (int(cells[start]), positions[start:end]) for start, end in zip(starts, ends, strict=True)
    ]


def to_int_window(
    window: Window | tuple, width: int, height: int, boundless: bool = False
) -> Window:
    """Return ``window`` with whole-pixel offsets and sizes, checked against the mosaic.

    Parameters
    ----------
    window : Window or ((row_start, row_stop), (col_start, col_stop))
        The window to read. Fractional offsets and sizes are rounded to the nearest pixel.
    width, height : int
        Mosaic size.
    boundless : bool
        Allow the window to extend beyond the mosaic.

    Raises
    ------
    WindowError
        The window is empty, or not within the mosaic when ``boundless`` is False.
    """
    if not isinstance(window, Window):
        try:
            (r0, r1), (c0, c1) = window
        except (TypeError, ValueError):
            raise WindowError(f"not a window: {window!r}") from None
        window = Window.from_slices((r0, r1), (c0, c1))
    col_off = math.floor(window.col_off + 0.5)
    row_off = math.floor(window.row_off + 0.5)
    w = math.floor(window.col_off + window.width + 0.5) - col_off
    h = math.floor(window.row_off + window.height + 0.5) - row_off
    if w <= 0 or h <= 0:
        raise WindowError(f"the window {window!r} is empty")
    if not boundless and (
        col_off < 0 or row_off < 0 or col_off + w > width or row_off + h > height
    ):
        raise WindowError(
            f"the window {window!r} is not within the {width} x {height} dataset; "
            "pass boundless=True to read outside it"
        )
    return Window(col_off, row_off, w, h)


def infer_margins(
    counts: Sequence[int], patch_width: int, patch_height: int, source: str = "export"
) -> tuple[int, int]:
    """Infer the per-side kernel margins from the number of values per feature.

    A feature holds ``depth x tile_width x tile_height`` values, with tile = patch + 2 * margin.
    The rule, [inferred] and overridable with ``kernel_size``: assume the smallest feature is a
    plain band (depth 1), so its count is the tile area, and take the square kernel that gives
    it (square kernels are by far the most common). Failing that, take the one reading whose
    tile area divides every count. Several readings raise :class:`KernelSizeError`.

    Parameters
    ----------
    counts : sequence of int
        Values per feature in one record.
    patch_width, patch_height : int
        Unpadded patch size from the mixer.
    source : str
        Where the counts came from, for error messages.

    Returns
    -------
    tuple of (int, int)
        ``(margin_x, margin_y)``.

    Raises
    ------
    GridError
        No reading fits: a band's length does not fit the grid.
    KernelSizeError
        Several readings fit.
    """
    if not counts or min(counts) <= 0:
        raise GridError(f"{source}: a record has an empty band, so its kernel cannot be inferred")
    common = 0
    for n in counts:
        common = math.gcd(common, n)
    readings = list(_readings(common, patch_width, patch_height))
    plain = [
        r for r in readings if (patch_width + 2 * r[0]) * (patch_height + 2 * r[1]) == min(counts)
    ]
    for group in (plain, readings):
        square = [r for r in group if r[0] == r[1]]
        if len(square) == 1:
            return square[0]
        if square:
            raise _ambiguous(source, square)
    for group in (plain, readings):
        if len(group) == 1:
            return group[0]
        if group:
            raise _ambiguous(source, group)
    raise GridError(
        f"{source}: a band holds {min(counts)} values, which fits no tile of a "
        f"{patch_width} x {patch_height} patch with any kernel margin. The record does not "
        "belong to this mixer's grid, or patchDimensions is wrong."
    )


def _ambiguous(source: str, readings: list[tuple[int, int]]) -> KernelSizeError:
    choices = ", ".join(
        f"kernel_size=({kernel_for_margin(x)}, {kernel_for_margin(y)})" for x, y in readings
    )
    return KernelSizeError(
        f"{source}: the band lengths fit several kernel sizes ({choices}). "
        "Pass kernel_size=(x, y) to open() to choose."
    )


def _readings(common: int, patch_width: int, patch_height: int) -> Iterator[tuple[int, int]]:
    """Yield every ``(margin_x, margin_y)`` whose tile area divides ``common``."""
    mx = 0
    while (patch_width + 2 * mx) * patch_height <= common:
        tile_w = patch_width + 2 * mx
        if common % tile_w == 0:
            rest = common // tile_w
            for tile_h in _divisors(rest):
                if tile_h >= patch_height and (tile_h - patch_height) % 2 == 0:
                    yield mx, (tile_h - patch_height) // 2
        mx += 1


def _divisors(n: int) -> list[int]:
    """Return the divisors of ``n`` in increasing order."""
    small, large = [], []
    d = 1
    while d * d <= n:
        if n % d == 0:
            small.append(d)
            if d * d != n:
                large.append(n // d)
        d += 1
    return small + large[::-1]
