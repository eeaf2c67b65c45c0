"""Columnar decoding and encoding of a patch of per-pixel SequenceExamples (format/columns.py).

TensorFlow writes the records (``tf.train.SequenceExample``) and parses them back
(``tf.io.parse_single_sequence_example``); the columnar path must give exactly what the general
per-record decoder gives, and what TensorFlow parses.
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from tfrecord_io.errors import DecodeError, GridError
from tfrecord_io.format import columns
from tfrecord_io.format import example as wire
from tfrecord_io.format.sequence import encode_sequence_example
from tfrecord_io.image import encode
from tfrecord_io.image.layout import BandLayout, FeatureLayout

HEIGHT, WIDTH = 6, 7
PIXELS = HEIGHT * WIDTH


def _tf_record(s: float, n: int, arr: list[float], b: int) -> bytes:
    example = tf.train.SequenceExample()
    example.context.feature["s"].float_list.value.append(s)
    example.context.feature["n"].int64_list.value.append(n)
    steps = example.feature_lists.feature_list["A"].feature
    for value in arr:
        steps.add().float_list.value.append(value)
    example.feature_lists.feature_list["b"].feature.add().bytes_list.value.append(bytes([b]))
    return example.SerializeToString()


@pytest.fixture
def pixels(rng: np.random.Generator) -> dict[str, np.ndarray]:
    # int64 values whose varints take 1 to 10 bytes (negative ones take 10)
    widths = rng.integers(0, 9, PIXELS)
    n = (rng.integers(1, 100, PIXELS) << (7 * widths)).astype(np.int64)
    n[::5] *= -1
    n[3] = np.iinfo(np.int64).min
    n[4] = np.iinfo(np.int64).max
    return {
        "s": rng.normal(size=PIXELS).astype(np.float32),
        "n": n,
        "A": rng.normal(size=(2, PIXELS)).astype(np.float32),
        "b": rng.integers(0, 256, PIXELS).astype(np.uint8),
    }


@pytest.fixture
def records(pixels: dict[str, np.ndarray]) -> list[bytes]:
    return [
        _tf_record(
            float(pixels["s"][p]),
            int(pixels["n"][p]),
            [float(v) for v in pixels["A"][:, p]],
            int(pixels["b"][p]),
        )
        for p in range(PIXELS)
    ]


LAYOUT = BandLayout(
    features=(
        FeatureLayout("s", "float", 1),
        FeatureLayout("n", "int64", 1),
        FeatureLayout("A", "float", 2),
        FeatureLayout("b", "bytes", 1),
    ),
    tile_height=HEIGHT,
    tile_width=WIDTH,
    sequence=True,
)


def _general(records: list[bytes]) -> tuple[np.ndarray, ...]:
    arrays = tuple(np.empty((f.depth, PIXELS), f.dtype) for f in LAYOUT.features)
    for pixel, payload in enumerate(records):
        LAYOUT._fill_pixel(arrays, pixel, payload, f"record {pixel}")
    return tuple(a.reshape(-1, HEIGHT, WIDTH) for a in arrays)


def _columnar(records: list[bytes]) -> tuple[np.ndarray, ...]:
    return LAYOUT.decode_sequence((p, f"record {i}") for i, p in enumerate(records))


def test_columnar_decoding_equals_the_general_decoder(records):
    for got, want in zip(_columnar(records), _general(records), strict=True):
        np.testing.assert_array_equal(got, want)


def test_columnar_decoding_equals_tensorflow_parsing_with_varints_of_every_width(records):
    context = {"s": tf.io.FixedLenFeature([], tf.float32), "n": tf.io.FixedLenFeature([], tf.int64)}
    lists = {
        "A": tf.io.FixedLenSequenceFeature([], tf.float32),
        "b": tf.io.FixedLenSequenceFeature([], tf.string),
    }
    parsed = [tf.io.parse_single_sequence_example(p, context, lists) for p in records]
    s, n, arr, b = _columnar(records)
    assert set(columns.varint_widths(n.ravel()).tolist()) == set(range(1, 11))
    np.testing.assert_array_equal(s.ravel(), [c["s"].numpy() for c, _ in parsed])
    np.testing.assert_array_equal(n.ravel(), [c["n"].numpy() for c, _ in parsed])
    np.testing.assert_array_equal(arr.reshape(2, -1).T, [q["A"].numpy() for _, q in parsed])
    np.testing.assert_array_equal(b.ravel(), [q["b"].numpy()[0][0] for _, q in parsed])


def test_every_record_of_one_structure_is_decoded_as_columns(records):
    specs = [(f.name, f.kind, f.depth) for f in LAYOUT.features]
    out = [np.empty((f.depth, PIXELS), f.dtype) for f in LAYOUT.features]
    assert columns.decode_sequences(records, specs, out).all()


def test_a_record_with_an_extra_step_falls_back_and_raises_the_general_error(records):
    example = tf.train.SequenceExample.FromString(records[5])
    example.feature_lists.feature_list["A"].feature.add().float_list.value.append(1.0)
    records[5] = example.SerializeToString()
    with pytest.raises(GridError, match="'A' has 3 steps"):
        _columnar(records)


def test_a_record_of_the_same_length_but_another_key_falls_back_and_raises(records):
    records[7] = records[7].replace(b"\x0a\x01s", b"\x0a\x01t")
    with pytest.raises(DecodeError, match="'s' is missing"):
        _columnar(records)


def test_a_record_with_two_values_in_one_step_is_refused_like_the_general_path(records):
    example = tf.train.SequenceExample.FromString(records[9])
    example.context.feature["s"].float_list.value.append(2.0)
    records[9] = example.SerializeToString()
    with pytest.raises(GridError, match="2 values in one pixel"):
        _columnar(records)


def test_a_varint_split_in_two_of_the_same_bytes_is_not_read_as_one(records, pixels):
    # A 2-byte varint and two 1-byte varints have the same length prefixes: the columnar path
    # must check the continuation bits, or it would read a packed list of two values as one.
    template = _tf_record(0.5, 300, [1.0, 2.0], 1)  # 300 takes 2 bytes
    twin = bytearray(template)
    start = twin.index(bytes([0xAC, 0x02]))  # varint 300
    twin[start] = 0x05  # now two 1-byte varints: 5, 2
    assert len(twin) == len(template)
    payloads = [template] * (PIXELS - 1) + [bytes(twin)]
    with pytest.raises(GridError, match="2 values in one pixel"):
        _columnar(payloads)


PLANS = [
    encode.FeaturePlan("s", "float", (0,)),
    encode.FeaturePlan("n", "int64", (1,)),
    encode.FeaturePlan("A", "float", (2, 3), array=True),
    encode.FeaturePlan("b", "bytes", (4,), array=True),
]


def _plans_and_tiles(pixels: dict[str, np.ndarray]) -> tuple[list, list[np.ndarray]]:
    tiles = [pixels[name].reshape(-1, HEIGHT, WIDTH) for name in ("s", "n", "A", "b")]
    return PLANS, tiles


def test_columnar_encoding_is_byte_identical_to_the_general_encoder(pixels):
    plans, tiles = _plans_and_tiles(pixels)
    general = []
    for p in range(PIXELS):
        r, c = divmod(p, WIDTH)
        context = {
            "s": wire.Feature("float", tiles[0][:, r, c].copy()),
            "n": wire.Feature("int64", tiles[1][:, r, c].copy()),
        }
        lists = {
            "A": [wire.Feature("float", tiles[2][d, r, c : c + 1].copy()) for d in (0, 1)],
            "b": [wire.bytes_feature(tiles[3][0, r, c : c + 1])],
        }
        general.append(encode_sequence_example(context, lists))
    assert encode._sequence_payloads(plans, tiles) == general


def test_columnar_encoding_parses_back_in_tensorflow_to_the_pixels(pixels, records):
    plans, tiles = _plans_and_tiles(pixels)
    parse = tf.train.SequenceExample.FromString
    assert [parse(p) for p in encode._sequence_payloads(plans, tiles)] == [
        parse(p) for p in records
    ]
