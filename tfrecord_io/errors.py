"""Errors and warnings raised by tfrecord_io.

Every error derives from :class:`TFRecordIOError` and also from the built-in exception that
fits, so callers may catch either (``except ValueError`` keeps working). Messages name the file
and, where it applies, the record index and byte offset, and say what the user can do.

This module imports nothing third-party so that every other layer may import it.
"""

from __future__ import annotations

__all__ = [
    "BandIndexError",
    "ChecksumError",
    "DatasetClosedError",
    "DecodeError",
    "ExportExistsError",
    "ExportKindError",
    "GridError",
    "KernelSizeError",
    "MissingExtraError",
    "MissingFileError",
    "MissingMixerError",
    "MissingShardError",
    "MixerError",
    "NoMixerWarning",
    "OptionError",
    "PatchesDroppedWarning",
    "RecordCountError",
    "RecordError",
    "SchemaError",
    "ShardChangedError",
    "StaleIndexWarning",
    "StorageAccessError",
    "TFRecordIOError",
    "TFRecordIOWarning",
    "TableError",
    "TruncatedRecordError",
    "UnreadableFileError",
    "UnreadableMixerError",
    "WindowError",
    "WriteError",
    "location",
]


class TFRecordIOError(Exception):
    """Root of every error raised by tfrecord_io."""


class RecordError(TFRecordIOError, ValueError):
    """A TFRecord record is malformed: bad framing, length or payload.

    Attributes
    ----------
    path : str or None
        The shard the record is in.
    record : int or None
        The record's index within the whole export.
    offset : int or None
        Byte offset of the record in the shard's uncompressed stream.
    """

    def __init__(
        self,
        message: str,
        *,
        path: object = None,
        record: int | None = None,
        offset: int | None = None,
    ) -> None:
        super().__init__(message)
        self.path = None if path is None else str(path)
        self.record = record
        self.offset = offset


class ChecksumError(RecordError):
    """A record's masked CRC-32C does not match its length field or its data."""


class TruncatedRecordError(RecordError):
    """A shard ends in the middle of a record, or its gzip stream is cut short."""


class DecodeError(RecordError):
    """A record's payload is not a valid ``tf.train.Example`` or ``SequenceExample``."""


class UnreadableFileError(TFRecordIOError, OSError):
    """A file of an export cannot be read as a file.

    It is a folder, a FIFO or another special file, a dangling or looping symbolic link, or it
    may not be read (permissions). Checked before the file is opened, so a FIFO never blocks.
    """


class MissingFileError(UnreadableFileError, FileNotFoundError):
    """A file of an export does not exist (or is a link to nothing)."""


class MixerError(TFRecordIOError, ValueError):
    """The mixer JSON is malformed or inconsistent."""


class UnreadableMixerError(MixerError, UnreadableFileError):
    """The mixer is not a file that can be read: a folder, a FIFO, a looping link, no access."""


class MissingMixerError(TFRecordIOError, FileNotFoundError):
    """An export has no ``PREFIX-mixer.json`` and no grid was given by hand."""


class MissingShardError(TFRecordIOError, FileNotFoundError):
    """A shard is missing from an export (a gap in the shard numbers, or no shard at all)."""


class StorageAccessError(TFRecordIOError, PermissionError):
    """An object store refused access to a URL: missing or insufficient credentials."""


class ShardChangedError(TFRecordIOError, OSError):
    """A remote file was replaced while it was being read (its generation or etag changed).

    Attributes
    ----------
    path : str or None
        The URL of the file.
    """

    def __init__(self, message: str, *, path: object = None) -> None:
        super().__init__(message)
        self.path = None if path is None else str(path)


class RecordCountError(TFRecordIOError, ValueError):
    """The number of records in an export does not match the mixer's ``totalPatches``."""


class GridError(TFRecordIOError, ValueError):
    """A band's value count, or a window, does not fit the patch grid."""


class KernelSizeError(GridError):
    """The kernel size cannot be inferred from the band lengths: several readings fit."""


class WindowError(TFRecordIOError, ValueError):
    """A window lies outside the dataset, or is not a valid window."""


class DatasetClosedError(TFRecordIOError, ValueError):
    """A dataset was used after it was closed (as Python's own files raise ``ValueError``)."""


class BandIndexError(TFRecordIOError, IndexError):
    """A band number is not one of the dataset's (bands are numbered from 1)."""


class OptionError(TFRecordIOError, ValueError):
    """An argument or a ``formatOptions`` key is unknown or has an invalid value."""


class ExportExistsError(TFRecordIOError, FileExistsError):
    """The destination of a write already exists and overwriting was not asked for."""


class TableError(TFRecordIOError, ValueError):
    """A table export (one Example per feature) cannot be read or written as asked."""


class SchemaError(TableError):
    """A table's column does not fit its schema: a shape, length, kind or missing value."""


class ExportKindError(TFRecordIOError, ValueError):
    """The path holds the other kind of export: a table given to ``open``, or the reverse."""


class MissingExtraError(TFRecordIOError, ImportError):
    """An optional dependency is not installed; the message names the extra that brings it."""


class WriteError(TFRecordIOError, OSError):
    """Writing an output failed: a full disk, or an error the writer (GDAL) reported."""


class TFRecordIOWarning(UserWarning):
    """Base class of the warnings issued by tfrecord_io."""


class PatchesDroppedWarning(TFRecordIOWarning):
    """A write dropped pixels: edge patches that do not fit, or patches over ``maskedThreshold``."""


class NoMixerWarning(TFRecordIOWarning):
    """An export was written without ``PREFIX-mixer.json`` (``maskedThreshold`` is not 1)."""


class StaleIndexWarning(TFRecordIOWarning):
    """An export's index sidecar is out of date or unreadable, and is ignored.

    The sidecar is only a cache: the export is read as if it were absent. Rebuild it with
    ``tfrecord-io index --overwrite EXPORT``.
    """


def location(path: object, record: int | None = None, offset: int | None = None) -> str:
    """Format where a problem is: ``'shard.tfrecord.gz', record 12 (byte 4096)``.

    Parameters
    ----------
    path : path-like
        The file the problem is in.
    record : int, optional
        The record's index within the whole export (patch order).
    offset : int, optional
        The byte offset of the record in the (uncompressed) shard.

    Returns
    -------
    str
        Text to start an error message with.
    """
    text = f"'{path}'"
    if record is not None:
        text += f", record {record}"
    if offset is not None:
        text += f" (byte {offset} of the uncompressed stream)"
    return text
