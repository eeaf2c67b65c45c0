"""TFRecord framing: reading, writing and random access into raw and gzip shards.

A record is ``uint64 length | uint32 masked_crc32c(length) | data | uint32 masked_crc32c(data)``,
little-endian, with no file header or footer. A gzip shard is that byte stream gzipped; gzip is
detected by its magic bytes, never by the file name, and multi-member streams are accepted.

Sequential reading inflates with ``isal`` when it is installed (about 1.5x zlib's speed) and
zlib otherwise (:mod:`._gzip`); random access checks gzip member headers with the same rule
(:func:`._gzip.check_member_header`), so both accept the same files. Random access into a
shard is :mod:`tfrecord_io.format.index`'s job.

Every local file is checked to be a regular file before it is opened (:func:`open_file`): a
folder, a FIFO (whose ``open`` would block forever) or a broken link raises
:class:`~tfrecord_io.errors.UnreadableFileError`, never a bare ``OSError``. URLs are read
through :mod:`.storage`.

CRC-32C comes from ``google-crc32c`` (~14 GB/s here); Debian's Python, which QGIS uses, does
not package it, so Debian's ``crc32c`` (``apt install python3-crc32c``, ~1.5 GB/s) stands in
there, and ``crcmod`` (C extension, ~320-440 MB/s) where that is missing too.

This module deliberately does not import numpy.
"""

from __future__ import annotations

import gzip
import io
import os
import struct
from collections.abc import Iterator
from typing import IO, Any, BinaryIO

from tfrecord_io.errors import (
    ChecksumError,
    RecordError,
    TFRecordIOError,
    TruncatedRecordError,
    location,
)
from tfrecord_io.format import storage
from tfrecord_io.format._gzip import GZIP_MAGIC, STREAM_ERRORS, GzipStream
from tfrecord_io.format.storage import StorageOptions, is_url, open_file

_crc32c: Any
try:
    from google_crc32c import value as _google_crc32c

    _crc32c = _google_crc32c
except ImportError:  # QGIS's Python on Debian: no google-crc32c
    try:
        from crc32c import crc32c as _debian_crc32c  # python3-crc32c: ~5x crcmod

        _crc32c = _debian_crc32c
    except ImportError:
        from crcmod.predefined import mkCrcFun

        _crc32c = mkCrcFun("crc-32c")

__all__ = [
    "GZIP_MAGIC",
    "HEADER_SIZE",
    "RECORD_OVERHEAD",
    "RecordWriter",
    "frame_record",
    "framed_size",
    "is_gzip",
    "iter_inflated",
    "iter_records",
    "masked_crc32c",
    "open_file",
    "open_stream",
    "scan_records",
    "size_hint",
]

HEADER_SIZE = 12  # uint64 length + uint32 masked crc of the length
FOOTER_SIZE = 4  # uint32 masked crc of the data
RECORD_OVERHEAD = HEADER_SIZE + FOOTER_SIZE
_MASK_DELTA = 0xA282EAD8
_HEADER = struct.Struct("<QI")
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_OUT_CHUNK = 4 << 20  # read large payloads in pieces of this size (bounds bogus lengths)
# No file holds more than 2**63 bytes (the largest file offset); a longer length is corrupt.
MAX_LENGTH = (1 << 63) - 1 - RECORD_OVERHEAD


def masked_crc32c(data: bytes) -> int:
    """Return TensorFlow's masked CRC-32C of ``data``.

    Parameters
    ----------
    data : bytes
        The bytes to checksum.

    Returns
    -------
    int
        ``((crc >> 15) | (crc << 17)) + 0xa282ead8`` modulo 2**32.
    """
    crc = _crc32c(bytes(data))
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def frame_record(data: bytes) -> bytes:
    """Return ``data`` framed as one TFRecord record (header, data, footer).

    Parameters
    ----------
    data : bytes
        The record payload, typically a serialized ``tf.train.Example``.

    Returns
    -------
    bytes
        The framed record.
    """
    length = _U64.pack(len(data))
    return b"".join(
        (length, _U32.pack(masked_crc32c(length)), data, _U32.pack(masked_crc32c(data)))
    )


def framed_size(data_size: int) -> int:
    """Return the size on disk of a record holding ``data_size`` bytes of data.

    Parameters
    ----------
    data_size : int
        The payload's length in bytes.

    Returns
    -------
    int
        ``data_size`` plus the 12-byte header and the 4-byte footer.
    """
    return data_size + RECORD_OVERHEAD


def _open_input(path: str | os.PathLike[str], storage_options: StorageOptions) -> BinaryIO:
    """Open a shard: a regular local file (:func:`open_file`), or a URL through fsspec."""
    if is_url(path):
        return storage.open_input(path, storage_options, cache="none")
    return open_file(path)


def is_gzip(path: str | os.PathLike[str], storage_options: StorageOptions = None) -> bool:
    """Return True if the file starts with gzip's magic bytes ``1f 8b``.

    Parameters
    ----------
    path : path-like or str
        The shard to look at (a path or URL).
    storage_options : dict or Store, optional
        fsspec options for a URL.

    Raises
    ------
    UnreadableFileError
        The path is not a readable regular file.
    """
    with _open_input(path, storage_options) as f:
        return f.read(2) == GZIP_MAGIC


def size_hint(path: str | os.PathLike[str], storage_options: StorageOptions = None) -> int | None:
    """Return a shard's uncompressed size as its file says: the gzip trailer's ISIZE, or its size.

    ISIZE is the size modulo 2**32 of the last member only, so the answer is a prediction to be
    checked, not a fact. None when a gzip file is too short to hold a trailer.

    Raises
    ------
    UnreadableFileError
        The path is not a readable regular file.
    """
    with _open_input(path, storage_options) as f:
        compressed = f.read(2) == GZIP_MAGIC
        size = f.seek(0, os.SEEK_END)
        if not compressed:
            return size
        if size < 18:  # 10-byte header + 8-byte trailer, at the least
            return None
        f.seek(-4, os.SEEK_END)
        return int.from_bytes(f.read(4), "little")


def open_stream(path: str | os.PathLike[str], storage_options: StorageOptions = None) -> BinaryIO:
    """Open a shard for sequential reading of its uncompressed bytes.

    Parameters
    ----------
    path : path-like or str
        A raw or gzip shard (a path or URL); gzip is detected by magic bytes.
    storage_options : dict or Store, optional
        fsspec options for a URL.

    Returns
    -------
    binary file object
        Decompressing when the shard is gzip; the caller closes it.
    """
    return _open_stream(path, storage_options)[0]


def iter_inflated(
    path: str | os.PathLike[str], storage_options: StorageOptions = None
) -> Iterator[bytes]:
    """Yield a shard's uncompressed bytes in pieces of about a megabyte, then ``b""``.

    The pieces of a gzip shard are the inflater's own output, not copied again; reading them
    is the fastest way through a whole shard. Errors are raised as :func:`open_stream`'s
    reads raise them.
    """
    stream, _ = _open_stream(path, storage_options)
    with stream as f:
        raw = getattr(f, "raw", None)
        while True:
            piece = raw.read_piece() if isinstance(raw, GzipStream) else f.read(1 << 20)
            yield piece
            if not piece:
                return


def _open_stream(
    path: str | os.PathLike[str], storage_options: StorageOptions = None
) -> tuple[BinaryIO, int | None]:
    """Open a shard's uncompressed bytes; also return its size when it is raw (None: gzip)."""
    remote = is_url(path)
    f = storage.open_input(path, storage_options) if remote else open_file(path)
    try:
        compressed = f.read(2) == GZIP_MAGIC
        size = f.seek(0, os.SEEK_END)
        f.seek(0)
    except BaseException:
        f.close()
        raise
    if compressed:
        stream = io.BufferedReader(GzipStream(f), buffer_size=1 << 16)
        return stream, None  # type: ignore[return-value]
    return f, size


def _check_header(header: bytes, path: object, record: int, offset: int) -> int:
    """Validate a record header and return the data length it announces."""
    if len(header) < HEADER_SIZE:
        raise TruncatedRecordError(
            f"{location(path, record, offset)}: the shard ends inside a record header "
            f"({len(header)} of {HEADER_SIZE} bytes). The file is truncated: download it again."
        )
    length, length_crc = _HEADER.unpack(header)
    if masked_crc32c(header[:8]) != length_crc:
        raise ChecksumError(
            f"{location(path, record, offset)}: the record's length field fails its CRC-32C "
            "check. The shard is corrupt or not a TFRecord file: download it again.",
            path=path,
            record=record,
            offset=offset,
        )
    if length > MAX_LENGTH - offset:
        raise TruncatedRecordError(
            f"{location(path, record, offset)}: the length field says {length} bytes, more "
            "than any file can hold. The file is corrupt or truncated: download it again.",
            path=path,
            record=record,
            offset=offset,
        )
    return int(length)


def _check_length(length: int, remaining: int, path: object, record: int, offset: int) -> None:
    """Refuse a length field longer than what remains of a raw shard, before allocating it."""
    if length + RECORD_OVERHEAD > remaining:
        raise TruncatedRecordError(
            f"{location(path, record, offset)}: the length field says {length} bytes but only "
            f"{max(0, remaining - RECORD_OVERHEAD)} remain. The file is truncated: download it "
            "again.",
            path=path,
            record=record,
            offset=offset,
        )


def _check_data(data: bytes, footer: bytes, path: object, record: int, offset: int) -> None:
    if len(footer) < FOOTER_SIZE:
        raise TruncatedRecordError(
            f"{location(path, record, offset)}: the shard ends inside the record. "
            "The file is truncated: download it again.",
            path=path,
            record=record,
            offset=offset,
        )
    if masked_crc32c(data) != _U32.unpack(footer)[0]:
        raise ChecksumError(
            f"{location(path, record, offset)}: the record's data fails its CRC-32C check. "
            "The shard is corrupt: download it again.",
            path=path,
            record=record,
            offset=offset,
        )


def _stream_error(exc: Exception, path: object, record: int, offset: int) -> RecordError:
    if isinstance(exc, EOFError):
        return TruncatedRecordError(
            f"{location(path, record, offset)}: the gzip stream ends early ({exc}). "
            "The file is truncated: download it again.",
            path=path,
            record=record,
            offset=offset,
        )
    return RecordError(
        f"{location(path, record, offset)}: the gzip stream is corrupt ({exc}). "
        "Download the shard again.",
        path=path,
        record=record,
        offset=offset,
    )


def _read_exact(f: IO[bytes], n: int) -> bytes:
    """Read up to ``n`` bytes without allocating ``n`` up front for a bogus length."""
    if n <= _OUT_CHUNK:
        return f.read(n)
    parts = []
    while n > 0:
        part = f.read(min(n, _OUT_CHUNK))
        if not part:
            break
        parts.append(part)
        n -= len(part)
    return b"".join(parts)


def iter_records(
    path: str | os.PathLike[str],
    *,
    first_index: int = 0,
    verify: bool = True,
    storage_options: StorageOptions = None,
) -> Iterator[tuple[int, bytes]]:
    """Yield ``(offset, data)`` for each record of a shard, in order.

    The file is closed when the iteration ends, also when it is abandoned early.

    Parameters
    ----------
    path : path-like
        A raw or gzip shard.
    first_index : int
        Index of the shard's first record in the whole export, used in error messages.
    verify : bool
        Check the data CRC of every record (the length CRC is always checked).

    Yields
    ------
    tuple of (int, bytes)
        Offset of the record in the uncompressed stream, and its payload.

    Raises
    ------
    ChecksumError
        A CRC does not match.
    TruncatedRecordError
        The shard or its gzip stream ends inside a record, or a length field points past the
        end of a raw shard.
    RecordError
        The gzip stream is corrupt.
    """
    records = scan_records(
        path, first_index=first_index, verify=verify, storage_options=storage_options
    )
    for _, offset, data, error in records:
        if error is not None:
            raise error
        yield offset, data


def scan_records(
    path: str | os.PathLike[str],
    *,
    first_index: int = 0,
    verify: bool = True,
    storage_options: StorageOptions = None,
) -> Iterator[tuple[int, int, bytes, ChecksumError | None]]:
    """Yield ``(index, offset, data, error)`` for each record, going on past bad payloads.

    A record whose data fails its CRC is yielded with the :class:`ChecksumError` instead of
    raising it, since its framing is intact and the next record can still be found; a broken
    framing (a bad length, a truncated or corrupt stream) still raises, as nothing after it
    can be located. This is what a validator needs to report every problem.

    Parameters
    ----------
    path : path-like
        A raw or gzip shard.
    first_index : int
        Index of the shard's first record in the whole export.
    verify : bool
        Check the data CRC of every record.

    Yields
    ------
    tuple of (int, int, bytes, ChecksumError or None)
        The record's index in the export, its offset in the uncompressed stream, its payload,
        and the data-CRC error if it has one.
    """
    record, offset = first_index, 0
    stream, size = _open_stream(path, storage_options)
    with stream as f:
        while True:
            try:
                header = f.read(HEADER_SIZE)
                if not header:
                    return
                length = _check_header(header, path, record, offset)
                if size is not None:
                    _check_length(length, size - offset, path, record, offset)
                data = _read_exact(f, length)
                footer = f.read(FOOTER_SIZE)
            except TFRecordIOError:
                raise  # a remote error already naming the URL
            except STREAM_ERRORS as exc:
                raise _stream_error(exc, path, record, offset) from exc
            if len(data) < length or len(footer) < FOOTER_SIZE:
                _check_data(data, b"", path, record, offset)  # raises: truncated
            error = None
            if verify:
                try:
                    _check_data(data, footer, path, record, offset)
                except ChecksumError as exc:
                    error = exc
            yield record, offset, data, error
            offset += length + RECORD_OVERHEAD
            record += 1


class RecordWriter:
    """Write framed records to a raw or gzip shard, counting uncompressed bytes.

    Parameters
    ----------
    path : path-like
        The file to create (it is truncated if it exists).
    compressed : bool
        Write a gzip stream.
    level : int
        zlib compression level, 1 to 9.
    """

    def __init__(
        self, path: str | os.PathLike[str], *, compressed: bool = True, level: int = 6
    ) -> None:
        self.path = os.fspath(path)
        self._raw = open(self.path, "wb")  # noqa: SIM115 - closed in close()
        self._out: IO[bytes] | gzip.GzipFile = (
            gzip.GzipFile(fileobj=self._raw, mode="wb", compresslevel=level, mtime=0)
            if compressed
            else self._raw
        )
        self.size = 0  # uncompressed bytes written
        self.count = 0

    def write(self, data: bytes) -> None:
        """Append one record holding ``data``."""
        framed = frame_record(data)
        self._out.write(framed)
        self.size += len(framed)
        self.count += 1

    def close(self) -> None:
        """Flush and close the file."""
        if self._out is not self._raw:
            self._out.close()
        self._raw.close()

    def __enter__(self) -> RecordWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
