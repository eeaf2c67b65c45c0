"""Tests of the patch-grid arithmetic in tfrecord_io.image.grid (no I/O)."""

from __future__ import annotations

import numpy as np
import pytest
from affine import Affine
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rasterio.windows import Window

from tfrecord_io import GridError, KernelSizeError, WindowError
from tfrecord_io.image.grid import (
    PatchGrid,
    PatchSample,
    infer_margins,
    kernel_for_margin,
    margin_for_kernel,
    sample,
    to_int_window,
)
from tfrecord_io.image.mixer import Mixer

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def grids(draw: st.DrawFn, max_patch: int = 12) -> PatchGrid:
    return PatchGrid(
        patch_width=draw(st.integers(1, max_patch)),
        patch_height=draw(st.integers(1, max_patch)),
        patches_per_row=draw(st.integers(1, 6)),
        patch_rows=draw(st.integers(1, 6)),
        transform=Affine(draw(st.sampled_from([1.0, 30.0])), 0, 100, 0, -2.0, 500),
        margin_x=draw(st.integers(0, 4)),
        margin_y=draw(st.integers(0, 4)),
    )


@st.composite
def grid_and_window(draw: st.DrawFn) -> tuple[PatchGrid, Window]:
    grid = draw(grids())
    col = draw(st.integers(0, grid.width - 1))
    row = draw(st.integers(0, grid.height - 1))
    width = draw(st.integers(1, grid.width - col))
    height = draw(st.integers(1, grid.height - row))
    return grid, Window(col, row, width, height)


def _samples(grid: PatchGrid, window: Window) -> list[PatchSample]:
    """How each patch fills ``window`` read at full resolution."""
    rows = sample(window.row_off, window.height, window.height)
    cols = sample(window.col_off, window.width, window.width)
    return list(grid.iter_samples(rows, cols))


# -- index <-> (row, col) <-> window --------------------------------------------------------


@SETTINGS
@given(grid=grids(), data=st.data())
def test_patch_index_rowcol_and_window_round_trip(grid: PatchGrid, data: st.DataObject) -> None:
    index = data.draw(st.integers(0, grid.total_patches - 1))
    row, col = grid.patch_rowcol(index)
    assert grid.patch_index(row, col) == index
    window = grid.patch_window(index)
    assert window == Window(
        col * grid.patch_width, row * grid.patch_height, grid.patch_width, grid.patch_height
    )
    assert [part.index for part in _samples(grid, window)] == [index]


@SETTINGS
@given(grid=grids())
def test_patch_windows_tile_the_mosaic_in_row_major_order(grid: PatchGrid) -> None:
    cover = np.zeros((grid.height, grid.width), int)
    starts = []
    for index in range(grid.total_patches):
        w = grid.patch_window(index)
        cover[w.toslices()] += 1
        starts.append((w.row_off, w.col_off))
    assert (cover == 1).all()
    assert starts == sorted(starts)


@pytest.mark.parametrize("index", [-1, 12])
def test_patch_index_outside_grid_raises_grid_error(index: int) -> None:
    grid = PatchGrid(4, 4, 4, 3)
    with pytest.raises(GridError):
        grid.patch_rowcol(index)


@pytest.mark.parametrize(("row", "col"), [(-1, 0), (3, 0), (0, 4), (0, -1)])
def test_patch_rowcol_outside_grid_raises_grid_error(row: int, col: int) -> None:
    with pytest.raises(GridError):
        PatchGrid(4, 4, 4, 3).patch_index(row, col)


# -- iter_samples ---------------------------------------------------------------------------


def _tiles(grid: PatchGrid, mosaic: np.ndarray) -> list[np.ndarray]:
    """Cut ``mosaic`` into stored tiles, margins holding the neighbours (-1 beyond)."""
    padded = np.pad(mosaic, ((grid.margin_y,) * 2, (grid.margin_x,) * 2), constant_values=-1)
    tiles = []
    for index in range(grid.total_patches):
        row, col = grid.patch_rowcol(index)
        y, x = row * grid.patch_height, col * grid.patch_width
        tiles.append(padded[y : y + grid.tile_height, x : x + grid.tile_width])
    return tiles


@SETTINGS
@given(case=grid_and_window())
def test_iter_samples_assembles_a_whole_pixel_window_exactly_once_in_blocks(
    case: tuple[PatchGrid, Window],
) -> None:
    grid, window = case
    mosaic = np.arange(grid.height * grid.width).reshape(grid.height, grid.width)
    tiles = _tiles(grid, mosaic)
    out = np.full((window.height, window.width), -2)
    hits = np.zeros_like(out)
    indexes = []
    for part in _samples(grid, window):
        assert part.is_block
        out[part.out_rows, part.out_cols] = tiles[part.index][part.tile_rows, part.tile_cols]
        hits[part.out_rows, part.out_cols] += 1
        indexes.append(part.index)
    assert (hits == 1).all()
    np.testing.assert_array_equal(out, mosaic[window.toslices()])
    assert indexes == sorted(set(indexes))


# -- kernels and margins --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kernel", "margin"), [(1, 0), (2, 1), (3, 1), (4, 2), (5, 2), (128, 64), (129, 64)]
)
def test_margin_is_floor_of_half_the_kernel(kernel: int, margin: int) -> None:
    assert margin_for_kernel(kernel) == margin


@given(margin=st.integers(0, 1000))
def test_kernel_for_margin_gives_back_the_margin(margin: int) -> None:
    assert margin_for_kernel(kernel_for_margin(margin)) == margin


@pytest.mark.parametrize("kernel", [0, -2])
def test_non_positive_kernel_raises_grid_error(kernel: int) -> None:
    with pytest.raises(GridError):
        margin_for_kernel(kernel)


def test_grid_kernel_size_reports_even_kernel_or_one() -> None:
    assert PatchGrid(8, 8, 1, 1, margin_x=0, margin_y=3).kernel_size == (1, 6)


@SETTINGS
@given(
    pw=st.integers(1, 64),
    ph=st.integers(1, 64),
    kernel=st.integers(1, 40),
    depths=st.lists(st.integers(1, 5), max_size=3),
)
def test_infer_margins_recovers_square_kernel_margins(
    pw: int, ph: int, kernel: int, depths: list[int]
) -> None:
    m = kernel // 2
    tile = (pw + 2 * m) * (ph + 2 * m)
    counts = [tile] + [d * tile for d in depths]
    assert infer_margins(counts, pw, ph) == (m, m)


@SETTINGS
@given(pw=st.integers(1, 64), ph=st.integers(1, 64), kernel=st.integers(1, 40))
def test_infer_margins_ignores_feature_order(pw: int, ph: int, kernel: int) -> None:
    m = kernel // 2
    tile = (pw + 2 * m) * (ph + 2 * m)
    assert infer_margins([3 * tile, tile, 2 * tile], pw, ph) == (m, m)


@pytest.mark.parametrize(
    ("patch", "kernel"), [((256, 256), 128), ((256, 256), 1), ((64, 48), 16), ((30, 7), 5)]
)
def test_infer_margins_recovers_documented_cases(patch: tuple[int, int], kernel: int) -> None:
    m = kernel // 2
    tile = (patch[0] + 2 * m) * (patch[1] + 2 * m)
    assert infer_margins([tile], *patch) == (m, m)


@pytest.mark.parametrize("count", [63, 65, 8 * 8 * 2 + 1, 7])
def test_count_fitting_no_tile_raises_grid_error(count: int) -> None:
    with pytest.raises(GridError) as excinfo:
        infer_margins([count], 8, 8, source="shard.tfrecord.gz")
    assert not isinstance(excinfo.value, KernelSizeError)
    assert "shard.tfrecord.gz" in str(excinfo.value)


def test_empty_band_raises_grid_error() -> None:
    with pytest.raises(GridError):
        infer_margins([0, 64], 8, 8)


def test_ambiguous_counts_raise_kernel_size_error_listing_candidates() -> None:
    # gcd is 512 * 512: both a 256 x 256 tile (kernel 1) and a 512 x 512 tile (kernel 256)
    # divide every count, and neither count is a tile area on its own.
    with pytest.raises(KernelSizeError) as excinfo:
        infer_margins([4 * 512 * 512, 3 * 512 * 512], 256, 256, source="export")
    message = str(excinfo.value)
    assert "kernel_size=(1, 1)" in message
    assert "kernel_size=(256, 256)" in message
    assert "pass kernel_size" in message.lower()


def test_kernel_size_error_is_a_grid_error() -> None:
    assert issubclass(KernelSizeError, GridError)


# -- to_int_window --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "window",
    [Window(0, 0, 0, 5), Window(0, 0, 5, 0), ((3, 3), (1, 5)), Window(2, 2, 0.2, 0.2)],
    ids=str,
)
def test_empty_window_raises_window_error(window: Window | tuple) -> None:
    with pytest.raises(WindowError, match="empty"):
        to_int_window(window, 10, 10)


@pytest.mark.parametrize(
    "window",
    [Window(-1, 0, 5, 5), Window(0, -1, 5, 5), Window(6, 0, 5, 5), Window(0, 6, 5, 5)],
    ids=str,
)
def test_window_outside_dataset_raises_window_error(window: Window) -> None:
    with pytest.raises(WindowError, match="boundless"):
        to_int_window(window, 10, 10)


def test_window_outside_dataset_is_allowed_when_boundless() -> None:
    assert to_int_window(Window(-3, 8, 5, 5), 10, 10, boundless=True) == Window(-3, 8, 5, 5)


def test_slice_pair_window_equals_window() -> None:
    assert to_int_window(((1, 4), (2, 9)), 10, 10) == Window(2, 1, 7, 3)


def test_not_a_window_raises_window_error() -> None:
    with pytest.raises(WindowError):
        to_int_window("nope", 10, 10)  # type: ignore[arg-type]


def test_fractional_window_rounds_to_nearest_pixel_edges() -> None:
    assert to_int_window(Window(0.4, 1.6, 3.2, 2.0), 10, 10) == Window(0, 2, 4, 2)


@pytest.mark.parametrize(
    ("field", "value"), [("patch_width", 0), ("patches_per_row", -1), ("margin_x", -1)]
)
def test_invalid_grid_raises_grid_error(field: str, value: int) -> None:
    args = {"patch_width": 4, "patch_height": 4, "patches_per_row": 2, "patch_rows": 2}
    args[field] = value
    with pytest.raises(GridError):
        PatchGrid(**args)  # type: ignore[arg-type]


# -- from a mixer, and the interior of a tile -------------------------------------------------


@SETTINGS
@given(grid=grids())
def test_from_mixer_gives_the_mixer_grid_with_the_margins(grid: PatchGrid) -> None:
    mixer = Mixer(
        crs="EPSG:4326",
        transform=grid.transform,
        patch_width=grid.patch_width,
        patch_height=grid.patch_height,
        patches_per_row=grid.patches_per_row,
        total_patches=grid.total_patches,
    )
    assert PatchGrid.from_mixer(mixer, grid.margin_x, grid.margin_y) == grid


def test_from_mixer_with_a_negative_margin_raises_grid_error() -> None:
    mixer = Mixer("EPSG:4326", Affine.identity(), 4, 4, 2, 4)
    with pytest.raises(GridError, match="margin_y"):
        PatchGrid.from_mixer(mixer, 0, -1)


@SETTINGS
@given(grid=grids())
def test_interior_of_each_tile_is_its_patch(grid: PatchGrid) -> None:
    mosaic = np.arange(grid.height * grid.width).reshape(grid.height, grid.width)
    for index, tile in enumerate(_tiles(grid, mosaic)):
        window = grid.patch_window(index)
        np.testing.assert_array_equal(tile[grid.interior], mosaic[window.toslices()])


def test_interior_slices_rows_by_margin_y_and_cols_by_margin_x() -> None:
    grid = PatchGrid(5, 3, 1, 1, margin_x=2, margin_y=1)
    assert grid.interior == (slice(1, 4), slice(2, 7))
