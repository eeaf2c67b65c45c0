"""The command line on the audit's inputs: one line on stderr, a non-zero exit, no traceback.

Also GDAL's VRT bridge and the commands on renamed files (issue 9). The command runs in a child
process, so that stderr is what a user sees; a full disk is a file size limit
(``RLIMIT_FSIZE``, with ``SIGXFSZ`` ignored), which fails writes with ``EFBIG`` as a full disk
fails them with ``ENOSPC``.
"""

from __future__ import annotations

import json
import resource
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio

import tfrecord_io
from tests.real_exports import require_real_exports

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "sample"
CLI = "import sys; from tfrecord_io.cli import main; sys.exit(main())"


def _cli(*args: object, file_limit: int | None = None) -> subprocess.CompletedProcess[str]:
    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (file_limit, file_limit))

    return subprocess.run(
        [sys.executable, "-c", CLI, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=limit if file_limit is not None else None,
        check=False,
    )


def _assert_one_line_error(result: subprocess.CompletedProcess[str], *words: str) -> None:
    assert result.returncode != 0
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    for word in words:
        assert word in lines[0]


def _copy(tmp_path: Path) -> Path:
    return Path(shutil.copytree(SAMPLE, tmp_path / "sample"))


def _edit_mixer(folder: Path, change: Any) -> None:
    path = folder / "sample-mixer.json"
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def test_d20_translate_to_gtiff_on_a_full_disk_fails_and_leaves_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out.tif"
    result = _cli("translate", SAMPLE, out, "-q", file_limit=64 << 10)
    _assert_one_line_error(result, "could not write", str(out))
    assert list(tmp_path.iterdir()) == []


def test_d21_translate_to_eetfrecord_on_a_full_disk_is_one_line(tmp_path: Path) -> None:
    result = _cli("translate", SAMPLE, tmp_path / "out", "-of", "EETFRecord", file_limit=64 << 10)
    _assert_one_line_error(result, "out")
    assert "Traceback" not in result.stderr


def test_d22_mixer_not_utf8_is_one_line(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    (folder / "sample-mixer.json").write_bytes(b"\xff\xfe{}")
    _assert_one_line_error(_cli("info", folder), "not UTF-8")


def test_d22_huge_integer_in_the_mixer_is_one_line(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    text = (folder / "sample-mixer.json").read_text()
    (folder / "sample-mixer.json").write_text(text.replace("630000.0", "9" * 400))
    _assert_one_line_error(_cli("info", folder), "too large")


def test_d22_mixer_that_is_a_directory_is_one_line(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    (folder / "sample-mixer.json").unlink()
    (folder / "sample-mixer.json").mkdir()
    _assert_one_line_error(_cli("info", folder), "not a regular file")


def test_d22_huge_claimed_grid_is_one_line(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    _edit_mixer(folder, lambda data: data.update(totalPatches=6 * 10**6))
    result = _cli("translate", folder, tmp_path / "out.tif", "-q")
    _assert_one_line_error(result, "24 records")


def test_d23_validate_exits_nonzero_for_a_first_record_that_does_not_decode(
    tmp_path: Path,
) -> None:
    import gzip

    from tfrecord_io.format.records import frame_record, iter_records

    folder = _copy(tmp_path)
    shard = folder / "sample-00000.tfrecord.gz"
    payloads = [p for _, p in iter_records(shard)]
    with gzip.open(shard, "wb") as f:
        for data in [b"\x0a\x05hello", *payloads[1:]]:
            f.write(frame_record(data))
    result = _cli("validate", folder)
    assert result.returncode == 1
    assert "DecodeError" in result.stdout


def test_d23_validate_exits_nonzero_for_an_unknown_crs(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    _edit_mixer(folder, lambda data: data["projection"].update(crs="EPSG:999999"))
    result = _cli("validate", folder)
    assert result.returncode == 1
    assert "EPSG:999999" in result.stdout
    assert result.stderr == ""


def test_d24_gdal_proj_message_is_folded_into_the_one_line(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    _edit_mixer(folder, lambda data: data["projection"].update(crs="EPSG:999999"))
    result = _cli("translate", folder, tmp_path / "out.tif")
    _assert_one_line_error(result, "EPSG:999999")
    assert "ERROR 1" not in result.stderr


def test_d24_writing_label_is_not_printed_when_stderr_is_not_a_terminal(tmp_path: Path) -> None:
    result = _cli("translate", SAMPLE, tmp_path / "out.tif", "-b", "9")
    _assert_one_line_error(result, "band 9")
    assert "Writing" not in result.stderr


def test_cli_reads_renamed_real_files_given_the_mixer(tmp_path: Path) -> None:
    folder = require_real_exports() / "servir-aces-image"
    out = tmp_path / "out.tif"
    result = _cli(
        "translate",
        folder / "image_2021.tfrecord.gz",
        out,
        "-q",
        "--mixer",
        folder / "image_2021.json",
    )
    assert result.returncode == 0, result.stderr
    with rasterio.open(out) as tif, tfrecord_io.open(folder) as ds:
        np.testing.assert_array_equal(tif.read(), ds.read())


def test_cli_validate_takes_shards_in_order_and_allow_missing() -> None:
    folder = require_real_exports() / "phen-asynch-shard5"
    result = _cli("validate", folder, "--allow-missing")
    assert result.returncode == 1
    assert "MissingPatches" in result.stdout
    assert "0-9, 12-14" in result.stdout


@pytest.mark.parametrize("listed", [False, True])
def test_vrt_of_renamed_files_reopens_the_same_shards_in_gdal(tmp_path: Path, listed: bool) -> None:
    folder = tmp_path / "renamed"
    folder.mkdir()
    names = ["c.tfrecord.gz", "a.tfrecord.gz", "b.tfrecord.gz"]
    for n, name in enumerate(names):
        shutil.copy(SAMPLE / f"sample-0000{n}.tfrecord.gz", folder / name)
    shutil.copy(SAMPLE / "sample-mixer.json", folder / "grid.json")
    source: Any = [folder / name for name in names] if listed else folder
    vrt = tfrecord_io.build_vrt(source, tmp_path / "out.vrt", mixer=folder / "grid.json")
    with tfrecord_io.open(SAMPLE) as ds:
        expected = ds.read()
    with rasterio.Env(**tfrecord_io.gdal_env()), rasterio.open(vrt) as src:
        got = src.read()
    if listed:
        np.testing.assert_array_equal(got, expected)
    else:
        # Ordered by name (a, b, c): shards 1, 2, 0 of the sample; the VRT keeps that order.
        with tfrecord_io.open(folder, mixer=folder / "grid.json") as ds:
            assert ds.export_files.order == "name"
            np.testing.assert_array_equal(got, ds.read())


def test_vrt_of_a_partial_real_export_reads_the_present_patches() -> None:
    folder = require_real_exports() / "phen-asynch-shard5"
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        vrt = tfrecord_io.build_vrt(folder, Path(tmp) / "partial.vrt", allow_missing=True)
        with rasterio.Env(**tfrecord_io.gdal_env()), rasterio.open(vrt) as src:
            got = src.read(1, window=((768, 1024), (256, 768)))
    with tfrecord_io.open(folder, allow_missing=True) as ds:
        np.testing.assert_array_equal(got, ds.read(1, window=((768, 1024), (256, 768))))


def test_d13_translate_of_a_nan_affine_fails_and_writes_no_geotiff(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    text = (folder / "sample-mixer.json").read_text()
    (folder / "sample-mixer.json").write_text(text.replace("[30.0,", "[NaN,"))
    out = tmp_path / "out.tif"
    _assert_one_line_error(_cli("translate", folder, out, "-q"), "not finite")
    assert not out.exists()


@pytest.mark.parametrize("driver", ["GTiff", "EETFRecord"])
def test_translate_blames_a_source_shard_it_cannot_read_not_the_output(
    tmp_path: Path, driver: str
) -> None:
    folder = _copy(tmp_path)
    (folder / "sample-00001.tfrecord.gz").unlink()
    (folder / "sample-00001.tfrecord.gz").mkdir()
    result = _cli("translate", folder, tmp_path / "out", "-q", "-of", driver)
    _assert_one_line_error(result, "sample-00001.tfrecord.gz")
    assert "writing" not in result.stderr
