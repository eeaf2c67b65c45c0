"""Tests of the Example / SequenceExample wire codec in tfrecord_io.format.example.

Three independent judges: our own round trip, the protobuf reference classes built from the
descriptor in tfrecord_io._protobuf, and TensorFlow (producer and consumer). TensorFlow is a test
requirement: a missing TensorFlow fails this module rather than skipping it.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import tensorflow as tf

from tests._protobuf import example_class, sequence_example_class
from tfrecord_io.errors import DecodeError
from tfrecord_io.format.example import (
    Feature,
    bytes_feature,
    decode_example,
    encode_example,
    float_feature,
    int64_feature,
    is_sequence_example,
)
from tfrecord_io.format.sequence import decode_sequence_example, encode_sequence_example

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# TensorFlow calls cost about a millisecond each; fewer examples keep the run short.
TF_SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --------------------------------------------------------------------------------------------
# Strategies


def float_lists(allow_nan: bool = True, min_size: int = 0) -> st.SearchStrategy[Feature]:
    values = st.floats(width=32, allow_nan=allow_nan, allow_infinity=True)
    return st.lists(values, min_size=min_size, max_size=20).map(float_feature)


def int64_lists(min_size: int = 0) -> st.SearchStrategy[Feature]:
    extremes = st.sampled_from([INT64_MIN, INT64_MAX, -1, 0, 127, 128, 2**35, -(2**35)])
    values = st.one_of(st.integers(INT64_MIN, INT64_MAX), extremes)
    return st.lists(values, min_size=min_size, max_size=20).map(int64_feature)


def bytes_lists(min_size: int = 0) -> st.SearchStrategy[Feature]:
    return st.lists(st.binary(max_size=24), min_size=min_size, max_size=5).map(
        lambda items: Feature("bytes", tuple(items))
    )


def features(allow_nan: bool = True, min_size: int = 0) -> st.SearchStrategy[Feature]:
    return st.one_of(float_lists(allow_nan, min_size), int64_lists(min_size), bytes_lists(min_size))


def feature_dicts(allow_nan: bool = True, min_size: int = 0) -> st.SearchStrategy[dict]:
    return st.dictionaries(st.text(max_size=10), features(allow_nan, min_size), max_size=6)


def feature_list_dicts(allow_nan: bool = True) -> st.SearchStrategy[dict]:
    return st.dictionaries(
        st.text(max_size=10), st.lists(features(allow_nan), max_size=4), max_size=4
    )


# --------------------------------------------------------------------------------------------
# Helpers: conversion to and from protobuf messages (the reference and tf.train share field names)


def fill_features(message: Any, features: Mapping[str, Feature]) -> None:
    for key, feature in features.items():
        fill_feature(message.feature[key], feature)


def fill_feature(message: Any, feature: Feature) -> None:
    field = {"float": "float_list", "int64": "int64_list", "bytes": "bytes_list"}[feature.kind]
    values = getattr(message, field)
    values.SetInParent()  # an empty list is still a set oneof member
    values.value.extend(
        list(feature.values) if feature.kind == "bytes" else np.asarray(feature.values).tolist()
    )


def from_pb_feature(message: Any) -> Feature:
    kind = message.WhichOneof("kind")
    if kind == "bytes_list":
        return Feature("bytes", tuple(message.bytes_list.value))
    if kind == "int64_list":
        return int64_feature(np.array(message.int64_list.value, dtype=np.int64))
    if kind == "float_list":
        return float_feature(np.array(message.float_list.value, dtype=np.float32))
    return float_feature([])


def from_pb_features(message: Any) -> dict[str, Feature]:
    return {key: from_pb_feature(value) for key, value in message.feature.items()}


def from_pb_feature_lists(message: Any) -> dict[str, list[Feature]]:
    return {
        key: [from_pb_feature(step) for step in value.feature]
        for key, value in message.feature_list.items()
    }


def pb_example(features: Mapping[str, Feature], cls: Any = None) -> Any:
    message = (cls or example_class())()
    message.features.SetInParent()
    fill_features(message.features, features)
    return message


def pb_sequence_example(
    context: Mapping[str, Feature], lists: Mapping[str, Sequence[Feature]], cls: Any = None
) -> Any:
    message = (cls or sequence_example_class())()
    message.context.SetInParent()
    message.feature_lists.SetInParent()
    fill_features(message.context, context)
    for key, steps in lists.items():
        entry = message.feature_lists.feature_list[key]
        entry.SetInParent()
        for step in steps:
            fill_feature(entry.feature.add(), step)
    return message


def varint(value: int) -> bytes:
    """Encode a varint by the textbook rule, independent of the codec under test."""
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        out.append(low | (0x80 if value else 0))
        if not value:
            return bytes(out)


def field(number: int, body: bytes) -> bytes:
    """A length-delimited field."""
    return varint(number << 3 | 2) + varint(len(body)) + body


def example_bytes(entries: Sequence[tuple[str, bytes]]) -> bytes:
    """An Example whose features are the given (key, serialised Feature) pairs."""
    features = b"".join(
        field(1, field(1, key.encode()) + field(2, value)) for key, value in entries
    )
    return field(1, features)


def sequence_equal(a: Mapping[str, list[Feature]], b: Mapping[str, list[Feature]]) -> bool:
    return dict(a) == dict(b)


# --------------------------------------------------------------------------------------------
# (1) Our own round trip


@FAST
@given(feature_dicts())
def test_encode_then_decode_example_returns_the_features_in_order(features: dict) -> None:
    decoded = decode_example(encode_example(features))
    assert list(decoded) == list(features)
    assert decoded == features  # Feature equality is bitwise, so NaN payloads count


@FAST
@given(feature_dicts(), feature_list_dicts())
def test_encode_then_decode_sequence_example_returns_context_and_lists(
    context: dict, lists: dict
) -> None:
    decoded_context, decoded_lists = decode_sequence_example(
        encode_sequence_example(context, lists)
    )
    assert list(decoded_context) == list(context)
    assert decoded_context == context
    assert list(decoded_lists) == list(lists)
    assert decoded_lists == {key: list(steps) for key, steps in lists.items()}


def test_extreme_int64_values_round_trip() -> None:
    values = np.array([INT64_MIN, INT64_MAX, -1, 0, 1, -(2**62), 2**62], dtype=np.int64)
    decoded = decode_example(encode_example({"x": int64_feature(values)}))
    np.testing.assert_array_equal(decoded["x"].values, values)


def test_float_nan_payloads_and_signed_zero_round_trip_bitwise() -> None:
    bits = np.array([0x7FC00001, 0xFFC00000, 0x7F800000, 0xFF800000, 0x80000000, 0], np.uint32)
    feature = Feature("float", bits.view(np.float32))
    decoded = decode_example(encode_example({"x": feature}))["x"]
    np.testing.assert_array_equal(np.asarray(decoded.values).view(np.uint32), bits)


def test_large_int64_list_round_trips_with_mixed_varint_lengths() -> None:
    rng = np.random.default_rng(1)
    values = np.concatenate(
        [
            rng.integers(INT64_MIN, INT64_MAX, 40_000, dtype=np.int64, endpoint=True),
            rng.integers(-300, 300, 25_536),
        ]
    )
    rng.shuffle(values)
    decoded = decode_example(encode_example({"x": int64_feature(values)}))["x"]
    np.testing.assert_array_equal(decoded.values, values)


def test_decoded_float_values_are_views_into_the_payload() -> None:
    payload = encode_example({"b": float_feature(np.arange(1000, dtype=np.float32))})
    values = decode_example(payload)["b"].values
    assert isinstance(values, np.ndarray)
    assert np.shares_memory(values, np.frombuffer(payload, dtype=np.uint8))


def test_memoryview_and_bytearray_payloads_decode_like_bytes() -> None:
    features = {
        "a": float_feature([1.5, -2]),
        "b": int64_feature([300, -5]),
        "c": bytes_feature(b"x"),
    }
    payload = encode_example(features)
    assert decode_example(memoryview(payload)) == features
    assert decode_example(bytearray(payload)) == features
    assert decode_example(memoryview(b"??" + payload)[2:]) == features


# (7)
def test_bytes_feature_holding_one_value_of_raw_bytes_round_trips() -> None:
    raw = np.random.default_rng(2).integers(0, 256, (384, 384), dtype=np.uint8)
    decoded = decode_example(encode_example({"B1": bytes_feature(raw)}))["B1"]
    assert decoded.kind == "bytes"
    assert len(decoded.values) == 1
    restored = np.frombuffer(decoded.values[0], dtype=np.uint8).reshape(384, 384)
    np.testing.assert_array_equal(restored, raw)


# --------------------------------------------------------------------------------------------
# (2) The protobuf reference classes


@FAST
@given(feature_dicts(allow_nan=False))
def test_reference_parses_our_example_to_the_same_values(features: dict) -> None:
    parsed = example_class().FromString(encode_example(features))
    assert from_pb_features(parsed.features) == features


@FAST
@given(feature_dicts(allow_nan=False))
def test_we_decode_the_reference_serialised_example_to_the_same_values(features: dict) -> None:
    payload = pb_example(features).SerializeToString()
    assert decode_example(payload) == features


@FAST
@given(feature_dicts(allow_nan=False), feature_list_dicts(allow_nan=False))
def test_reference_parses_our_sequence_example_to_the_same_values(
    context: dict, lists: dict
) -> None:
    parsed = sequence_example_class().FromString(encode_sequence_example(context, lists))
    assert from_pb_features(parsed.context) == context
    assert from_pb_feature_lists(parsed.feature_lists) == lists


@FAST
@given(feature_dicts(allow_nan=False), feature_list_dicts(allow_nan=False))
def test_we_decode_the_reference_serialised_sequence_example_to_the_same_values(
    context: dict, lists: dict
) -> None:
    payload = pb_sequence_example(context, lists).SerializeToString()
    decoded_context, decoded_lists = decode_sequence_example(payload)
    assert decoded_context == context
    assert decoded_lists == lists


# --------------------------------------------------------------------------------------------
# (3) TensorFlow as independent producer and consumer


def tf_dtype(feature: Feature) -> tf.DType:
    return {"float": tf.float32, "int64": tf.int64, "bytes": tf.string}[feature.kind]


def assert_tensor_matches(tensor: tf.Tensor, feature: Feature) -> None:
    if feature.kind == "bytes":
        assert tuple(tensor.numpy().tolist()) == feature.values
    else:
        np.testing.assert_array_equal(tensor.numpy(), feature.values)


@TF_SETTINGS
@given(feature_dicts(allow_nan=False))
def test_we_decode_tensorflow_serialised_examples(features: dict) -> None:
    payload = pb_example(features, tf.train.Example).SerializeToString()
    assert decode_example(payload) == features


@TF_SETTINGS
@given(
    st.dictionaries(st.text(min_size=1, max_size=10), features(False, 1), min_size=1, max_size=6)
)
def test_tensorflow_parses_our_examples_to_the_same_arrays(features: dict) -> None:
    spec = {
        key: tf.io.FixedLenFeature([len(feature.values)], tf_dtype(feature))
        for key, feature in features.items()
    }
    parsed = tf.io.parse_single_example(encode_example(features), spec)
    for key, feature in features.items():
        assert_tensor_matches(parsed[key], feature)


@TF_SETTINGS
@given(feature_dicts(allow_nan=False), feature_list_dicts(allow_nan=False))
def test_we_decode_tensorflow_serialised_sequence_examples(context: dict, lists: dict) -> None:
    payload = pb_sequence_example(context, lists, tf.train.SequenceExample).SerializeToString()
    decoded_context, decoded_lists = decode_sequence_example(payload)
    assert decoded_context == context
    assert decoded_lists == lists


@st.composite
def uniform_feature_lists(draw: st.DrawFn) -> dict[str, list[Feature]]:
    """Feature lists whose steps share one kind and width, as FixedLenSequenceFeature needs."""
    out: dict[str, list[Feature]] = {}
    for key in draw(st.lists(st.text(min_size=1, max_size=8), unique=True, min_size=1, max_size=3)):
        kind = draw(st.sampled_from(["float", "int64", "bytes"]))
        width = draw(st.integers(1, 4))
        steps = draw(st.integers(1, 3))
        out["s" + key] = [draw(_fixed(kind, width)) for _ in range(steps)]
    return out


def _fixed(kind: str, width: int) -> st.SearchStrategy[Feature]:
    if kind == "float":
        values = st.floats(width=32, allow_nan=False)
        return st.lists(values, min_size=width, max_size=width).map(float_feature)
    if kind == "int64":
        values = st.integers(INT64_MIN, INT64_MAX)
        return st.lists(values, min_size=width, max_size=width).map(int64_feature)
    return st.lists(st.binary(max_size=8), min_size=width, max_size=width).map(
        lambda items: Feature("bytes", tuple(items))
    )


@TF_SETTINGS
@given(
    st.dictionaries(
        st.text(min_size=1, max_size=8).map(lambda k: "c" + k), features(False, 1), max_size=4
    ),
    uniform_feature_lists(),
)
def test_tensorflow_parses_our_sequence_examples_to_the_same_arrays(
    context: dict, lists: dict
) -> None:
    context_spec = {
        key: tf.io.FixedLenFeature([len(feature.values)], tf_dtype(feature))
        for key, feature in context.items()
    }
    sequence_spec = {
        key: tf.io.FixedLenSequenceFeature([len(steps[0].values)], tf_dtype(steps[0]))
        for key, steps in lists.items()
    }
    parsed_context, parsed_lists = tf.io.parse_single_sequence_example(
        encode_sequence_example(context, lists),
        context_features=context_spec,
        sequence_features=sequence_spec,
    )
    for key, feature in context.items():
        assert_tensor_matches(parsed_context[key], feature)
    for key, steps in lists.items():
        rows = parsed_lists[key]
        assert rows.shape[0] == len(steps)
        for row, step in zip(rows, steps, strict=True):
            assert_tensor_matches(row, step)


# --------------------------------------------------------------------------------------------
# (4) Unpacked repeated numbers, which protobuf accepts and some writers emit


def test_unpacked_float_list_decodes_like_the_reference() -> None:
    values = [1.5, -0.0, float("inf"), 3.25e-38]
    float_list = b"".join(b"\x0d" + struct.pack("<f", v) for v in values)
    payload = example_bytes([("f", field(2, float_list))])
    decoded = decode_example(payload)["f"]
    assert decoded == float_feature(values)
    assert decoded == from_pb_features(example_class().FromString(payload).features)["f"]


def test_unpacked_int64_list_decodes_like_the_reference() -> None:
    values = [0, 1, 300, -1, INT64_MIN, INT64_MAX, 2**40]
    int64_list = b"".join(b"\x08" + varint(v) for v in values)
    payload = example_bytes([("i", field(3, int64_list))])
    decoded = decode_example(payload)["i"]
    assert decoded == int64_feature(values)
    assert decoded == from_pb_features(example_class().FromString(payload).features)["i"]


def test_packed_and_unpacked_chunks_of_one_list_concatenate() -> None:
    floats = field(1, struct.pack("<2f", 1, 2)) + b"\x0d" + struct.pack("<f", 3)
    floats += field(1, struct.pack("<f", 4))
    ints = b"\x08" + varint(-7) + field(1, varint(8) + varint(9)) + b"\x08" + varint(10)
    payload = example_bytes([("f", field(2, floats)), ("i", field(3, ints))])
    decoded = decode_example(payload)
    assert decoded == {"f": float_feature([1, 2, 3, 4]), "i": int64_feature([-7, 8, 9, 10])}
    assert decoded == from_pb_features(example_class().FromString(payload).features)


# --------------------------------------------------------------------------------------------
# (5) Unknown fields


UNKNOWN = (
    varint(13 << 3 | 0)
    + varint(2**63)  # varint
    + varint(14 << 3 | 1)
    + b"\x01" * 8  # fixed64
    + field(15, b"\xff\x00junk")  # length-delimited
    + varint(16 << 3 | 5)
    + b"\x02" * 4  # fixed32
    + varint(17 << 3 | 3)
    + varint(18 << 3 | 0)
    + b"\x05"
    + varint(17 << 3 | 4)  # group
)


def test_unknown_fields_of_every_wire_type_are_skipped_at_every_level() -> None:
    floats = UNKNOWN + field(1, struct.pack("<2f", 1, 2)) + UNKNOWN
    ints = UNKNOWN + field(1, varint(5) + varint(-5)) + UNKNOWN
    strings = UNKNOWN + field(1, b"abc") + UNKNOWN
    entries = [
        ("f", UNKNOWN + field(2, floats) + UNKNOWN),
        ("i", field(3, ints) + UNKNOWN),
        ("b", UNKNOWN + field(1, strings)),
    ]
    features = b"".join(UNKNOWN + field(1, field(1, k.encode()) + field(2, v)) for k, v in entries)
    payload = UNKNOWN + field(1, features + UNKNOWN) + UNKNOWN
    expected = {
        "f": float_feature([1, 2]),
        "i": int64_feature([5, -5]),
        "b": Feature("bytes", (b"abc",)),
    }
    assert decode_example(payload) == expected
    assert from_pb_features(example_class().FromString(payload).features) == expected


def test_unknown_field_inside_a_map_entry_raises_decode_error() -> None:
    # TensorFlow's parser rejects such a record and upb drops the entry; we refuse it too.
    payload = field(1, field(1, field(1, b"k") + field(2, b"") + varint(3 << 3) + b"\x01"))
    with pytest.raises(DecodeError, match="map entry has unknown field 3 at byte 9"):
        decode_example(payload)


def test_unknown_fields_in_a_sequence_example_are_skipped() -> None:
    step = field(2, field(1, struct.pack("<f", 7)))
    feature_list = UNKNOWN + field(1, step) + UNKNOWN
    lists = UNKNOWN + field(1, field(1, b"s") + field(2, feature_list)) + UNKNOWN
    payload = UNKNOWN + field(2, lists) + UNKNOWN
    context, decoded = decode_sequence_example(payload)
    assert context == {}
    assert decoded == {"s": [float_feature([7])]}
    assert is_sequence_example(payload)


# --------------------------------------------------------------------------------------------
# (6) Truncated and corrupted payloads


def small_example() -> bytes:
    return encode_example(
        {
            "f": float_feature([1.0, -2.5]),
            "i": int64_feature([1, 300, -1]),
            "b": bytes_feature([b"ab", b""]),
            "e": float_feature([]),
        }
    )


def small_sequence_example() -> bytes:
    return encode_sequence_example(
        {"c": int64_feature([-2])},
        {"s": [float_feature([1.0]), bytes_feature(b"xy")], "t": []},
    )


def reference_or_none(cls: Any, payload: bytes) -> Any:
    from google.protobuf.message import DecodeError as ProtobufDecodeError

    try:
        return cls.FromString(payload)
    except ProtobufDecodeError:
        return None


def test_every_truncation_of_an_example_fails_or_matches_the_reference() -> None:
    payload = small_example()
    for cut in range(len(payload)):
        reference = reference_or_none(example_class(), payload[:cut])
        if reference is None:
            with pytest.raises(DecodeError, match=r"at byte \d+ of the payload"):
                decode_example(payload[:cut])
        else:
            assert decode_example(payload[:cut]) == from_pb_features(reference.features)


def test_every_truncation_of_a_sequence_example_fails_or_matches_the_reference() -> None:
    payload = small_sequence_example()
    for cut in range(len(payload)):
        reference = reference_or_none(sequence_example_class(), payload[:cut])
        if reference is None:
            with pytest.raises(DecodeError, match=r"at byte \d+ of the payload"):
                decode_sequence_example(payload[:cut])
        else:
            context, lists = decode_sequence_example(payload[:cut])
            assert context == from_pb_features(reference.context)
            assert lists == from_pb_feature_lists(reference.feature_lists)


@FAST
@given(st.data())
def test_corrupted_payloads_raise_decode_error_or_match_the_reference(data: st.DataObject) -> None:
    payload = bytearray(small_example() if data.draw(st.booleans()) else small_sequence_example())
    for _ in range(data.draw(st.integers(1, 3))):
        payload[data.draw(st.integers(0, len(payload) - 1))] = data.draw(st.integers(0, 255))
    corrupted = bytes(payload)
    try:
        decoded = decode_example(corrupted)
    except DecodeError:
        pass
    else:
        reference = reference_or_none(example_class(), corrupted)
        assert reference is not None
        assert decoded == from_pb_features(reference.features)
    try:
        context, lists = decode_sequence_example(corrupted)
    except DecodeError:
        pass
    else:
        sequence = reference_or_none(sequence_example_class(), corrupted)
        assert sequence is not None
        assert context == from_pb_features(sequence.context)
        assert lists == from_pb_feature_lists(sequence.feature_lists)


def test_decode_error_names_the_record_and_the_byte_offset() -> None:
    payload = small_example()[:-3]
    with pytest.raises(DecodeError) as info:
        decode_example(payload, where="'x.tfrecord', record 4")
    message = str(info.value)
    assert message.startswith("'x.tfrecord', record 4: ")
    assert "at byte 1 of the payload" in message  # the Example's features length overruns


def test_decode_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="runs past the end"):
        decode_example(b"\x0a\x05")


def test_varint_longer_than_ten_bytes_raises_decode_error() -> None:
    payload = example_bytes([("i", field(3, field(1, b"\xff" * 10 + b"\x01")))])
    with pytest.raises(DecodeError, match="longer than 10 bytes"):
        decode_example(payload)


def test_known_field_with_wrong_wire_type_raises_decode_error() -> None:
    with pytest.raises(DecodeError, match="wire type 0"):
        decode_example(b"\x08\x01")  # Example.features as a varint


def test_invalid_wire_type_raises_decode_error() -> None:
    with pytest.raises(DecodeError, match=r"invalid wire type 7 .* at byte 0"):
        decode_example(b"\x0f")


def test_packed_float_list_of_a_length_not_divisible_by_four_raises() -> None:
    payload = example_bytes([("f", field(2, field(1, b"\x00" * 6)))])
    with pytest.raises(DecodeError, match="packed float list of 6 bytes"):
        decode_example(payload)


def test_invalid_utf8_feature_name_raises_decode_error() -> None:
    payload = field(1, field(1, field(1, b"\xff") + field(2, b"")))
    with pytest.raises(DecodeError, match="UTF-8"):
        decode_example(payload)


# --------------------------------------------------------------------------------------------
# Smaller claims


def test_is_sequence_example_is_true_only_with_feature_lists() -> None:
    assert is_sequence_example(small_sequence_example())
    assert not is_sequence_example(small_example())
    assert not is_sequence_example(encode_sequence_example({}, {})[:2])  # context only


def test_empty_payload_decodes_as_an_empty_example() -> None:
    assert decode_example(b"") == {}
    assert decode_sequence_example(b"") == ({}, {})


def test_feature_with_no_list_set_decodes_as_empty_float() -> None:
    payload = example_bytes([("x", b"")])
    assert decode_example(payload) == {"x": float_feature([])}


def test_repeated_map_key_keeps_the_last_value_as_protobuf_does() -> None:
    payload = example_bytes([("k", field(2, b"")), ("k", field(3, field(1, varint(4))))])
    decoded = decode_example(payload)
    assert decoded == {"k": int64_feature([4])}
    assert decoded == from_pb_features(example_class().FromString(payload).features)


def test_fields_that_appear_twice_merge_as_the_reference_merges_them() -> None:
    floats = field(2, field(1, struct.pack("<f", 1))) + field(2, field(1, struct.pack("<f", 2)))
    switched = field(2, field(1, struct.pack("<f", 1))) + field(3, field(1, varint(9)))
    entry_twice = field(1, b"v") + field(2, floats) + field(2, field(2, b"\x0d\x00\x00\x40\x40"))
    payload = example_bytes([("f", floats), ("s", switched)]) + field(1, field(1, entry_twice))
    decoded = decode_example(payload)
    assert decoded == {
        "f": float_feature([1, 2]),
        "s": int64_feature([9]),
        "v": float_feature([1, 2, 3]),
    }
    assert decoded == from_pb_features(example_class().FromString(payload).features)


def test_feature_equality_is_bitwise() -> None:
    nan = np.array([np.nan], np.float32)
    assert float_feature(nan) == float_feature(nan)
    assert float_feature([0.0]) != float_feature([-0.0])
    assert float_feature([1]) != int64_feature([1])


def test_int64_feature_rejects_floats() -> None:
    with pytest.raises(TypeError):
        int64_feature([1.5])


def test_feature_flattens_row_major() -> None:
    grid = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_array_equal(float_feature(grid).values, grid.ravel())
