"""Overviews for an export's VRT (gdal/overviews.py): GDAL uses them, and they hold the
decimated export (nearest: the library's decimated read; average: block means)."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio

import tfrecord_io
from tests.child import python_env
from tests.test_qgis import (  # noqa: F401 - pytest fixtures and the qgis_process helper
    _qgis_process,
    plugin_zip,
    qgis_env,
)
from tfrecord_io.errors import OptionError
from tfrecord_io.gdal.overviews import default_factors

ROOT = Path(__file__).resolve().parent.parent
FACTORS = [2, 4, 8]  # divide the 160 x 200 export: every level is exact block means
EDGES = [3, 6]  # 200 / 3 leaves partial blocks at the right edge of the first level


@pytest.fixture
def export_vrt(export, raster, tmp_path) -> tuple[Path, str]:
    folder = export(raster(2, 160, 200), patch_dimensions=[50, 40], kernel_size=[4, 4])
    return folder, tfrecord_io.build_vrt(folder, tmp_path / "exp.vrt")


def _levels(vrt: str) -> tuple[list[int], list[np.ndarray]]:
    with rasterio.Env(**tfrecord_io.gdal_env()):
        with rasterio.open(vrt) as src:
            factors = src.overviews(1)
        pixels = []
        for level in range(len(factors)):
            with rasterio.open(vrt, overview_level=level) as src:
                pixels.append(src.read())
    return factors, pixels


def _block_means(full: np.ndarray, factor: int, nodata: float | None = None) -> np.ndarray:
    bands, height, width = full.shape
    out_h, out_w = -(-height // factor), -(-width // factor)
    padded = np.full((bands, out_h * factor, out_w * factor), np.nan)
    padded[:, :height, :width] = full
    if nodata is not None:
        padded[padded == nodata] = np.nan
    blocks = padded.reshape(bands, out_h, factor, out_w, factor)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-nodata blocks: mean of nothing
        means = np.nanmean(blocks, axis=(2, 4))
    if nodata is not None:
        means[np.isnan(means)] = nodata
    return means.astype(full.dtype)


def test_ovr_is_written_beside_the_vrt_with_the_levels_asked_for(export_vrt):
    _, vrt = export_vrt
    assert tfrecord_io.build_overviews(vrt, FACTORS) == vrt + ".ovr"
    assert Path(vrt + ".ovr").exists()
    assert _levels(vrt)[0] == FACTORS


def test_default_levels_halve_until_the_image_fits_in_256_pixels():
    assert default_factors(200, 160) == []
    assert default_factors(8192, 8192) == [2, 4, 8, 16, 32]
    assert default_factors(4096, 2560) == [2, 4, 8, 16]


def test_first_level_equals_the_library_decimated_read_edges_included(export_vrt):
    folder, vrt = export_vrt
    tfrecord_io.build_overviews(vrt, EDGES, resampling="nearest")
    factors, levels = _levels(vrt)
    assert factors == EDGES
    with tfrecord_io.open(folder) as ds:
        np.testing.assert_array_equal(levels[0], ds.read(out_shape=levels[0].shape))


def test_first_average_level_equals_block_means_edges_included(export_vrt):
    folder, vrt = export_vrt
    tfrecord_io.build_overviews(vrt, EDGES, resampling="average")
    _, levels = _levels(vrt)
    with tfrecord_io.open(folder) as ds:
        np.testing.assert_allclose(levels[0], _block_means(ds.read(), 3), rtol=1e-6)


def test_further_nearest_levels_are_gdal_nearest_of_the_first(export_vrt):
    _, vrt = export_vrt
    tfrecord_io.build_overviews(vrt, FACTORS, resampling="nearest")
    _, levels = _levels(vrt)
    for ratio, pixels in zip((2, 4), levels[1:], strict=True):
        np.testing.assert_array_equal(pixels, levels[0][:, ::ratio, ::ratio])


def test_average_levels_equal_block_means_of_the_export(export_vrt):
    folder, vrt = export_vrt
    tfrecord_io.build_overviews(vrt, FACTORS, resampling="average")
    _, levels = _levels(vrt)
    with tfrecord_io.open(folder) as ds:
        full = ds.read()
    for factor, pixels in zip(FACTORS, levels, strict=True):
        np.testing.assert_allclose(pixels, _block_means(full, factor), rtol=1e-6)


def test_factors_that_are_not_multiples_of_the_first_are_refused(export_vrt):
    with pytest.raises(OptionError, match="multiple of the first"):
        tfrecord_io.build_overviews(export_vrt[1], [2, 3])


def test_average_skips_nodata_and_keeps_it_where_a_block_is_all_nodata(export, raster, tmp_path):
    array = raster(1, 80, 100)
    array[0, :20, :20] = -1.0  # whole 2x2 blocks of nodata
    array[0, 41, 61] = -1.0  # one nodata pixel in a block
    folder = export(array, patch_dimensions=[50, 40])
    vrt = tfrecord_io.build_vrt(folder, tmp_path / "nd.vrt", nodata=-1.0)
    tfrecord_io.build_overviews(vrt, [2], resampling="average")
    (pixels,) = _levels(vrt)[1]
    np.testing.assert_allclose(pixels, _block_means(array, 2, nodata=-1.0), rtol=1e-6)
    assert (pixels[0, :10, :10] == -1.0).all()


def test_a_vrt_not_made_by_tfrecord_io_is_refused(tmp_path):
    other = tmp_path / "other.vrt"
    other.write_text('<VRTDataset rasterXSize="1" rasterYSize="1"></VRTDataset>')
    with pytest.raises(OptionError, match="not a VRT of tfrecord_io"):
        tfrecord_io.build_overviews(other)


def test_an_unknown_resampling_is_refused(export_vrt):
    with pytest.raises(OptionError, match="resampling"):
        tfrecord_io.build_overviews(export_vrt[1], resampling="cubic")  # type: ignore[arg-type]


def test_cli_vrt_overviews_writes_the_ovr(export, raster, tmp_path):
    folder = export(raster(1, 600, 700), patch_dimensions=[100, 100])
    vrt = tmp_path / "cli.vrt"
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from tfrecord_io.cli import main; main()",
            "vrt",
            str(folder),
            str(vrt),
            "--overviews",
            "--resampling",
            "nearest",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=python_env({"PATH": "/usr/bin:/bin"}),
    )
    assert done.returncode == 0, done.stderr
    factors, levels = _levels(str(vrt))
    assert factors == [2, 4]
    with tfrecord_io.open(folder) as ds:
        np.testing.assert_array_equal(levels[0], ds.read(out_shape=levels[0].shape))


def test_qgis_load_with_overviews_writes_the_ovr_of_the_decimated_export(
    qgis_env,  # noqa: F811 - the fixture imported from test_qgis
    export,
    raster,
):
    folder = export(raster(1, 600, 700), patch_dimensions=[100, 100], prefix="big")
    results = _qgis_process(
        qgis_env, "tfrecordio:load", INPUT=folder, OVERVIEWS="true", RESAMPLING=0
    )["results"]
    vrt = results["OUTPUT"]
    assert Path(vrt + ".ovr").exists()
    factors, levels = _levels(vrt)
    assert factors == [2, 4]
    with tfrecord_io.open(folder) as ds:
        full = ds.read()
    for factor, pixels in zip(factors, levels, strict=True):  # RESAMPLING=0: average
        np.testing.assert_allclose(pixels, _block_means(full, factor), rtol=1e-6)


def test_an_interrupted_build_keeps_the_old_ovr_and_leaves_no_temporary(export_vrt):
    _, vrt = export_vrt
    tfrecord_io.build_overviews(vrt, FACTORS)
    before = Path(vrt + ".ovr").read_bytes()

    def stop(fraction: float) -> None:
        if fraction > 0:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        tfrecord_io.build_overviews(vrt, EDGES, progress=stop)
    assert Path(vrt + ".ovr").read_bytes() == before
    assert sorted(p.name for p in Path(vrt).parent.iterdir()) == ["exp.vrt", "exp.vrt.ovr"]
