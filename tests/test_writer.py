"""The writer: Earth Engine's layout checked by TensorFlow, round trips through the reader.

TensorFlow parses what the writer makes exactly as Earth Engine's guide does it
(``TFRecordDataset`` + ``parse_single_example`` with ``FixedLenFeature`` shapes), and the
TensorFlow reference producer (``tests/tfexport.py``) writes the same raster for byte-for-byte
comparisons. Hypothesis drives writer -> reader round trips.
"""

from __future__ import annotations

import gzip
import os
import warnings
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tensorflow as tf
from affine import Affine
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tfrecord_io
from tests.tfexport import feature_keys, mixer_text, write_tf_export
from tfrecord_io.errors import (
    DatasetClosedError,
    ExportExistsError,
    NoMixerWarning,
    OptionError,
    PatchesDroppedWarning,
    TFRecordIOError,
    WindowError,
)
from tfrecord_io.format.records import iter_records
from tfrecord_io.image.encode import iter_payloads

UTM = Affine(30.0, 0.0, 500000.0, 0.0, -30.0, 4200000.0)
CRS = "EPSG:32610"
SETTINGS = settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def write(
    folder: Path,
    arr: np.ndarray,
    names: tuple[str, ...] | None = None,
    *,
    prefix: str = "export",
    **kwargs: Any,
) -> Path:
    """Write ``arr`` (bands, rows, cols) with the writer; return the export folder."""
    kwargs.setdefault("crs", CRS)
    kwargs.setdefault("transform", UTM)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PatchesDroppedWarning)
        warnings.simplefilter("ignore", NoMixerWarning)
        with tfrecord_io.open(
            folder, "w", width=arr.shape[2], height=arr.shape[1], count=arr.shape[0],
            dtype=kwargs.pop("dtype", arr.dtype), file_name_prefix=prefix, **kwargs,
        ) as dst:
            if names is not None:
                dst.descriptions = names
            dst.write(arr)
    return folder


def shards(folder: Path) -> list[str]:
    return sorted(str(p) for p in folder.glob("*.tfrecord*"))


def tf_payloads(folder: Path) -> list[bytes]:
    files = shards(folder)
    compression = "GZIP" if files[0].endswith(".gz") else ""
    return [bytes(r.numpy()) for r in tf.data.TFRecordDataset(files, compression_type=compression)]


def tiles_of(arr: np.ndarray, patch: tuple[int, int], kernel: tuple[int, int], default: float):
    """Expected stored tiles, row-major: ``(patches, bands, tile_h, tile_w)``."""
    pw, ph = patch
    mx, my = kernel[0] // 2, kernel[1] // 2
    padded = np.pad(arr, [(0, 0), (my, my), (mx, mx)], constant_values=default)
    rows, cols = arr.shape[1] // ph, arr.shape[2] // pw
    return np.stack([
        padded[:, r * ph : r * ph + ph + 2 * my, c * pw : c * pw + pw + 2 * mx]
        for r in range(rows) for c in range(cols)
    ])


# --- Earth Engine's layout, as TensorFlow reads it -----------------------------------------


def test_tensorflow_parses_float_tiles_with_ee_fixed_len_features(tmp_path, raster) -> None:
    arr = raster(3, 12, 20)
    folder = write(tmp_path / "out", arr, ("B2", "B3", "B4"),
                   patch_dimensions=[5, 4], kernel_size=[2, 2])
    spec = {n: tf.io.FixedLenFeature([6, 7], tf.float32) for n in ("B2", "B3", "B4")}
    got = np.stack([
        np.stack([p[n].numpy() for n in ("B2", "B3", "B4")])
        for p in (tf.io.parse_single_example(r, spec) for r in tf_payloads(folder))
    ])
    np.testing.assert_array_equal(got, tiles_of(arr, (5, 4), (2, 2), 0.0))


def test_payloads_equal_tensorflow_reference_byte_for_byte(tmp_path, raster) -> None:
    arr = raster(3, 12, 20)
    ours = write(tmp_path / "ours", arr, ("B2", "B3", "B4"),
                 patch_dimensions=[5, 4], kernel_size=[3, 3], default_value=-1.5)
    ref = write_tf_export(
        tmp_path / "ref", {n: arr[i] for i, n in enumerate(("B2", "B3", "B4"))},
        transform=UTM, crs=CRS, patch_size=(5, 4), kernel_size=(3, 3), default_value=-1.5,
        feature_order=("B2", "B3", "B4"),
    )
    assert tf_payloads(ours) == tf_payloads(ref.folder)


def test_int64_and_bytes_kinds_equal_tensorflow_reference(tmp_path, rng) -> None:
    arr = rng.integers(0, 256, (2, 8, 8)).astype(np.uint8)
    ours = write(tmp_path / "ours", arr, ("i", "u"), patch_dimensions=[4, 4],
                 kinds={"i": "int64", "u": "bytes"})
    ref = write_tf_export(
        tmp_path / "ref", {"i": arr[0], "u": arr[1]}, transform=UTM, crs=CRS,
        patch_size=(4, 4), kinds={"i": "int64", "u": "bytes"}, feature_order=("i", "u"),
    )
    assert tf_payloads(ours) == tf_payloads(ref.folder)


def test_int64_band_parses_as_tf_int64(tmp_path, rng) -> None:
    arr = rng.integers(-(2**40), 2**40, (1, 4, 4))
    folder = write(tmp_path / "out", arr, ("n",), kinds="int64")
    parsed = tf.io.parse_single_example(
        tf_payloads(folder)[0], {"n": tf.io.FixedLenFeature([4, 4], tf.int64)}
    )
    np.testing.assert_array_equal(parsed["n"].numpy(), arr[0])


def test_bytes_band_is_one_raw_uint8_value(tmp_path, rng) -> None:
    arr = rng.integers(0, 256, (1, 4, 6)).astype(np.uint8)
    folder = write(tmp_path / "out", arr, ("u",), kinds="bytes")
    parsed = tf.io.parse_single_example(
        tf_payloads(folder)[0], {"u": tf.io.FixedLenFeature([], tf.string)}
    )
    np.testing.assert_array_equal(tf.io.decode_raw(parsed["u"], tf.uint8).numpy(), arr.ravel())


def test_features_are_written_in_band_order(tmp_path, raster) -> None:
    arr = raster(3, 12, 20)
    folder = write(tmp_path / "out", arr, ("Z", "A", "M"))
    assert feature_keys(tf_payloads(folder)[0]) == ("Z", "A", "M")


def test_default_band_names_are_b1_to_bn(tmp_path, raster) -> None:
    arr = raster(3, 12, 20)
    folder = write(tmp_path / "out", arr)
    assert feature_keys(tf_payloads(folder)[0]) == ("b1", "b2", "b3")


def test_shards_are_named_prefix_five_digits(tmp_path, raster) -> None:
    arr = raster(3, 12, 20)
    folder = write(tmp_path / "out", arr, patch_dimensions=[4, 4], max_file_size=400,
                   prefix="Predict1_")
    names = sorted(os.listdir(folder))
    assert names[0] == "Predict1_-00000.tfrecord.gz"
    assert names[-1] == "Predict1_-mixer.json"


def test_uncompressed_shards_end_in_tfrecord(tmp_path, raster) -> None:
    arr = raster(3, 12, 20)
    folder = write(tmp_path / "out", arr, compressed=False)
    assert sorted(os.listdir(folder)) == ["export-00000.tfrecord", "export-mixer.json"]


def test_no_shard_exceeds_max_file_size_uncompressed(tmp_path, raster) -> None:
    arr = raster(3, 12, 20)
    folder = write(tmp_path / "out", arr, patch_dimensions=[4, 4], max_file_size=1000)
    sizes = [len(gzip.decompress(Path(s).read_bytes())) for s in shards(folder)]
    assert len(sizes) > 1
    assert max(sizes) <= 1000


def test_shard_split_matches_tensorflow_reference(tmp_path, raster) -> None:
    arr = raster(3, 12, 20)
    folder = write(tmp_path / "out", arr, patch_dimensions=[4, 4], max_file_size=1000)
    ref = write_tf_export(
        tmp_path / "ref", {f"b{i + 1}": arr[i] for i in range(3)}, transform=UTM,
        patch_size=(4, 4), max_file_size=1000,
    )
    counts = [sum(1 for _ in iter_records(s)) for s in shards(folder)]
    assert tuple(counts) == ref.records_per_shard


def test_patches_run_row_major_across_shards(tmp_path) -> None:
    arr = np.arange(16 * 16, dtype=np.float32).reshape(1, 16, 16)
    folder = write(tmp_path / "out", arr, patch_dimensions=[4, 4], max_file_size=300)
    spec = {"b1": tf.io.FixedLenFeature([4, 4], tf.float32)}
    firsts = [tf.io.parse_single_example(r, spec)["b1"].numpy()[0, 0] for r in tf_payloads(folder)]
    assert firsts == [r * 64 + c * 4 for r in range(4) for c in range(4)]


def test_record_larger_than_max_file_size_is_refused_before_writing(tmp_path, raster) -> None:
    arr = raster(3, 12, 20)
    with pytest.raises(OptionError, match="maxFileSize"):
        write(tmp_path / "out", arr, max_file_size=100)
    assert os.listdir(tmp_path) == []


def test_mixer_is_earth_engines_text(tmp_path, raster) -> None:
    arr = raster(3, 12, 20)
    folder = write(tmp_path / "out", arr, patch_dimensions=[5, 4])
    text = (folder / "export-mixer.json").read_text()
    assert text.rstrip("\n") == mixer_text(UTM, CRS, (5, 4), 4, 12)


def test_gzip_shards_are_one_member(tmp_path, raster) -> None:
    arr = raster(3, 12, 20)
    folder = write(tmp_path / "out", arr, patch_dimensions=[4, 4])
    data = Path(shards(folder)[0]).read_bytes()
    d = zlib.decompressobj(31)
    d.decompress(data)
    assert d.eof
    assert d.unused_data == b""


# --- edges, masks, defaults -----------------------------------------------------------------


def test_edge_patches_dropped_with_pixel_count_warning(tmp_path, raster) -> None:
    arr = raster(3, 12, 20)
    dst = tfrecord_io.open(tmp_path / "o", "w", width=20, height=12, count=3,
                           crs=CRS, transform=UTM, patch_dimensions=[6, 4])
    dst.write(arr)  # 20 x 12 in 6 x 4 patches: 2 columns of 12 rows dropped
    with pytest.warns(PatchesDroppedWarning, match=r"\b24 pixels"):
        dst.close()


def test_pad_edges_keeps_every_pixel(tmp_path, raster) -> None:
    arr = raster(3, 12, 20)
    folder = write(tmp_path / "out", arr, patch_dimensions=[6, 5], pad_edges=True,
                   default_value=-7)
    with tfrecord_io.open(folder) as src:
        data = src.read()
    assert data.shape == (3, 15, 24)
    np.testing.assert_array_equal(data[:, :12, :20], arr)


def test_pad_edges_fills_beyond_image_with_default_value(tmp_path, raster) -> None:
    arr = raster(3, 12, 20)
    folder = write(tmp_path / "out", arr, patch_dimensions=[6, 5], pad_edges=True,
                   default_value=-7)
    with tfrecord_io.open(folder) as src:
        data = src.read()
    assert (data[:, 12:, :] == -7).all()
    assert (data[:, :, 20:] == -7).all()


def test_nodata_pixels_become_default_value(tmp_path, raster) -> None:
    arr = raster(3, 12, 20)
    arr[1, 2, 3] = -9999
    folder = write(tmp_path / "out", arr, nodata=-9999, default_value=5)
    with tfrecord_io.open(folder) as src:
        assert src.read(2)[2, 3] == 5


def test_masked_array_pixels_become_default_value(tmp_path, raster) -> None:
    arr = raster(3, 12, 20)
    masked = np.ma.masked_array(arr, mask=np.zeros(arr.shape, bool))
    masked.mask[0, 0, 0] = True
    folder = write(tmp_path / "out", masked.astype(np.float32), default_value=3)
    with tfrecord_io.open(folder) as src:
        assert src.read(1)[0, 0] == 3
        assert src.read(1)[0, 1] == arr[0, 0, 1]


def test_dataset_mask_pixels_become_default_value(tmp_path, raster) -> None:
    arr = raster(3, 12, 20)
    with tfrecord_io.open(tmp_path / "o", "w", width=20, height=12, count=3, dtype="float32",
                          crs=CRS, transform=UTM, default_value=2) as dst:
        dst.write(arr)
        mask = np.full((12, 20), 255, np.uint8)
        mask[4, 5] = 0
        dst.write_mask(mask)
    with tfrecord_io.open(tmp_path / "o") as src:
        assert (src.read()[:, 4, 5] == 2).all()


def test_default_value_fraction_dropped_and_clamped_for_bytes(tmp_path) -> None:
    arr = np.full((1, 4, 4), 7, np.uint8)
    folder = write(tmp_path / "out", arr, kinds="bytes", kernel_size=[2, 2], default_value=300.7)
    with tfrecord_io.open(folder) as src:
        _, (tile,) = next(src.iter_tiles())
    assert tile[0, 0, 0] == 255


def test_default_value_fraction_dropped_for_int64(tmp_path) -> None:
    arr = np.full((1, 4, 4), 7, np.int32)
    folder = write(tmp_path / "out", arr, kinds="int64", kernel_size=[2, 2], default_value=-2.9)
    with tfrecord_io.open(folder) as src:
        _, (tile,) = next(src.iter_tiles())
        assert tile[0, 0, 0] == -2


def test_masked_threshold_drops_patches_and_writes_no_mixer(tmp_path, raster) -> None:
    arr = raster(3, 12, 20)
    arr[:, :4, :5] = -1  # patch 0 fully masked
    folder = write(tmp_path / "out", arr, nodata=-1, patch_dimensions=[5, 4],
                   masked_threshold=0.5)
    assert len(tf_payloads(folder)) == 11
    assert not (folder / "export-mixer.json").exists()


def test_masked_threshold_warns_that_no_mixer_is_written(tmp_path, raster) -> None:
    arr = raster(3, 12, 20)
    dst = tfrecord_io.open(tmp_path / "o", "w", width=20, height=12, count=3, crs=CRS,
                           transform=UTM, format_options={"maskedThreshold": 0.9})
    dst.write(arr)
    with pytest.warns(NoMixerWarning, match="no mixer"):
        dst.close()


# --- kinds and options in the reader's layout ------------------------------------------------


def test_tensor_depths_pad_array_band_with_default_planes(tmp_path, raster) -> None:
    arr = raster(3, 12, 20)
    folder = write(tmp_path / "out", arr, ("s", "A_0", "A_1"), tensor_depths={"A": 3},
                   default_value=-4)
    with tfrecord_io.open(folder) as src:
        assert src.descriptions == ("s", "A_0", "A_1", "A_2")
        data = src.read()
    np.testing.assert_array_equal(data[:3], arr)
    assert (data[3] == -4).all()


def test_tensor_depths_truncate_array_band(tmp_path, raster) -> None:
    arr = raster(3, 12, 20)
    folder = write(tmp_path / "out", arr, ("A_0", "A_1", "A_2"), tensor_depths={"A": 2})
    with tfrecord_io.open(folder) as src:
        np.testing.assert_array_equal(src.read(), arr[:2])


def test_tensor_depths_parse_as_depth_major_in_tensorflow(tmp_path, raster) -> None:
    arr = raster(3, 12, 20)
    folder = write(tmp_path / "out", arr, ("A_0", "A_1", "A_2"), tensor_depths={"A": 3})
    parsed = tf.io.parse_single_example(
        tf_payloads(folder)[0], {"A": tf.io.FixedLenFeature([3, 12, 20], tf.float32)}
    )
    np.testing.assert_array_equal(parsed["A"].numpy(), arr)


def test_collapse_bands_promotes_kinds_into_one_feature(tmp_path, rng) -> None:
    arr = rng.integers(0, 256, (3, 4, 4)).astype(np.uint8)
    folder = write(tmp_path / "out", arr, ("x", "y", "z"), collapse_bands=True,
                   kinds={"x": "bytes", "y": "int64", "z": "bytes"})
    parsed = tf.io.parse_single_example(
        tf_payloads(folder)[0], {"x": tf.io.FixedLenFeature([3, 4, 4], tf.int64)}
    )
    np.testing.assert_array_equal(parsed["x"].numpy(), arr)


def test_sequence_data_writes_one_sequence_example_per_pixel(tmp_path, rng) -> None:
    arr = rng.random((2, 4, 6), dtype=np.float32)
    folder = write(tmp_path / "out", arr, ("s", "A_0"), tensor_depths={"A": 1},
                   sequence_data=True, patch_dimensions=[3, 2])
    records = tf_payloads(folder)
    context, lists = tf.io.parse_single_sequence_example(
        records[4], {"s": tf.io.FixedLenFeature([], tf.float32)},
        {"A": tf.io.FixedLenSequenceFeature([], tf.float32)},
    )
    assert len(records) == 24
    assert context["s"].numpy() == arr[0, 1, 1]
    assert lists["A"].numpy().tolist() == [arr[1, 1, 1]]


def test_sequence_data_equals_tensorflow_reference(tmp_path, rng) -> None:
    arr = rng.random((3, 4, 4), dtype=np.float32)
    ours = write(tmp_path / "ours", arr, ("s", "A_0", "A_1"), tensor_depths={"A": 2},
                 sequence_data=True, patch_dimensions=[2, 2], kernel_size=[2, 2])
    ref = write_tf_export(
        tmp_path / "ref", {"s": arr[0], "A": arr[1:]}, transform=UTM, patch_size=(2, 2),
        kernel_size=(2, 2), tensor_depths={"A": 2}, sequence_data=True,
    )
    parse = tf.train.SequenceExample.FromString
    assert [parse(p) for p in tf_payloads(ours)] == [parse(p) for p in tf_payloads(ref.folder)]


# --- streaming -------------------------------------------------------------------------------


def test_windows_in_any_order_give_the_same_export(tmp_path, raster) -> None:
    arr = raster(3, 12, 20)
    whole = write(tmp_path / "whole", arr, patch_dimensions=[5, 4], kernel_size=[2, 2])
    with tfrecord_io.open(tmp_path / "win", "w", width=20, height=12, count=3, dtype="float32",
                          crs=CRS, transform=UTM, patch_dimensions=[5, 4],
                          kernel_size=[2, 2], file_name_prefix="export") as dst:
        for r0, c0 in [(6, 10), (0, 0), (6, 0), (0, 10)]:
            window = ((r0, r0 + 6), (c0, c0 + 10))
            dst.write(arr[:, r0 : r0 + 6, c0 : c0 + 10], window=window)
    assert tf_payloads(tmp_path / "win") == tf_payloads(whole)


def test_single_band_writes_by_index(tmp_path, raster) -> None:
    arr = raster(3, 12, 20)
    with tfrecord_io.open(tmp_path / "o", "w", width=20, height=12, count=3, dtype="float32",
                          crs=CRS, transform=UTM) as dst:
        for i in (3, 1, 2):
            dst.write(arr[i - 1], i)
    with tfrecord_io.open(tmp_path / "o") as src:
        np.testing.assert_array_equal(src.read(), arr)


class CountingSource:
    def __init__(self, arr: np.ndarray) -> None:
        self.arr, self.calls = arr, []

    def read_rows(self, r0: int, r1: int):
        self.calls.append((r0, r1))
        return self.arr[:, r0:r1], None


def test_encoder_reads_each_row_once_a_strip_at_a_time(raster) -> None:
    arr = raster(3, 12, 20)
    from tfrecord_io.image.encode import plan_export
    from tfrecord_io.image.options import FormatOptions

    options = FormatOptions.from_ee({"patchDimensions": [5, 3], "kernelSize": [4, 4]})
    plan = plan_export(["a", "b", "c"], ["float"] * 3, options, width=20, height=12,
                       transform=UTM)
    source = CountingSource(arr)
    for _ in iter_payloads(plan, source):
        pass
    rows = [r for r0, r1 in source.calls for r in range(r0, r1)]
    assert rows == list(range(12))
    assert max(r1 - r0 for r0, r1 in source.calls) <= 3 + 4


# --- atomic writes and bad input -------------------------------------------------------------


def test_error_inside_with_leaves_nothing(tmp_path, raster) -> None:
    arr = raster(3, 12, 20)

    def write_then_fail() -> None:
        with tfrecord_io.open(tmp_path / "o", "w", width=20, height=12, count=3,
                              crs=CRS, transform=UTM) as dst:
            dst.write(arr)
            raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError, match="interrupted"):
        write_then_fail()
    assert os.listdir(tmp_path) == []


def test_failed_close_leaves_nothing(tmp_path) -> None:
    dst = tfrecord_io.open(tmp_path / "o", "w", width=20, height=12, count=3, crs=CRS,
                           transform=UTM)
    dst.descriptions = ("a", "a", "b")
    with pytest.raises(OptionError, match="used twice"):
        dst.close()
    assert os.listdir(tmp_path) == []


def test_existing_export_is_refused_before_writing(tmp_path, raster) -> None:
    arr = raster(3, 12, 20)
    write(tmp_path / "out", arr)
    before = sorted(os.listdir(tmp_path / "out"))
    with pytest.raises(ExportExistsError):
        tfrecord_io.open(tmp_path / "out", "w", width=20, height=12, count=3, crs=CRS,
                         transform=UTM, file_name_prefix="export")
    assert sorted(os.listdir(tmp_path / "out")) == before


def test_overwrite_replaces_existing_export(tmp_path, raster) -> None:
    arr = raster(3, 12, 20)
    write(tmp_path / "out", arr, patch_dimensions=[4, 4], max_file_size=300)
    write(tmp_path / "out", arr[:1], overwrite=True)
    assert sorted(os.listdir(tmp_path / "out")) == ["export-00000.tfrecord.gz",
                                                    "export-mixer.json"]


def test_second_export_beside_another_in_one_folder(tmp_path, raster) -> None:
    arr = raster(3, 12, 20)
    write(tmp_path / "out", arr, prefix="a")
    write(tmp_path / "out", arr, prefix="b")
    with tfrecord_io.open(tmp_path / "out" / "b-mixer.json") as src:
        np.testing.assert_array_equal(src.read(), arr)


def test_unknown_format_option_is_an_error(tmp_path) -> None:
    with pytest.raises(OptionError, match="patchDimension"):
        tfrecord_io.open(tmp_path / "o", "w", width=4, height=4, count=1, crs=CRS,
                         transform=UTM, format_options={"patchDimension": [2, 2]})


def test_patch_larger_than_raster_is_refused_before_writing(tmp_path) -> None:
    with pytest.raises(OptionError, match="larger than"):
        tfrecord_io.open(tmp_path / "o", "w", width=4, height=4, count=1, crs=CRS,
                         transform=UTM, patch_dimensions=[8, 8])
    assert os.listdir(tmp_path) == []


def test_float_dtype_refused_for_int64_kind(tmp_path) -> None:
    with pytest.raises(OptionError, match="int64 feature cannot hold"):
        tfrecord_io.open(tmp_path / "o", "w", width=4, height=4, count=1, dtype="float32",
                         crs=CRS, transform=UTM, kinds="int64")


def test_int16_dtype_refused_for_bytes_kind(tmp_path) -> None:
    with pytest.raises(OptionError, match="bytes feature cannot hold"):
        tfrecord_io.open(tmp_path / "o", "w", width=4, height=4, count=1, dtype="int16",
                         crs=CRS, transform=UTM, kinds="bytes")


def test_wrong_array_shape_is_an_error(tmp_path, raster) -> None:
    arr = raster(3, 12, 20)
    with tfrecord_io.open(tmp_path / "o", "w", width=20, height=12, count=3, crs=CRS,
                          transform=UTM) as dst:
        with pytest.raises(OptionError, match="does not fit"):
            dst.write(arr[:2])
        dst.write(arr)


def test_window_outside_raster_is_an_error(tmp_path, raster) -> None:
    arr = raster(3, 12, 20)
    with tfrecord_io.open(tmp_path / "o", "w", width=20, height=12, count=3, crs=CRS,
                          transform=UTM) as dst:
        with pytest.raises(WindowError):
            dst.write(arr[:, :4, :4], window=((10, 14), (0, 4)))
        dst.write(arr)


def test_float_values_into_integer_dataset_are_an_error(tmp_path, raster) -> None:
    arr = raster(3, 12, 20)
    with tfrecord_io.open(tmp_path / "o", "w", width=20, height=12, count=3, dtype="int32",
                          crs=CRS, transform=UTM) as dst:
        with pytest.raises(TFRecordIOError, match="cannot write float32"):
            dst.write(arr)
        dst.write(np.zeros((3, 12, 20), np.int32))


def test_profile_reports_format_options(tmp_path) -> None:
    with tfrecord_io.open(tmp_path / "o", "w", width=4, height=4, count=1, crs=CRS,
                          transform=UTM, format_options={"kernelSize": [2, 2]}) as dst:
        dst.write(np.zeros((1, 4, 4), np.float32))
        assert dst.profile["format_options"]["kernelSize"] == [2, 2]


def test_writer_shares_the_reader_description(tmp_path) -> None:
    with tfrecord_io.open(tmp_path / "o", "w", width=8, height=4, count=2, crs=CRS,
                          transform=UTM, nodata=-1, patch_dimensions=[4, 2]) as dst:
        dst.write(np.zeros((2, 4, 8), np.float32))
        assert repr(dst) == f"<open EETFRecordWriter name='{dst.name}' mode='w'>"
        assert dst.bounds == (500000.0, 4200000.0 - 120.0, 500000.0 + 240.0, 4200000.0)
        assert dst.res == (30.0, 30.0)
        assert dst.nodatavals == (-1.0, -1.0)
        assert dst.block_shapes == [(2, 4), (2, 4)]
        assert (dst.profile["blockxsize"], dst.profile["blockysize"]) == (4, 2)
    with tfrecord_io.open(tmp_path / "o") as src:
        assert src.bounds == dst.bounds
        assert src.block_shapes == dst.block_shapes


@pytest.mark.parametrize("end", ["close", "abort"])
def test_closed_writer_raises_dataset_closed_error_naming_it(tmp_path, end) -> None:
    dst = tfrecord_io.open(tmp_path / "o", "w", width=4, height=4, count=1, crs=CRS,
                           transform=UTM)
    dst.write(np.zeros((1, 4, 4), np.float32))
    getattr(dst, end)()
    with pytest.raises(DatasetClosedError, match=r"'.*o' is closed: open it again") as caught:
        dst.write(np.zeros((1, 4, 4), np.float32))
    assert isinstance(caught.value, ValueError)
    assert isinstance(caught.value, TFRecordIOError)
    assert repr(dst).startswith("<closed EETFRecordWriter")


# --- round trips -----------------------------------------------------------------------------


@st.composite
def exports(draw: st.DrawFn) -> dict[str, Any]:
    pw, ph = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    cols, rows = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    width = pw * cols + draw(st.integers(0, pw - 1))
    height = ph * rows + draw(st.integers(0, ph - 1))
    kernel = [draw(st.integers(1, 6)), draw(st.integers(1, 6))]
    kind = draw(st.sampled_from(["float", "int64", "bytes"]))
    count = draw(st.integers(1, 3))
    return {
        "patch": [pw, ph], "kernel": kernel, "kind": kind, "count": count,
        "width": width, "height": height,
        "compressed": draw(st.booleans()), "max_file_size": draw(st.sampled_from([10**6, 2000])),
        "pad_edges": draw(st.booleans()), "collapse": draw(st.booleans()),
        "seed": draw(st.integers(0, 2**16)),
    }


@SETTINGS
@given(case=exports())
def test_writer_reader_round_trip_is_bit_exact(tmp_path_factory, case) -> None:
    rng = np.random.default_rng(case["seed"])
    shape = (case["count"], case["height"], case["width"])
    if case["kind"] == "float":
        arr = rng.standard_normal(shape).astype(np.float32)
    elif case["kind"] == "int64":
        arr = rng.integers(-(2**62), 2**62, shape)
    else:
        arr = rng.integers(0, 256, shape).astype(np.uint8)
    pw, ph = case["patch"]
    folder = write(
        tmp_path_factory.mktemp("rt") / "out", arr, kinds=case["kind"],
        patch_dimensions=case["patch"], kernel_size=case["kernel"],
        compressed=case["compressed"], max_file_size=max(case["max_file_size"], 16 * 1024),
        pad_edges=case["pad_edges"], collapse_bands=case["collapse"],
    )
    with tfrecord_io.open(folder, kernel_size=tuple(case["kernel"])) as src:
        data = src.read()
    if case["pad_edges"]:
        data = data[:, : case["height"], : case["width"]]
    h, w = data.shape[1:]
    np.testing.assert_array_equal(data, arr[:, :h, :w])
    if not case["pad_edges"]:
        assert (h, w) == (case["height"] // ph * ph, case["width"] // pw * pw)


@st.composite
def layouts(draw: st.DrawFn) -> dict[str, Any]:
    scalars = draw(st.integers(0, 2))
    members = draw(st.integers(0 if scalars else 1, 3))
    depth = draw(st.integers(1, 4))
    return {
        "scalars": scalars, "members": members, "depth": depth,
        "kind": draw(st.sampled_from(["float", "int64", "bytes"])),
        "sequence": draw(st.booleans()), "collapse": draw(st.booleans()),
        "default": draw(st.sampled_from([0.0, -3.0, 7.5])),
        "patch": [draw(st.integers(1, 3)), draw(st.integers(1, 3))],
        "kernel": [draw(st.integers(1, 4)), draw(st.integers(1, 4))],
        "seed": draw(st.integers(0, 2**16)),
    }


def expected_bands(case: dict[str, Any], arr: np.ndarray, names: list[str]) -> dict[str, Any]:
    """Band name -> plane the reader must return, following the documented layout rules."""
    default = {"float": case["default"], "int64": int(case["default"]),
               "bytes": max(int(case["default"]), 0)}[case["kind"]]
    features: list[tuple[str, list[Any]]] = [(n, [arr[i]]) for i, n in
                                            enumerate(names[: case["scalars"]])]
    if case["members"]:
        planes = [arr[case["scalars"] + j] for j in range(case["members"])][: case["depth"]]
        planes += [default] * (case["depth"] - len(planes))
        features.append(("A", planes))
    arrays = {"A"} if case["members"] else set()
    if case["collapse"]:
        all_planes = [p for _, ps in features for p in ps]
        if len(all_planes) > 1 or features[0][0] in arrays:
            arrays = {features[0][0]}
        features = [(features[0][0], all_planes)]
    if case["sequence"]:  # the reader lists the context's scalars first, then feature lists
        features.sort(key=lambda f: f[0] in arrays)
    out: dict[str, Any] = {}
    for name, planes in features:
        if len(planes) > 1:  # the reader cannot tell an array of depth 1 from a plain band
            out.update({f"{name}_{d}": p for d, p in enumerate(planes)})
        else:
            out[name] = planes[0]
    return out


@SETTINGS
@given(case=layouts())
def test_every_layout_option_round_trips_through_the_reader(tmp_path_factory, case) -> None:
    rng = np.random.default_rng(case["seed"])
    count = case["scalars"] + case["members"]
    names = [f"s{i}" for i in range(case["scalars"])] + [f"A_{j}" for j in range(case["members"])]
    shape = (count, 2 * case["patch"][1], 2 * case["patch"][0])
    arr = rng.integers(0, 256, shape).astype(np.uint8)
    folder = write(
        tmp_path_factory.mktemp("layout") / "out", arr, tuple(names), kinds=case["kind"],
        patch_dimensions=case["patch"], kernel_size=case["kernel"],
        default_value=case["default"], sequence_data=case["sequence"],
        collapse_bands=case["collapse"],
        tensor_depths={"A": case["depth"]} if case["members"] else None,
    )
    want = expected_bands(case, arr, names)
    with tfrecord_io.open(folder, kernel_size=tuple(case["kernel"])) as src:
        assert src.descriptions == tuple(want)
        for i, name in enumerate(src.descriptions):
            np.testing.assert_array_equal(src.read(i + 1), np.broadcast_to(want[name], shape[1:]))
