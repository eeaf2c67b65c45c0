"""The tfrecord-io command and its rio plugin: parse, call a tool, report, exit truthfully."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner

import tfrecord_io
from tfrecord_io.cli import main

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "sample"
BIN = Path(sys.executable).parent


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def sample_tif(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tif") / "sample.tif"
    code, output = run("translate", SAMPLE, out, "-q")
    assert code == 0, output
    return out


def test_info_prints_size_crs_bands_and_kernel():
    code, output = run("info", SAMPLE)
    assert code == 0
    assert "Size is 384, 192" in output
    assert 'PROJCRS["WGS 84 / UTM zone 10N"' in output
    assert "KERNEL_X=16" in output
    assert "Band 3 Block=64x48 Type=Float32" in output


def test_info_json_matches_the_dataset():
    code, output = run("info", SAMPLE, "--json")
    assert code == 0
    description = json.loads(output)
    with tfrecord_io.open(SAMPLE) as ds:
        assert description["size"] == [ds.width, ds.height]
        a, b, c, d, e, f = tuple(ds.transform)[:6]
        assert description["geoTransform"] == [c, a, b, f, d, e]
        assert [band["description"] for band in description["bands"]] == list(ds.descriptions)
        assert description["coordinateSystem"]["epsg"] == 32610


def test_translate_writes_the_mosaic_as_a_tiled_geotiff(sample_tif):
    with rasterio.open(sample_tif) as out, tfrecord_io.open(SAMPLE) as ds:
        assert out.profile["tiled"]
        assert out.block_shapes[0] == (48, 64)
        assert out.crs == ds.crs
        assert out.transform == ds.transform
        assert out.descriptions == ds.descriptions
        np.testing.assert_array_equal(out.read(), ds.read())


@pytest.mark.parametrize(
    "options",
    [
        ["-srcwin", "10", "20", "100", "50"],
        ["-projwin", "631000", "4271000", "633000", "4269000"],
        ["-b", "3", "-b", "1"],
        ["-ot", "Int16"],
        ["-ot", "Byte", "-a_nodata", "0"],
        ["-outsize", "50%", "0"],
        ["-outsize", "77", "33"],
        ["-outsize", "700", "400"],
        ["-of", "COG"],
    ],
    ids=lambda o: " ".join(o),
)
def test_translate_of_an_export_matches_gdal_translate_of_the_same_geotiff(
    sample_tif, tmp_path, options
):
    ours = tmp_path / "ours.tif"
    gdals = tmp_path / "gdal.tif"
    code, output = run("translate", SAMPLE, ours, "-q", *options)
    assert code == 0, output
    done = subprocess.run(
        ["gdal_translate", "-q", *options, str(sample_tif), str(gdals)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    with rasterio.open(ours) as a, rasterio.open(gdals) as b:
        assert (a.width, a.height, a.count, a.dtypes) == (b.width, b.height, b.count, b.dtypes)
        assert a.transform.almost_equals(b.transform)
        assert a.crs == b.crs
        assert a.nodata == b.nodata
        np.testing.assert_array_equal(a.read(), b.read())


def test_translate_refuses_to_overwrite_without_the_flag(sample_tif):
    before = sample_tif.stat().st_mtime_ns
    code, output = run("translate", SAMPLE, sample_tif, "-q")
    assert code == 1
    assert "exists" in output
    assert "--overwrite" in output
    assert sample_tif.stat().st_mtime_ns == before


def test_translate_bad_band_is_a_one_line_error_and_nonzero_exit(tmp_path):
    code, output = run("translate", SAMPLE, tmp_path / "x.tif", "-b", "9", "-q")
    assert code == 1
    assert output.strip().count("\n") == 0
    assert "band 9" in output
    assert not (tmp_path / "x.tif").exists()


def test_translate_of_a_corrupt_export_leaves_no_output(tmp_path, export):
    sample = export()
    shard = sample / "sample-00001.tfrecord.gz"
    data = bytearray(shard.read_bytes())
    shard.write_bytes(bytes(data[: len(data) // 2]))
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    code, output = run("translate", sample, out_dir / "x.tif", "-q")
    assert code == 1
    assert "sample-00001.tfrecord.gz" in output
    assert os.listdir(out_dir) == []  # neither the output nor a temporary file


def test_validate_exits_zero_on_a_sound_export():
    code, output = run("validate", SAMPLE)
    assert code == 0
    assert output.strip().endswith("valid")


def test_validate_text_lists_each_problem_then_the_count(export):
    sample = export()
    (sample / "sample-mixer.json").write_text("{not json")
    problems = tfrecord_io.validate(sample)
    code, output = run("validate", sample)
    assert code == 1
    assert output.splitlines() == [
        *(f"{p.error}: {p.message}" for p in problems),
        f"{sample}: {len(problems)} problem(s)",
    ]


def test_kernel_size_that_is_not_k_or_x_y_is_a_usage_error():
    code, output = run("info", SAMPLE, "--kernel-size", "3,x")
    assert code == 2
    assert "--kernel-size" in output
    assert "expected K or X,Y" in output


def test_validate_exits_nonzero_and_reports_every_problem_as_json(export):
    sample = export()
    (sample / "sample-00001.tfrecord.gz").unlink()  # a gap in the shard numbers
    last = sample / "sample-00002.tfrecord.gz"
    last.write_bytes(last.read_bytes()[:-100])  # and a truncated shard
    code, output = run("validate", sample, "--json")
    assert code == 1
    report = json.loads(output)
    assert report["valid"] is False
    errors = {(Path(p["path"]).name, p["error"]) for p in report["problems"]}
    assert ("sample-00001.tfrecord[.gz]", "MissingShardError") in errors
    assert ("sample-00002.tfrecord.gz", "TruncatedRecordError") in errors


def test_vrt_command_writes_a_vrt_gdal_reads(tmp_path):
    vrt = tmp_path / "s.vrt"
    code, output = run("vrt", SAMPLE, vrt)
    assert code == 0, output
    with (
        rasterio.Env(**tfrecord_io.gdal_env()),
        rasterio.open(vrt) as src,
        tfrecord_io.open(SAMPLE) as ds,
    ):
        np.testing.assert_array_equal(src.read(), ds.read())
    code, output = run("vrt", SAMPLE, vrt)
    assert code == 1
    assert "--overwrite" in output


def test_doctor_passes_here_and_prints_the_environment_to_set():
    code, output = run("doctor")
    assert code == 0, output
    assert "[FAILED]" not in output
    assert "export GDAL_VRT_PYTHON_TRUSTED_MODULES=tfrecord_io.pixelfunction" in output
    assert "[ok] ogrinfo reads a table" in output
    assert "export GDAL_PYTHON_DRIVER_PATH=" in output


def test_console_script_and_rio_plugin_run_the_same_commands():
    script = subprocess.run(
        [str(BIN / "tfrecord-io"), "info", str(SAMPLE), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    plugin = subprocess.run(
        [str(BIN / "rio"), "tfrecord", "info", str(SAMPLE), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert script.returncode == 0, script.stderr
    assert plugin.returncode == 0, plugin.stderr
    assert json.loads(script.stdout) == json.loads(plugin.stdout)


def test_translate_geotiff_to_eetfrecord_rebuilds_the_sample_export(sample_tif, tmp_path):
    out = tmp_path / "again"
    code, output = run(
        "translate",
        sample_tif,
        out,
        "-of",
        "EETFRecord",
        "-q",
        "-co",
        "patchDimensions=64,48",
        "-co",
        "kernelSize=16,16",
        "-co",
        "fileNamePrefix=sample",
    )
    assert code == 0, output
    mixer = (out / "sample-mixer.json").read_text()
    assert mixer.rstrip() == (SAMPLE / "sample-mixer.json").read_text().rstrip()
    with tfrecord_io.open(out) as again, tfrecord_io.open(SAMPLE) as ds:
        assert again.kernel_size == (16, 16)
        assert again.descriptions == ds.descriptions
        np.testing.assert_array_equal(again.read(), ds.read())


def test_translate_export_subset_to_eetfrecord_takes_bands_and_window(tmp_path):
    out = tmp_path / "sub"
    code, output = run(
        "translate",
        SAMPLE,
        out,
        "-of",
        "EETFRecord",
        "-q",
        "-b",
        "3",
        "-srcwin",
        "64",
        "48",
        "128",
        "96",
        "-co",
        "patchDimensions=32,32",
        "-co",
        "compressed=NO",
    )
    assert code == 0, output
    assert sorted(p.name.split("-")[-1] for p in out.iterdir()) == ["00000.tfrecord", "mixer.json"]
    with tfrecord_io.open(out) as sub, tfrecord_io.open(SAMPLE) as ds:
        assert sub.descriptions == (ds.descriptions[2],)
        assert sub.transform == ds.window_transform(rasterio.windows.Window(64, 48, 128, 96))
        np.testing.assert_array_equal(sub.read(1), ds.read(3)[48:144, 64:192])


def test_translate_to_eetfrecord_rejects_an_unknown_format_option(tmp_path):
    code, output = run(
        "translate", SAMPLE, tmp_path / "x", "-of", "EETFRecord", "-q", "-co", "patchSize=8,8"
    )
    assert code == 1
    assert "patchSize" in output
    assert not (tmp_path / "x").exists() or not any((tmp_path / "x").iterdir())
