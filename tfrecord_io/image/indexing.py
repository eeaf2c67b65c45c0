"""Load and save an export's record index as a sidecar (:mod:`tfrecord_io.format.sidecar`).

:func:`load_saved_indexes` gives :class:`~tfrecord_io.image.reader.ExportReader` a complete
index when ``PREFIX-index.tfrindex`` sits beside the export and still describes its shards, so
a new process reads a window without inflating the shards before it. :func:`save_indexes`
scans every shard once and writes the sidecar (``tfrecord-io index``).
"""

from __future__ import annotations

import os
import warnings
from typing import IO

from tfrecord_io.errors import RecordCountError, StaleIndexWarning
from tfrecord_io.format.index import SAVED_SPACING, ShardIndex
from tfrecord_io.format.index_build import index_shard_for_saving
from tfrecord_io.format.sidecar import (
    SidecarError,
    read_sidecar,
    shard_identity,
    sidecar_path,
    write_sidecar,
)
from tfrecord_io.image.files import ExportFiles

__all__ = ["load_saved_indexes", "save_indexes"]


def load_saved_indexes(files: ExportFiles, warn: bool = True) -> list[ShardIndex] | None:
    """Return the export's complete record index from its sidecar, or None.

    None when there is no sidecar, and also, with a :class:`StaleIndexWarning` (when ``warn``),
    when it cannot be read or any shard is not the one it was built from (another name, size
    or modification time).
    """
    path = sidecar_path(files.folder, files.prefix)
    if not os.path.exists(path):
        return None

    def opener() -> IO[bytes]:
        return open(path, "rb")

    try:
        saved = read_sidecar(opener)
        names = [os.path.basename(shard) for shard in files.shards]
        if [entry.name for entry in saved] != names:
            raise SidecarError("it lists other shards than the folder holds")
        for entry, shard in zip(saved, files.shards, strict=True):
            if entry.identity != shard_identity(shard):
                raise SidecarError(f"{entry.name} has changed since it was indexed")
    except (SidecarError, OSError) as exc:
        if warn:
            warnings.warn(
                f"'{path}' is ignored: {exc}. Rebuild it with `tfrecord-io index --overwrite "
                f"{files.folder}`.",
                StaleIndexWarning,
                stacklevel=2,
            )
        return None
    indexes, first = [], 0
    for entry, shard in zip(saved, files.shards, strict=True):
        indexes.append(ShardIndex.from_saved(entry, shard, first))
        first += len(entry.offsets)
    return indexes


def save_indexes(
    files: ExportFiles, expected_records: int | None, spacing: int = SAVED_SPACING
) -> str:
    """Index every shard of the export once and write the sidecar; return its path.

    Raises
    ------
    RecordCountError
        The shards hold another number of records than ``expected_records``.
    ChecksumError, TruncatedRecordError, RecordError
        A shard is broken.
    """
    saved, first = [], 0
    for shard in files.shards:
        identity = shard_identity(shard)  # before the scan: a shard changed meanwhile is stale
        index = index_shard_for_saving(shard, first_index=first, spacing=spacing)
        saved.append(index.to_saved(os.path.basename(shard), identity))
        first += len(index)
    if expected_records is not None and first != expected_records:
        raise RecordCountError(
            f"'{files.folder}' holds {first} records in {len(files.shards)} shard(s), but the "
            f"mixer's grid needs {expected_records}: no index written. Check the export with "
            "`tfrecord-io validate`."
        )
    path = sidecar_path(files.folder, files.prefix)
    write_sidecar(path, saved, "tfrecord_io")
    return path
