"""The TensorFlow reference producer checked with TensorFlow alone as the consumer.

Shards are read the way Earth Engine's guide does it (``TFRecordDataset`` plus
``parse_single_example`` with ``FixedLenFeature([tile_h, tile_w], tf.float32)``) and the tiles
are stitched back by trimming the margins; nothing from ``tfrecord_io`` is used.
"""

from __future__ import annotations

import gzip
import json
import runpy
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from affine import Affine

from tests.tfexport import (
    RECORD_OVERHEAD,
    ExportInfo,
    feature_keys,
    java_double,
    mixer_text,
)

Make = Callable[..., ExportInfo]
UTM = Affine(30.0, 0.0, 500000.0, 0.0, -30.0, 4200000.0)

# The real mixer quoted in ee-tfrecord-format.md, byte for byte (without a final newline).
EE_MIXER = """{
  "projection": {
    "crs": "EPSG:4326",
    "affine": {
      "doubleMatrix": [8.983152841195215E-4, 0.0, 13.599595086285436, 0.0, -8.983152841195215E-4, 45.40175277468474]
    }
  },
  "patchDimensions": [256, 256],
  "patchesPerRow": 5,
  "totalPatches": 10
}"""  # noqa: E501 - the mixer text verbatim, one long line as Earth Engine writes it
EE_AFFINE = Affine(
    8.983152841195215e-4, 0.0, 13.599595086285436, 0.0, -8.983152841195215e-4, 45.40175277468474
)


def payloads(info: ExportInfo) -> list[bytes]:
    """Every record of the export, in order, as TensorFlow reads it."""
    files = [str(p) for p in info.shards]
    dataset = tf.data.TFRecordDataset(files, compression_type=info.compression_type)
    return [bytes(r.numpy()) for r in dataset]


def read_tiles(
    info: ExportInfo, kinds: dict[str, str] | None = None, depths: dict[str, int] | None = None
) -> dict[str, np.ndarray]:
    """Parse every record with fixed-shape features; band -> ``(patch, [depth,] th, tw)``."""
    kinds, depths = kinds or {}, depths or {}
    tile_width, tile_height = info.tile_size
    spec = {}
    for name in info.wire_order:
        shape = [depths[name]] if name in depths else []
        kind = kinds.get(name, "float")
        if kind == "bytes":
            spec[name] = tf.io.FixedLenFeature([], tf.string)
        else:
            dtype = tf.int64 if kind == "int64" else tf.float32
            spec[name] = tf.io.FixedLenFeature([*shape, tile_height, tile_width], dtype)
    tiles: dict[str, list[np.ndarray]] = {name: [] for name in spec}
    for payload in payloads(info):
        parsed = tf.io.parse_single_example(payload, spec)
        for name, value in parsed.items():
            if kinds.get(name) == "bytes":
                shape = [depths[name]] if name in depths else []
                raw = tf.io.decode_raw(value, tf.uint8).numpy()
                tiles[name].append(raw.reshape([*shape, tile_height, tile_width]))
            else:
                tiles[name].append(value.numpy())
    return {name: np.stack(t) for name, t in tiles.items()}


def stitch(info: ExportInfo, tiles: dict[str, np.ndarray]) -> np.ndarray:
    """Trim the margins and lay the patches out row-major: ``(count, height, width)``."""
    mx, my = info.margin
    pw, ph = info.patch_size
    planes = []
    for name in info.wire_order:
        core = tiles[name][..., my : my + ph, mx : mx + pw]
        core = core.reshape(info.rows, info.patches_per_row, -1, ph, pw)
        mosaic = core.transpose(2, 0, 3, 1, 4).reshape(
            -1, info.rows * ph, info.patches_per_row * pw
        )
        planes.extend(mosaic)
    return np.stack(planes)


def three_bands(rng: np.random.Generator, height: int, width: int) -> dict[str, np.ndarray]:
    """Three float bands named like Sentinel-2's."""
    return {name: rng.random((height, width)) for name in ("B2", "B3", "B4")}


# --- pixels ---------------------------------------------------------------------------------


def test_float_bands_read_by_tensorflow_equal_expected(tf_export: Make, rng) -> None:
    info = tf_export(bands=three_bands(rng, 6, 8), transform=UTM, patch_size=(4, 3))
    np.testing.assert_array_equal(stitch(info, read_tiles(info)), info.expected)


def test_expected_is_float32_copy_of_input(tf_export: Make, rng) -> None:
    bands = three_bands(rng, 6, 8)
    info = tf_export(bands=bands, transform=UTM, patch_size=(4, 3))
    want = np.stack([bands[n] for n in info.band_names]).astype(np.float32)
    np.testing.assert_array_equal(info.expected, want)


def test_even_kernel_tiles_stitch_to_expected(tf_export: Make, rng) -> None:
    info = tf_export(
        bands=three_bands(rng, 8, 8), transform=UTM, patch_size=(4, 4), kernel_size=(4, 4)
    )
    np.testing.assert_array_equal(stitch(info, read_tiles(info)), info.expected)


def test_even_kernel_tile_is_patch_plus_kernel(tf_export: Make, rng) -> None:
    info = tf_export(
        bands=three_bands(rng, 8, 8), transform=UTM, patch_size=(4, 4), kernel_size=(4, 4)
    )
    assert read_tiles(info)["B2"].shape == (4, 8, 8)


def test_odd_kernel_margin_is_floor_half_per_side(tf_export: Make, rng) -> None:
    info = tf_export(
        bands=three_bands(rng, 8, 8), transform=UTM, patch_size=(4, 4), kernel_size=(5, 3)
    )
    assert read_tiles(info)["B2"].shape == (4, 4 + 2 * 1, 4 + 2 * 2)  # (h, w): y from k[1]


def test_odd_kernel_tiles_stitch_to_expected(tf_export: Make, rng) -> None:
    info = tf_export(
        bands=three_bands(rng, 8, 8), transform=UTM, patch_size=(4, 4), kernel_size=(5, 3)
    )
    np.testing.assert_array_equal(stitch(info, read_tiles(info)), info.expected)


def test_margin_holds_neighbouring_pixels(tf_export: Make, rng) -> None:
    band = rng.random((9, 9)).astype(np.float32)
    info = tf_export(bands={"b": band}, transform=UTM, patch_size=(3, 3), kernel_size=(3, 3))
    centre = read_tiles(info)["b"][4]  # patch (1, 1): rows 3..5, cols 3..5, tile rows 2..6
    np.testing.assert_array_equal(centre, band[2:7, 2:7])


def test_margin_beyond_image_is_default_value(tf_export: Make, rng) -> None:
    info = tf_export(
        bands={"b": rng.random((4, 4)) + 1},
        transform=UTM,
        patch_size=(2, 2),
        kernel_size=(2, 2),
        default_value=-9.0,
    )
    corner = read_tiles(info)["b"][0]
    assert (corner[0, :] == -9.0).all()
    assert (corner[:, 0] == -9.0).all()


def test_margin_reaches_into_dropped_edge_pixels(tf_export: Make, rng) -> None:
    band = rng.random((5, 5)).astype(np.float32)
    info = tf_export(bands={"b": band}, transform=UTM, patch_size=(2, 2), kernel_size=(3, 3))
    last = read_tiles(info)["b"][-1]  # patch (1, 1): rows 2..3; its margin row 4 was dropped
    np.testing.assert_array_equal(last, band[1:5, 1:5])


def test_non_square_patches_stitch_to_expected(tf_export: Make, rng) -> None:
    info = tf_export(
        bands=three_bands(rng, 6, 15), transform=UTM, patch_size=(5, 2), kernel_size=(2, 4)
    )
    np.testing.assert_array_equal(stitch(info, read_tiles(info)), info.expected)


def test_non_square_tile_shape_is_height_then_width(tf_export: Make, rng) -> None:
    info = tf_export(
        bands=three_bands(rng, 6, 15), transform=UTM, patch_size=(5, 2), kernel_size=(2, 4)
    )
    assert read_tiles(info)["B2"].shape == (9, 2 + 4, 5 + 2)


def test_edge_patches_that_do_not_fit_are_dropped(tf_export: Make, rng) -> None:
    info = tf_export(bands=three_bands(rng, 7, 11), transform=UTM, patch_size=(4, 3))
    assert (info.patches_per_row, info.total_patches, len(payloads(info))) == (2, 4, 4)


def test_expected_is_top_left_of_input_when_edges_dropped(tf_export: Make, rng) -> None:
    bands = three_bands(rng, 7, 11)
    info = tf_export(bands=bands, transform=UTM, patch_size=(4, 3))
    np.testing.assert_array_equal(
        info.expected[info.band_names.index("B3")], bands["B3"][:6, :8].astype(np.float32)
    )


def test_patch_size_defaults_to_whole_image(tf_export: Make, rng) -> None:
    info = tf_export(bands=three_bands(rng, 5, 7), transform=UTM)
    assert (info.patch_size, info.total_patches) == ((7, 5), 1)


def test_no_whole_patch_raises_value_error(tf_export: Make, rng) -> None:
    with pytest.raises(ValueError, match="no whole"):
        tf_export(bands=three_bands(rng, 3, 3), transform=UTM, patch_size=(4, 4))


# --- kinds ----------------------------------------------------------------------------------


def test_int64_band_is_written_as_int64_list(tf_export: Make, rng) -> None:
    info = tf_export(
        bands={"n": rng.integers(-5, 5, (4, 4))},
        transform=UTM,
        patch_size=(2, 2),
        kinds={"n": "int64"},
    )
    example = tf.train.Example.FromString(payloads(info)[0])
    assert example.features.feature["n"].WhichOneof("kind") == "int64_list"


def test_int64_band_stitches_to_expected(tf_export: Make, rng) -> None:
    kinds = {"n": "int64"}
    info = tf_export(
        bands={"n": rng.integers(-5, 5, (4, 4))}, transform=UTM, patch_size=(2, 2), kinds=kinds
    )
    np.testing.assert_array_equal(stitch(info, read_tiles(info, kinds)), info.expected)


def test_bytes_band_is_one_value_of_tile_bytes(tf_export: Make, rng) -> None:
    info = tf_export(
        bands={"q": rng.integers(0, 256, (4, 6))},
        transform=UTM,
        patch_size=(3, 2),
        kernel_size=(2, 2),
        kinds={"q": "bytes"},
    )
    values = tf.train.Example.FromString(payloads(info)[0]).features.feature["q"].bytes_list.value
    assert [len(v) for v in values] == [(3 + 2) * (2 + 2)]


def test_bytes_band_stitches_to_expected(tf_export: Make, rng) -> None:
    kinds = {"q": "bytes"}
    info = tf_export(
        bands={"q": rng.integers(0, 256, (4, 6))}, transform=UTM, patch_size=(3, 2), kinds=kinds
    )
    np.testing.assert_array_equal(stitch(info, read_tiles(info, kinds)), info.expected)


def test_bytes_band_expected_is_uint8(tf_export: Make, rng) -> None:
    info = tf_export(bands={"q": rng.integers(0, 256, (4, 6))}, transform=UTM, kinds={"q": "bytes"})
    assert info.expected.dtype == np.uint8


def test_bytes_default_value_is_clamped_to_uint8(tf_export: Make, rng) -> None:
    kinds = {"q": "bytes"}
    info = tf_export(
        bands={"q": rng.integers(0, 256, (2, 2))},
        transform=UTM,
        kernel_size=(3, 3),
        kinds=kinds,
        default_value=300.7,
    )
    assert read_tiles(info, kinds)["q"][0, 0, 0] == 255


def test_int64_default_value_drops_fraction(tf_export: Make, rng) -> None:
    kinds = {"n": "int64"}
    info = tf_export(
        bands={"n": rng.integers(0, 9, (2, 2))},
        transform=UTM,
        kernel_size=(3, 3),
        kinds=kinds,
        default_value=-2.9,
    )
    assert read_tiles(info, kinds)["n"][0, 0, 0] == -2


def test_mixed_kinds_stitch_to_expected(tf_export: Make, rng) -> None:
    kinds = {"n": "int64", "q": "bytes"}
    bands = {
        "f": rng.random((4, 4)),
        "n": rng.integers(-9, 9, (4, 4)),
        "q": rng.integers(0, 256, (4, 4)),
    }
    info = tf_export(bands=bands, transform=UTM, patch_size=(2, 2), kernel_size=(2, 2), kinds=kinds)
    np.testing.assert_array_equal(stitch(info, read_tiles(info, kinds)), info.expected)


def test_float_and_int64_kinds_give_float64_expected(tf_export: Make, rng) -> None:
    bands = {"f": rng.random((2, 2)), "n": rng.integers(0, 9, (2, 2))}
    info = tf_export(bands=bands, transform=UTM, kinds={"n": "int64"})
    assert info.expected.dtype == np.float64


# --- array bands and sequence data ----------------------------------------------------------


def test_array_band_is_one_depth_major_feature(tf_export: Make, rng) -> None:
    depths = {"arr": 3}
    info = tf_export(
        bands={"arr": rng.random((3, 4, 4)), "b": rng.random((4, 4))},
        transform=UTM,
        patch_size=(2, 2),
        kernel_size=(2, 2),
        tensor_depths=depths,
    )
    np.testing.assert_array_equal(stitch(info, read_tiles(info, depths=depths)), info.expected)


def test_array_band_expands_to_numbered_bands(tf_export: Make, rng) -> None:
    info = tf_export(
        bands={"arr": rng.random((3, 4, 4)), "b": rng.random((4, 4))},
        transform=UTM,
        tensor_depths={"arr": 3},
    )
    names = [n for n in info.band_names if n != "b"]
    assert names == ["arr_0", "arr_1", "arr_2"]


def test_sequence_data_writes_one_record_per_tile_pixel(tf_export: Make, rng) -> None:
    info = tf_export(
        bands={"b": rng.random((4, 6))},
        transform=UTM,
        patch_size=(3, 2),
        kernel_size=(3, 1),
        sequence_data=True,
    )
    assert len(payloads(info)) == 4 * (5 * 2)


def test_sequence_data_context_walks_tiles_row_major(tf_export: Make, rng) -> None:
    band = rng.random((4, 6)).astype(np.float32)
    info = tf_export(bands={"b": band}, transform=UTM, patch_size=(3, 2), sequence_data=True)
    spec = {"b": tf.io.FixedLenFeature([], tf.float32)}
    values = [tf.io.parse_single_sequence_example(p, spec)[0]["b"].numpy() for p in payloads(info)]
    tiles = np.array(values).reshape(2, 2, 2, 3).transpose(0, 2, 1, 3)  # row, y, col, x
    np.testing.assert_array_equal(tiles.reshape(4, 6), band)


def test_sequence_data_array_band_is_one_step_per_element(tf_export: Make, rng) -> None:
    arr = rng.random((3, 2, 2)).astype(np.float32)
    info = tf_export(
        bands={"arr": arr}, transform=UTM, tensor_depths={"arr": 3}, sequence_data=True
    )
    spec = {"arr": tf.io.FixedLenSequenceFeature([], tf.float32)}
    last = tf.io.parse_single_sequence_example(payloads(info)[-1], sequence_features=spec)[1]
    np.testing.assert_array_equal(last["arr"].numpy(), arr[:, 1, 1])


# --- band order on the wire -----------------------------------------------------------------


def test_wire_order_is_the_order_of_keys_in_the_bytes(tf_export: Make, rng) -> None:
    info = tf_export(bands=three_bands(rng, 2, 2), transform=UTM)
    first = payloads(info)[0]
    offsets = [first.index(b"\x0a\x02" + name.encode()) for name in info.wire_order]
    assert offsets == sorted(offsets)


def test_every_record_has_the_first_records_wire_order(tf_export: Make, rng) -> None:
    info = tf_export(bands=three_bands(rng, 4, 4), transform=UTM, patch_size=(2, 2))
    assert {feature_keys(p) for p in payloads(info)} == {info.wire_order}


def test_band_names_follow_wire_order(tf_export: Make, rng) -> None:
    info = tf_export(bands=three_bands(rng, 2, 2), transform=UTM)
    assert info.band_names == info.wire_order


def test_feature_order_sets_wire_order(tf_export: Make, rng) -> None:
    info = tf_export(bands=three_bands(rng, 2, 2), transform=UTM, feature_order=("B4", "B2", "B3"))
    assert feature_keys(payloads(info)[0]) == ("B4", "B2", "B3")


def test_feature_order_records_stitch_to_expected(tf_export: Make, rng) -> None:
    info = tf_export(
        bands=three_bands(rng, 4, 4),
        transform=UTM,
        patch_size=(2, 2),
        kernel_size=(2, 2),
        feature_order=("B3", "B4", "B2"),
    )
    np.testing.assert_array_equal(stitch(info, read_tiles(info)), info.expected)


def test_feature_order_record_reserializes_to_same_size(tf_export: Make, rng) -> None:
    info = tf_export(bands=three_bands(rng, 2, 2), transform=UTM, feature_order=("B4", "B3", "B2"))
    first = payloads(info)[0]
    assert len(tf.train.Example.FromString(first).SerializeToString()) == len(first)


# --- shards ---------------------------------------------------------------------------------


def test_shard_names_are_prefix_and_five_digits(tf_export: Make, rng) -> None:
    info = tf_export(
        bands=three_bands(rng, 4, 4),
        transform=UTM,
        patch_size=(2, 2),
        prefix="p_",
        max_file_size=200,
    )
    assert [p.name for p in info.shards][:2] == ["p_-00000.tfrecord.gz", "p_-00001.tfrecord.gz"]


def test_compressed_shards_start_with_gzip_magic(tf_export: Make, rng) -> None:
    info = tf_export(bands=three_bands(rng, 2, 2), transform=UTM)
    assert info.shards[0].read_bytes()[:2] == b"\x1f\x8b"


def test_uncompressed_shards_are_plain_tfrecord(tf_export: Make, rng) -> None:
    info = tf_export(bands=three_bands(rng, 2, 2), transform=UTM, compressed=False)
    assert info.shards[0].name == "export-00000.tfrecord"
    assert info.shards[0].stat().st_size == RECORD_OVERHEAD + len(payloads(info)[0])


def test_no_max_file_size_writes_one_shard(tf_export: Make, rng) -> None:
    info = tf_export(bands=three_bands(rng, 6, 6), transform=UTM, patch_size=(2, 2))
    assert info.records_per_shard == (9,)


def test_shards_hold_total_patches_records(tf_export: Make, rng) -> None:
    info = tf_export(
        bands=three_bands(rng, 6, 6), transform=UTM, patch_size=(2, 2), max_file_size=300
    )
    assert sum(info.records_per_shard) == len(payloads(info)) == info.total_patches


def test_uncompressed_shard_sizes_respect_max_file_size(tf_export: Make, rng) -> None:
    info = tf_export(
        bands=three_bands(rng, 6, 6), transform=UTM, patch_size=(2, 2), max_file_size=300
    )
    sizes = [len(gzip.decompress(p.read_bytes())) for p in info.shards]
    assert len(sizes) > 1
    assert max(sizes) <= 300


def test_shards_are_filled_before_a_new_one_starts(tf_export: Make, rng) -> None:
    info = tf_export(
        bands=three_bands(rng, 6, 6), transform=UTM, patch_size=(2, 2), max_file_size=300
    )
    record = RECORD_OVERHEAD + len(payloads(info)[0])
    sizes = [len(gzip.decompress(p.read_bytes())) for p in info.shards]
    assert all(size + record > 300 for size in sizes[:-1])


def test_shard_boundary_can_split_a_patch_row(tf_export: Make, rng) -> None:
    info = tf_export(
        bands=three_bands(rng, 6, 6), transform=UTM, patch_size=(2, 2), max_file_size=300
    )
    assert info.records_per_shard[0] % info.patches_per_row != 0


def test_record_larger_than_max_file_size_gets_its_own_shard(tf_export: Make, rng) -> None:
    info = tf_export(
        bands=three_bands(rng, 4, 4), transform=UTM, patch_size=(2, 2), max_file_size=10
    )
    assert info.records_per_shard == (1, 1, 1, 1)


# --- mixer ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.0, "0.0"),
        (-0.0, "-0.0"),
        (10.0, "10.0"),
        (1.2e7, "1.2E7"),
        (1.0e-4, "1.0E-4"),
        (0.001, "0.001"),
        (9999999.0, "9999999.0"),
        (8.983152841195215e-4, "8.983152841195215E-4"),
        (-8.983152841195215e-4, "-8.983152841195215E-4"),
        (13.599595086285436, "13.599595086285436"),
        (1.0e7, "1.0E7"),
        (5e-324, "4.9E-324"),
        (1.7976931348623157e308, "1.7976931348623157E308"),
        (0.1, "0.1"),
        (-30.0, "-30.0"),
    ],
)
def test_java_double_matches_double_to_string(value: float, text: str) -> None:
    assert java_double(value) == text


def test_java_double_rejects_nan() -> None:
    with pytest.raises(ValueError, match="non-finite"):
        java_double(float("nan"))


def test_mixer_text_matches_ee_sample_verbatim() -> None:
    assert mixer_text(EE_AFFINE, "EPSG:4326", (256, 256), 5, 10) == EE_MIXER


def test_written_mixer_matches_ee_sample_verbatim(tf_export: Make) -> None:
    bands = {"b": np.zeros((512, 1280), np.float32)}
    info = tf_export(bands=bands, transform=EE_AFFINE, patch_size=(256, 256))
    assert info.mixer is not None
    assert info.mixer.read_text(encoding="utf-8").rstrip("\n") == EE_MIXER


def test_mixer_places_unpadded_grid_of_south_up_transform(tf_export: Make, rng) -> None:
    south_up = Affine(0.5, 0.0, -120.0, 0.0, 0.25, 35.0)
    info = tf_export(
        bands=three_bands(rng, 4, 6), transform=south_up, patch_size=(3, 2), kernel_size=(4, 4)
    )
    mixer = json.loads(info.mixer.read_text()) if info.mixer else {}
    assert mixer["projection"]["affine"]["doubleMatrix"] == [0.5, 0.0, -120.0, 0.0, 0.25, 35.0]


def test_south_up_tiles_stitch_to_expected(tf_export: Make, rng) -> None:
    south_up = Affine(0.5, 0.0, -120.0, 0.0, 0.25, 35.0)
    info = tf_export(
        bands=three_bands(rng, 4, 6), transform=south_up, patch_size=(3, 2), kernel_size=(4, 4)
    )
    np.testing.assert_array_equal(stitch(info, read_tiles(info)), info.expected)


def test_mixer_reports_patch_width_then_height(tf_export: Make, rng) -> None:
    info = tf_export(
        bands=three_bands(rng, 6, 15), transform=UTM, patch_size=(5, 2), crs="EPSG:32610"
    )
    mixer = json.loads(info.mixer.read_text()) if info.mixer else {}
    assert (mixer["patchDimensions"], mixer["patchesPerRow"], mixer["totalPatches"]) == (
        [5, 2],
        3,
        9,
    )


def test_write_mixer_false_writes_no_mixer(tf_export: Make, rng) -> None:
    info = tf_export(bands=three_bands(rng, 2, 2), transform=UTM, write_mixer=False)
    assert info.mixer is None
    assert not list(info.folder.glob("*mixer*"))


# --- the committed sample -------------------------------------------------------------------

DATA = Path(__file__).resolve().parent.parent / "data"


def test_committed_sample_reads_back_to_make_bands() -> None:
    sample = runpy.run_path(str(DATA / "make_sample.py"))
    (pw, ph), (kx, ky) = sample["PATCH_SIZE"], sample["KERNEL_SIZE"]
    files = sorted(str(p) for p in (DATA / "sample").glob("sample-*.tfrecord.gz"))
    names = ("B2", "B3", "B4")
    spec = {n: tf.io.FixedLenFeature([ph + ky, pw + kx], tf.float32) for n in names}
    parsed = [
        tf.io.parse_single_example(r, spec)
        for r in tf.data.TFRecordDataset(files, compression_type="GZIP")
    ]
    tiles = [np.stack([p[n].numpy() for n in names]) for p in parsed]
    cores = np.stack(tiles)[:, :, ky // 2 : ky // 2 + ph, kx // 2 : kx // 2 + pw]
    mosaic = cores.reshape(4, 6, 3, ph, pw).transpose(2, 0, 3, 1, 4).reshape(3, 4 * ph, 6 * pw)
    bands = sample["make_bands"]()
    want = np.stack([bands[n][: 4 * ph, : 6 * pw] for n in names])
    np.testing.assert_array_equal(mosaic, want)
