"""Wire codec for ``tf.train.SequenceExample`` payloads, built on the Example codec's pieces.

A SequenceExample is an Example's ``Features`` (field 1, the context) beside a ``FeatureLists`` map
(field 2) of string keys to lists of Features, one per step. The decoding rules, the zero-copy
views and the departures from protobuf are those of :mod:`tfrecord_io.format.example`. Whether a
payload is a SequenceExample at all is told by
:func:`~tfrecord_io.format.example.is_sequence_example`, which only reads the top-level tags.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from tfrecord_io.format.example import (  # the Example codec's pieces, shared with it
    _TAG1_LEN,
    _TAG2_LEN,
    Feature,
    _decode_feature_list,
    _decode_map,
    _decode_message,
    _entry_parts,
    _feature_parts,
    _features_parts,
    _framed,
)

__all__ = ["decode_sequence_example", "encode_sequence_example"]


def decode_sequence_example(
    data: bytes | bytearray | memoryview, where: str = ""
) -> tuple[dict[str, Feature], dict[str, list[Feature]]]:
    """Decode a serialised ``tf.train.SequenceExample``.

    Parameters and errors are those of :func:`~tfrecord_io.format.example.decode_example`.

    Returns
    -------
    context : dict of str to Feature
        The context features, in wire order.
    feature_lists : dict of str to list of Feature
        The feature lists (one Feature per step), in wire order.
    """
    feature_lists: dict[str, list[Feature]] = {}
    context = _decode_message(
        data,
        where,
        "SequenceExample",
        lambda buf, body, stop: _decode_map(
            buf, body, stop, where, "FeatureLists", _decode_feature_list, list, feature_lists
        ),
    )
    return context, feature_lists


def encode_sequence_example(
    context: Mapping[str, Feature], feature_lists: Mapping[str, Sequence[Feature]]
) -> bytes:
    """Encode a serialised ``tf.train.SequenceExample``.

    Parameters
    ----------
    context : mapping of str to Feature
        The context features, written in the mapping's order.
    feature_lists : mapping of str to sequence of Feature
        The feature lists, one Feature per step, written in the mapping's order.

    Returns
    -------
    bytes
        The payload, readable by TensorFlow and by any protobuf runtime.
    """
    lists: list[bytes] = []
    for key, steps in feature_lists.items():
        steps_parts: list[bytes] = []
        for step in steps:
            steps_parts += _framed(_TAG1_LEN, _feature_parts(step))
        _entry_parts(key, steps_parts, lists)
    return b"".join(_framed(_TAG1_LEN, _features_parts(context)) + _framed(_TAG2_LEN, lists))
