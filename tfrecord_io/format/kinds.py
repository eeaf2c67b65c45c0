"""TFRecord files given as a file, a list, a glob or a folder, and the kind of export they hold.

Earth Engine writes a table export as one gzip file, and users split large tables over several
exports, so a table is one file, a list, a glob or a folder of files. Image exports are shards
beside a mixer; the two openers refuse each other's kind with :class:`ExportKindError`. This
module sits below both sides so that each can name the other: it looks only at file names and
the first record.

The rule for "this is a table export" (:func:`table_export_reason`, for ``tfrecord_io.open``): a
plain Example, no mixer beside it, and either every feature a scalar or a file name that is not
Earth Engine's shard name. The converse rule, for ``open_table``, needs the mixer's patch size
and lives with the table side (:func:`tfrecord_io.table.files.image_export_reason`).
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Generator, Sequence
from typing import cast

from tfrecord_io.errors import ExportKindError, MissingShardError, TFRecordIOError
from tfrecord_io.format import example as wire
from tfrecord_io.format import storage
from tfrecord_io.format.records import iter_records
from tfrecord_io.format.storage import StorageOptions

__all__ = [
    "file_records",
    "first_record",
    "is_scalar",
    "mixer_beside",
    "refuse_table",
    "resolve_table_files",
    "table_export_reason",
]

_SHARD = re.compile(r"^(?P<prefix>.*)-\d{5}\.tfrecord(?:\.gz)?$")
_TFRECORD = re.compile(r"\.(tfrecords?|tfr)(\.gz)?$", re.IGNORECASE)
_GLOB = re.compile(r"[*?[]")

PathsLike = str | os.PathLike[str] | Sequence[str | os.PathLike[str]]


def _folder_files(folder: str, options: StorageOptions = None) -> list[str]:
    """Return the TFRecord files of a folder, sorted (hidden files and mixers left out)."""
    if storage.is_url(folder):
        names = storage.listdir(folder, options)
        return sorted(
            storage.join(folder, n) for n in names if not n.startswith(".") and _TFRECORD.search(n)
        )
    return sorted(
        os.path.join(folder, name)
        for name in os.listdir(folder)
        if not name.startswith(".")
        and _TFRECORD.search(name)
        and os.path.isfile(os.path.join(folder, name))
    )


def _glob(pattern: str, options: StorageOptions) -> list[str]:
    if not storage.is_url(pattern):
        return sorted(f for f in glob.glob(pattern) if os.path.isfile(f))
    fs, inner = storage.as_store(options).filesystem(pattern)
    scheme = pattern.split("://", 1)[0]
    with storage.translate_errors(pattern):
        found = fs.glob(inner, detail=True)
    return sorted(
        f"{scheme}://{name.split('://', 1)[-1].lstrip('/')}"
        for name, info in found.items()
        if info.get("type") != "directory"
    )


def resolve_table_files(
    paths: PathsLike, storage_options: StorageOptions = None
) -> tuple[str, ...]:
    """Return the files a table is read from, in order.

    Parameters
    ----------
    paths : path-like or sequence of path-like
        One file, a glob (``"exports/train-*.tfrecord.gz"``), a folder (its ``*.tfrecord``,
        ``*.tfrecord.gz``, ``*.tfrecords`` and ``*.tfr`` files, sorted), or a list of these;
        local paths or URLs (a folder URL is a prefix: ``gs://bucket/tables/``).
    storage_options : dict or Store, optional
        fsspec options of URLs.

    Returns
    -------
    tuple of str
        Absolute paths (URLs as given), each file once, in the order given (globs and folders
        sorted).

    Raises
    ------
    MissingShardError
        A path does not exist, or a glob or folder matches no TFRecord file.
    """
    items = [paths] if isinstance(paths, str | os.PathLike) else list(paths)
    if not items:
        raise MissingShardError("no table file given: pass a file, a list, a glob or a folder")
    found: list[str] = []
    for item in items:
        text = os.fspath(item)
        where = storage.abspath(text)
        if _GLOB.search(text) and not storage.exists(text, storage_options):
            files = _glob(text, storage_options)
            if not files:
                raise MissingShardError(f"the pattern '{text}' matches no file")
        elif storage.isdir(text, storage_options):
            files = _folder_files(text, storage_options)
            if not files:
                raise MissingShardError(f"'{where}' holds no *.tfrecord or *.tfrecord.gz file")
        elif storage.exists(text, storage_options):
            files = [text]
        else:
            raise MissingShardError(f"'{where}' does not exist")
        found += [storage.abspath(f) for f in files]
    return tuple(dict.fromkeys(found))


def file_records(
    path: str, verify: bool = True, storage_options: StorageOptions = None
) -> Generator[tuple[int, bytes], None, None]:
    """Return :func:`~tfrecord_io.format.records.iter_records` of a file, typed as a generator.

    A generator can be closed, which releases the file when a caller stops early.
    """
    records = iter_records(path, verify=verify, storage_options=storage_options)
    return cast(Generator[tuple[int, bytes], None, None], records)


def first_record(path: str, storage_options: StorageOptions = None) -> bytes | None:
    """Return the first record's payload of a file, or None when it holds none."""
    records = file_records(path, storage_options=storage_options)
    try:
        item = next(records, None)
    finally:
        records.close()
    return None if item is None else item[1]


def mixer_beside(path: str, storage_options: StorageOptions = None) -> str | None:
    """Return the mixer a shard or a renamed image file would have, if it exists."""
    folder, name = storage.split(path)
    match = _SHARD.match(name)
    candidates = [f"{match['prefix']}-mixer.json"] if match else []
    candidates.append(_TFRECORD.sub("", name) + ".json")
    for candidate in candidates:
        full = storage.join(folder, candidate)
        if (
            os.path.isfile(full)
            if not storage.is_url(full)
            else storage.exists(full, storage_options)
        ):
            return full
    return None


def is_scalar(feature: wire.Feature) -> bool:
    """One number, or one text value (an 8-bit image band is one bytes value too: raw bytes)."""
    if len(feature.values) != 1:
        return False
    if feature.kind != "bytes":
        return True
    value: bytes = feature.values[0]  # type: ignore[assignment]
    try:
        return b"\x00" not in value and bool(value.decode("utf-8"))
    except UnicodeDecodeError:
        return False


def table_export_reason(path: str | os.PathLike[str]) -> str | None:
    """Say why ``path`` looks like a table export, or return None.

    Parameters
    ----------
    path : path-like
        What ``tfrecord_io.open`` was given: a file or a folder.

    Returns
    -------
    str or None
        The reason, to put in an error naming ``open_table``; None when it does not look like a
        table (or cannot be read at all, which the caller's own error reports better), and for
        a URL, whose storage options are not known here (no request is made).
    """
    if storage.is_url(os.fspath(path)):
        return None
    try:
        files = resolve_table_files(path)
        payload = first_record(files[0])
        if payload is None or wire.is_sequence_example(payload):
            return None
        features = wire.decode_example(payload)
    except (TFRecordIOError, OSError):
        return None
    if not features or mixer_beside(files[0]) is not None:
        return None
    scalars = all(is_scalar(f) for f in features.values())
    if scalars or not _SHARD.match(os.path.basename(files[0])):
        kind = "scalar features" if scalars else "features"
        return (
            f"'{files[0]}' looks like a table export (one Example per row, {kind}, no mixer "
            "beside it), not an image export. Read it with tfrecord_io.open_table(path), or "
            "`tfrecord-io table info`."
        )
    return None


def refuse_table(path: str | os.PathLike[str], error: Exception) -> None:
    """Raise :class:`ExportKindError` from ``error`` when ``path`` looks like a table export.

    Called by ``tfrecord_io.open`` when it finds no image export at ``path``, so that a user
    who gives it a table is told to use ``open_table`` instead of reading about shards.

    Parameters
    ----------
    path : path-like
        What ``open`` was given.
    error : Exception
        The error ``open`` raised (missing shard or mixer); chained as the cause.
    """
    reason = table_export_reason(path)
    if reason is not None:
        raise ExportKindError(reason) from error
