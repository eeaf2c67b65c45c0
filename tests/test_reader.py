"""Tests of reading exports with tfrecord_io.open, TensorFlow being the independent producer.

Every export here is written by ``tests.tfexport.write_tf_export`` (TensorFlow only), whose
``expected`` is the mosaic a correct reader must return. TensorFlow picks the feature order per
process, so band order is always taken from ``info.band_names``.
"""

from __future__ import annotations

import gzip
import os
import runpy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from affine import Affine
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rasterio.coords import BoundingBox
from rasterio.windows import Window

import tfrecord_io
from tfrecord_io import (
    ChecksumError,
    DatasetClosedError,
    GridError,
    KernelSizeError,
    MissingMixerError,
    MissingShardError,
    OptionError,
    RecordCountError,
    TFRecordIOError,
    TruncatedRecordError,
)
from tfrecord_io.image.grid import PatchGrid

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ROOT = Path(__file__).resolve().parent.parent
NORTH_UP = Affine(30.0, 0.0, 500000.0, 0.0, -30.0, 4200000.0)
SOUTH_UP = Affine(0.5, 0.0, 10.0, 0.0, 0.5, -40.0)
WINDOW_SETTINGS = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

Make = Callable[..., Any]


def _bands(rng: np.random.Generator, names: tuple[str, ...] = ("B1", "B2", "B3"), h=24, w=32):
    return {n: rng.normal(size=(h, w)).astype(np.float32) for n in names}


def _open(info: Any, **kwargs: Any) -> tfrecord_io.EETFRecordDataset:
    return tfrecord_io.open(info.folder, **kwargs)


def _rewrite_gzip(path: Path, change: Callable[[bytearray], None]) -> None:
    raw = bytearray(gzip.decompress(path.read_bytes()))
    change(raw)
    path.write_bytes(gzip.compress(bytes(raw)))


def _record_size(info: Any, shard: int) -> int:
    size = os.path.getsize(info.shards[shard])
    assert size % info.records_per_shard[shard] == 0
    return size // info.records_per_shard[shard]


def _patch_window(info: Any, index: int) -> Window:
    pw, ph = info.patch_size
    row, col = divmod(index, info.patches_per_row)
    return Window(col * pw, row * ph, pw, ph)


# -- the mosaic -----------------------------------------------------------------------------

MOSAIC_CASES: dict[str, dict[str, Any]] = {
    "even_kernel": {"patch_size": (8, 8), "kernel_size": (4, 4)},
    "odd_kernel": {"patch_size": (8, 8), "kernel_size": (5, 5)},
    "kernel_1": {"patch_size": (8, 8), "kernel_size": (1, 1)},
    "non_square_patch": {"patch_size": (16, 6), "kernel_size": (4, 4)},
    "south_up": {"patch_size": (8, 8), "kernel_size": (2, 2), "transform": SOUTH_UP},
    "shards_split_rows": {"patch_size": (8, 8), "kernel_size": (4, 4), "max_file_size": 9000},
    "raw_shards": {
        "patch_size": (8, 8),
        "kernel_size": (4, 4),
        "compressed": False,
        "max_file_size": 9000,
    },
    "gzip_one_shard": {"patch_size": (8, 8), "kernel_size": (6, 6), "compressed": True},
}


@pytest.fixture(params=list(MOSAIC_CASES), ids=list(MOSAIC_CASES))
def case_export(request: pytest.FixtureRequest, tf_export: Make, rng: np.random.Generator):
    kwargs = {"transform": NORTH_UP, **MOSAIC_CASES[request.param]}
    return tf_export(bands=_bands(rng), **kwargs)


def test_mosaic_equals_expected_pixel_for_pixel(case_export: Any) -> None:
    with _open(case_export) as ds:
        np.testing.assert_array_equal(ds.read(), case_export.expected)


def test_descriptions_are_the_band_names_in_wire_order(case_export: Any) -> None:
    with _open(case_export) as ds:
        assert ds.descriptions == case_export.band_names
        assert ds.count == len(case_export.band_names)


def test_kernel_margins_are_inferred(case_export: Any) -> None:
    kx, ky = case_export.kernel_size
    with _open(case_export) as ds:
        assert ds.kernel_size == (2 * (kx // 2) or 1, 2 * (ky // 2) or 1)
        tags = ds.tags(ns="EETFRecord")
        assert int(tags["KERNEL_X"]) == ds.kernel_size[0]


def test_kernel_size_argument_gives_the_same_mosaic(case_export: Any) -> None:
    with _open(case_export, kernel_size=case_export.kernel_size) as ds:
        np.testing.assert_array_equal(ds.read(), case_export.expected)


def test_geometry_follows_the_mixer(case_export: Any) -> None:
    info = case_export
    pw, ph = info.patch_size
    a, _, c, _, e, f = tuple(info.transform)[:6]
    with _open(info) as ds:
        assert ds.transform == info.transform
        assert ds.crs == rasterio.crs.CRS.from_user_input(info.crs)
        assert (ds.width, ds.height) == (pw * info.patches_per_row, ph * info.rows)
        assert ds.shape == (ds.height, ds.width)
        assert ds.bounds == BoundingBox(c, f + e * ds.height, c + a * ds.width, f)
        assert ds.block_shapes == [(ph, pw)] * ds.count
        assert ds.driver == "EETFRecord"
        assert ds.mode == "r"


def test_res_is_the_absolute_pixel_size_as_rasterio_gives_it(case_export: Any) -> None:
    # rasterio (GDAL) reports (|a|, |e|) for a rectilinear grid, south-up included.
    a, e = case_export.transform.a, case_export.transform.e
    with _open(case_export) as ds:
        assert ds.res == (abs(a), abs(e))


def test_south_up_bounds_keep_rasterio_orientation(tf_export: Make, rng) -> None:
    info = tf_export(bands=_bands(rng), transform=SOUTH_UP, patch_size=(8, 8))
    with _open(info) as ds:
        assert ds.bounds == BoundingBox(10.0, -40.0 + 0.5 * 24, 10.0 + 0.5 * 32, -40.0)
        assert ds.xy(0, 0) == (10.25, -39.75)
        assert ds.index(10.25, -39.75) == (0, 0)


def test_shard_boundaries_do_split_patch_rows(tf_export: Make, rng) -> None:
    # Guard for the "shards_split_rows" case: the boundaries really fall inside patch rows.
    info = tf_export(bands=_bands(rng), transform=NORTH_UP, **MOSAIC_CASES["shards_split_rows"])
    starts = np.cumsum(info.records_per_shard)[:-1]
    assert len(info.shards) >= 3
    assert any(s % info.patches_per_row for s in starts)


# -- kinds ----------------------------------------------------------------------------------


@pytest.fixture
def mixed_export(tf_export: Make, rng: np.random.Generator) -> Any:
    h, w = 16, 24
    bands = {
        "f": rng.normal(size=(h, w)).astype(np.float32),
        "i": rng.integers(-(2**40), 2**40, size=(h, w)),
        "u": rng.integers(0, 256, size=(h, w)).astype(np.uint8),
    }
    return tf_export(
        bands=bands,
        transform=NORTH_UP,
        patch_size=(8, 8),
        kernel_size=(2, 2),
        kinds={"f": "float", "i": "int64", "u": "bytes"},
    )


def test_band_dtypes_follow_the_feature_kinds(mixed_export: Any) -> None:
    dtypes = {"float": "float32", "int64": "int64", "bytes": "uint8"}
    with _open(mixed_export) as ds:
        assert ds.dtypes == tuple(dtypes[k] for k in mixed_export.band_kinds)


def test_each_band_of_each_kind_reads_exactly(mixed_export: Any) -> None:
    with _open(mixed_export) as ds:
        for bidx in ds.indexes:
            band = ds.read(bidx)
            assert band.dtype == np.dtype(ds.dtypes[bidx - 1])
            np.testing.assert_array_equal(band, mixed_export.expected[bidx - 1])


def test_reading_bands_of_mixed_dtypes_without_out_dtype_raises_option_error(
    mixed_export: Any,
) -> None:
    with _open(mixed_export) as ds, pytest.raises(OptionError, match="out_dtype"):
        ds.read()


def test_reading_bands_of_mixed_dtypes_with_out_dtype_works(mixed_export: Any) -> None:
    with _open(mixed_export) as ds:
        data = ds.read(out_dtype="float64")
    assert data.dtype == np.float64
    np.testing.assert_array_equal(data, mixed_export.expected)


def test_int64_values_beyond_float_precision_survive(mixed_export: Any) -> None:
    i = mixed_export.band_names.index("i") + 1
    with _open(mixed_export) as ds:
        assert ds.read(i, out_dtype="int64").dtype == np.int64
        np.testing.assert_array_equal(ds.read(i), mixed_export.expected[i - 1].astype(np.int64))


# -- array bands and sequence exports -------------------------------------------------------


def test_array_band_becomes_depth_major_bands(tf_export: Make, rng) -> None:
    bands = {
        "arr": rng.normal(size=(3, 16, 16)).astype(np.float32),
        "s": rng.normal(size=(16, 16)).astype(np.float32),
    }
    info = tf_export(
        bands=bands,
        transform=NORTH_UP,
        patch_size=(8, 8),
        kernel_size=(2, 2),
        tensor_depths={"arr": 3},
    )
    assert {"arr_0", "arr_1", "arr_2", "s"} == set(info.band_names)
    with _open(info) as ds:
        assert ds.descriptions == info.band_names
        assert ds.kernel_size == (2, 2)
        np.testing.assert_array_equal(ds.read(), info.expected)


def test_ambiguous_array_only_export_raises_kernel_size_error(tf_export: Make, rng) -> None:
    # Depths 4 and 3 of a 4 x 4 patch with kernel 4 (8 x 8 tiles): 4 x 4 tiles fit as well.
    bands = {
        "a": rng.normal(size=(4, 8, 8)).astype(np.float32),
        "b": rng.normal(size=(3, 8, 8)).astype(np.float32),
    }
    info = tf_export(
        bands=bands,
        transform=NORTH_UP,
        patch_size=(4, 4),
        kernel_size=(4, 4),
        tensor_depths={"a": 4, "b": 3},
    )
    with pytest.raises(KernelSizeError, match="kernel_size"):
        _open(info)


def test_kernel_size_resolves_an_ambiguous_export(tf_export: Make, rng) -> None:
    bands = {
        "a": rng.normal(size=(4, 8, 8)).astype(np.float32),
        "b": rng.normal(size=(3, 8, 8)).astype(np.float32),
    }
    info = tf_export(
        bands=bands,
        transform=NORTH_UP,
        patch_size=(4, 4),
        kernel_size=(4, 4),
        tensor_depths={"a": 4, "b": 3},
    )
    with _open(info, kernel_size=4) as ds:
        assert ds.descriptions == info.band_names
        np.testing.assert_array_equal(ds.read(), info.expected)


def test_wrong_kernel_size_raises_grid_error(tf_export: Make, rng) -> None:
    info = tf_export(bands=_bands(rng), transform=NORTH_UP, patch_size=(8, 8), kernel_size=(4, 4))
    with pytest.raises(GridError, match="kernel"):
        _open(info, kernel_size=8)


@pytest.fixture
def sequence_export(tf_export: Make, rng: np.random.Generator) -> Any:
    bands = {
        "s": rng.normal(size=(8, 8)).astype(np.float32),
        "arr": rng.normal(size=(2, 8, 8)).astype(np.float32),
    }
    return tf_export(
        bands=bands,
        transform=NORTH_UP,
        patch_size=(4, 4),
        kernel_size=(2, 2),
        tensor_depths={"arr": 2},
        sequence_data=True,
        max_file_size=3000,
    )


def test_sequence_export_reads_context_scalars_then_array_steps(sequence_export: Any) -> None:
    assert sequence_export.band_names == ("s", "arr_0", "arr_1")
    with _open(sequence_export, sequence_data=True) as ds:
        assert ds.descriptions == sequence_export.band_names
        np.testing.assert_array_equal(ds.read(), sequence_export.expected)


def test_sequence_export_is_detected_and_kernel_inferred(sequence_export: Any) -> None:
    with _open(sequence_export) as ds:
        assert ds.tags(ns="EETFRecord")["SEQUENCE_DATA"] == "TRUE"
        assert ds.kernel_size == (2, 2)
        np.testing.assert_array_equal(
            ds.read(window=Window(3, 2, 4, 5)), sequence_export.expected[:, 2:7, 3:7]
        )


def test_sequence_patch_short_of_pixel_records_raises_grid_error(sequence_export: Any) -> None:
    from tfrecord_io.format.records import iter_records
    from tfrecord_io.image.reader import ExportReader

    reader = ExportReader(sequence_export.folder)
    try:
        layout, pixels = reader.layout, reader.records_per_patch
        records = [
            (payload, f"{shard} record {n}")
            for shard in sequence_export.shards
            for n, (_, payload) in enumerate(iter_records(shard))
        ][:pixels]
        tile = np.concatenate(layout.decode_sequence(records))  # patch 0, 1-pixel margins
        np.testing.assert_array_equal(tile[:, 1:5, 1:5], sequence_export.expected[:, :4, :4])
        with pytest.raises(GridError, match=f"ends after {pixels - 1} per-pixel records"):
            layout.decode_sequence(records[:-1])
    finally:
        reader.close()


# -- windows and read options ---------------------------------------------------------------


@pytest.fixture
def sharded_export(tf_export: Make, rng: np.random.Generator) -> Any:
    return tf_export(
        bands=_bands(rng, h=32, w=48),
        transform=NORTH_UP,
        patch_size=(8, 8),
        kernel_size=(4, 4),
        max_file_size=9000,
    )


@WINDOW_SETTINGS
@given(data=st.data())
def test_random_windows_equal_slices_of_expected(sharded_export: Any, data: st.DataObject) -> None:
    info = sharded_export
    h, w = info.expected.shape[1:]
    row = data.draw(st.integers(0, h - 1))
    col = data.draw(st.integers(0, w - 1))
    height = data.draw(st.integers(1, h - row))
    width = data.draw(st.integers(1, w - col))
    with _open(info) as ds:
        got = ds.read(window=Window(col, row, width, height))
    np.testing.assert_array_equal(got, info.expected[:, row : row + height, col : col + width])


def test_window_crossing_patch_and_shard_boundaries_reads_exactly(sharded_export: Any) -> None:
    info = sharded_export
    first = info.records_per_shard[0]  # first patch of shard 1
    (r0, c0), (r1, c1) = (divmod(i, info.patches_per_row) for i in (first - 1, first))
    ys, xs = sorted((r0 * 8 + 3, r1 * 8 + 5)), sorted((c0 * 8 + 3, c1 * 8 + 5))
    window = Window(xs[0], ys[0], xs[1] - xs[0] + 1, ys[1] - ys[0] + 1)
    assert len(info.shards) >= 2
    with _open(info) as ds:
        got = ds.read(window=window)
    np.testing.assert_array_equal(got, info.expected[(slice(None), *window.toslices())])


def test_integer_index_returns_a_2d_band(sharded_export: Any) -> None:
    with _open(sharded_export) as ds:
        band = ds.read(2)
    assert band.ndim == 2
    np.testing.assert_array_equal(band, sharded_export.expected[1])


def test_index_list_returns_3d_bands_in_the_order_asked(sharded_export: Any) -> None:
    with _open(sharded_export) as ds:
        data = ds.read([3, 1])
    np.testing.assert_array_equal(data, sharded_export.expected[[2, 0]])


@pytest.mark.parametrize("bidx", [0, 4, -1])
def test_band_index_out_of_range_raises_band_index_error(sharded_export: Any, bidx: int) -> None:
    with _open(sharded_export) as ds, pytest.raises(tfrecord_io.BandIndexError):
        ds.read(bidx)


@pytest.mark.parametrize(
    ("out_shape", "window"),
    [
        ((3, 16, 20), None),
        ((3, 11, 13), None),
        ((3, 7, 29), None),
        ((3, 45, 50), None),
        ((3, 5, 6), Window(3, 5, 17, 19)),
        ((2, 9), Window(0, 8, 21, 21)),
    ],
    ids=str,
)
def test_out_shape_matches_gdal_nearest_sampling(
    sharded_export: Any, geotiff: Make, out_shape: tuple[int, ...], window: Window | None
) -> None:
    info = sharded_export
    tif = geotiff(info.expected, crs=info.crs, transform=info.transform)
    with rasterio.open(tif) as ref, _open(info) as ds:
        want = ref.read(window=window, out_shape=out_shape)
        got = ds.read(window=window, out_shape=out_shape)
    np.testing.assert_array_equal(got, want)


def test_boundless_window_is_filled_with_fill_value(sharded_export: Any) -> None:
    info = sharded_export
    h, w = info.expected.shape[1:]
    with _open(info) as ds:
        got = ds.read(window=Window(-3, -2, w + 5, h + 4), boundless=True, fill_value=-99)
    want = np.full((3, h + 4, w + 5), -99, np.float32)
    want[:, 2 : 2 + h, 3 : 3 + w] = info.expected
    np.testing.assert_array_equal(got, want)


def test_window_outside_without_boundless_is_cropped_as_rasterio_does(
    sharded_export: Any,
) -> None:
    with _open(sharded_export) as ds:
        got = ds.read(window=Window(-1, 0, 4, 4))
    np.testing.assert_array_equal(got, sharded_export.expected[:, 0:4, 0:3])


def test_masked_read_masks_the_nodata_value(tf_export: Make, rng) -> None:
    bands = {n: np.round(rng.normal(size=(16, 16)) * 2).astype(np.float32) for n in ("a", "b")}
    info = tf_export(bands=bands, transform=NORTH_UP, patch_size=(8, 8), kernel_size=(2, 2))
    assert (info.expected == 0).any()
    with _open(info, nodata=0) as ds:
        assert ds.nodata == 0
        assert ds.nodatavals == (0, 0)
        got = ds.read(masked=True)
    assert isinstance(got, np.ma.MaskedArray)
    np.testing.assert_array_equal(got.mask, info.expected == 0)
    np.testing.assert_array_equal(got.data, info.expected)


def test_masked_boundless_read_masks_outside_pixels(sharded_export: Any) -> None:
    with _open(sharded_export) as ds:
        got = ds.read(1, window=Window(-2, 0, 6, 3), boundless=True, masked=True)
    assert got.mask[:, :2].all()
    assert not got.mask[:, 2:].any()


# -- band order and opening -----------------------------------------------------------------


def test_band_order_reorders_and_selects(sharded_export: Any) -> None:
    info = sharded_export
    order = ["B3", "B1"]
    with _open(info, band_order=order) as ds:
        assert ds.descriptions == tuple(order)
        want = info.expected[[info.band_names.index(n) for n in order]]
        np.testing.assert_array_equal(ds.read(), want)


def test_band_order_naming_an_unknown_band_raises_option_error(sharded_export: Any) -> None:
    with pytest.raises(OptionError, match="B9"):
        _open(sharded_export, band_order=["B1", "B9"])


@pytest.mark.parametrize("how", ["folder", "mixer", "first_shard", "last_shard"])
def test_opening_by_folder_mixer_or_shard_gives_the_same_dataset(
    sharded_export: Any, how: str
) -> None:
    info = sharded_export
    path = {
        "folder": info.folder,
        "mixer": info.mixer,
        "first_shard": info.shards[0],
        "last_shard": info.shards[-1],
    }[how]
    with tfrecord_io.open(path) as ds:
        assert ds.files == [str(s) for s in info.shards] + [str(info.mixer)]
        assert ds.transform == info.transform
        np.testing.assert_array_equal(ds.read(), info.expected)


# -- laziness and caching -------------------------------------------------------------------


def test_open_reads_only_the_mixer_and_the_first_record(sharded_export: Any) -> None:
    info = sharded_export
    assert len(info.shards) >= 3
    garbage = np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    for shard in info.shards[1:]:
        shard.write_bytes(b"\x00" + garbage)
    with _open(info) as ds:
        first = ds.read(window=_patch_window(info, 0))
        np.testing.assert_array_equal(first, info.expected[:, 0:8, 0:8])
        later = _patch_window(info, info.records_per_shard[0])  # first patch of shard 1
        with pytest.raises(TFRecordIOError) as excinfo:
            ds.read(window=later)
    assert str(info.shards[1]) in str(excinfo.value)


def test_cache_size_zero_still_reads_correctly(sharded_export: Any) -> None:
    with _open(sharded_export, cache_size=0) as ds:
        a = ds.read(window=Window(5, 5, 20, 20))
        b = ds.read(window=Window(5, 5, 20, 20))
    np.testing.assert_array_equal(a, sharded_export.expected[:, 5:25, 5:25])
    np.testing.assert_array_equal(b, a)


def test_reading_the_same_window_twice_gives_identical_independent_arrays(
    sharded_export: Any,
) -> None:
    with _open(sharded_export) as ds:
        a = ds.read(window=Window(2, 3, 12, 9))
        a[...] = 12345  # must not reach the cache
        b = ds.read(window=Window(2, 3, 12, 9))
    np.testing.assert_array_equal(b, sharded_export.expected[:, 3:12, 2:14])


@WINDOW_SETTINGS
@given(data=st.data())
def test_random_windows_after_build_index(sharded_export: Any, data: st.DataObject) -> None:
    info = sharded_export
    h, w = info.expected.shape[1:]
    with _open(info, cache_size=0) as ds:
        ds.build_index()
        for _ in range(3):
            row = data.draw(st.integers(0, h - 1))
            col = data.draw(st.integers(0, w - 1))
            window = Window(
                col, row, data.draw(st.integers(1, w - col)), data.draw(st.integers(1, h - row))
            )
            np.testing.assert_array_equal(
                ds.read(window=window), info.expected[(slice(None), *window.toslices())]
            )


def test_closed_dataset_refuses_to_read(sharded_export: Any) -> None:
    ds = _open(sharded_export)
    ds.close()
    assert ds.closed
    with pytest.raises(TFRecordIOError):
        ds.read()


@pytest.mark.parametrize(
    "use",
    [
        lambda ds: ds.read(1),
        lambda ds: ds.read_masks(),
        lambda ds: ds.tags(ns="EETFRecord"),
        lambda ds: list(ds.block_windows()),
        lambda ds: list(ds.iter_patch_rows()),
        lambda ds: ds.iter_tiles(),
        lambda ds: ds.build_index(),
    ],
    ids=["read", "read_masks", "tags", "block_windows", "iter_patch_rows", "iter_tiles", "index"],
)
def test_closed_dataset_raises_dataset_closed_error_naming_it(
    sharded_export: Any, use: Callable[[Any], Any]
) -> None:
    with _open(sharded_export) as ds:
        pass
    with pytest.raises(DatasetClosedError, match=r"is closed: open it again") as caught:
        use(ds)
    assert ds.name in str(caught.value)
    assert isinstance(caught.value, ValueError)
    assert isinstance(caught.value, TFRecordIOError)


def test_repr_names_state_class_and_mode(sharded_export: Any) -> None:
    with _open(sharded_export) as ds:
        assert repr(ds) == f"<open EETFRecordDataset name='{ds.name}' mode='r'>"
    assert repr(ds).startswith("<closed EETFRecordDataset")


def test_grid_and_export_files_are_public(sharded_export: Any) -> None:
    with _open(sharded_export) as ds:
        assert ds.grid == PatchGrid.from_mixer(ds.mixer, ds.grid.margin_x, ds.grid.margin_y)
        assert (ds.grid.width, ds.grid.height) == (ds.width, ds.height)
        assert ds.grid.transform == ds.transform
        files = ds.export_files
        assert [*files.shards, files.mixer] == ds.files
        assert files.mixer == os.path.join(files.folder, f"{files.prefix}-mixer.json")


def test_iter_tiles_yields_stored_tiles_whose_interior_is_the_mosaic(
    sharded_export: Any,
) -> None:
    info = sharded_export
    with _open(info) as ds:
        grid = ds.grid
        indexes = []
        for index, tile in ds.iter_tiles():
            indexes.append(index)
            window = grid.patch_window(index)
            bands = np.concatenate(tile)
            assert bands.shape[1:] == (grid.tile_height, grid.tile_width)
            np.testing.assert_array_equal(
                bands[(slice(None), *grid.interior)],
                info.expected[(slice(None), *window.toslices())],
            )
    assert indexes == list(range(grid.total_patches))


# -- no mixer -------------------------------------------------------------------------------


@pytest.fixture
def mixerless_export(tf_export: Make, rng: np.random.Generator) -> Any:
    return tf_export(
        bands=_bands(rng),
        transform=NORTH_UP,
        patch_size=(8, 8),
        kernel_size=(4, 4),
        write_mixer=False,
        max_file_size=9000,
    )


def test_missing_mixer_raises_error_explaining_masked_threshold_and_grid(
    mixerless_export: Any,
) -> None:
    with pytest.raises(MissingMixerError) as excinfo:
        _open(mixerless_export)
    message = str(excinfo.value)
    assert "maskedThreshold" in message
    assert "mixer=" in message
    assert "patch_size" in message
    assert "patches_per_row" in message


def test_grid_given_by_hand_reads_the_mosaic(mixerless_export: Any) -> None:
    info = mixerless_export
    grid = {
        "patch_size": info.patch_size,
        "patches_per_row": info.patches_per_row,
        "crs": info.crs,
        "transform": info.transform,
    }
    with _open(info, mixer=grid) as ds:
        assert ds.transform == info.transform
        assert ds.shape == info.expected.shape[1:]
        np.testing.assert_array_equal(ds.read(), info.expected)


# -- integrity ------------------------------------------------------------------------------


def test_missing_middle_shard_raises_missing_shard_error_naming_it(sharded_export: Any) -> None:
    info = sharded_export
    info.shards[1].unlink()
    with pytest.raises(MissingShardError, match=f"{info.prefix}-00001"):
        _open(info)


def test_missing_last_shard_raises_record_count_error_on_full_read(sharded_export: Any) -> None:
    info = sharded_export
    info.shards[-1].unlink()
    with _open(info) as ds, pytest.raises(RecordCountError):
        ds.read()


def test_missing_last_shard_raises_record_count_error_on_build_index(sharded_export: Any) -> None:
    info = sharded_export
    info.shards[-1].unlink()
    with _open(info) as ds, pytest.raises(RecordCountError):
        ds.build_index()


def test_missing_last_shard_raises_record_count_error_reading_its_window(
    sharded_export: Any,
) -> None:
    info = sharded_export
    info.shards[-1].unlink()
    with _open(info) as ds, pytest.raises(RecordCountError):
        ds.read(window=_patch_window(info, info.total_patches - 1))


def _shrink_one_band(info: Any, shard: int, local: int) -> None:
    """Rewrite one record of a shard, with TensorFlow, its first band one value short."""
    import tensorflow as tf

    path = str(info.shards[shard])
    records = [bytes(r.numpy()) for r in tf.data.TFRecordDataset(path, info.compression_type)]
    example = tf.train.Example.FromString(records[local])
    name = info.wire_order[0]
    values = list(example.features.feature[name].float_list.value)
    del example.features.feature[name].float_list.value[:]
    example.features.feature[name].float_list.value.extend(values[:-1])
    records[local] = example.SerializeToString()
    options = tf.io.TFRecordOptions(compression_type=info.compression_type)
    with tf.io.TFRecordWriter(path, options) as w:
        for r in records:
            w.write(r)


@pytest.mark.parametrize("how", ["window", "full"])
def test_band_not_fitting_the_grid_raises_grid_error_naming_shard_and_record(
    sharded_export: Any, how: str
) -> None:
    info = sharded_export
    _shrink_one_band(info, shard=1, local=1)
    record = info.records_per_shard[0] + 1
    with _open(info) as ds, pytest.raises(GridError) as excinfo:
        ds.read(window=_patch_window(info, record) if how == "window" else None)
    message = str(excinfo.value)
    assert str(info.shards[1]) in message
    assert f"record {record}" in message


@pytest.fixture
def raw_sharded_export(tf_export: Make, rng: np.random.Generator) -> Any:
    return tf_export(
        bands=_bands(rng, h=32, w=48),
        transform=NORTH_UP,
        patch_size=(8, 8),
        kernel_size=(4, 4),
        max_file_size=9000,
        compressed=False,
    )


@pytest.mark.parametrize("how", ["window", "full"])
def test_crc_flip_in_shard_2_raises_checksum_error_naming_it_and_global_record(
    raw_sharded_export: Any, how: str
) -> None:
    info = raw_sharded_export
    size = _record_size(info, 2)
    path = info.shards[2]
    data = bytearray(path.read_bytes())
    data[size + 12 + 30] ^= 0x04  # payload of the shard's second record
    path.write_bytes(bytes(data))
    record = info.records_per_shard[0] + info.records_per_shard[1] + 1
    with _open(info) as ds, pytest.raises(ChecksumError) as excinfo:
        ds.read(window=_patch_window(info, record) if how == "window" else None)
    message = str(excinfo.value)
    assert str(path) in message
    assert f"record {record}" in message


# -- validate -------------------------------------------------------------------------------


def test_validate_sound_export_returns_no_problem(sharded_export: Any) -> None:
    assert tfrecord_io.validate(sharded_export.folder) == []


def test_validate_reports_both_a_crc_flip_and_a_truncated_shard(sharded_export: Any) -> None:
    info = sharded_export
    size = _record_size_gzip(info, 0)

    def flip(raw: bytearray) -> None:
        raw[size + 12 + 30] ^= 0x04  # payload of record 1

    _rewrite_gzip(info.shards[0], flip)
    last = info.shards[-1]
    last.write_bytes(last.read_bytes()[: os.path.getsize(last) // 2])
    problems = tfrecord_io.validate(info.folder)
    by_error = {(p.error, p.path) for p in problems}
    assert (ChecksumError.__name__, str(info.shards[0])) in by_error
    assert (TruncatedRecordError.__name__, str(last)) in by_error
    checksum = next(p for p in problems if p.error == ChecksumError.__name__)
    assert checksum.record == 1
    assert str(info.shards[0]) in checksum.message


def _record_size_gzip(info: Any, shard: int) -> int:
    size = len(gzip.decompress(info.shards[shard].read_bytes()))
    assert size % info.records_per_shard[shard] == 0
    return size // info.records_per_shard[shard]


def test_validate_reports_a_missing_middle_shard(sharded_export: Any) -> None:
    info = sharded_export
    info.shards[1].unlink()
    problems = tfrecord_io.validate(info.folder)
    assert [p.error for p in problems] == [MissingShardError.__name__]
    assert f"{info.prefix}-00001" in problems[0].path


# -- the sample export ----------------------------------------------------------------------


def test_sample_export_matches_make_bands_cropped_to_the_grid() -> None:
    sample = runpy.run_path(str(ROOT / "data" / "make_sample.py"))
    bands = sample["make_bands"]()
    with tfrecord_io.open(ROOT / "data" / "sample") as ds:
        assert ds.descriptions == ("B4", "B3", "B2")
        assert ds.kernel_size == (16, 16)
        assert ds.shape == (192, 384)
        assert ds.transform == Affine(30.0, 0.0, 630000.0, 0.0, -30.0, 4272000.0)
        assert ds.crs == rasterio.crs.CRS.from_epsg(32610)
        for bidx, name in zip(ds.indexes, ds.descriptions, strict=True):
            np.testing.assert_array_equal(ds.read(bidx), bands[name][:192, :384])


# -- more options and integrity -------------------------------------------------------------


def test_non_square_kernel_is_ambiguous_without_kernel_size(tf_export: Make, rng) -> None:
    # 8 x 8 patches, kernel (1, 4): an 8 x 12 tile, which a (4, 1) kernel's 12 x 8 tile matches.
    info = tf_export(bands=_bands(rng), transform=NORTH_UP, patch_size=(8, 8), kernel_size=(1, 4))
    with pytest.raises(KernelSizeError, match=r"kernel_size=\(1, 4\)"):
        _open(info)


def test_non_square_kernel_given_by_kernel_size_reads_exactly(tf_export: Make, rng) -> None:
    info = tf_export(bands=_bands(rng), transform=NORTH_UP, patch_size=(8, 8), kernel_size=(1, 4))
    with _open(info, kernel_size=(1, 4)) as ds:
        assert ds.kernel_size == (1, 4)
        np.testing.assert_array_equal(ds.read(), info.expected)


def test_mixer_argument_path_replaces_the_exports_own(sharded_export: Any, tmp_path: Path) -> None:
    info = sharded_export
    other = tmp_path / "pred-mixer.json"
    shifted = Affine(10.0, 0.0, 0.0, 0.0, -10.0, 0.0)
    text = info.mixer.read_text().replace(
        "[30.0, 0.0, 500000.0, 0.0, -30.0, 4200000.0]", "[10.0, 0.0, 0.0, 0.0, -10.0, 0.0]"
    )
    assert text != info.mixer.read_text()
    other.write_text(text)
    with _open(info, mixer=other) as ds:
        assert ds.transform == shifted
        np.testing.assert_array_equal(ds.read(), info.expected)


def test_opening_a_missing_path_raises_missing_shard_error(tmp_path: Path) -> None:
    with pytest.raises(MissingShardError):
        tfrecord_io.open(tmp_path / "nothing-00000.tfrecord.gz")


def test_folder_holding_two_exports_raises_option_error(sharded_export: Any) -> None:
    info = sharded_export
    (info.folder / "other-00000.tfrecord.gz").write_bytes(info.shards[0].read_bytes())
    with pytest.raises(OptionError, match="several exports"):
        _open(info)
    with tfrecord_io.open(info.mixer) as ds:  # naming one of them still works
        np.testing.assert_array_equal(ds.read(window=Window(0, 0, 8, 8)), info.expected[:, :8, :8])


def test_extra_shard_raises_record_count_error(sharded_export: Any) -> None:
    info = sharded_export
    extra = info.folder / f"{info.prefix}-{len(info.shards):05d}.tfrecord.gz"
    extra.write_bytes(info.shards[0].read_bytes())
    with _open(info) as ds, pytest.raises(RecordCountError):
        ds.build_index()
    with _open(info) as ds, pytest.raises(RecordCountError):
        ds.read()


def test_validate_reports_a_band_not_fitting_the_grid_with_its_record(
    sharded_export: Any,
) -> None:
    info = sharded_export
    _shrink_one_band(info, shard=1, local=1)
    record = info.records_per_shard[0] + 1
    problems = tfrecord_io.validate(info.folder)
    assert [(p.error, p.path, p.record) for p in problems] == [
        (GridError.__name__, str(info.shards[1]), record)
    ]


def test_validate_reports_a_missing_last_shard_as_a_record_count_problem(
    sharded_export: Any,
) -> None:
    info = sharded_export
    info.shards[-1].unlink()
    problems = tfrecord_io.validate(info.folder)
    assert [p.error for p in problems] == [RecordCountError.__name__]


def _flip_payload(info: Any, shard: int, local: int) -> None:
    size = _record_size(info, shard)
    data = bytearray(info.shards[shard].read_bytes())
    data[local * size + 12 + 30] ^= 0x04
    info.shards[shard].write_bytes(bytes(data))


def test_validate_reports_one_crc_flip_as_exactly_one_problem(raw_sharded_export: Any) -> None:
    info = raw_sharded_export
    _flip_payload(info, shard=1, local=2)
    record = info.records_per_shard[0] + 2
    problems = tfrecord_io.validate(info.folder)
    assert [(p.error, p.path, p.record) for p in problems] == [
        (ChecksumError.__name__, str(info.shards[1]), record)
    ]


def test_validate_gives_global_record_indexes_after_an_earlier_crc_flip(
    raw_sharded_export: Any,
) -> None:
    info = raw_sharded_export
    _flip_payload(info, shard=0, local=1)
    _flip_payload(info, shard=2, local=3)
    later = sum(info.records_per_shard[:2]) + 3
    problems = tfrecord_io.validate(info.folder)
    checksums = [(p.path, p.record) for p in problems if p.error == ChecksumError.__name__]
    assert checksums == [(str(info.shards[0]), 1), (str(info.shards[2]), later)]


def test_window_near_the_start_of_a_big_gzip_shard_indexes_only_what_it_needs(
    tmp_path: Path,
) -> None:
    from affine import Affine as _Affine

    from tfrecord_io.format.example import encode_example, float_feature
    from tfrecord_io.format.records import RecordWriter
    from tfrecord_io.image.mixer import Mixer

    rng = np.random.default_rng(7)
    patches = rng.random((24, 4, 256, 256), dtype=np.float32)  # incompressible: 1 MiB a record
    with RecordWriter(tmp_path / "big-00000.tfrecord.gz", level=1) as writer:
        for patch in patches:
            writer.write(encode_example({f"b{i}": float_feature(p) for i, p in enumerate(patch)}))
    mixer = Mixer("EPSG:4326", _Affine(1, 0, 0, 0, -1, 0), 256, 256, 6, 24)
    (tmp_path / "big-mixer.json").write_text(mixer.to_json())
    with tfrecord_io.open(tmp_path) as ds:
        np.testing.assert_array_equal(ds.read(1, window=Window(0, 0, 256, 256)), patches[0, 0])
        index = ds._reader._indexes[0]
        assert not index.complete
        assert len(index) < 12
        last = ds.read(4, window=Window(1280, 768, 256, 256))
        np.testing.assert_array_equal(last, patches[23, 3])
        assert len(index) == 24
        ds.build_index()
        assert index.complete


def test_iter_patch_rows_yields_every_row_of_the_mosaic_once_in_order() -> None:
    sample = Path(__file__).resolve().parent.parent / "data" / "sample"
    with tfrecord_io.open(sample) as ds:
        mosaic = ds.read()
        rows = list(ds.iter_patch_rows([3, 1]))
    assert [w.row_off for w, _ in rows] == [0, 48, 96, 144]
    assert all((w.width, w.height) == (384, 48) for w, _ in rows)
    np.testing.assert_array_equal(np.concatenate([a for _, a in rows], axis=1), mosaic[[2, 0]])


def test_thumbnail_of_the_whole_export_streams_it_without_building_the_index() -> None:
    sample = Path(__file__).resolve().parent.parent / "data" / "sample"
    with tfrecord_io.open(sample) as ds:
        full = ds.read()
        ds._reader._cache.clear()
        thumb = ds.read(out_shape=(3, 50, 77))
        assert ds._reader._indexes == []  # streamed, not found patch by patch
    rows = np.floor((np.arange(50) + 0.5) * 192 / 50).astype(int)
    cols = np.floor((np.arange(77) + 0.5) * 384 / 77).astype(int)
    np.testing.assert_array_equal(thumb, full[:, rows][:, :, cols])
