"""Table conversions (read back with geopandas / pyarrow), the table CLI, and bounded memory."""

from __future__ import annotations

import json
import tracemalloc

import numpy as np
import pytest
from click.testing import CliRunner

import tfrecord_io
from tfrecord_io.cli import main
from tfrecord_io.errors import ExportExistsError, OptionError
from tfrecord_io.table.convert import convert_table, format_for


def _table(tf_table):
    return tf_table(rows=12)


@pytest.mark.parametrize(
    ("name", "driver"),
    [("out.gpkg", "GPKG"), ("out.geojson", "GeoJSON"), ("out.fgb", "FlatGeobuf")],
)
def test_ogr_formats_hold_points_and_spread_arrays(tf_table, tmp_path, name, driver):
    import geopandas as gpd
    import pyogrio

    info = _table(tf_table)
    dst = convert_table(info.paths[0], tmp_path / name)
    assert pyogrio.read_info(dst)["driver"] == driver
    frame = gpd.read_file(dst)
    # FlatGeobuf stores features in the order of its spatial index: match rows by name.
    order = [int(np.flatnonzero(info.columns["B4"] == value)[0]) for value in frame["B4"]]
    np.testing.assert_allclose(frame.geometry.x, info.columns["longitude"][order])
    np.testing.assert_allclose(frame["patch_24"], info.columns["patch"][order, 4, 4])
    assert frame.crs.to_epsg() == 4326


def test_csv_spreads_arrays_over_numbered_columns(tf_table, tmp_path):
    import pandas as pd

    info = _table(tf_table)
    frame = pd.read_csv(convert_table(info.paths[0], tmp_path / "out.csv"))
    np.testing.assert_allclose(frame["profile_2"], info.columns["profile"][:, 2])
    np.testing.assert_allclose(frame["B4"], info.columns["B4"], rtol=1e-6)


def test_parquet_keeps_tensor_columns(tf_table, tmp_path):
    import pyarrow.parquet as pq

    info = _table(tf_table)
    table = pq.read_table(convert_table(info.paths[0], tmp_path / "out.parquet"))
    patch = table.column("patch").combine_chunks().to_numpy_ndarray()
    np.testing.assert_array_equal(patch, info.columns["patch"])
    assert b"geo" not in (table.schema.metadata or {})


def test_geoparquet_reads_back_with_geopandas(tf_table, tmp_path):
    import geopandas as gpd

    info = _table(tf_table)
    dst = convert_table(info.paths[0], tmp_path / "out.parquet", format="GeoParquet")
    frame = gpd.read_parquet(dst)
    assert frame.crs.to_epsg() == 4326
    np.testing.assert_allclose(frame.geometry.y, info.columns["latitude"])


def test_geopackage_back_to_tfrecord_for_upload(tf_table, tmp_path):
    info = _table(tf_table)
    gpkg = convert_table(
        info.paths[0], tmp_path / "out.gpkg", columns=["B4", "landcover", "longitude", "latitude"]
    )
    back = convert_table(gpkg, tmp_path / "up.tfrecord.gz")
    data = tfrecord_io.open_table(back).to_numpy()
    assert list(data) == ["B4", "landcover", "longitude", "latitude"]
    np.testing.assert_allclose(data["longitude"], info.columns["longitude"])
    assert list(data["landcover"]) == info.columns["landcover"]


def test_csv_to_tfrecord(tmp_path):
    src = tmp_path / "in.csv"
    src.write_text("name,longitude,latitude\nwell,10.5,45.25\nspring,11.0,46.0\n")
    data = tfrecord_io.open_table(convert_table(src, tmp_path / "t.tfrecord.gz")).to_numpy()
    assert list(data["name"]) == ["well", "spring"]
    np.testing.assert_array_equal(data["latitude"], [45.25, 46.0])


def test_unknown_extension_asks_for_a_format(tmp_path):
    with pytest.raises(OptionError, match="-f"):
        format_for(tmp_path / "out.xyz")


def test_geopackage_is_an_alias_of_gpkg():
    assert format_for("x", "GeoPackage") == "GPKG"


def test_conversion_keeps_an_existing_output(tf_table, tmp_path):
    dst = tmp_path / "out.csv"
    dst.write_text("old")
    with pytest.raises(ExportExistsError):
        convert_table(_table(tf_table).paths[0], dst)
    assert dst.read_text() == "old"


def test_cli_info_json_lists_columns(tf_table):
    info = _table(tf_table)
    result = CliRunner().invoke(main, ["table", "info", str(info.paths[0]), "--json"])
    assert result.exit_code == 0, result.output
    description = json.loads(result.output)
    assert description["rows"] == 12
    assert {"name": "patch", "kind": "float", "dtype": "float32", "shape": [5, 5]} in description[
        "columns"
    ]


def test_cli_info_text_names_rows_and_columns(tf_table):
    result = CliRunner().invoke(main, ["table", "info", str(_table(tf_table).paths[0])])
    assert "12 rows" in result.output
    assert "patch: float32 (float_list), 5x5" in result.output


def test_cli_convert_writes_and_refuses_to_overwrite(tf_table, tmp_path):
    import geopandas as gpd

    src, dst = str(_table(tf_table).paths[0]), str(tmp_path / "out.gpkg")
    first = CliRunner().invoke(main, ["table", "convert", "-q", src, dst])
    assert first.exit_code == 0, first.output
    assert len(gpd.read_file(dst)) == 12
    second = CliRunner().invoke(main, ["table", "convert", "-q", src, dst])
    assert second.exit_code == 1
    assert "--overwrite" in second.output
    assert len(second.output.strip().splitlines()) == 1


def test_cli_convert_makes_points_from_x_and_y(tf_table, tmp_path):
    import geopandas as gpd

    info = _table(tf_table)
    dst = str(tmp_path / "out.geojson")
    args = ["table", "convert", "-q", str(info.paths[0]), dst, "--x", "B4", "--y", "latitude"]
    assert CliRunner().invoke(main, args).exit_code == 0
    np.testing.assert_allclose(gpd.read_file(dst).geometry.x, info.columns["B4"], rtol=1e-6)


def test_cli_error_on_an_image_export_is_one_line(tf_export):
    from affine import Affine

    info = tf_export(
        bands={"B1": np.zeros((8, 8), np.float32)}, transform=Affine(1, 0, 0, 0, -1, 8)
    )
    result = CliRunner().invoke(main, ["table", "info", str(info.shards[0])])
    assert result.exit_code == 1
    assert result.output.startswith("Error:")
    assert "image export" in result.output


def _peak_while_iterating(path, batch: int) -> int:
    table = tfrecord_io.open_table(path)
    tracemalloc.start()
    try:
        for _ in table.iter_batches(batch):
            pass
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_iter_batches_memory_does_not_grow_with_the_table(tmp_path):
    # Both tables are many times the 1 MiB the reader inflates at a time.
    rng = np.random.default_rng(0)
    peaks = []
    for rows in (40_000, 160_000):
        cells = rng.integers(0, 4, size=(rows, 9, 9)).astype(np.float32)
        path = tfrecord_io.write_table({"p": cells}, tmp_path / f"{rows}.tfrecord.gz", level=1)
        peaks.append(_peak_while_iterating(path, 1000))
    table_bytes = 160_000 * 81 * 4
    assert peaks[1] < 1.25 * peaks[0]
    assert peaks[1] < table_bytes / 2


def test_image_info_command_on_a_table_names_open_table(tf_table):
    result = CliRunner().invoke(main, ["info", str(_table(tf_table).paths[0])])
    assert result.exit_code == 1
    assert "table export" in result.output
    assert "open_table" in result.output
