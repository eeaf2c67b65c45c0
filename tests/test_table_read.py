"""open_table / read_table on table exports written by TensorFlow, and the three real ones."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from affine import Affine

import tfrecord_io
from tests.real_exports import require_real_exports
from tfrecord_io.errors import (
    ChecksumError,
    ExportKindError,
    MissingExtraError,
    MissingShardError,
    SchemaError,
    TableError,
    TruncatedRecordError,
)

EE_BAND_ORDER = [
    f"{band}_{when}" for when in ("before", "during") for band in ("red", "green", "blue", "nir")
] + ["class"]


def _real_tables() -> Path:
    return require_real_exports() / "servir-aces-tables"


def test_every_kind_reads_as_tensorflow_wrote_it(tf_table):
    info = tf_table(rows=40)
    table = tfrecord_io.open_table(info.paths[0])
    data = table.to_numpy()
    np.testing.assert_array_equal(data["B4"], info.columns["B4"])
    np.testing.assert_array_equal(data["count"], info.columns["count"])
    assert list(data["landcover"]) == info.columns["landcover"]
    np.testing.assert_array_equal(data["patch"], info.columns["patch"])
    np.testing.assert_array_equal(data["profile"], info.columns["profile"])
    np.testing.assert_array_equal(data["longitude"], info.columns["longitude"])
    assert list(data["blob"]) == info.columns["blob"]


def test_schema_gives_kind_dtype_and_inferred_shape(tf_table):
    schema = tfrecord_io.open_table(tf_table(rows=10).paths[0]).schema
    assert schema.to_dict() == {
        "B4": {"kind": "float", "dtype": "float32", "shape": ()},
        "count": {"kind": "int64", "dtype": "int64", "shape": ()},
        "landcover": {"kind": "bytes", "dtype": "str", "shape": ()},
        "patch": {"kind": "float", "dtype": "float32", "shape": (5, 5)},
        "profile": {"kind": "int64", "dtype": "int64", "shape": (3,)},
        "longitude": {"kind": "float", "dtype": "float32", "shape": ()},
        "latitude": {"kind": "float", "dtype": "float32", "shape": ()},
        "blob": {"kind": "bytes", "dtype": "bytes", "shape": ()},
    }


def test_len_counts_rows_of_every_file(tf_table):
    info = tf_table(rows=101, files=3)
    assert len(tfrecord_io.open_table(info.paths)) == 101


@pytest.mark.parametrize("form", ["list", "glob", "folder"])
def test_several_files_read_in_order_from_list_glob_or_folder(tf_table, form):
    info = tf_table(rows=30, files=3)
    folder = info.paths[0].parent
    paths = {"list": list(info.paths), "glob": str(folder / "table-*.tfrecord.gz")}
    paths["folder"] = str(folder)
    data = tfrecord_io.open_table(paths[form]).to_numpy()
    np.testing.assert_array_equal(data["count"], info.columns["count"])


def test_iter_batches_yields_batches_of_the_size_asked_across_files(tf_table):
    info = tf_table(rows=25, files=2)
    sizes = [len(b["B4"]) for b in tfrecord_io.open_table(info.paths).iter_batches(7)]
    assert sizes == [7, 7, 7, 4]


def test_iter_batches_arrays_are_shaped_rows_by_cell(tf_table):
    batch = next(tfrecord_io.open_table(tf_table(rows=9).paths[0]).iter_batches(4))
    assert batch["patch"].shape == (4, 5, 5)
    assert batch["patch"].dtype == np.float32
    assert batch["profile"].shape == (4, 3)
    assert batch["profile"].dtype == np.int64


def test_columns_selects_and_orders(tf_table):
    table = tfrecord_io.open_table(tf_table(rows=5).paths[0], columns=["latitude", "B4"])
    assert list(table.to_numpy()) == ["latitude", "B4"]


def test_unknown_column_names_the_columns_there_are(tf_table):
    with pytest.raises(SchemaError, match=r"no column 'nope'. Its columns are: .*B4"):
        tfrecord_io.open_table(tf_table(rows=5).paths[0], columns=["nope"])


def test_shapes_given_reshape_array_columns(tf_table):
    table = tfrecord_io.open_table(tf_table(rows=5).paths[0], shapes={"patch": (25,)})
    assert table.to_numpy()["patch"].shape == (5, 25)


def test_shape_minus_one_is_inferred(tf_table):
    table = tfrecord_io.open_table(tf_table(rows=5).paths[0], shapes={"patch": (-1, 5)})
    assert table.schema["patch"].shape == (5, 5)


def test_kernel_square_mistake_names_the_shape_that_fits(tf_table):
    columns = {"B2": np.zeros((3, 33, 33), np.float32)}
    info = tf_table(columns, {"B2": "float"})
    with pytest.raises(SchemaError) as caught:
        tfrecord_io.open_table(info.paths[0], shapes={"B2": (32, 32)})
    message = str(caught.value)
    assert "'B2'" in message
    assert "1089" in message
    assert "ee.Kernel.square(16)" in message
    assert "(33, 33)" in message


def test_length_varying_between_rows_names_column_and_row(tf_table):
    cells = [np.arange(3), np.arange(3), np.arange(4)]
    info = tf_table({"v": cells}, {"v": "int64"})
    with pytest.raises(SchemaError, match=r"row 2: column 'v' holds 4 values.*ragged=True"):
        tfrecord_io.open_table(info.paths[0])


def test_length_varying_after_the_sample_names_the_row(tf_table):
    cells = [np.arange(3)] * 10 + [np.arange(2)]
    info = tf_table({"v": cells}, {"v": "int64"})
    table = tfrecord_io.open_table(info.paths[0], sample=4)
    with pytest.raises(SchemaError, match=r"row 10: column 'v' holds 2 values"):
        table.to_numpy()


def test_ragged_reads_cells_of_varying_length(tf_table):
    cells = [np.arange(n) for n in (1, 3, 2)]
    info = tf_table({"v": cells}, {"v": "int64"})
    values = tfrecord_io.open_table(info.paths[0], ragged=True).to_numpy()["v"]
    assert [list(v) for v in values] == [[0], [0, 1, 2], [0, 1]]


def test_missing_column_in_a_row_is_named(tf_table, tmp_path):
    from tests.tftable import write_tf_table

    write_tf_table(tmp_path, {"a": [1.0] * 3, "b": [2.0] * 3}, {"a": "float", "b": "float"})
    write_tf_table(tmp_path, {"a": [1.0]}, {"a": "float"}, name="short")
    table = tfrecord_io.open_table([tmp_path / "table.tfrecord.gz", tmp_path / "short.tfrecord.gz"])
    with pytest.raises(SchemaError, match=r"short.tfrecord.gz', row 0: column 'b' is missing"):
        table.to_numpy()


def test_binary_keeps_text_as_bytes(tf_table):
    info = tf_table(rows=4)
    table = tfrecord_io.open_table(info.paths[0], binary=["landcover"])
    assert table.to_numpy()["landcover"][0] == info.columns["landcover"][0].encode("utf-8")


def test_to_arrow_makes_fixed_shape_tensor_columns(tf_table):
    import pyarrow as pa

    info = tf_table(rows=6)
    arrow = tfrecord_io.open_table(info.paths[0]).to_arrow()
    assert isinstance(arrow.schema.field("patch").type, pa.FixedShapeTensorType)
    assert arrow.schema.field("patch").type.shape == [5, 5]
    np.testing.assert_array_equal(
        arrow.column("patch").combine_chunks().to_numpy_ndarray(), info.columns["patch"]
    )
    assert arrow.schema.field("landcover").type == pa.string()
    assert arrow.schema.field("blob").type == pa.binary()


def test_to_pandas_cells_are_arrays_of_the_declared_shape(tf_table):
    info = tf_table(rows=6)
    frame = tfrecord_io.read_table(info.paths[0])
    assert frame.shape == (6, 8)
    assert frame["patch"].iloc[2].shape == (5, 5)
    np.testing.assert_array_equal(frame["patch"].iloc[2], info.columns["patch"][2])
    assert frame["landcover"].iloc[3] == info.columns["landcover"][3]


def test_to_geopandas_makes_points_from_longitude_latitude(tf_table):
    info = tf_table(rows=6)
    frame = tfrecord_io.open_table(info.paths[0]).to_geopandas()
    assert frame.crs.to_epsg() == 4326
    np.testing.assert_allclose(frame.geometry.x, info.columns["longitude"])
    np.testing.assert_allclose(frame.geometry.y, info.columns["latitude"])


def test_to_geopandas_without_the_columns_says_which_exist(tf_table):
    info = tf_table({"a": [1.0, 2.0]}, {"a": "float"})
    with pytest.raises(SchemaError, match=r"no column 'longitude'.*Columns: a"):
        tfrecord_io.open_table(info.paths[0]).to_geopandas()


def test_empty_table_says_it_holds_no_record(tmp_path):
    import tensorflow as tf

    path = tmp_path / "empty.tfrecord.gz"
    with tf.io.TFRecordWriter(str(path), "GZIP"):
        pass
    with pytest.raises(TableError, match="no record"):
        tfrecord_io.open_table(path)


def test_missing_path_raises_missing_shard_error(tmp_path):
    with pytest.raises(MissingShardError, match="does not exist"):
        tfrecord_io.open_table(tmp_path / "nothing.tfrecord.gz")


def test_missing_extra_names_the_table_extra():
    from tfrecord_io.table._deps import require

    with pytest.raises(MissingExtraError, match=r"tfrecord_io\[table\]"):
        require("no_such_module_here", "to_pandas()")


def test_open_table_refuses_an_image_export(tf_export):
    info = tf_export(
        bands={"B1": np.zeros((8, 8), np.float32)},
        transform=Affine(1, 0, 0, 0, -1, 8),
        patch_size=(4, 4),
    )
    with pytest.raises(ExportKindError, match=r"is an image export.*tfrecord_io.open"):
        tfrecord_io.open_table(info.shards[0])


def test_open_refuses_a_table_and_names_open_table(tf_table):
    info = tf_table(rows=3)
    with pytest.raises(ExportKindError, match=r"looks like a table export.*open_table"):
        tfrecord_io.open(info.paths[0])


def test_open_refuses_the_real_table_and_names_open_table():
    with pytest.raises(ExportKindError, match="open_table"):
        tfrecord_io.open(_real_tables() / "training.tfrecord.gz")


def test_open_table_refuses_the_real_renamed_image_export():
    image = _real_tables().parent / "servir-aces-image" / "image_2021.tfrecord.gz"
    with pytest.raises(ExportKindError, match="image export"):
        tfrecord_io.open_table(image)


@pytest.mark.parametrize("name", ["training", "testing", "validation"])
def test_real_table_reads_exactly_as_tensorflow_decodes_it(name):
    import tensorflow as tf

    from tests.tftable import tf_parse, tf_read_examples

    path = _real_tables() / f"{name}.tfrecord.gz"
    first = tf_read_examples(path)[0]
    spec = {key: tf.io.FixedLenFeature([], tf.float32) for key in first}
    expected = tf_parse(path, spec)
    table = tfrecord_io.open_table(path)
    data = table.to_numpy()
    assert list(data) == EE_BAND_ORDER  # the wire order (protobuf's map order is another)
    assert len(table) == len(expected["class"])
    for key in first:
        assert data[key].tobytes() == expected[key].tobytes()


def test_flipped_payload_byte_raises_checksum_error_naming_the_record(tf_table):
    info = tf_table({"a": np.arange(100, dtype=np.float32)}, {"a": "float"}, compressed=False)
    path = info.paths[0]
    raw = bytearray(path.read_bytes())
    size = len(raw) // 100
    raw[size * 37 + 20] ^= 0xFF  # inside record 37's payload
    path.write_bytes(bytes(raw))
    with pytest.raises(ChecksumError, match=r"record 37"):
        tfrecord_io.open_table(path, sample=1).to_numpy()


def test_truncated_file_raises_truncated_record_error(tf_table):
    info = tf_table({"a": np.arange(100, dtype=np.float32)}, {"a": "float"}, compressed=False)
    path = info.paths[0]
    path.write_bytes(path.read_bytes()[:-7])
    with pytest.raises(TruncatedRecordError, match="truncated"):
        len(tfrecord_io.open_table(path))


def test_abandoned_iteration_stops_the_inflating_thread(tf_table):
    import threading

    batches = tfrecord_io.open_table(tf_table(rows=50).paths[0]).iter_batches(5)
    next(batches)
    batches.close()
    assert not [t for t in threading.enumerate() if t.name == "tfrecord-io-inflate"]


def test_training_patches_named_like_a_shard_read_as_a_table(tf_table):
    columns = {"B4": np.ones((4, 33, 33), np.float32), "class": np.arange(4, dtype=np.float32)}
    info = tf_table(columns, {"B4": "float", "class": "float"}, name="train-00000")
    table = tfrecord_io.open_table(info.paths[0])
    assert table.schema["B4"].shape == (33, 33)
    assert len(table) == 4


def test_open_table_refuses_an_image_export_folder(tf_export):
    info = tf_export(
        bands={"B1": np.zeros((8, 8), np.float32)}, transform=Affine(1, 0, 0, 0, -1, 8)
    )
    with pytest.raises(ExportKindError, match="image export"):
        tfrecord_io.open_table(info.folder)


def test_tf_feature_spec_of_the_real_table_is_nine_float_scalars():
    import tensorflow as tf

    spec = tfrecord_io.tf_feature_spec(_real_tables() / "testing.tfrecord.gz")
    assert list(spec) == EE_BAND_ORDER
    assert all(f == tf.io.FixedLenFeature([], tf.float32) for f in spec.values())
