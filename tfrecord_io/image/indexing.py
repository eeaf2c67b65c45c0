"""Load and save an export's record index as a sidecar (:mod:`tfrecord_io.format.sidecar`).

:func:`load_saved_indexes` gives :class:`~tfrecord_io.image.reader.ExportReader` a complete
index when ``PREFIX-index.tfrindex`` sits beside the export and still describes its shards, so
a new process reads a window without inflating the shards before it. :func:`save_indexes`
scans every shard once and writes the sidecar (``tfrecord-io index``).

Both go through :mod:`tfrecord_io.format.storage`, so an export in an object store has its
sidecar in the bucket: it is read with a few ranged reads, checked against each shard's size
and generation or ETag, and written as one object put.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

from tfrecord_io.errors import RecordCountError, StaleIndexWarning
from tfrecord_io.format import storage
from tfrecord_io.format.index import SAVED_SPACING, ShardIndex
from tfrecord_io.format.index_build import index_shard_for_saving
from tfrecord_io.format.sidecar import (
    SidecarError,
    read_sidecar,
    shard_identity,
    sidecar_path,
    write_sidecar,
)
from tfrecord_io.format.storage import StorageOptions
from tfrecord_io.image.files import ExportFiles

__all__ = ["load_saved_indexes", "save_indexes"]

_COPY_CHUNK = 8 << 20


def load_saved_indexes(
    files: ExportFiles, warn: bool = True, storage_options: StorageOptions = None
) -> list[ShardIndex] | None:
    """Return the export's complete record index from its sidecar, or None.

    None when there is no sidecar, and also, with a :class:`StaleIndexWarning` (when ``warn``),
    when it cannot be read or any shard is not the one it was built from (another name, size
    or modification time; in an object store another size, generation or ETag).
    """
    store = storage.as_store(storage_options)
    path = sidecar_path(files.folder, files.prefix)

    opened: list[IO[bytes]] = []

    def opener() -> IO[bytes]:
        return opened.pop() if opened else storage.open_input(path, store, cache="readahead")

    def window_opener() -> IO[bytes]:
        return storage.open_input(path, store, cache="none")

    try:
        try:
            opened.append(opener())
        except FileNotFoundError:  # no sidecar (MissingShardError for a URL)
            return None
        saved = read_sidecar(opener, window_opener)
        names = [storage.basename(shard) for shard in files.shards]
        if [entry.name for entry in saved] != names:
            raise SidecarError("it lists other shards than the folder holds")
        for entry, shard in zip(saved, files.shards, strict=True):
            if entry.identity != shard_identity(shard, store):
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
    indexes, first_index = [], 0
    for entry, shard in zip(saved, files.shards, strict=True):
        indexes.append(ShardIndex.from_saved(entry, shard, first_index, store))
        first_index += len(entry.offsets)
    return indexes


def save_indexes(
    files: ExportFiles,
    expected_records: int | None,
    spacing: int = SAVED_SPACING,
    storage_options: StorageOptions = None,
) -> str:
    """Index every shard of the export once and write the sidecar; return its path or URL.

    A shard in an object store is copied to a local temporary file (one streamed read) and
    indexed there; the sidecar is written locally and put into the bucket as one object.

    Raises
    ------
    RecordCountError
        The shards hold another number of records than ``expected_records``.
    ChecksumError, TruncatedRecordError, RecordError
        A shard is broken.
    """
    store = storage.as_store(storage_options)
    saved, first = [], 0
    for shard in files.shards:
        identity = shard_identity(shard, store)  # before the scan: one changed meanwhile is stale
        with _local_copy(shard, store) as local:
            index = index_shard_for_saving(local, first_index=first, spacing=spacing)
        saved.append(index.to_saved(storage.basename(shard), identity))
        first += len(index)
    if expected_records is not None and first != expected_records:
        raise RecordCountError(
            f"'{files.folder}' holds {first} records in {len(files.shards)} shard(s), but the "
            f"mixer's grid needs {expected_records}: no index written. Check the export with "
            "`tfrecord-io validate`."
        )
    path = sidecar_path(files.folder, files.prefix)
    write_sidecar(path, saved, "tfrecord_io", store)
    return path


@contextmanager
def _local_copy(shard: str, store: storage.Store) -> Iterator[str]:
    """Yield a local path of ``shard``: itself, or a temporary copy of a remote one."""
    if not storage.is_url(shard):
        yield shard
        return
    folder = tempfile.mkdtemp(prefix=".tfrindex-shard-")
    try:
        local = os.path.join(folder, storage.basename(shard))  # keeps the .gz suffix
        with storage.open_input(shard, store, cache="none") as src, open(local, "wb") as dst:
            shutil.copyfileobj(src, dst, _COPY_CHUNK)
        yield local
    finally:
        shutil.rmtree(folder, ignore_errors=True)
