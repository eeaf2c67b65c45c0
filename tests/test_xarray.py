"""The xarray engine ``eetfrecord``: values, chunks, georeferencing, pickling, dask.distributed.

Exports are made by TensorFlow (the ``tf_export`` fixture); the reference for every value is
``tfrecord_io.open(...).read()``.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr
from affine import Affine

import tfrecord_io
from tests.child import python_env
from tfrecord_io.image.layout import BandLayout
from tfrecord_io.xarray import EETFRecordBackendEntrypoint

ENGINE = "eetfrecord"  # through the xarray.backends entry point, as users name it
ROOT = Path(__file__).resolve().parent.parent
NORTH_UP = Affine(30.0, 0.0, 500000.0, 0.0, -30.0, 4200000.0)
SOUTH_UP = Affine(0.5, 0.0, 10.0, 0.0, 0.5, -40.0)
GRIDS = {
    "north_up": (NORTH_UP, "EPSG:32633"),
    "south_up": (SOUTH_UP, "EPSG:4326"),
}


def _export(tf_export: Callable[..., Any], rng: np.random.Generator, **kwargs: Any) -> Any:
    """Three float bands, 48 x 80, patches 16 x 16 (w x h) with kernel 4, two shards."""
    height, width = 48, 80
    bands = {n: rng.normal(size=(height, width)).astype(np.float32) for n in ("B2", "B3", "B4")}
    options: dict[str, Any] = {
        "transform": NORTH_UP,
        "crs": "EPSG:32633",
        "patch_size": (16, 16),
        "kernel_size": (4, 4),
        "max_file_size": 8 * 3 * 24 * 24 * 4,
    }
    options.update(kwargs)
    return tf_export(bands=options.pop("bands", bands), **options)


@pytest.fixture
def export(tf_export: Callable[..., Any], rng: np.random.Generator) -> Any:
    return _export(tf_export, rng)


@pytest.fixture
def decoded(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Where each record decoded since the fixture was made came from (the real decoder runs)."""
    calls: list[str] = []
    decode = BandLayout.decode

    def counting(self: BandLayout, payload: bytes, where: str) -> tuple[np.ndarray, ...]:
        calls.append(where)
        return decode(self, payload, where)

    monkeypatch.setattr(BandLayout, "decode", counting)
    return calls


def _python(code: str, *args: str) -> str:
    """Run ``code`` in a fresh interpreter importing the tests' tfrecord_io; return stdout."""
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env=python_env(),
    ).stdout


def test_a_child_python_imports_the_tfrecord_io_the_tests_import() -> None:
    out = _python("import tfrecord_io; print(tfrecord_io.__file__)")
    assert out.strip() == tfrecord_io.__file__


def _reference(path: Any, **options: Any) -> tuple[np.ndarray, tuple[str, ...]]:
    with tfrecord_io.open(path, **options) as ds:
        return ds.read(), ds.descriptions


@pytest.mark.parametrize("grid", sorted(GRIDS))
def test_band_variables_equal_read(tf_export, rng, grid: str) -> None:
    transform, crs = GRIDS[grid]
    info = _export(tf_export, rng, transform=transform, crs=crs)
    expected, names = _reference(info.folder)
    with xr.open_dataset(info.folder, engine=ENGINE) as ds:
        assert list(ds.data_vars) == list(names)
        for k, name in enumerate(names):
            assert ds[name].dims == ("y", "x")
            np.testing.assert_array_equal(ds[name].values, expected[k])


@pytest.mark.parametrize("grid", sorted(GRIDS))
def test_stack_bands_gives_one_variable_with_band_names(tf_export, rng, grid: str) -> None:
    transform, crs = GRIDS[grid]
    info = _export(tf_export, rng, transform=transform, crs=crs)
    expected, names = _reference(info.folder)
    with xr.open_dataset(info.folder, engine=ENGINE, stack_bands=True, chunks={}) as ds:
        data = ds["band_data"]
        assert data.dims == ("band", "y", "x")
        assert list(data["band"].values) == list(names)
        np.testing.assert_array_equal(data.values, expected)


@pytest.mark.parametrize("grid", sorted(GRIDS))
def test_xy_are_pixel_centres_of_the_affine(tf_export, rng, grid: str) -> None:
    transform, crs = GRIDS[grid]
    info = _export(tf_export, rng, transform=transform, crs=crs)
    with xr.open_dataset(info.folder, engine=ENGINE) as ds:
        a, _, c, _, e, f = tuple(transform)[:6]
        xs = [c + a * (col + 0.5) for col in range(ds.sizes["x"])]
        ys = [f + e * (row + 0.5) for row in range(ds.sizes["y"])]
        np.testing.assert_allclose(ds["x"].values, xs, rtol=0, atol=1e-9)
        np.testing.assert_allclose(ds["y"].values, ys, rtol=0, atol=1e-9)


@pytest.mark.parametrize("grid", sorted(GRIDS))
def test_rioxarray_reads_crs_and_transform(tf_export, rng, grid: str) -> None:
    import rioxarray  # noqa: F401  (registers the .rio accessor)
    from rasterio.crs import CRS

    transform, crs = GRIDS[grid]
    info = _export(tf_export, rng, transform=transform, crs=crs)
    with xr.open_dataset(info.folder, engine=ENGINE, chunks={}) as ds:
        assert ds.rio.crs == CRS.from_user_input(crs)
        assert ds.rio.transform().almost_equals(transform)
        for var in ds.data_vars.values():
            assert var.attrs["grid_mapping"] == "spatial_ref"
            assert var.rio.crs == CRS.from_user_input(crs)
        attrs = ds["spatial_ref"].attrs
        assert CRS.from_wkt(attrs["crs_wkt"]) == CRS.from_wkt(attrs["spatial_ref"])
        geo = [float(v) for v in attrs["GeoTransform"].split()]
        assert Affine.from_gdal(*geo) == transform


def test_chunks_align_with_patches(export) -> None:
    with xr.open_dataset(export.folder, engine=ENGINE, chunks={}) as ds:
        pw, ph = export.patch_size
        for var in ds.data_vars.values():
            assert var.encoding["preferred_chunks"] == {"y": ph, "x": pw}
            assert var.chunks == ((ph,) * export.rows, (pw,) * export.patches_per_row)


def test_stacked_chunks_hold_every_band_of_one_patch(export) -> None:
    with xr.open_dataset(export.folder, engine=ENGINE, stack_bands=True, chunks={}) as ds:
        pw, ph = export.patch_size
        assert ds["band_data"].chunks == ((3,), (ph,) * export.rows, (pw,) * export.patches_per_row)


def test_lazily_sliced_window_computes_exactly(export) -> None:
    expected, names = _reference(export.folder)
    with xr.open_dataset(export.folder, engine=ENGINE, chunks={}) as ds:
        window = ds.isel(y=slice(5, 37), x=slice(11, 70, 3))
        assert all(var.chunks is not None for var in window.data_vars.values())
        for k, name in enumerate(names):
            np.testing.assert_array_equal(window[name].values, expected[k, 5:37, 11:70:3])
        np.testing.assert_array_equal(ds[names[1]][30, 40].values, expected[1, 30, 40])


def test_unchunked_slice_reads_only_its_window(export) -> None:
    expected, names = _reference(export.folder)
    with xr.open_dataset(export.folder, engine=ENGINE) as ds:
        np.testing.assert_array_equal(
            ds[names[0]].isel(y=slice(40, 3, -2), x=7).values, expected[0, 40:3:-2, 7]
        )


@pytest.mark.parametrize("chunks", [{}, None, {"y": 32, "x": 48}], ids=["patch", "none", "big"])
def test_a_chunk_of_several_bands_decodes_each_record_once(export, decoded, chunks) -> None:
    with xr.open_dataset(export.folder, engine=ENGINE, chunks=chunks) as ds:
        decoded.clear()  # count the decodes of the compute only
        ds.load()
    assert len(decoded) == export.total_patches


def test_a_window_inside_decodes_only_its_patches_once(export, decoded) -> None:
    expected, names = _reference(export.folder)
    with xr.open_dataset(export.folder, engine=ENGINE, chunks={}) as ds:
        decoded.clear()
        middle = ds.isel(y=slice(16, 32), x=slice(20, 60)).load()
    assert len(decoded) == 3  # patch row 1, patch columns 1 to 3, all bands at once
    np.testing.assert_array_equal(middle[names[2]].values, expected[2, 16:32, 20:60])


def test_a_sliver_of_the_last_row_decodes_only_its_patches(export, decoded) -> None:
    expected, names = _reference(export.folder)
    with xr.open_dataset(export.folder, engine=ENGINE) as ds:  # lazy, no dask
        decoded.clear()
        sliver = ds[names[0]].isel(y=-1, x=slice(0, 5)).values
    assert len(decoded) == 1  # the first patch of the last row, not the whole mosaic
    np.testing.assert_array_equal(sliver, expected[0, -1, :5])


@pytest.mark.parametrize("order", ["forward", "reverse"])
def test_a_store_smaller_than_the_mosaic_still_reads_every_chunk_exactly(
    export, decoded, order: str
) -> None:
    from rasterio.windows import Window

    from tfrecord_io.xarray.array import PatchStore

    expected, _ = _reference(export.folder)
    store = PatchStore(tfrecord_io.open(export.folder), max_bytes=1)
    decoded.clear()
    pw, ph = export.patch_size
    group = (1, 2, 3)
    indexes = range(export.total_patches)
    try:
        for index in indexes if order == "forward" else reversed(indexes):
            row, col = divmod(index, export.patches_per_row)
            window = Window(col * pw, row * ph, pw, ph)
            for band in group:
                got = store.read((band,), group, window, np.dtype(np.float32))
                np.testing.assert_array_equal(
                    got[0], expected[band - 1, row * ph : (row + 1) * ph, col * pw : (col + 1) * pw]
                )
    finally:
        store.close()
    if order == "forward":  # streamed row by row from the top: every record decoded once
        assert len(decoded) == export.total_patches


def test_drop_variables_leaves_bands_out(export) -> None:
    expected, names = _reference(export.folder)
    with xr.open_dataset(export.folder, engine=ENGINE, drop_variables=[names[1]]) as ds:
        assert list(ds.data_vars) == [names[0], names[2]]
        np.testing.assert_array_equal(ds[names[2]].values, expected[2])


def test_nodata_with_mask_and_scale_becomes_nan(tf_export, rng) -> None:
    values = rng.integers(0, 5, size=(32, 32)).astype(np.uint8)
    info = tf_export(
        bands={"q": values}, kinds={"q": "bytes"}, transform=NORTH_UP, patch_size=(16, 16)
    )
    with xr.open_dataset(info.folder, engine=ENGINE, nodata=0, chunks={}) as ds:
        q = ds["q"].values
        assert np.isnan(q[values == 0]).all()
        np.testing.assert_array_equal(q[values != 0], values[values != 0])
    with xr.open_dataset(info.folder, engine=ENGINE, nodata=0, mask_and_scale=False) as ds:
        assert ds["q"].dtype == np.uint8
        np.testing.assert_array_equal(ds["q"].values, values)


def test_mixed_kinds_keep_their_dtypes(tf_export, rng) -> None:
    bands = {
        "f": rng.normal(size=(32, 32)).astype(np.float32),
        "i": rng.integers(-(2**40), 2**40, size=(32, 32)),
        "u": rng.integers(0, 255, size=(32, 32)).astype(np.uint8),
    }
    kinds = {"f": "float", "i": "int64", "u": "bytes"}
    info = tf_export(bands=bands, kinds=kinds, transform=NORTH_UP, patch_size=(16, 16))
    with xr.open_dataset(info.folder, engine=ENGINE, chunks={}) as ds:
        for name, array in bands.items():
            assert ds[name].dtype == array.dtype
            np.testing.assert_array_equal(ds[name].values, array)


def test_reader_options_pass_through(export) -> None:
    order = ["B4", "B2"]
    expected, names = _reference(export.folder, band_order=order, kernel_size=4)
    with xr.open_dataset(export.folder, engine=ENGINE, band_order=order, kernel_size=4) as ds:
        assert list(ds.data_vars) == order == list(names)
        np.testing.assert_array_equal(ds["B4"].values, expected[0])


def test_pickled_dataset_reads_in_a_fresh_process(export, tmp_path) -> None:
    expected, names = _reference(export.folder)
    with xr.open_dataset(export.folder, engine=ENGINE, cache=False) as ds:
        assert ds[names[0]].values.shape == expected[0].shape  # the parent reads it first
        lazy = ds[names[0]].isel(y=slice(4, 30))
        payload = pickle.dumps(lazy)
        assert len(payload) < len(pickle.dumps(lazy.load()))  # no pixels: paths and options
    (tmp_path / "ds.pickle").write_bytes(payload)
    code = (
        "import pickle, sys, numpy as np; a = pickle.load(open(sys.argv[1], 'rb')); "
        "np.save(sys.argv[2], a.values)"
    )
    _python(code, str(tmp_path / "ds.pickle"), str(tmp_path / "out.npy"))
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), expected[0, 4:30])


def test_backend_array_computes_on_a_local_cluster(export) -> None:
    from distributed import Client, LocalCluster

    expected, names = _reference(export.folder)
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
        xr.open_dataset(export.folder, engine=ENGINE, chunks={}) as ds,
    ):
        computed = ds.compute()
        pids = client.run(os.getpid)
        assert len(set(pids.values())) == 2
        assert os.getpid() not in pids.values()
        for k, name in enumerate(names):
            np.testing.assert_array_equal(computed[name].values, expected[k])
        total = (ds[names[0]].isel(y=slice(3, 40)) * 2).sum().compute()
        assert float(total) == pytest.approx(float(expected[0, 3:40].astype(np.float64).sum() * 2))


def test_pyproject_registers_the_engine() -> None:
    from importlib.metadata import EntryPoint, EntryPoints

    from xarray.backends.plugins import build_engines

    with open(ROOT / "pyproject.toml", "rb") as f:
        points = tomllib.load(f)["project"]["entry-points"]["xarray.backends"]
    assert points == {"eetfrecord": "tfrecord_io.xarray.backend:EETFRecordBackendEntrypoint"}
    entry = EntryPoint(name="eetfrecord", value=points["eetfrecord"], group="xarray.backends")
    engines = build_engines(EntryPoints([entry]))
    assert isinstance(engines["eetfrecord"], EETFRecordBackendEntrypoint)


def test_import_tfrecord_io_does_not_import_xarray() -> None:
    code = "import sys, tfrecord_io; print('xarray' in sys.modules, 'dask' in sys.modules)"
    out = _python(code)
    assert out.split() == ["False", "False"]


def test_write_predictions_takes_a_dask_array(export, tmp_path) -> None:
    import dask.array as da

    patches = np.stack([tile for _, _, tile in tfrecord_io.iter_patches(export.folder)])
    patches = patches * np.float32(2)
    names = ["p0", "p1", "p2"]
    from_numpy = tfrecord_io.write_predictions(
        export.folder, tmp_path / "a", patches, names, file_name_prefix="pred"
    )
    lazy = da.from_array(patches, chunks=(5, 1, 12, 24))
    from_dask = tfrecord_io.write_predictions(
        export.folder, tmp_path / "b", lazy, names, file_name_prefix="pred"
    )
    assert [os.path.basename(p) for p in from_numpy] == [os.path.basename(p) for p in from_dask]
    for a, b in zip(from_numpy, from_dask, strict=True):
        assert Path(a).read_bytes() == Path(b).read_bytes()


def test_without_xarray_the_error_names_the_extra() -> None:
    code = (
        "import sys; sys.modules['xarray'] = None\n"
        "try:\n    import tfrecord_io.xarray\nexcept ImportError as e:\n    print(e)"
    )
    out = _python(code)
    assert "pip install 'tfrecord_io[xarray]'" in out


def test_engine_guesses_shards_and_mixers_only(export) -> None:
    engine = EETFRecordBackendEntrypoint()
    assert engine.guess_can_open(export.shards[0])
    assert engine.guess_can_open(export.mixer)
    assert not engine.guess_can_open("image.nc")
