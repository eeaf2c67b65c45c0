"""Tell an image export from a table export, for ``open_table``.

The rule for "this is an image export", chosen so that a table of training patches (many values
per feature, no mixer) is never refused:

- the first record is a ``SequenceExample`` (tables are plain Examples), or
- a mixer lies beside the file (``PREFIX-mixer.json`` for ``PREFIX-NNNNN.tfrecord[.gz]``,
  ``NAME.json`` for a renamed ``NAME.tfrecord[.gz]``) and every feature of the first record holds
  at least the mixer's patch area of values (a tile; a bytes feature counts its bytes).

The converse rule, for ``tfrecord_io.open``, is
:func:`tfrecord_io.format.kinds.table_export_reason`.
"""

from __future__ import annotations

from tfrecord_io.errors import TFRecordIOError
from tfrecord_io.format import example as wire
from tfrecord_io.format.kinds import mixer_beside
from tfrecord_io.format.storage import StorageOptions, basename
from tfrecord_io.image.mixer import Mixer

__all__ = ["image_export_reason"]


def _patch_area(mixer: str, storage_options: StorageOptions) -> int | None:
    try:
        m = Mixer.from_file(mixer, storage_options)
    except (TFRecordIOError, OSError, ValueError):
        return None
    return m.patch_width * m.patch_height


def _feature_size(feature: wire.Feature) -> int:
    if feature.kind == "bytes":
        return sum(len(v) for v in feature.values)
    return len(feature.values)


def image_export_reason(
    path: str, payload: bytes, storage_options: StorageOptions = None
) -> str | None:
    """Say why a file is an image export rather than a table, or return None if it is a table.

    Parameters
    ----------
    path : str
        The file.
    payload : bytes
        Its first record.
    storage_options : dict or Store, optional
        fsspec options when ``path`` is a URL.
    """
    if wire.is_sequence_example(payload):
        return "its records are SequenceExamples, as in an image export with sequenceData"
    mixer = mixer_beside(path, storage_options)
    if mixer is None:
        return None
    area = _patch_area(mixer, storage_options)
    features = wire.decode_example(payload)
    if area and features and all(_feature_size(f) >= area for f in features.values()):
        return (
            f"the mixer '{basename(mixer)}' lies beside it and every feature of its first "
            f"record holds a tile of at least {area} values"
        )
    return None
