"""Protobuf reference classes for ``tf.train.Example`` and ``tf.train.SequenceExample``.

The tests hold the hand-written wire codec in :mod:`tfrecord_io.format.example` to these
classes. They are built at run time from a ``FileDescriptorProto`` that mirrors
``tensorflow/core/example/feature.proto`` and ``example.proto`` field for field, so no generated
``*_pb2`` module (tied to one protobuf release) is needed. They live with the tests, so protobuf is
a test dependency only.

The messages live under the private package ``tfrecord_io_pb`` in a private
``DescriptorPool``: a package named ``tensorflow`` would collide with the descriptors TensorFlow
registers in the default pool when both are imported in one process. The wire format does not
carry package names, so the bytes are identical to TensorFlow's.

protobuf is imported inside the functions, so ``import tfrecord_io`` stays light. Works with
protobuf 3.21 (``MessageFactory.GetPrototype``) through 7.x (``message_factory.GetMessageClass``).
"""

from __future__ import annotations

import functools
from typing import Any

__all__ = ["example_class", "sequence_example_class"]

PACKAGE = "tfrecord_io_pb"

# (message name, [(field name, number, label, type, type name or "", packed, oneof index)])
# Labels and types use descriptor_pb2.FieldDescriptorProto numbering, spelled out here so that
# the table can be read against the .proto files without importing protobuf.
_OPTIONAL, _REPEATED = 1, 3
_FLOAT, _INT64, _STRING, _MESSAGE, _BYTES = 2, 3, 9, 11, 12


def _field(
    proto: Any,
    name: str,
    number: int,
    label: int,
    type_: int,
    type_name: str = "",
    packed: bool = False,
    oneof_index: int | None = None,
) -> None:
    field = proto.field.add()
    field.name = name
    field.number = number
    field.label = label
    field.type = type_
    if type_name:
        field.type_name = f".{PACKAGE}.{type_name}"
    if packed:
        field.options.packed = True
    if oneof_index is not None:
        field.oneof_index = oneof_index


def _map_entry(parent: Any, entry_name: str, value_type: str) -> None:
    # A proto map<string, V> is sugar for a repeated nested message with map_entry set; the
    # runtime needs the nested type to present the field as a mapping.
    entry = parent.nested_type.add()
    entry.name = entry_name
    entry.options.map_entry = True
    _field(entry, "key", 1, _OPTIONAL, _STRING)
    _field(entry, "value", 2, _OPTIONAL, _MESSAGE, value_type)


def _file_descriptor_proto() -> Any:
    from google.protobuf import descriptor_pb2

    fdp = descriptor_pb2.FileDescriptorProto()
    fdp.name = "tfrecord_io_pb/example.proto"
    fdp.package = PACKAGE
    fdp.syntax = "proto3"

    # feature.proto
    msg = fdp.message_type.add(name="BytesList")
    _field(msg, "value", 1, _REPEATED, _BYTES)
    msg = fdp.message_type.add(name="FloatList")
    _field(msg, "value", 1, _REPEATED, _FLOAT, packed=True)
    msg = fdp.message_type.add(name="Int64List")
    _field(msg, "value", 1, _REPEATED, _INT64, packed=True)

    msg = fdp.message_type.add(name="Feature")
    msg.oneof_decl.add(name="kind")
    _field(msg, "bytes_list", 1, _OPTIONAL, _MESSAGE, "BytesList", oneof_index=0)
    _field(msg, "float_list", 2, _OPTIONAL, _MESSAGE, "FloatList", oneof_index=0)
    _field(msg, "int64_list", 3, _OPTIONAL, _MESSAGE, "Int64List", oneof_index=0)

    msg = fdp.message_type.add(name="Features")
    _map_entry(msg, "FeatureEntry", "Feature")
    _field(msg, "feature", 1, _REPEATED, _MESSAGE, "Features.FeatureEntry")

    msg = fdp.message_type.add(name="FeatureList")
    _field(msg, "feature", 1, _REPEATED, _MESSAGE, "Feature")

    msg = fdp.message_type.add(name="FeatureLists")
    _map_entry(msg, "FeatureListEntry", "FeatureList")
    _field(msg, "feature_list", 1, _REPEATED, _MESSAGE, "FeatureLists.FeatureListEntry")

    # example.proto
    msg = fdp.message_type.add(name="Example")
    _field(msg, "features", 1, _OPTIONAL, _MESSAGE, "Features")

    msg = fdp.message_type.add(name="SequenceExample")
    _field(msg, "context", 1, _OPTIONAL, _MESSAGE, "Features")
    _field(msg, "feature_lists", 2, _OPTIONAL, _MESSAGE, "FeatureLists")
    return fdp


@functools.cache
def _classes() -> dict[str, Any]:
    from google.protobuf import descriptor_pool, message_factory

    pool = descriptor_pool.DescriptorPool()
    # AddSerializedFile exists, undeprecated, on every protobuf from 3.x to 7.x.
    pool.AddSerializedFile(_file_descriptor_proto().SerializeToString())
    get_class = getattr(message_factory, "GetMessageClass", None)
    if get_class is None:  # protobuf < 4.21 (Debian 12 ships 3.21)
        factory = message_factory.MessageFactory(pool)
        get_class = factory.GetPrototype
    names = [
        "BytesList",
        "FloatList",
        "Int64List",
        "Feature",
        "Features",
        "FeatureList",
        "FeatureLists",
        "Example",
        "SequenceExample",
    ]
    return {name: get_class(pool.FindMessageTypeByName(f"{PACKAGE}.{name}")) for name in names}


def message_class(name: str) -> Any:
    """Return the reference message class called `name`.

    Parameters
    ----------
    name : str
        One of ``BytesList``, ``FloatList``, ``Int64List``, ``Feature``, ``Features``,
        ``FeatureList``, ``FeatureLists``, ``Example``, ``SequenceExample``.

    Returns
    -------
    type
        A protobuf message class, wire-compatible with ``tf.train.<name>``.

    Raises
    ------
    KeyError
        If `name` is not one of the messages above.
    """
    return _classes()[name]


def example_class() -> Any:
    """Return the reference ``Example`` message class (built once, then cached).

    Returns
    -------
    type
        A protobuf message class, wire-compatible with ``tf.train.Example``.
    """
    return _classes()["Example"]


def sequence_example_class() -> Any:
    """Return the reference ``SequenceExample`` message class (built once, then cached).

    Returns
    -------
    type
        A protobuf message class, wire-compatible with ``tf.train.SequenceExample``.
    """
    return _classes()["SequenceExample"]
