"""The plugin's table algorithms in real QGIS, headless: ``tfrecordio:load_table`` and
``tfrecordio:export_table`` through ``qgis_process`` and PyQGIS ``processing.run``, compared
with :func:`tfrecord_io.open_table` and with TensorFlow-written tables.

QGIS's Python (Debian's python3) has no pandas or pyarrow: the algorithms run on numpy only.
The plugin zip and the QGIS environment are the fixtures of ``test_qgis``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyogrio
import pytest

import tfrecord_io
from tests.test_qgis import (
    PLUGIN,
    ROOT,
    _pyqgis,
    _qgis_process,
    _qgis_process_fails,
    plugin_zip,
    qgis_env,
)
from tests.tftable import tf_read_examples
from tfrecord_io.gdal.vrt import DRIVER_FILE

__all__ = ["plugin_zip", "qgis_env"]  # the fixtures, shared with test_qgis


@pytest.fixture
def table(tf_table: Any) -> Any:
    """Every kind of column (float, int64, text, 5x5 and 3-value arrays, lon/lat, bytes)."""
    return tf_table(rows=30)


def _assert_layer_holds_the_table(gpkg: Path, path: Path) -> None:
    frame = pyogrio.read_dataframe(gpkg)
    data = tfrecord_io.open_table(path).to_numpy()
    assert len(frame) == len(data["B4"])
    np.testing.assert_array_equal(frame["B4"].to_numpy(), data["B4"].astype(np.float64))
    np.testing.assert_array_equal(frame["count"].to_numpy(), data["count"])
    assert list(frame["landcover"]) == list(data["landcover"])
    assert list(frame["blob"]) == list(data["blob"])
    patch = np.stack([frame[f"patch_{i}"].to_numpy() for i in range(25)], axis=1)
    np.testing.assert_array_equal(patch.reshape(-1, 5, 5), data["patch"])
    np.testing.assert_array_equal(frame.geometry.x.to_numpy(), data["longitude"])
    np.testing.assert_array_equal(frame.geometry.y.to_numpy(), data["latitude"])
    assert frame.crs.to_epsg() == 4326


def test_algorithms_are_listed(qgis_env: dict[str, str]) -> None:
    import subprocess

    from tests.test_qgis import QGIS_PROCESS, TIMEOUT

    done = subprocess.run(
        [QGIS_PROCESS, "list"], env=qgis_env, capture_output=True, text=True, timeout=TIMEOUT
    )
    assert "tfrecordio:load_table" in done.stdout
    assert "tfrecordio:export_table" in done.stdout


def test_qgis_process_load_table_gives_the_table_values_as_points(
    qgis_env: dict[str, str], table: Any, tmp_path: Path
) -> None:
    gpkg = tmp_path / "table.gpkg"
    results = _qgis_process(
        qgis_env, "tfrecordio:load_table", INPUT=table.paths[0], OUTPUT=gpkg
    )["results"]
    assert Path(results["OUTPUT"].split("|")[0]) == gpkg
    _assert_layer_holds_the_table(gpkg, table.paths[0])


def test_pyqgis_load_table_adds_a_valid_point_layer_with_typed_fields(
    qgis_env: dict[str, str], table: Any, tmp_path: Path
) -> None:
    gpkg = tmp_path / "table.gpkg"
    params = {"INPUT": str(table.paths[0]), "OUTPUT": str(gpkg)}
    report = _pyqgis(qgis_env, tmp_path, "tfrecordio:load_table", params)
    assert "error" not in report, report.get("error")
    (layer,) = report["layers"]
    assert layer["valid"]
    assert layer["features"] == 30
    assert layer["geometry"] == "Point"
    assert layer["crs"] == "EPSG:4326"
    types = dict(layer["fields"])
    assert types["B4"] == "Real"
    assert types["count"] == "Integer64"
    assert types["landcover"] == "String"
    assert types["blob"] == "Binary"
    assert types["patch_24"] == "Real"
    assert "patch" not in types
    _assert_layer_holds_the_table(gpkg, table.paths[0])


def test_load_table_with_x_and_y_fields_and_crs(
    qgis_env: dict[str, str], table: Any, tmp_path: Path
) -> None:
    gpkg = tmp_path / "xy.gpkg"
    _qgis_process(
        qgis_env,
        "tfrecordio:load_table",
        INPUT=table.paths[0],
        X="B4",
        Y="count",
        CRS="EPSG:3857",
        OUTPUT=gpkg,
    )
    frame = pyogrio.read_dataframe(gpkg)
    np.testing.assert_array_equal(frame.geometry.x.to_numpy(), frame["B4"].to_numpy())
    np.testing.assert_array_equal(frame.geometry.y.to_numpy(), frame["count"].to_numpy())
    assert frame.crs.to_epsg() == 3857


def test_load_table_of_an_image_export_fails_with_the_library_message(
    qgis_env: dict[str, str], tmp_path: Path
) -> None:
    shard = Path(__file__).resolve().parent.parent / "data" / "sample" / "sample-00000.tfrecord.gz"
    output = _qgis_process_fails(
        qgis_env, "tfrecordio:load_table", INPUT=shard, OUTPUT=tmp_path / "x.gpkg"
    )
    assert "is an image export, not a table" in output


def test_qgis_process_export_table_round_trips_a_loaded_table(
    qgis_env: dict[str, str], table: Any, tmp_path: Path
) -> None:
    gpkg = tmp_path / "table.gpkg"
    _qgis_process(qgis_env, "tfrecordio:load_table", INPUT=table.paths[0], OUTPUT=gpkg)
    out = tmp_path / "again.tfrecord.gz"
    results = _qgis_process(qgis_env, "tfrecordio:export_table", INPUT=gpkg, OUTPUT=out)
    assert results["results"]["OUTPUT"] == str(out)
    again = tfrecord_io.open_table(out)
    original = tfrecord_io.open_table(table.paths[0])
    assert again.schema == original.schema
    data, expected = again.to_numpy(), original.to_numpy()
    for name in expected:
        np.testing.assert_array_equal(data[name], expected[name])
    # TensorFlow reads what QGIS wrote: the same features, kinds and values per row.
    assert tf_read_examples(out)[0].keys() == tf_read_examples(table.paths[0])[0].keys()


def test_pyqgis_export_table_of_a_layer_without_geometry(
    qgis_env: dict[str, str], tmp_path: Path
) -> None:
    csv = tmp_path / "plain.csv"
    csv.write_text("name,value,n\na,1.5,3\nb,2.25,-4\n", encoding="utf-8")
    out = tmp_path / "plain.tfrecord.gz"
    params = {"INPUT": f"{csv}|layername=plain", "GROUP_ARRAYS": False, "OUTPUT": str(out)}
    report = _pyqgis(qgis_env, tmp_path, "tfrecordio:export_table", params)
    assert "error" not in report, report.get("error")
    data = tfrecord_io.open_table(out).to_numpy()
    assert set(data) == {"name", "value", "n"}
    assert list(data["name"]) == ["a", "b"]


def test_export_table_refuses_lines(qgis_env: dict[str, str], tmp_path: Path) -> None:
    geojson = tmp_path / "lines.geojson"
    geojson.write_text(
        '{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"a":1},'
        '"geometry":{"type":"LineString","coordinates":[[0,0],[1,1]]}}]}',
        encoding="utf-8",
    )
    output = _qgis_process_fails(
        qgis_env, "tfrecordio:export_table", INPUT=geojson, OUTPUT=tmp_path / "x.tfrecord.gz"
    )
    assert "Only points" in output
    assert not (tmp_path / "x.tfrecord.gz").exists()


# The GDAL driver inside QGIS --------------------------------------------------------------------


def test_plugin_names_the_library_driver_file() -> None:
    init = ROOT / "plugins" / PLUGIN / "__init__.py"
    namespace: dict = {"__file__": str(init), "__name__": PLUGIN}
    exec(compile(init.read_text(), str(init), "exec"), namespace)  # no QGIS import at load
    assert namespace["DRIVER_FILE"] == DRIVER_FILE
    assert namespace["TABLE_DRIVER"] == "EETFRecordTable"


def test_plugin_registers_the_driver_so_qgis_opens_a_table_as_a_vector_layer(
    qgis_env: dict[str, str], table: Any, tmp_path: Path
) -> None:
    report = _pyqgis(qgis_env, tmp_path, None, None, "--vector", str(table.paths[0]))
    layer = report["vector"]
    assert layer["valid"]
    assert layer["features"] == 30
    assert layer["geometry"] == "Point"
    assert layer["crs"] == "EPSG:4326"
    assert dict(layer["fields"])["count"] == "Integer64"
