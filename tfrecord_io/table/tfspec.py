"""``tf_feature_spec``: the ``{name: tf.io.FixedLenFeature}`` dict TensorFlow users type by hand.

For a table export, one entry per column with the column's shape. For an image export, one entry
per feature with the stored tile shape, kernel margins included (what each record holds):
``[tile_height, tile_width]`` for a band, ``[D, tile_height, tile_width]`` for an array band
(``[tile_height, tile_width, D]`` with ``array_layout="pixel_major"``), and ``[]`` of
``tf.string`` for an 8-bit band stored as one raw bytes value. TensorFlow is imported only when
the function is called.
"""

from __future__ import annotations

import os
from typing import Any

from tfrecord_io.errors import ExportKindError, OptionError
from tfrecord_io.format.kinds import PathsLike
from tfrecord_io.image.reader import ExportReader

__all__ = ["tf_feature_spec"]

_TF_DTYPE = {"float": "float32", "int64": "int64", "bytes": "string"}


def _table_spec(tf: Any, paths: PathsLike, options: dict[str, Any]) -> dict[str, Any] | None:
    from tfrecord_io.table.reader import open_table

    if isinstance(paths, str | os.PathLike) and os.fspath(paths).endswith(".json"):
        return None  # a mixer: the image export it belongs to
    try:
        table = open_table(paths, **options)
    except ExportKindError:
        return None
    spec = {}
    for column in table.schema.columns:
        if column.is_ragged:
            spec[column.name] = tf.io.VarLenFeature(getattr(tf, _TF_DTYPE[column.kind]))
        else:
            spec[column.name] = tf.io.FixedLenFeature(
                list(column.shape), getattr(tf, _TF_DTYPE[column.kind])
            )
    return spec


def _image_spec(tf: Any, path: str | os.PathLike[str], options: dict[str, Any]) -> dict[str, Any]:
    reader = ExportReader(path, **options)
    try:
        layout = reader.layout
    finally:
        reader.close()
    if layout.sequence:
        raise OptionError(
            f"'{os.fspath(path)}' is a sequenceData export (SequenceExamples, one per pixel): "
            "parse it with tf.io.parse_single_sequence_example, not a FixedLenFeature spec"
        )
    height, width = layout.tile_height, layout.tile_width
    spec = {}
    for feature in layout.features:
        dtype = getattr(tf, _TF_DTYPE[feature.kind])
        if feature.kind == "bytes":
            spec[feature.name] = tf.io.FixedLenFeature([], dtype)
        elif feature.depth == 1:
            spec[feature.name] = tf.io.FixedLenFeature([height, width], dtype)
        elif layout.array_layout == "pixel_major":
            spec[feature.name] = tf.io.FixedLenFeature([height, width, feature.depth], dtype)
        else:
            spec[feature.name] = tf.io.FixedLenFeature([feature.depth, height, width], dtype)
    return spec


def tf_feature_spec(paths: PathsLike, **options: Any) -> dict[str, Any]:
    """Return the feature spec to parse an export's records with ``tf.io.parse_example``.

    Parameters
    ----------
    paths : path-like or sequence of path-like
        A table export (as :func:`tfrecord_io.open_table` takes it) or an image export (its
        folder, mixer or a shard, as :func:`tfrecord_io.open` takes it).
    **options
        Passed to the opener: ``shapes=``, ``columns=`` for a table; ``kernel_size=``,
        ``band_order=``, ``array_layout=`` for an image.

    Returns
    -------
    dict of str to tf.io.FixedLenFeature
        In column (band) order; a ragged table column gets a ``tf.io.VarLenFeature``.

    Raises
    ------
    ImportError
        TensorFlow is not installed.
    ExportKindError, SchemaError, MissingShardError, GridError
        As the openers raise them.
    """
    import tensorflow as tf

    table_options = {k: v for k, v in options.items() if k in _TABLE_OPTIONS}
    image_options = {k: v for k, v in options.items() if k not in _TABLE_OPTIONS}
    spec = _table_spec(tf, paths, table_options) if not image_options else None
    if spec is not None:
        return spec
    if not isinstance(paths, str | os.PathLike):
        raise OptionError("an image export is named by one path: its folder, mixer or a shard")
    return _image_spec(tf, paths, image_options)


_TABLE_OPTIONS = {"shapes", "columns", "ragged", "binary", "verify", "sample"}
