"""The QGIS plugin in real QGIS, headless: every algorithm through ``qgis_process`` (plugin
enabled in a temporary profile) and through PyQGIS ``processing.run``, compared pixel for pixel
with the library.

QGIS runs in subprocesses on Debian's own Python and GDAL (apt ``qgis python3-qgis
qgis-providers python3-rasterio``, installed by ``make test``); the plugin is the zip that
``make qgis-plugin`` builds, unpacked into a temporary plugin folder. A missing QGIS fails these
tests: it never skips them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.errors import NotGeoreferencedWarning

import tfrecord_io
from tfrecord_io.gdal.translate import translate

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "data" / "sample"
HELPERS = Path(__file__).resolve().parent / "qgis"
QGIS_PROCESS = "/usr/bin/qgis_process.bin"
DEBIAN_PYTHON = "/usr/bin/python3"
PLUGIN = "qgis_tfrecord_io"
TIMEOUT = 300


@pytest.fixture(scope="module")
def plugin_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The zip ``make qgis-plugin`` builds, made into a temporary folder."""
    out = tmp_path_factory.mktemp("qgis-zip")
    zip_path = out / f"{PLUGIN}.zip"
    done = subprocess.run(
        [
            "make",
            "-s",
            "-C",
            str(ROOT),
            "qgis-plugin",
            f"QGIS_PLUGIN_BUILD={out / 'build'}",
            f"QGIS_PLUGIN_ZIP={zip_path}",
        ],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return zip_path


@pytest.fixture(scope="module")
def qgis_env(tmp_path_factory: pytest.TempPathFactory, plugin_zip: Path) -> dict[str, str]:
    """Environment for QGIS subprocesses: the unzipped plugin, enabled in a temporary profile."""
    assert os.path.exists(QGIS_PROCESS), (
        f"{QGIS_PROCESS} is missing: apt-get install qgis python3-qgis qgis-providers "
        "(make test installs them)"
    )
    base = tmp_path_factory.mktemp("qgis")
    plugins = base / "plugins"
    with zipfile.ZipFile(plugin_zip) as zf:
        zf.extractall(plugins)
    (base / "home").mkdir()
    (base / "runtime").mkdir(mode=0o700)
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "GDAL_DATA", "PROJ_LIB")
        and not k.startswith(("GDAL_VRT_", "CPL_"))
    }
    env.update(
        HOME=str(base / "home"),
        XDG_RUNTIME_DIR=str(base / "runtime"),
        QT_QPA_PLATFORM="offscreen",
        QGIS_PLUGINPATH=str(plugins),
        PATH="/usr/bin:/bin",
    )
    done = subprocess.run(
        [QGIS_PROCESS, "plugins", "enable", PLUGIN],
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return env


def _qgis_process(env: dict[str, str], algorithm: str, **params: object) -> dict:
    """Run an algorithm with ``qgis_process.bin --json``; return its JSON report."""
    args = [f"{key}={value}" for key, value in params.items()]
    done = subprocess.run(
        [QGIS_PROCESS, "--json", "run", algorithm, "--", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)


def _qgis_process_fails(env: dict[str, str], algorithm: str, **params: object) -> str:
    """Run an algorithm expected to fail; return everything it printed."""
    args = [f"{key}={value}" for key, value in params.items()]
    done = subprocess.run(
        [QGIS_PROCESS, "run", algorithm, "--", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert done.returncode != 0, done.stdout
    return done.stdout + done.stderr


def _pyqgis(
    env: dict[str, str],
    tmp_path: Path,
    algorithm: str | None,
    params: dict | None = None,
    *extra: str,
) -> dict:
    """Run ``tests/qgis/run_processing.py`` in Debian's python3; return its JSON report."""
    out = tmp_path / "pyqgis.json"
    command = [
        DEBIAN_PYTHON,
        str(HELPERS / "run_processing.py"),
        "--plugins",
        env["QGIS_PLUGINPATH"],
        "--out",
        str(out),
        "--params",
        json.dumps(params or {}),
        *extra,
    ]
    if algorithm:
        command += ["--alg", algorithm]
    done = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=TIMEOUT, cwd=tmp_path
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(out.read_text())


def _library_read(path: Path | str, **options: object) -> np.ndarray:
    with tfrecord_io.open(path, **options) as ds:
        return ds.read()


def _read_raster(path: str) -> tuple[np.ndarray, dict]:
    with rasterio.Env(**tfrecord_io.gdal_env()), rasterio.open(path) as src:
        return src.read(), {
            "crs": src.crs,
            "transform": src.transform,
            "descriptions": src.descriptions,
            "tags": src.tags(ns="IMAGE_STRUCTURE"),
        }


# The zip ---------------------------------------------------------------------------------------


def test_plugin_zip_holds_plugin_and_library_as_top_level_package_only(plugin_zip):
    names = zipfile.ZipFile(plugin_zip).namelist()
    assert all(n.startswith(f"{PLUGIN}/") for n in names)
    assert f"{PLUGIN}/metadata.txt" in names
    assert f"{PLUGIN}/__init__.py" in names
    assert f"{PLUGIN}/ext/tfrecord_io/pixelfunction.py" in names
    library = {p.name for p in (ROOT / "tfrecord_io").glob("*.py")}
    bundled = {n.rsplit("/", 1)[1] for n in names if n.startswith(f"{PLUGIN}/ext/tfrecord_io/")}
    assert library <= bundled
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    ext_top = {
        n.split("/")[2] for n in names if n.startswith(f"{PLUGIN}/ext/") and n.count("/") > 2
    }
    assert ext_top == {"tfrecord_io"}  # no numpy, rasterio or click copies


def test_plugin_metadata_declares_a_processing_provider(plugin_zip):
    text = zipfile.ZipFile(plugin_zip).read(f"{PLUGIN}/metadata.txt").decode()
    assert "hasProcessingProvider=yes" in text.splitlines()
    for key in ("name", "qgisMinimumVersion", "description", "version", "author", "email"):
        assert any(line.startswith(f"{key}=") for line in text.splitlines()), key


def test_qgis_process_lists_every_algorithm_of_the_unzipped_plugin(qgis_env):
    done = subprocess.run(
        [QGIS_PROCESS, "list"], env=qgis_env, capture_output=True, text=True, timeout=TIMEOUT
    )
    assert done.returncode == 0, done.stderr
    for name in ("load", "convert", "export", "validate"):
        assert f"tfrecordio:{name}" in done.stdout


def test_zip_unpacked_into_the_profile_as_the_plugin_manager_does_is_listed(
    qgis_env, plugin_zip, tmp_path
):
    # "Install from ZIP" extracts the zip into the profile's python/plugins folder.
    env = {k: v for k, v in qgis_env.items() if k != "QGIS_PLUGINPATH"}
    env["HOME"] = str(tmp_path)
    profile = tmp_path / ".local/share/QGIS/QGIS3/profiles/default/python/plugins"
    profile.mkdir(parents=True)
    with zipfile.ZipFile(plugin_zip) as zf:
        zf.extractall(profile)
    for command in (["plugins", "enable", PLUGIN], ["list"]):
        done = subprocess.run(
            [QGIS_PROCESS, *command], env=env, capture_output=True, text=True, timeout=TIMEOUT
        )
        assert done.returncode == 0, done.stdout + done.stderr
    assert "tfrecordio:convert" in done.stdout


def test_plugin_trusts_exactly_the_library_pixel_function_module():
    init = ROOT / "plugins" / PLUGIN / "__init__.py"
    namespace: dict = {"__file__": str(init), "__name__": PLUGIN}
    exec(compile(init.read_text(), str(init), "exec"), namespace)  # no QGIS import at load
    assert (
        namespace["PIXEL_FUNCTION_MODULE"]
        == tfrecord_io.gdal_env()["GDAL_VRT_PYTHON_TRUSTED_MODULES"]
    )


def test_plugin_load_sets_gdal_trust_in_gdal_and_environment_never_yes(qgis_env, tmp_path):
    report = _pyqgis(qgis_env, tmp_path, None)
    assert report["plugin_started"] is True
    expected = {k: v for k, v in tfrecord_io.gdal_env().items() if k.startswith("GDAL_VRT_")}
    assert report["config_after_load"]["gdal"] == expected
    assert report["config_after_load"]["environ"] == expected


# load ------------------------------------------------------------------------------------------


def test_qgis_process_load_writes_vrt_beside_export_reading_as_the_library(qgis_env, export):
    sample = export()
    results = _qgis_process(qgis_env, "tfrecordio:load", INPUT=sample)["results"]
    assert results["OUTPUT"] == str(sample / "sample.vrt")
    data, meta = _read_raster(results["OUTPUT"])
    np.testing.assert_array_equal(data, _library_read(SAMPLE))
    with tfrecord_io.open(SAMPLE) as ds:
        assert meta["crs"] == ds.crs
        assert meta["transform"] == ds.transform
        assert meta["descriptions"] == ds.descriptions


def test_qgis_process_load_honours_output_vrt_and_kernel_size(qgis_env, export, tmp_path):
    sample = export()
    vrt = tmp_path / "out" / "mine.vrt"
    vrt.parent.mkdir()
    results = _qgis_process(
        qgis_env,
        "tfrecordio:load",
        INPUT=sample / "sample-00002.tfrecord.gz",
        KERNEL_SIZE="16,16",
        OUTPUT_VRT=vrt,
    )["results"]
    assert results["OUTPUT"] == str(vrt)
    assert not (sample / "sample.vrt").exists()
    np.testing.assert_array_equal(_read_raster(str(vrt))[0], _library_read(SAMPLE))


def test_pyqgis_load_adds_a_valid_layer_with_the_library_pixels_and_statistics(
    qgis_env, export, tmp_path
):
    sample = export()
    pixels = tmp_path / "layer.npy"
    report = _pyqgis(
        qgis_env, tmp_path, "tfrecordio:load", {"INPUT": str(sample)}, "--pixels", str(pixels)
    )
    assert "error" not in report, report.get("error")
    assert report["library"].startswith(qgis_env["QGIS_PLUGINPATH"])  # the bundled copy
    (layer,) = report["layers"]
    assert layer["valid"]
    assert layer["path"] == report["results"]["OUTPUT"]
    assert layer["name"] == "sample"
    assert layer["crs"] == "EPSG:32610"
    expected = _library_read(SAMPLE)
    np.testing.assert_array_equal(np.load(pixels), expected)
    for stats, band in zip(layer["stats"], expected, strict=True):
        values = band.astype(np.float64)
        assert stats["count"] == band.size
        assert stats["min"] == values.min()
        assert stats["max"] == values.max()
        assert stats["mean"] == pytest.approx(values.mean(), rel=1e-9)
        assert stats["std"] == pytest.approx(values.std(ddof=1), rel=1e-9)  # QGIS: sample std


def test_pyqgis_load_of_a_predictions_folder_uses_the_given_mixer(qgis_env, tmp_path):
    predictions = tmp_path / "pred"
    predictions.mkdir()
    for n, shard in enumerate(sorted(SAMPLE.glob("*.tfrecord.gz"))):
        shutil.copy(shard, predictions / f"pred-{n:05d}.tfrecord.gz")
    pixels = tmp_path / "layer.npy"
    params = {"INPUT": str(predictions), "MIXER": str(SAMPLE / "sample-mixer.json")}
    report = _pyqgis(qgis_env, tmp_path, "tfrecordio:load", params, "--pixels", str(pixels))
    assert report["layers"][0]["valid"]
    np.testing.assert_array_equal(np.load(pixels), _library_read(SAMPLE))


def test_load_of_a_broken_export_fails_with_the_library_message(qgis_env, export):
    sample = export()
    (sample / "sample-00001.tfrecord.gz").unlink()
    with pytest.raises(tfrecord_io.TFRecordIOError) as raised:
        tfrecord_io.build_vrt(sample, sample / "x.vrt")
    output = _qgis_process_fails(qgis_env, "tfrecordio:load", INPUT=sample)
    assert str(raised.value) in output


# convert ---------------------------------------------------------------------------------------


def test_qgis_process_convert_writes_a_geotiff_equal_to_the_library(qgis_env, export, tmp_path):
    sample = export()
    out = tmp_path / "sample.tif"
    results = _qgis_process(qgis_env, "tfrecordio:convert", INPUT=sample, OUTPUT=out)["results"]
    assert results["OUTPUT"] == str(out)
    data, meta = _read_raster(str(out))
    np.testing.assert_array_equal(data, _library_read(SAMPLE))
    with tfrecord_io.open(SAMPLE) as ds:
        assert meta["crs"] == ds.crs
        assert meta["transform"] == ds.transform
        assert meta["descriptions"] == ds.descriptions


def test_qgis_process_convert_writes_a_cog_when_asked(qgis_env, export, tmp_path):
    sample = export()
    out = tmp_path / "sample-cog.tif"
    _qgis_process(qgis_env, "tfrecordio:convert", INPUT=sample, FORMAT=1, OUTPUT=out)
    data, meta = _read_raster(str(out))
    assert meta["tags"].get("LAYOUT") == "COG"
    np.testing.assert_array_equal(data, _library_read(SAMPLE))


def test_qgis_process_convert_passes_creation_options_and_band_order(qgis_env, export, tmp_path):
    sample = export()
    out = tmp_path / "b2.tif"
    _qgis_process(
        qgis_env,
        "tfrecordio:convert",
        INPUT=sample,
        BAND_ORDER="B2,B4",
        CREATION_OPTIONS="COMPRESS=LZW",
        OUTPUT=out,
    )
    data, meta = _read_raster(str(out))
    assert meta["tags"].get("COMPRESSION") == "LZW"
    assert meta["descriptions"] == ("B2", "B4")
    np.testing.assert_array_equal(data, _library_read(SAMPLE, band_order=("B2", "B4")))


def test_pyqgis_convert_reports_progress_and_matches_the_library(qgis_env, export, tmp_path):
    sample = export()
    out = tmp_path / "sample.tif"
    params = {"INPUT": str(sample), "OUTPUT": str(out)}
    report = _pyqgis(qgis_env, tmp_path, "tfrecordio:convert", params)
    assert report["results"]["OUTPUT"] == str(out)
    progress = report["feedback"]["progress"]
    assert progress == sorted(progress)
    assert progress[-1] == 100
    assert len(progress) >= 4
    np.testing.assert_array_equal(_read_raster(str(out))[0], _library_read(SAMPLE))


def test_pyqgis_convert_cancelled_raises_and_leaves_nothing(qgis_env, export, tmp_path):
    sample = export()
    folder = tmp_path / "out"
    folder.mkdir()
    params = {"INPUT": str(sample), "OUTPUT": str(folder / "sample.tif")}
    report = _pyqgis(qgis_env, tmp_path, "tfrecordio:convert", params, "--cancel")
    assert report["feedback"]["canceled"] is True
    assert report["error"]["type"] == "QgsProcessingException"
    assert "cancelled" in report["error"]["message"]
    assert list(folder.iterdir()) == []


def test_convert_of_a_broken_export_fails_with_the_library_message(qgis_env, export, tmp_path):
    sample = export()
    (sample / "sample-00001.tfrecord.gz").unlink()
    with pytest.raises(tfrecord_io.TFRecordIOError) as raised:
        translate(sample, tmp_path / "lib.tif")
    output = _qgis_process_fails(
        qgis_env, "tfrecordio:convert", INPUT=sample, OUTPUT=tmp_path / "qgis.tif"
    )
    assert str(raised.value) in output
    assert not (tmp_path / "qgis.tif").exists()


def test_pyqgis_convert_error_is_a_processing_exception_with_the_library_message(
    qgis_env, export, tmp_path
):
    sample = export()
    (sample / "sample-00001.tfrecord.gz").unlink()
    with pytest.raises(tfrecord_io.TFRecordIOError) as raised:
        translate(sample, tmp_path / "lib.tif")
    params = {"INPUT": str(sample), "OUTPUT": str(tmp_path / "qgis.tif")}
    report = _pyqgis(qgis_env, tmp_path, "tfrecordio:convert", params)
    assert report["error"] == {"type": "QgsProcessingException", "message": str(raised.value)}


# validate --------------------------------------------------------------------------------------


def test_qgis_process_validate_of_a_sound_export_is_valid(qgis_env, export):
    sample = export()
    results = _qgis_process(qgis_env, "tfrecordio:validate", INPUT=sample)["results"]
    assert results["VALID"] is True
    assert results["PROBLEM_COUNT"] == 0
    assert json.loads(results["REPORT"])["problems"] == []


def test_qgis_process_validate_reports_every_problem_as_the_library(qgis_env, export, tmp_path):
    sample = export()
    (sample / "sample-00002.tfrecord.gz").unlink()
    shard = sample / "sample-00001.tfrecord.gz"
    shard.write_bytes(shard.read_bytes()[:-100])  # truncated
    expected = [p.to_dict() for p in tfrecord_io.validate(sample)]
    assert expected
    report_file = tmp_path / "report.json"
    report = _qgis_process(qgis_env, "tfrecordio:validate", INPUT=sample, OUTPUT_JSON=report_file)
    results = report["results"]
    assert results["VALID"] is False
    assert results["PROBLEM_COUNT"] == len(expected)
    assert json.loads(results["REPORT"])["problems"] == expected
    assert json.loads(report_file.read_text())["problems"] == expected


def test_pyqgis_validate_reports_each_problem_through_feedback(qgis_env, export, tmp_path):
    sample = export()
    (sample / "sample-mixer.json").write_text("{not json")
    expected = tfrecord_io.validate(sample)
    assert expected
    report = _pyqgis(qgis_env, tmp_path, "tfrecordio:validate", {"INPUT": str(sample)})
    assert report["results"]["VALID"] is False
    assert report["results"]["PROBLEM_COUNT"] == len(expected)
    errors = report["feedback"]["errors"]
    assert len(errors) == len(expected)
    for problem, error in zip(expected, errors, strict=True):
        assert problem.message in error


def test_pyqgis_validate_of_a_predictions_folder_with_the_export_mixer(qgis_env, tmp_path):
    predictions = tmp_path / "pred"
    predictions.mkdir()
    shards = sorted(SAMPLE.glob("*.tfrecord.gz"))
    for n, shard in enumerate(shards[:2]):  # the last one lost
        shutil.copy(shard, predictions / f"pred-{n:05d}.tfrecord.gz")
    mixer = str(SAMPLE / "sample-mixer.json")
    expected = [p.to_dict() for p in tfrecord_io.validate(predictions, mixer=mixer)]
    assert [p["error"] for p in expected] == ["RecordCountError"]
    params = {"INPUT": str(predictions), "MIXER": mixer}
    report = _pyqgis(qgis_env, tmp_path, "tfrecordio:validate", params)
    assert report["results"]["VALID"] is False
    assert json.loads(report["results"]["REPORT"])["problems"] == expected


# The README's screenshot -----------------------------------------------------------------------


def test_screenshot_script_renders_the_loaded_export_not_a_blank_image(qgis_env, export, tmp_path):
    sample = export()
    png = tmp_path / "shot.png"
    done = subprocess.run(
        [
            DEBIAN_PYTHON,
            str(HELPERS / "render_screenshot.py"),
            "--plugins",
            qgis_env["QGIS_PLUGINPATH"],
            "--export",
            str(sample),
            "--out",
            str(png),
            "--width",
            "384",
        ],
        env=qgis_env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)  # a PNG has no georeference
        with rasterio.open(png) as src:
            image = src.read()
    assert image.shape[1:] == (192, 384)
    assert len(np.unique(image[0])) > 50  # a stretched image, not a blank or flat one


# export ----------------------------------------------------------------------------------------

EVERY_OPTION = {
    # Every formatOptions key, none at its default, with the parameter each one comes from.
    "plain": (
        {
            "PATCH_DIMENSIONS": "64,48",
            "KERNEL_SIZE": "3",
            "COMPRESSED": False,
            "MAX_FILE_SIZE": 500000,
            "DEFAULT_VALUE": -1,
            "TENSOR_DEPTHS": "A:2",
            "SEQUENCE_DATA": False,
            "COLLAPSE_BANDS": False,
            "MASKED_THRESHOLD": 1,
            "BAND_NAMES": "A_0,A_1,B",
            "FILE_NAME_PREFIX": "mine",
        },
        {
            "patchDimensions": [64, 48],
            "kernelSize": [3, 3],
            "compressed": False,
            "maxFileSize": 500000,
            "defaultValue": -1.0,
            "tensorDepths": {"A": 2},
            "sequenceData": False,
            "collapseBands": False,
            "maskedThreshold": 1.0,
        },
    ),
    "sequence": (
        {
            "PATCH_DIMENSIONS": "32,24",
            "KERNEL_SIZE": "1,1",
            "COMPRESSED": True,
            "MAX_FILE_SIZE": 1 << 20,
            "DEFAULT_VALUE": 7,
            "TENSOR_DEPTHS": "",
            "SEQUENCE_DATA": True,
            "COLLAPSE_BANDS": True,
            "MASKED_THRESHOLD": 0.5,
            "FILE_NAME_PREFIX": "seq",
        },
        {
            "patchDimensions": [32, 24],
            "kernelSize": [1, 1],
            "compressed": True,
            "maxFileSize": 1 << 20,
            "defaultValue": 7.0,
            "sequenceData": True,
            "collapseBands": True,
            "maskedThreshold": 0.5,
        },
    ),
}


@pytest.fixture(scope="module")
def source_tif(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample as a GeoTIFF (written by the library): the layer to export."""
    path = tmp_path_factory.mktemp("source") / "source.tif"
    translate(SAMPLE, path)
    return path


def _records(folder: Path) -> dict[str, list[bytes] | str]:
    """Every file of an export: the mixer's text, each shard's record payloads."""
    from tfrecord_io.format.records import iter_records

    out: dict[str, list[bytes] | str] = {}
    for path in sorted(folder.iterdir()):
        if path.name.endswith(".json"):
            out[path.name] = path.read_text()
        else:
            out[path.name] = [payload for _, payload in iter_records(path)]
    return out


def test_qgis_process_export_writes_an_export_that_reads_back_as_the_layer(
    qgis_env, source_tif, tmp_path
):
    out = tmp_path / "exported"
    results = _qgis_process(
        qgis_env,
        "tfrecordio:export",
        INPUT=source_tif,
        PATCH_DIMENSIONS="64,48",
        KERNEL_SIZE="16",
        MAX_FILE_SIZE=300000,
        OUTPUT=out,
    )["results"]
    assert results["MIXER"] == str(out / "exported-mixer.json")
    assert results["FILE_COUNT"] == len(list(out.iterdir())) > 2  # several shards
    with rasterio.open(source_tif) as src, tfrecord_io.open(out) as ds:
        assert ds.kernel_size == (16, 16)
        assert ds.crs == src.crs
        assert ds.transform == src.transform
        assert ds.descriptions == src.descriptions
        np.testing.assert_array_equal(ds.read(), src.read())


@pytest.mark.parametrize("case", sorted(EVERY_OPTION))
def test_pyqgis_export_passes_every_format_option_as_the_library_export(
    qgis_env, source_tif, tmp_path, case
):
    params, format_options = EVERY_OPTION[case]
    ours = tmp_path / "qgis"
    report = _pyqgis(
        qgis_env,
        tmp_path,
        "tfrecordio:export",
        {**params, "INPUT": str(source_tif), "OUTPUT": str(ours)},
    )
    assert "error" not in report, report.get("error")
    progress = report["feedback"]["progress"]
    assert progress == sorted(progress)
    assert progress[-1] == 100
    reference = tmp_path / "library"
    names = params.get("BAND_NAMES")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", tfrecord_io.TFRecordIOWarning)  # no mixer, as asked
        tfrecord_io.export(
            source_tif,
            reference,
            format_options=format_options,
            file_name_prefix=params["FILE_NAME_PREFIX"],
            band_names=names.split(",") if names else None,
        )
    assert _records(ours) == _records(reference)
    assert (report["results"]["MIXER"] is None) == (format_options["maskedThreshold"] < 1)


def test_pyqgis_export_cancelled_raises_and_leaves_no_export(qgis_env, source_tif, tmp_path):
    out = tmp_path / "exported"
    params = {"INPUT": str(source_tif), "PATCH_DIMENSIONS": "64,48", "OUTPUT": str(out)}
    report = _pyqgis(qgis_env, tmp_path, "tfrecordio:export", params, "--cancel")
    assert report["feedback"]["canceled"] is True
    assert report["error"]["type"] == "QgsProcessingException"
    assert "cancelled" in report["error"]["message"]
    assert not out.exists() or list(out.iterdir()) == []


def test_export_error_is_the_library_message(qgis_env, source_tif, tmp_path):
    options = {"patchDimensions": [64, 48], "maxFileSize": 1000}
    with pytest.raises(tfrecord_io.TFRecordIOError) as raised:
        tfrecord_io.export(source_tif, tmp_path / "library", format_options=options)
    output = _qgis_process_fails(
        qgis_env,
        "tfrecordio:export",
        INPUT=source_tif,
        PATCH_DIMENSIONS="64,48",
        MAX_FILE_SIZE=1000,
        OUTPUT=tmp_path / "qgis",
    )
    assert str(raised.value) in output


# Files as users hold them (issue 9) -----------------------------------------------------------


def test_qgis_process_load_of_renamed_real_files_given_the_mixer(qgis_env, tmp_path):
    from tests.real_exports import require_real_exports

    folder = require_real_exports() / "servir-aces-image"
    results = _qgis_process(
        qgis_env,
        "tfrecordio:load",
        INPUT=folder / "image_2021.tfrecord.gz",
        MIXER=folder / "image_2021.json",
        OUTPUT_VRT=tmp_path / "renamed.vrt",
    )["results"]
    data, _ = _read_raster(results["OUTPUT"])
    np.testing.assert_array_equal(data, _library_read(folder))


def test_qgis_process_validate_of_a_partial_real_export_lists_the_missing_patches(qgis_env):
    from tests.real_exports import require_real_exports

    folder = require_real_exports() / "phen-asynch-shard5"
    results = _qgis_process(
        qgis_env, "tfrecordio:validate", INPUT=folder, ALLOW_MISSING="true"
    )["results"]
    problems = json.loads(results["REPORT"])["problems"]
    assert [p["error"] for p in problems] == ["MissingPatches"]
