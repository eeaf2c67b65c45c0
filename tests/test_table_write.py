"""write_table: TensorFlow parses what it writes; Earth Engine's gzip framing; round trips."""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tfrecord_io
from tfrecord_io.errors import ExportExistsError, OptionError, TableError
from tfrecord_io.format import example as wire
from tfrecord_io.format.records import iter_records
from tfrecord_io.table.encode import RowEncoder, TableColumn


def _sample(rows: int = 20) -> dict:
    rng = np.random.default_rng(3)
    return {
        "B4": rng.normal(size=rows),
        "count": rng.integers(-(2**40), 2**40, size=rows),
        "landcover": [f"forest-{i}" for i in range(rows)],
        "patch": rng.random((rows, 3, 3)).astype(np.float32),
        "flag": rng.random(rows) > 0.5,
    }


def test_tensorflow_parses_what_write_table_writes(tmp_path):
    import tensorflow as tf

    from tests.tftable import tf_parse

    data = _sample()
    path = tfrecord_io.write_table(data, tmp_path / "t.tfrecord.gz")
    spec = {
        "B4": tf.io.FixedLenFeature([], tf.float32),
        "count": tf.io.FixedLenFeature([], tf.int64),
        "landcover": tf.io.FixedLenFeature([], tf.string),
        "patch": tf.io.FixedLenFeature([3, 3], tf.float32),
        "flag": tf.io.FixedLenFeature([], tf.int64),
    }
    parsed = tf_parse(path, spec)
    np.testing.assert_array_equal(parsed["B4"], data["B4"].astype(np.float32))
    np.testing.assert_array_equal(parsed["count"], data["count"])
    assert [v.decode() for v in parsed["landcover"]] == data["landcover"]
    np.testing.assert_array_equal(parsed["patch"], data["patch"])
    np.testing.assert_array_equal(parsed["flag"], data["flag"].astype(np.int64))


def test_tf_feature_spec_parses_what_write_table_writes(tmp_path):
    from tests.tftable import tf_parse

    data = _sample()
    path = tfrecord_io.write_table(data, tmp_path / "t.tfrecord.gz")
    parsed = tf_parse(path, tfrecord_io.tf_feature_spec(path))
    np.testing.assert_array_equal(parsed["patch"], data["patch"])


def test_tf_feature_spec_of_an_image_export_has_the_tile_shape_with_margins(tf_export):
    from affine import Affine

    from tests.tftable import tf_parse

    band = np.arange(16 * 16, dtype=np.float32).reshape(16, 16)
    info = tf_export(
        bands={"B1": band},
        transform=Affine(1, 0, 0, 0, -1, 16),
        patch_size=(8, 8),
        kernel_size=(5, 5),
    )
    spec = tfrecord_io.tf_feature_spec(info.folder)
    assert spec["B1"].shape == [12, 12]
    parsed = tf_parse(list(info.shards), spec)
    np.testing.assert_array_equal(parsed["B1"][0, 2:10, 2:10], band[:8, :8])


def test_file_is_one_gzip_member_with_earth_engines_header(tmp_path):
    path = tfrecord_io.write_table(_sample(), tmp_path / "t.tfrecord.gz")
    raw = Path(path).read_bytes()
    assert raw[:10] == bytes.fromhex("1f8b08000000000000ff")
    inflater = zlib.decompressobj(31)
    inflater.decompress(raw)
    assert inflater.eof
    assert inflater.unused_data == b""


def test_uncompressed_when_asked(tmp_path):
    path = tfrecord_io.write_table(_sample(), tmp_path / "t.tfrecord", compressed=False)
    assert Path(path).read_bytes()[:2] != b"\x1f\x8b"
    assert len(tfrecord_io.open_table(path)) == 20


def test_features_are_written_in_column_order(tmp_path):
    path = tfrecord_io.write_table(_sample(), tmp_path / "t.tfrecord.gz")
    _, payload = next(iter_records(path))
    assert list(wire.decode_example(payload)) == list(_sample())


def test_fast_float_layout_equals_the_codec(tmp_path):
    rng = np.random.default_rng(0)
    columns = [
        TableColumn("a", "float", rng.random((4, 2, 2)).astype(np.float32)),
        TableColumn("b", "float", rng.random(4).astype(np.float32)),
        TableColumn("c", "int64", np.arange(4)),
        TableColumn("d", "float", rng.random(4).astype(np.float32)),
    ]
    payloads = list(RowEncoder(columns).iter_payloads())
    for i, payload in enumerate(payloads):
        expected = wire.encode_example(
            {
                "a": wire.float_feature(columns[0].values[i]),
                "b": wire.float_feature(columns[1].values[i]),
                "c": wire.int64_feature(columns[2].values[i]),
                "d": wire.float_feature(columns[3].values[i]),
            }
        )
        assert payload == expected


def test_existing_file_is_kept_without_overwrite(tmp_path):
    path = tmp_path / "t.tfrecord.gz"
    path.write_bytes(b"old")
    with pytest.raises(ExportExistsError, match="overwrite"):
        tfrecord_io.write_table(_sample(), path)
    assert path.read_bytes() == b"old"


def test_overwrite_replaces_the_file(tmp_path):
    path = tmp_path / "t.tfrecord.gz"
    path.write_bytes(b"old")
    tfrecord_io.write_table(_sample(), path, overwrite=True)
    assert len(tfrecord_io.open_table(path)) == 20


def test_failed_write_leaves_nothing_behind(tmp_path):
    import pandas as pd

    frame = pd.DataFrame({"a": [1.0, 2.0], "name": ["x", None]})
    with pytest.raises(TableError, match="column 'name', row 1"):
        tfrecord_io.write_table(frame, tmp_path / "t.tfrecord.gz")
    assert os.listdir(tmp_path) == []


def test_dataframe_array_cells_are_flattened_row_major(tmp_path):
    import pandas as pd

    cells = [np.arange(6, dtype=np.float32).reshape(2, 3) + i for i in range(3)]
    path = tfrecord_io.write_table(pd.DataFrame({"p": cells}), tmp_path / "t.tfrecord.gz")
    _, payload = next(iter_records(path))
    np.testing.assert_array_equal(wire.decode_example(payload)["p"].values, np.arange(6))


def test_geodataframe_points_become_longitude_latitude(tmp_path):
    import geopandas as gpd

    frame = gpd.GeoDataFrame(
        {"v": [1, 2]}, geometry=gpd.points_from_xy([10.5, -3.25], [45.0, 7.5]), crs="EPSG:4326"
    )
    path = tfrecord_io.write_table(frame, tmp_path / "t.tfrecord.gz")
    data = tfrecord_io.open_table(path).to_numpy()
    assert list(data) == ["v", "longitude", "latitude"]
    np.testing.assert_array_equal(data["longitude"], [10.5, -3.25])


def test_geodataframe_in_another_crs_is_reprojected_to_lonlat(tmp_path):
    import geopandas as gpd

    frame = gpd.GeoDataFrame(
        {"v": [1]}, geometry=gpd.points_from_xy([500000.0], [0.0]), crs="EPSG:32633"
    )
    data = tfrecord_io.open_table(
        tfrecord_io.write_table(frame, tmp_path / "t.tfrecord.gz")
    ).to_numpy()
    np.testing.assert_allclose([data["longitude"][0], data["latitude"][0]], [15.0, 0.0], atol=1e-5)


def test_non_point_geometry_is_refused(tmp_path):
    import geopandas as gpd
    from shapely.geometry import box

    frame = gpd.GeoDataFrame({"v": [1]}, geometry=[box(0, 0, 1, 1)], crs="EPSG:4326")
    with pytest.raises(TableError, match=r"not a point.*centroid"):
        tfrecord_io.write_table(frame, tmp_path / "t.tfrecord.gz")


def test_arrow_table_with_tensor_column_round_trips(tmp_path, tf_table):
    info = tf_table(rows=8)
    arrow = tfrecord_io.open_table(info.paths[0]).to_arrow()
    path = tfrecord_io.write_table(arrow, tmp_path / "t.tfrecord.gz")
    data = tfrecord_io.open_table(path).to_numpy()
    np.testing.assert_array_equal(data["patch"], info.columns["patch"])
    assert list(data["blob"]) == info.columns["blob"]


def test_kinds_override_the_default(tmp_path):
    path = tfrecord_io.write_table(
        {"n": np.arange(3)}, tmp_path / "t.tfrecord.gz", kinds={"n": "float"}
    )
    assert tfrecord_io.open_table(path).schema["n"].kind == "float"


def test_unknown_kind_is_refused(tmp_path):
    with pytest.raises(OptionError, match="kinds\\['n'\\]"):
        tfrecord_io.write_table({"n": np.arange(3)}, tmp_path / "t.gz", kinds={"n": "double"})


def test_gzip_module_reads_the_file(tmp_path):
    path = tfrecord_io.write_table(_sample(), tmp_path / "t.tfrecord.gz")
    assert len(gzip.decompress(Path(path).read_bytes())) > 0


_names = st.text("abcdefgh_", min_size=1, max_size=8)
_float_cols = hnp.arrays(
    np.float32,
    st.tuples(st.just(5), st.sampled_from([(), (2,), (3, 3)])).map(lambda t: (t[0], *t[1])),
    elements=st.floats(width=32, allow_nan=False),
)


@settings(max_examples=40, deadline=None)
@given(
    floats=st.dictionaries(_names, _float_cols, min_size=1, max_size=3),
    ints=hnp.arrays(np.int64, 5, elements=st.integers(-(2**63), 2**63 - 1)),
    text=st.lists(
        st.text(min_size=1, max_size=5).filter(lambda s: "\x00" not in s), min_size=5, max_size=5
    ),
)
def test_round_trip_write_table_open_table(tmp_path_factory, floats, ints, text):
    data = {f"f_{k}": v for k, v in floats.items()} | {"i": ints, "s": text}
    path = tmp_path_factory.mktemp("rt") / "t.tfrecord.gz"
    tfrecord_io.write_table(data, path)
    back = tfrecord_io.open_table(path).to_numpy()
    assert list(back) == list(data)
    for name, values in floats.items():
        got = back[f"f_{name}"]
        assert got.tobytes() == values.tobytes()
        assert got.shape == values.shape
    np.testing.assert_array_equal(back["i"], ints)
    assert list(back["s"]) == text


@settings(max_examples=30, deadline=None)
@given(
    cells=st.lists(
        hnp.arrays(np.int64, st.integers(0, 6), elements=st.integers(-(2**40), 2**40)),
        min_size=1,
        max_size=6,
    ),
    blobs=st.data(),
)
def test_round_trip_ragged_and_binary_columns(tmp_path_factory, cells, blobs):
    raw = blobs.draw(
        st.lists(st.binary(min_size=1, max_size=6), min_size=len(cells), max_size=len(cells))
    )
    raw = [b"\xff" + b for b in raw]  # never valid UTF-8, so read back as bytes
    path = tmp_path_factory.mktemp("rt") / "t.tfrecord.gz"
    tfrecord_io.write_table({"v": list(cells), "b": raw}, path, kinds={"v": "int64"})
    back = tfrecord_io.open_table(path, ragged=["v"]).to_numpy()
    assert [list(c) for c in back["v"]] == [list(c) for c in cells]
    assert list(back["b"]) == raw
