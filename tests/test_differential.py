"""Differential tests: the same assertions against a GeoTIFF and against the TFRecord export.

The GeoTIFF holds the export's mosaic (same crs, transform, dtype; tiled with the patch size as
block size) and is opened with ``rasterio.open``; the export is written by TensorFlow and opened
with ``tfrecord_io.open``. Each claim below runs on both, so a claim that GDAL itself fails is a
wrong claim, not a library bug. Then each value is compared between the two directly.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.coords import BoundingBox
from rasterio.crs import CRS
from rasterio.windows import Window
from rasterio.windows import transform as window_transform

import tfrecord_io

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

PATCH = (16, 16)  # GDAL's tiled GeoTIFF needs blocks in multiples of 16
HEIGHT, WIDTH = 48, 64  # 3 x 4 patches
TRANSFORMS = {
    "north_up": Affine(30.0, 0.0, 500000.0, 0.0, -30.0, 4200000.0),
    "south_up": Affine(0.25, 0.0, -12.0, 0.0, 0.25, -33.0),
}
WINDOWS = [Window(0, 0, 16, 16), Window(5, 7, 30, 33), Window(15, 15, 2, 2), Window(63, 47, 1, 1)]
OUT_SHAPES = [(3, 24, 32), (3, 17, 23), (3, 96, 100), (3, 5, 64)]


@dataclass
class Case:
    expected: np.ndarray
    band_names: tuple[str, ...]
    transform: Affine
    crs: str
    nodata: float | None
    geotiff: str
    export: Any


@pytest.fixture(
    params=[(t, n) for t in TRANSFORMS for n in (None, 0.0)],
    ids=lambda p: f"{p[0]}-nodata_{p[1]}",
)
def case(request: pytest.FixtureRequest, tf_export: Callable[..., Any], geotiff: Any) -> Case:
    orientation, nodata = request.param
    rng = np.random.default_rng(3)
    bands = {
        n: np.round(rng.normal(size=(HEIGHT + 4, WIDTH + 8)) * 3).astype(np.float32)
        for n in ("red", "nir", "swir")
    }
    info = tf_export(
        bands=bands,
        transform=TRANSFORMS[orientation],
        crs="EPSG:32633",
        patch_size=PATCH,
        kernel_size=(4, 4),
        max_file_size=20_000,
    )
    assert info.expected.shape == (3, HEIGHT, WIDTH)
    assert (info.expected == 0).any()
    tif = geotiff(
        np.ascontiguousarray(info.expected),
        crs=info.crs,
        transform=info.transform,
        block=PATCH,
        nodata=nodata,
        descriptions=info.band_names,
    )
    return Case(info.expected, info.band_names, info.transform, info.crs, nodata, tif, info)


@pytest.fixture(params=["geotiff", "eetfrecord"])
def ds(request: pytest.FixtureRequest, case: Case) -> Iterator[Any]:
    if request.param == "geotiff":
        dataset = rasterio.open(case.geotiff)
    else:
        dataset = tfrecord_io.open(case.export.folder, nodata=case.nodata)
    with dataset:
        yield dataset


@pytest.fixture
def both(case: Case) -> Iterator[tuple[Any, Any]]:
    with (
        rasterio.open(case.geotiff) as ref,
        tfrecord_io.open(case.export.folder, nodata=case.nodata) as ours,
    ):
        yield ref, ours


# -- the same claims on both ----------------------------------------------------------------


def test_size_and_band_numbers(ds: Any, case: Case) -> None:
    assert (ds.width, ds.height, ds.count) == (WIDTH, HEIGHT, 3)
    assert ds.shape == (HEIGHT, WIDTH)
    assert ds.indexes == (1, 2, 3)


def test_dtypes_crs_transform_nodata(ds: Any, case: Case) -> None:
    assert ds.dtypes == ("float32",) * 3
    assert ds.crs == CRS.from_epsg(32633)
    assert ds.transform == case.transform
    assert ds.nodata == case.nodata
    assert ds.nodatavals == (case.nodata,) * 3


def test_bounds_follow_rasterio_definition(ds: Any, case: Case) -> None:
    a, _, c, _, e, f = tuple(case.transform)[:6]
    assert ds.bounds == BoundingBox(c, f + e * HEIGHT, c + a * WIDTH, f)


def test_res_is_the_absolute_pixel_size(ds: Any, case: Case) -> None:
    assert ds.res == (abs(case.transform.a), abs(case.transform.e))


def test_descriptions_are_band_names(ds: Any, case: Case) -> None:
    assert ds.descriptions == case.band_names


def test_blocks_are_patches_in_row_major_order(ds: Any, case: Case) -> None:
    pw, ph = PATCH
    assert ds.block_shapes == [(ph, pw)] * 3
    want = [
        ((i, j), Window(j * pw, i * ph, pw, ph))
        for i in range(HEIGHT // ph)
        for j in range(WIDTH // pw)
    ]
    assert list(ds.block_windows()) == want
    assert list(ds.block_windows(2)) == want
    assert ds.block_window(1, 2, 3) == Window(48, 32, 16, 16)


def test_read_all_equals_mosaic(ds: Any, case: Case) -> None:
    np.testing.assert_array_equal(ds.read(), case.expected)


@pytest.mark.parametrize("window", WINDOWS, ids=str)
def test_read_window_equals_mosaic_slice(ds: Any, case: Case, window: Window) -> None:
    np.testing.assert_array_equal(
        ds.read(window=window), case.expected[(slice(None), *window.toslices())]
    )
    np.testing.assert_array_equal(ds.read(2, window=window), case.expected[(1, *window.toslices())])


def test_read_masks_and_dataset_mask(ds: Any, case: Case) -> None:
    if case.nodata is None:
        want = np.full(case.expected.shape, 255, np.uint8)
    else:
        want = np.where(case.expected == case.nodata, 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(ds.read_masks(), want)
    np.testing.assert_array_equal(ds.read_masks(3), want[2])
    np.testing.assert_array_equal(ds.dataset_mask(), want.max(axis=0))


def test_masked_read_masks_nodata(ds: Any, case: Case) -> None:
    got = ds.read(masked=True)
    want = np.zeros(case.expected.shape, bool) if case.nodata is None else case.expected == 0
    np.testing.assert_array_equal(np.ma.getmaskarray(got), want)


def test_xy_index_window_and_window_transform(ds: Any, case: Case) -> None:
    t = case.transform
    for row, col in [(0, 0), (5, 9), (47, 63)]:
        x, y = t * (col + 0.5, row + 0.5)
        assert ds.xy(row, col) == pytest.approx((x, y))
        assert ds.index(x, y) == (row, col)
        assert ds.xy(row, col, offset="ul") == pytest.approx(t * (col, row))
    window = Window(4, 6, 20, 10)
    left, top = t * (4, 6)
    right, bottom = t * (24, 16)
    w = ds.window(left, bottom, right, top)  # rasterio's (left, bottom, right, top) order
    assert (round(w.col_off), round(w.row_off), round(w.width), round(w.height)) == (4, 6, 20, 10)
    assert ds.window_transform(window) == window_transform(window, t)


# -- direct comparison with the GeoTIFF -----------------------------------------------------

ATTRIBUTES = [
    "width",
    "height",
    "count",
    "shape",
    "indexes",
    "dtypes",
    "crs",
    "transform",
    "bounds",
    "res",
    "nodata",
    "nodatavals",
    "descriptions",
    "block_shapes",
]


@pytest.mark.parametrize("name", ATTRIBUTES)
def test_attribute_equals_geotiff(both: tuple[Any, Any], name: str) -> None:
    ref, ours = both
    assert getattr(ours, name) == getattr(ref, name)


def test_block_windows_equal_geotiff(both: tuple[Any, Any]) -> None:
    ref, ours = both
    assert list(ours.block_windows()) == list(ref.block_windows())


@pytest.mark.parametrize("out_shape", OUT_SHAPES, ids=str)
def test_out_shape_read_equals_geotiff(both: tuple[Any, Any], out_shape: tuple[int, ...]) -> None:
    ref, ours = both
    np.testing.assert_array_equal(ours.read(out_shape=out_shape), ref.read(out_shape=out_shape))


@pytest.mark.parametrize("window", WINDOWS, ids=str)
def test_out_shape_window_read_equals_geotiff(both: tuple[Any, Any], window: Window) -> None:
    ref, ours = both
    shape = (3, max(1, int(window.height) // 3), int(window.width) + 3)
    np.testing.assert_array_equal(
        ours.read(window=window, out_shape=shape), ref.read(window=window, out_shape=shape)
    )


def test_read_masks_out_shape_equals_geotiff(both: tuple[Any, Any]) -> None:
    ref, ours = both
    np.testing.assert_array_equal(
        ours.read_masks(out_shape=(3, 20, 30)), ref.read_masks(out_shape=(3, 20, 30))
    )
    np.testing.assert_array_equal(ours.dataset_mask(), ref.dataset_mask())


def test_boundless_read_equals_geotiff(both: tuple[Any, Any]) -> None:
    ref, ours = both
    window = Window(-5, -3, 30, 20)
    np.testing.assert_array_equal(
        ours.read(1, window=window, boundless=True, fill_value=7),
        ref.read(1, window=window, boundless=True, fill_value=7),
    )


def test_index_xy_window_equal_geotiff(both: tuple[Any, Any]) -> None:
    ref, ours = both
    for row, col in [(0, 0), (3, 60), (47, 1)]:
        assert ours.xy(row, col) == ref.xy(row, col)
        x, y = ref.xy(row, col)
        assert ours.index(x, y) == ref.index(x, y)
    assert ours.window(*ref.bounds) == ref.window(*ref.bounds)
    window = Window(3, 4, 10, 11)
    assert ours.window_transform(window) == ref.window_transform(window)
    assert ours.window_bounds(window) == ref.window_bounds(window)


def test_read_into_out_equals_geotiff(both: tuple[Any, Any]) -> None:
    ref, ours = both
    out = np.empty((3, 20, 30), np.float32)
    assert ours.read(out=out) is out
    np.testing.assert_array_equal(out, ref.read(out_shape=(3, 20, 30)))


@pytest.mark.parametrize("fraction", [(0.25, 0.25, 0.5, 0.5), (0.4, 0.6, 0.3, 0.7)], ids=str)
def test_window_from_off_grid_bounds_reads_as_geotiff(
    both: tuple[Any, Any], fraction: tuple[float, float, float, float]
) -> None:
    # The everyday idiom ds.read(window=ds.window(*bbox)) with a bbox off the pixel grid.
    ref, ours = both
    fx0, fy0, fx1, fy1 = fraction
    t = ref.transform
    left, top = t * (2 + fx0, 3 + fy0)
    right, bottom = t * (12 + fx1, 10 + fy1)
    window = ref.window(left, bottom, right, top)
    assert ours.window(left, bottom, right, top) == window
    want = ref.read(1, window=window)
    got = ours.read(1, window=window)
    assert got.shape == want.shape
    np.testing.assert_array_equal(got, want)
