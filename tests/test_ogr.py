"""The GDAL vector driver: Debian's ogrinfo and ogr2ogr, and the venv's pyogrio, read tables.

TensorFlow writes the tables; Debian's command-line GDAL 3.6 runs the driver in Debian's
Python (as test_vrt runs gdal_translate); what ogr2ogr writes to GeoPackage is read back with
pyogrio and compared with :func:`tfrecord_io.open_table`.
"""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyogrio
import pytest
from affine import Affine

import tfrecord_io
import tfrecord_io.table.reader
from tfrecord_io.format import example as wire
from tfrecord_io.gdal.ogr import TableLayerSource, is_table_file
from tfrecord_io.gdal.vrt import DRIVER_FILE, gdal_driver_path, gdal_pythonpath


@pytest.fixture
def table(tf_table: Callable[..., Any]) -> Any:
    """Every kind of column (float, int64, text, 5x5 and 3-value arrays, lon/lat, bytes)."""
    return tf_table(rows=40)


def _cli_env(tmp_path: Path) -> dict[str, str]:
    """Debian's GDAL tools with the driver folder and a PYTHONPATH holding only the package."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(tfrecord_io.gdal_env())
    env["GDAL_PYTHON_DRIVER_PATH"] = gdal_driver_path(tmp_path / "gdal-drivers")
    env["PYTHONPATH"] = gdal_pythonpath(tmp_path / "gdal-python")
    return env


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)


def test_gdal_env_names_a_folder_holding_only_the_driver() -> None:
    folder = tfrecord_io.gdal_env()["GDAL_PYTHON_DRIVER_PATH"]
    assert os.listdir(folder) == [DRIVER_FILE]
    with open(os.path.join(folder, DRIVER_FILE), encoding="utf-8") as f:
        assert '# gdal: DRIVER_NAME = "EETFRecordTable"' in f.read(200)


def test_gdal_env_without_a_writable_cache_still_serves_rasters(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("", encoding="utf-8")
    monkeypatch.setenv("XDG_CACHE_HOME", str(not_a_folder))
    env = tfrecord_io.gdal_env()
    assert env["GDAL_VRT_PYTHON_TRUSTED_MODULES"] == "tfrecord_io.pixelfunction"
    assert "GDAL_PYTHON_DRIVER_PATH" not in env


def test_driver_folder_link_is_replaced_when_it_points_elsewhere(tmp_path: Path) -> None:
    folder = tmp_path / "drivers"
    folder.mkdir()
    (folder / DRIVER_FILE).symlink_to(tmp_path / "stale.py")
    assert gdal_driver_path(folder) == str(folder)
    assert sorted(os.listdir(folder)) == [DRIVER_FILE]
    assert (folder / DRIVER_FILE).resolve() == (
        Path(tfrecord_io.__file__).resolve().parent / "gdal" / DRIVER_FILE
    )


def test_ogrinfo_lists_fields_types_and_feature_count(table: Any, tmp_path: Path) -> None:
    done = _run(["ogrinfo", "-so", "-al", str(table.paths[0])], _cli_env(tmp_path))
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "using driver `EETFRecordTable' successful" in out
    assert "Feature Count: 40" in out
    assert "Geometry: Point" in out
    assert 'ID["EPSG",4326]' in out
    for line in (
        "B4: Real",
        "count: Integer64",
        "landcover: String",
        "patch_0: Real",
        "patch_24: Real",
        "profile_2: Integer64",
        "blob: Binary",
    ):
        assert line in out
    assert "patch_25" not in out


def test_ogr2ogr_to_geopackage_gives_open_table_values(table: Any, tmp_path: Path) -> None:
    gpkg = tmp_path / "t.gpkg"
    done = _run(["ogr2ogr", "-f", "GPKG", str(gpkg), str(table.paths[0])], _cli_env(tmp_path))
    assert done.returncode == 0, done.stderr
    frame = pyogrio.read_dataframe(gpkg)
    data = tfrecord_io.open_table(table.paths[0]).to_numpy()
    assert len(frame) == 40
    np.testing.assert_array_equal(frame["B4"].to_numpy(), data["B4"].astype(np.float64))
    np.testing.assert_array_equal(frame["count"].to_numpy(), data["count"])
    assert list(frame["landcover"]) == list(data["landcover"])
    assert list(frame["blob"]) == list(data["blob"])
    patch = np.stack([frame[f"patch_{i}"].to_numpy() for i in range(25)], axis=1)
    np.testing.assert_array_equal(patch.reshape(40, 5, 5), data["patch"])
    profile = np.stack([frame[f"profile_{i}"].to_numpy() for i in range(3)], axis=1)
    np.testing.assert_array_equal(profile, data["profile"])
    np.testing.assert_array_equal(frame.geometry.x.to_numpy(), data["longitude"])
    np.testing.assert_array_equal(frame.geometry.y.to_numpy(), data["latitude"])
    assert frame.crs.to_epsg() == 4326


def test_open_options_choose_the_point_columns(table: Any, tmp_path: Path) -> None:
    gpkg = tmp_path / "t.gpkg"
    args = ["ogr2ogr", "-f", "GPKG", "-oo", "X=B4", "-oo", "Y=count", "-oo", "CRS=EPSG:3857"]
    done = _run([*args, str(gpkg), str(table.paths[0])], _cli_env(tmp_path))
    assert done.returncode == 0, done.stderr
    frame = pyogrio.read_dataframe(gpkg)
    np.testing.assert_array_equal(frame.geometry.x.to_numpy(), frame["B4"].to_numpy())
    np.testing.assert_array_equal(frame.geometry.y.to_numpy(), frame["count"].to_numpy())
    assert frame.crs.to_epsg() == 3857


def test_ogr_driver_does_not_claim_an_image_export(tf_export, tmp_path: Path) -> None:
    info = tf_export(
        bands={"B1": np.zeros((16, 16), np.float32)},
        patch_size=(8, 8),
        transform=Affine(10.0, 0.0, 300000.0, 0.0, -10.0, 5000000.0),
    )
    shard = sorted(Path(info.folder).glob("*.tfrecord*"))[0]
    assert not is_table_file(str(shard), shard.read_bytes()[:1024])
    done = _run(["ogrinfo", "-so", str(shard)], _cli_env(tmp_path))
    assert done.returncode != 0
    assert "Unable to open datasource" in done.stdout + done.stderr
    assert "using driver" not in done.stdout


def test_ogr_driver_claims_a_table_of_patches_named_like_a_shard(
    tf_table: Callable[..., Any], tmp_path: Path
) -> None:
    info = tf_table(rows=40, name="patches-00000")  # array columns, no mixer beside it
    path = info.paths[0]
    assert len(tfrecord_io.open_table(path)) == 40
    assert is_table_file(str(path), path.read_bytes()[:1024])
    done = _run(["ogrinfo", "-so", "-al", str(path)], _cli_env(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "using driver `EETFRecordTable' successful" in done.stdout
    assert "Feature Count: 40" in done.stdout


def test_ogr_driver_leaves_other_files_to_their_drivers(tmp_path: Path) -> None:
    csv = tmp_path / "points.csv"
    csv.write_text("id,name\n1,a\n2,b\n", encoding="utf-8")
    done = _run(["ogrinfo", "-so", "-al", str(csv)], _cli_env(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "using driver `CSV' successful" in done.stdout
    assert not is_table_file(str(csv), csv.read_bytes())


def test_venv_pyogrio_loads_the_driver_too(table: Any, tmp_path: Path) -> None:
    script = (
        "import sys, pyogrio; f = pyogrio.read_dataframe(sys.argv[1]); "
        "print(pyogrio.read_info(sys.argv[1])['driver'], len(f), f.crs.to_epsg())"
    )
    env = {**os.environ, "GDAL_PYTHON_DRIVER_PATH": gdal_driver_path(tmp_path / "d")}
    env["PYTHONPATH"] = str(Path(tfrecord_io.__file__).resolve().parents[1])
    done = _run([sys.executable, "-c", script, str(table.paths[0])], env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["EETFRecordTable", "40", "4326"]


def test_layer_streams_batches_before_a_corrupt_tail(tf_table, tmp_path: Path) -> None:
    info = tf_table(rows=300)
    raw = gzip.decompress(info.paths[0].read_bytes())
    broken = tmp_path / "broken.tfrecord"
    broken.write_bytes(raw[: len(raw) - 500])  # the last records are cut off
    features = TableLayerSource(str(broken)).iter_features(batch_size=10)
    first = next(features)
    assert first["id"] == 0
    assert first["fields"]["B4"] == float(np.float32(info.columns["B4"][0]))
    with pytest.raises(tfrecord_io.TFRecordIOError):
        list(features)


def test_layer_features_are_the_same_for_any_batch_size(table: Any) -> None:
    source = TableLayerSource(str(table.paths[0]))
    assert list(source.iter_features(batch_size=7)) == list(source.iter_features())
    assert source.feature_count() == 40


def test_feature_count_frames_the_records_once_without_decoding_them(
    table: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    done = _run(["ogrinfo", "-al", str(table.paths[0])], _cli_env(tmp_path))
    assert done.returncode == 0, done.stderr
    listed = sum(line.startswith("OGRFeature(") for line in done.stdout.splitlines())
    source = TableLayerSource(str(table.paths[0]))
    decoded: list[object] = []
    framed: list[str] = []
    runs = tfrecord_io.table.reader.iter_payload_runs
    monkeypatch.setattr(source.table._decoder, "decode", lambda *a: decoded.append(a))
    monkeypatch.setattr(wire, "decode_example", lambda *a: decoded.append(a))
    monkeypatch.setattr(
        tfrecord_io.table.reader,
        "iter_payload_runs",
        lambda path, *a: (framed.append(path), runs(path, *a))[1],
    )
    assert source.feature_count() == listed == 40
    assert source.feature_count() == listed  # kept, not counted again
    assert decoded == []
    assert framed == [str(table.paths[0])]


def test_wide_tables_are_streamed_in_smaller_batches(tmp_path: Path) -> None:
    path = tfrecord_io.write_table(
        {"patch": np.arange(20 * 1089, dtype=np.float32).reshape(20, 33, 33)},
        tmp_path / "wide.tfrecord.gz",
    )
    source = TableLayerSource(path)
    sizes: list[int] = []
    batches = source.table.iter_batches
    source.table.iter_batches = lambda size, **kw: (sizes.append(size), batches(size, **kw))[1]
    features = list(source.iter_features())
    assert len(features) == 20
    assert len(features[0]["fields"]) == 1089
    assert sizes == [(1 << 20) // 1089]
    assert features[19]["fields"]["patch_1088"] == float(20 * 1089 - 1)


def test_ogr2ogr_converts_the_real_training_table_as_open_table_reads_it(tmp_path: Path) -> None:
    from tests.test_table_read import _real_tables

    path = _real_tables() / "training.tfrecord.gz"
    gpkg = tmp_path / "training.gpkg"
    done = _run(["ogr2ogr", "-f", "GPKG", str(gpkg), str(path)], _cli_env(tmp_path))
    assert done.returncode == 0, done.stderr
    frame = pyogrio.read_dataframe(gpkg, read_geometry=False)
    data = tfrecord_io.open_table(path).to_numpy()
    assert list(frame.columns) == list(data)
    for name, values in data.items():
        np.testing.assert_array_equal(frame[name].to_numpy(), values.astype(np.float64))
