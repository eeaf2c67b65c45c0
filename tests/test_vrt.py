"""The GDAL bridge: a VRT filled by tfrecord_io's pixel function, read by GDAL itself."""

from __future__ import annotations

import json
import os
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.errors import RasterioIOError
from rasterio.windows import Window

import tfrecord_io
from tfrecord_io.gdal import pixel as pixelfunction

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "sample"


@pytest.fixture
def sample_vrt(tmp_path: Path) -> str:
    return tfrecord_io.build_vrt(SAMPLE, tmp_path / "sample.vrt")


def _bands(rng: np.random.Generator, kinds: dict[str, str], h: int = 70, w: int = 90) -> dict:
    out = {}
    for name, kind in kinds.items():
        if kind == "float":
            out[name] = rng.normal(size=(h, w)).astype(np.float32)
        elif kind == "int64":
            out[name] = rng.integers(-(2**40), 2**40, size=(h, w))
        else:
            out[name] = rng.integers(0, 256, size=(h, w)).astype(np.uint8)
    return out


def test_vrt_bands_are_sourceless_python_pixel_functions_of_a_trusted_module(sample_vrt):
    root = ET.parse(sample_vrt).getroot()
    bands = root.findall("VRTRasterBand")
    assert len(bands) == 3
    for number, band in enumerate(bands, start=1):
        assert band.get("subClass") == "VRTDerivedRasterBand"
        assert band.find("SimpleSource") is None
        assert band.find("ComplexSource") is None
        assert band.findtext("PixelFunctionLanguage") == "Python"
        assert band.findtext("PixelFunctionType") == "tfrecord_io.pixelfunction.read_band"
        assert band.find("PixelFunctionCode") is None  # never inline code
        arguments = band.find("PixelFunctionArguments").attrib
        assert arguments["band"] == str(number)
        assert os.path.isabs(arguments["export"])
        assert os.path.exists(arguments["export"])
        assert (band.get("blockXSize"), band.get("blockYSize")) == ("64", "48")


def test_vrt_carries_descriptions_srs_and_geotransform_of_the_mixer(sample_vrt):
    with rasterio.open(sample_vrt) as src, tfrecord_io.open(SAMPLE) as ds:
        assert src.descriptions == ds.descriptions
        assert src.crs == ds.crs
        assert src.transform == ds.transform
        assert (src.width, src.height, src.count) == (ds.width, ds.height, ds.count)
        assert src.block_shapes == ds.block_shapes


def test_gdal_env_trusts_exactly_the_pixel_function_module_never_everything():
    env = tfrecord_io.gdal_env()
    assert env["GDAL_VRT_ENABLE_PYTHON"] == "TRUSTED_MODULES"
    assert env["GDAL_VRT_PYTHON_TRUSTED_MODULES"] == "tfrecord_io.pixelfunction"
    assert "YES" not in env.values()


def test_rasterio_reads_the_vrt_pixel_identical_to_tfrecord_io(sample_vrt):
    with (
        rasterio.Env(**tfrecord_io.gdal_env()),
        rasterio.open(sample_vrt) as src,
        tfrecord_io.open(SAMPLE) as ds,
    ):
        np.testing.assert_array_equal(src.read(), ds.read())
        window = Window(37, 21, 150, 101)
        np.testing.assert_array_equal(src.read(window=window), ds.read(window=window))
        np.testing.assert_array_equal(src.read(2), ds.read(2))


@pytest.mark.parametrize("shape", [(3, 96, 192), (3, 50, 77), (3, 10, 13), (3, 400, 700)])
def test_decimated_and_replicated_vrt_reads_match_tfrecord_io(sample_vrt, shape):
    with (
        rasterio.Env(**tfrecord_io.gdal_env()),
        rasterio.open(sample_vrt) as src,
        tfrecord_io.open(SAMPLE) as ds,
    ):
        np.testing.assert_array_equal(src.read(out_shape=shape), ds.read(out_shape=shape))


@pytest.mark.parametrize(
    ("kinds", "kernel", "transform"),
    [
        ({"a": "float", "b": "float"}, (3, 3), Affine(10, 0, 500000, 0, -10, 4100000)),
        ({"i": "int64"}, (4, 4), Affine(0.5, 0, -20, 0, 0.5, 10)),  # south-up
        ({"u": "bytes"}, (1, 1), Affine(1, 0, 0, 0, -1, 0)),
    ],
)
def test_vrt_matches_tensorflow_export_for_each_kind_kernel_and_orientation(
    tf_export, rng, tmp_path, kinds, kernel, transform
):
    info = tf_export(
        bands=_bands(rng, kinds),
        kinds=kinds,
        transform=transform,
        crs="EPSG:32610",
        patch_size=(32, 24),
        kernel_size=kernel,
        max_file_size=20_000,
    )
    vrt = tfrecord_io.build_vrt(info.folder, tmp_path / "x.vrt")
    with rasterio.Env(**tfrecord_io.gdal_env()), rasterio.open(vrt) as src:
        dtype = {"float": "float32", "int64": "int64", "bytes": "uint8"}
        assert src.dtypes == tuple(dtype[kinds[name]] for name in info.band_names)
        assert src.transform == transform
        np.testing.assert_array_equal(src.read(), info.expected.astype(src.dtypes[0]))


def test_vrt_read_without_gdal_settings_fails_instead_of_returning_zeros(sample_vrt):
    with (
        rasterio.Env(GDAL_VRT_ENABLE_PYTHON="NO"),
        rasterio.open(sample_vrt) as src,
        pytest.raises(RasterioIOError),
    ):
        src.read(1)


def test_corrupt_record_is_reported_by_gdal_with_the_shard_name(export):
    sample = export()
    shard = sample / "sample-00002.tfrecord.gz"
    shard.write_bytes(shard.read_bytes()[:-200])  # truncate the last shard
    vrt = tfrecord_io.build_vrt(sample)
    with rasterio.Env(**tfrecord_io.gdal_env()), rasterio.open(vrt) as src:
        src.read(1, window=Window(0, 0, 64, 48))  # patch 0 is in an intact shard
        with pytest.raises(RasterioIOError) as raised:
            src.read(1, window=Window(320, 144, 64, 48))  # the last patch: truncated
    # rasterio's own message is generic; GDAL's, chained below it, carries ours.
    chain, error = [], raised.value
    while error is not None:
        chain.append(str(error))
        error = error.__cause__ or error.__context__
    text = "\n".join(chain)
    assert "TruncatedRecordError" in text
    assert "sample-00002.tfrecord.gz" in text


def test_pixel_function_reuses_one_opened_export_across_calls(sample_vrt):
    pixelfunction._open.clear()
    with rasterio.Env(**tfrecord_io.gdal_env()), rasterio.open(sample_vrt) as src:
        for window in src.block_windows(1):
            src.read(window=window[1])
        opened = list(pixelfunction._open.values())
        src.read(window=Window(0, 0, 64, 48))
    assert len(opened) == 1
    assert list(pixelfunction._open.values()) == opened


def test_build_vrt_defaults_to_prefix_vrt_beside_the_export(export):
    sample = export()
    assert tfrecord_io.build_vrt(sample) == str(sample / "sample.vrt")


def test_build_vrt_refuses_to_overwrite_when_asked_not_to(sample_vrt):
    with pytest.raises(tfrecord_io.ExportExistsError):
        tfrecord_io.build_vrt(SAMPLE, sample_vrt, overwrite=False)


# -- Debian's GDAL command-line tools (apt gdal-bin, GDAL 3.6) -----------------------------


def _gdal_cli_env(tmp_path: Path) -> dict[str, str]:
    from tfrecord_io.gdal.vrt import gdal_pythonpath

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(tfrecord_io.gdal_env())
    env["PYTHONPATH"] = gdal_pythonpath(tmp_path / "gdal-python")
    return env


@pytest.mark.parametrize("driver", ["GTiff", "COG"])
def test_debian_gdal_translate_converts_the_vrt_pixel_identical(sample_vrt, tmp_path, driver):
    out = tmp_path / f"out-{driver}.tif"
    done = subprocess.run(
        ["gdal_translate", "-q", "-of", driver, sample_vrt, str(out)],
        env=_gdal_cli_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    with rasterio.open(out) as result, tfrecord_io.open(SAMPLE) as ds:
        assert result.driver == "GTiff"
        assert result.crs == ds.crs
        assert result.transform == ds.transform
        np.testing.assert_array_equal(result.read(), ds.read())


def test_debian_gdalinfo_stats_on_the_vrt_match_numpy(sample_vrt, tmp_path):
    done = subprocess.run(
        ["gdalinfo", "-json", "-stats", sample_vrt],
        env=_gdal_cli_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    bands = json.loads(done.stdout)["bands"]
    with tfrecord_io.open(SAMPLE) as ds:
        mosaic = ds.read().astype(np.float64)
    for band, values in zip(bands, mosaic, strict=True):
        stats = {k: float(v) for k, v in band["metadata"][""].items() if k.startswith("STAT")}
        assert stats["STATISTICS_MINIMUM"] == pytest.approx(values.min(), rel=1e-6)
        assert stats["STATISTICS_MAXIMUM"] == pytest.approx(values.max(), rel=1e-6)
        assert stats["STATISTICS_MEAN"] == pytest.approx(values.mean(), rel=1e-6)
        assert stats["STATISTICS_STDDEV"] == pytest.approx(values.std(), rel=1e-5)
        assert stats["STATISTICS_VALID_PERCENT"] == 100


def test_rio_convert_writes_the_vrt_as_geotiff(sample_vrt, tmp_path):
    rio = Path(os.sys.executable).parent / "rio"
    env = {**os.environ, **tfrecord_io.gdal_env()}
    out = tmp_path / "rio.tif"
    done = subprocess.run(
        [str(rio), "convert", sample_vrt, str(out), "--format", "GTiff"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    with rasterio.open(out) as result, tfrecord_io.open(SAMPLE) as ds:
        np.testing.assert_array_equal(result.read(), ds.read())
