"""TFRecord framing: reading, writing and random access into raw and gzip shards.

A record is ``uint64 length | uint32 masked_crc32c(length) | data | uint32 masked_crc32c(data)``,
little-endian, with no file header or footer. A gzip shard is that byte stream gzipped; gzip is
detected by its magic bytes, never by the file name, and multi-member streams are accepted.

Sequential reading goes through ``isal.igzip`` when it is installed (about 1.5x zlib's speed)
and :mod:`gzip` otherwise. Random access into a gzip shard uses seek points: while a shard is
indexed once, a copy of the zlib inflater (:meth:`zlib.Decompress.copy`) is kept every
``spacing`` uncompressed bytes, so reading a record later inflates at most ``spacing`` bytes
instead of the whole shard before it. ``indexed_gzip`` does the same in C, but it is not
available in QGIS's Python (Debian 12 ships an old build and no ``isal``), and the standard
library's inflater copies give the same seek points in a few dozen lines, with one code path
everywhere. Each seek point holds zlib's 32 KiB window, so the default spacing of 4 MiB costs
about 10 MB of memory per GiB of uncompressed shard.

CRC-32C comes from ``google-crc32c`` (~14 GB/s here); Debian's Python, which QGIS uses, does
not package it, so Debian's ``crcmod`` (C extension, ~440 MB/s) stands in there.

This module deliberately does not import numpy.
"""

from __future__ import annotations

import gzip
import os
import struct
import threading
import zlib
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any, BinaryIO

try:
    from google_crc32c import value as _crc32c
except ImportError:  # QGIS's Python on Debian: no google-crc32c, but crcmod's C extension
    from crcmod.predefined import mkCrcFun

    _crc32c = mkCrcFun("crc-32c")

from tfrecord_io.errors import ChecksumError, RecordError, TruncatedRecordError, location

_igzip: Any
try:  # isal inflates about 1.5x faster than zlib; optional ("fast" extra)
    from isal import igzip as _igzip
except ImportError:  # pragma: no cover - depends on the environment
    _igzip = None

__all__ = [
    "GZIP_MAGIC",
    "HEADER_SIZE",
    "RECORD_OVERHEAD",
    "RecordWriter",
    "ShardIndex",
    "frame_record",
    "index_shard",
    "is_gzip",
    "iter_records",
    "masked_crc32c",
    "scan_records",
    "open_stream",
]

GZIP_MAGIC = b"\x1f\x8b"
HEADER_SIZE = 12  # uint64 length + uint32 masked crc of the length
FOOTER_SIZE = 4  # uint32 masked crc of the data
RECORD_OVERHEAD = HEADER_SIZE + FOOTER_SIZE
_MASK_DELTA = 0xA282EAD8
_HEADER = struct.Struct("<QI")
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_READ_CHUNK = 1 << 20  # compressed bytes read at a time
_OUT_CHUNK = 4 << 20  # at most this much inflated output at a time (bounds memory on zeros)
DEFAULT_SPACING = 4 << 20


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


def is_gzip(path: str | os.PathLike[str]) -> bool:
    """Return True if the file starts with gzip's magic bytes ``1f 8b``.

    Parameters
    ----------
    path : path-like
        The shard to look at.
    """
    with open(path, "rb") as f:
        return f.read(2) == GZIP_MAGIC


def open_stream(path: str | os.PathLike[str]) -> BinaryIO:
    """Open a shard for sequential reading of its uncompressed bytes.

    Parameters
    ----------
    path : path-like
        A raw or gzip shard; gzip is detected by magic bytes.

    Returns
    -------
    binary file object
        Decompressing when the shard is gzip; the caller closes it.
    """
    if is_gzip(path):
        if _igzip is not None:
            return _igzip.open(path, "rb")  # type: ignore[return-value]
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return open(path, "rb")


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
    path: str | os.PathLike[str], *, first_index: int = 0, verify: bool = True
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
    for _, offset, data, error in scan_records(path, first_index=first_index, verify=verify):
        if error is not None:
            raise error
        yield offset, data


def scan_records(
    path: str | os.PathLike[str], *, first_index: int = 0, verify: bool = True
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
    compressed = is_gzip(path)
    size = None if compressed else os.path.getsize(path)
    record, offset = first_index, 0
    with open_stream(path) as f:
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
            except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
                raise _stream_error(exc, path, record, offset) from exc
            except OSError as exc:  # isal reports corrupt streams as OSError
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


@dataclass(frozen=True)
class _SeekPoint:
    """An inflater state: feeding the file from ``compressed`` on yields from ``uncompressed``."""

    compressed: int
    uncompressed: int
    inflater: zlib._Decompress


class _Inflater:
    """Inflate a gzip file forwards from a seek point, keeping unconsumed input."""

    def __init__(self, f: IO[bytes], point: _SeekPoint) -> None:
        self._f = f
        self._cpos = point.compressed
        self._d = point.inflater.copy()
        self._tail = b""
        self.position = point.uncompressed  # uncompressed offset of the next byte produced

    def seek_point(self) -> _SeekPoint:
        return _SeekPoint(self._cpos - len(self._tail), self.position, self._d.copy())

    def inflate(self) -> bytes:
        """Return the next piece of output; ``b""`` at the true end of the file."""
        while True:
            if self._d.eof:
                rest = self._d.unused_data
                if not rest:
                    self._f.seek(self._cpos)
                    rest = self._f.read(_READ_CHUNK)
                    self._cpos += len(rest)
                    if not rest:
                        return b""
                if rest[:2] != GZIP_MAGIC:
                    raise zlib.error("data after the end of a gzip member is not gzip")
                self._d = zlib.decompressobj(31)
                self._tail = rest
            if not self._tail:
                self._f.seek(self._cpos)
                self._tail = self._f.read(_READ_CHUNK)
                self._cpos += len(self._tail)
                if not self._tail:
                    raise EOFError("compressed file ended before the end-of-stream marker")
            out = self._d.decompress(self._tail, _OUT_CHUNK)
            self._tail = self._d.unconsumed_tail
            if out:
                self.position += len(out)
                return out


class _Scanner:
    """Where the framing scan of a gzip shard stopped: its inflater and partial record."""

    def __init__(self, path: str) -> None:
        self.file = open(path, "rb")  # noqa: SIM115 - closed by ShardIndex._close_scanner
        self.inflater = _Inflater(self.file, _SeekPoint(0, 0, zlib.decompressobj(31)))
        self.header = b""
        self.skip = 0
        self.offset = 0


@dataclass
class ShardIndex:
    """Where each record of one shard starts, with seek points for gzip shards.

    Attributes
    ----------
    path : str
        The shard.
    first_index : int
        Index of the shard's first record in the whole export.
    compressed : bool
        True for gzip shards.
    offsets, lengths : array
        Offset of each record's header in the uncompressed stream, and its data length, for
        the records indexed so far.
    complete : bool
        True once the whole shard is indexed.
    spacing : int
        Uncompressed bytes between seek points of a gzip shard.
    """

    path: str
    first_index: int
    compressed: bool
    complete: bool = False
    spacing: int = DEFAULT_SPACING
    offsets: array = field(default_factory=lambda: array("q"))
    lengths: array = field(default_factory=lambda: array("q"))
    _points: list[_SeekPoint] = field(default_factory=list, repr=False)
    _cursor: _Inflater | None = field(default=None, repr=False)
    _buffer: bytes = field(default=b"", repr=False)
    _buffer_start: int = field(default=0, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _scanner: _Scanner | None = field(default=None, repr=False)

    @classmethod
    def for_shard(
        cls, path: str | os.PathLike[str], first_index: int = 0, spacing: int = DEFAULT_SPACING
    ) -> ShardIndex:
        """Return an empty index of a shard; :meth:`scan` fills it."""
        path = os.fspath(path)
        return cls(path, first_index, is_gzip(path), spacing=spacing)

    def __len__(self) -> int:
        return len(self.offsets)

    def scan(self, until: int | None = None) -> None:
        """Index forward until the shard's record ``until`` is indexed, or to the end (None).

        A gzip shard is inflated once, front to back, over as many calls as it takes: the scan
        stops as soon as the record asked for is indexed and resumes from there.

        Raises
        ------
        ChecksumError, TruncatedRecordError, RecordError
            The framing is broken; the message names the shard, the record and the offset.
        """
        if self.complete:
            return
        if not self.compressed:
            _index_raw(self)  # headers only: cheap, done at once
            self.complete = True
            return
        try:
            while not self.complete and (until is None or len(self.offsets) <= until):
                self._scan_piece()
        except BaseException:
            self._close_scanner()
            raise

    def _scan_piece(self) -> None:
        scanner = self._scanner
        if scanner is None:
            scanner = self._scanner = _Scanner(self.path)
            self._points.append(scanner.inflater.seek_point())
        record = self.first_index + len(self.offsets)
        try:
            piece = scanner.inflater.inflate()
        except (EOFError, zlib.error) as exc:
            raise _stream_error(exc, self.path, record, scanner.offset) from exc
        if not piece:
            if scanner.header or scanner.skip:
                record -= 0 if scanner.header else 1
                raise TruncatedRecordError(
                    f"{location(self.path, record)}: the shard ends inside a record. "
                    "The file is truncated: download it again.",
                    path=self.path,
                    record=record,
                )
            self._close_scanner()
            self.complete = True
            return
        view, p = memoryview(piece), 0
        while p < len(piece):
            if scanner.skip:
                step = min(scanner.skip, len(piece) - p)
                p, scanner.skip = p + step, scanner.skip - step
                continue
            take = min(HEADER_SIZE - len(scanner.header), len(piece) - p)
            scanner.header += view[p : p + take]
            p += take
            if len(scanner.header) == HEADER_SIZE:
                record = self.first_index + len(self.offsets)
                length = _check_header(scanner.header, self.path, record, scanner.offset)
                self.offsets.append(scanner.offset)
                self.lengths.append(length)
                scanner.skip, scanner.header = length + FOOTER_SIZE, b""
                scanner.offset += length + RECORD_OVERHEAD
        if scanner.inflater.position - self._points[-1].uncompressed >= self.spacing:
            self._points.append(scanner.inflater.seek_point())

    def _close_scanner(self) -> None:
        if self._scanner is not None:
            self._scanner.file.close()
            self._scanner = None

    def read(self, local: int, verify: bool = True) -> bytes:
        """Return the payload of the shard's record number ``local`` (0-based).

        Parameters
        ----------
        local : int
            The record's position within this shard.
        verify : bool
            Check the data CRC.
        """
        offset, length = self.offsets[local], self.lengths[local]
        record = self.first_index + local
        with self._lock:
            try:
                raw = self._read_at(offset, length + RECORD_OVERHEAD)
            except (EOFError, zlib.error) as exc:
                self._cursor = None
                raise _stream_error(exc, self.path, record, offset) from exc
        data = raw[HEADER_SIZE : HEADER_SIZE + length]
        if verify:
            _check_data(data, raw[HEADER_SIZE + length :], self.path, record, offset)
        return data

    def _read_at(self, offset: int, size: int) -> bytes:
        if not self.compressed:
            with open(self.path, "rb") as f:
                f.seek(offset)
                return f.read(size)
        return self._inflate_at(offset, size)

    def _inflate_at(self, offset: int, size: int) -> bytes:
        # Continue the current inflater when the target lies ahead of it and no seek point
        # is closer; sequential reads then inflate each byte once. `_buffer` holds the last
        # inflated bytes from `_buffer_start` up to the inflater's position.
        point = self._points[_last_at_or_before(self._points, offset)]
        cursor = self._cursor
        if cursor is None or offset < self._buffer_start or point.uncompressed > cursor.position:
            f = open(self.path, "rb")  # noqa: SIM115 - owned by the cursor, closed below
            try:
                cursor = _Inflater(f, point)
            except BaseException:
                f.close()
                raise
            self._close_cursor()
            self._cursor, self._buffer, self._buffer_start = cursor, b"", point.uncompressed
        buffer, start = self._buffer, self._buffer_start
        end = cursor.position
        if offset + size <= end:  # already inflated: copy out the record only
            return buffer[offset - start : offset - start + size]
        parts: list[bytes | memoryview] = (
            [memoryview(buffer)[offset - start :]] if offset < end else []
        )
        have = max(0, end - offset)
        while have < size:
            piece = cursor.inflate()
            if not piece:
                raise EOFError("the shard ends before the indexed record")
            piece_start = cursor.position - len(piece)
            if cursor.position <= offset:
                continue  # wholly before the target: inflated only to move forward
            parts.append(piece if piece_start >= offset else piece[offset - piece_start :])
            have += len(parts[-1])
        data = b"".join(parts)
        self._buffer, self._buffer_start = data, offset
        return data[:size]

    def _close_cursor(self) -> None:
        if self._cursor is not None:
            self._cursor._f.close()
            self._cursor = None

    def close(self) -> None:
        """Release the open files and inflaters held for reading and scanning."""
        with self._lock:
            self._close_cursor()
            self._close_scanner()
            self._buffer = b""


def _last_at_or_before(points: list[_SeekPoint], offset: int) -> int:
    lo, hi = 0, len(points)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if points[mid].uncompressed <= offset:
            lo = mid
        else:
            hi = mid
    return lo


def index_shard(
    path: str | os.PathLike[str], *, first_index: int = 0, spacing: int = DEFAULT_SPACING
) -> ShardIndex:
    """Scan a whole shard once and return where each of its records starts.

    Only the framing is read and the length CRCs checked; payload CRCs are checked when a
    record is read. For a gzip shard the whole stream is inflated once and a seek point kept
    every ``spacing`` uncompressed bytes.

    Parameters
    ----------
    path : path-like
        A raw or gzip shard.
    first_index : int
        Index of the shard's first record in the whole export (for error messages).
    spacing : int
        Uncompressed bytes between seek points of a gzip shard.

    Returns
    -------
    ShardIndex

    Raises
    ------
    ChecksumError, TruncatedRecordError, RecordError
        The framing is broken; the message names the shard, the record and the offset.
    """
    index = ShardIndex.for_shard(path, first_index, spacing)
    index.scan()
    return index


def _index_raw(index: ShardIndex) -> None:
    size = os.path.getsize(index.path)
    with open(index.path, "rb") as f:
        offset = 0
        while offset < size:
            record = index.first_index + len(index.offsets)
            f.seek(offset)
            length = _check_header(f.read(HEADER_SIZE), index.path, record, offset)
            _check_length(length, size - offset, index.path, record, offset)
            index.offsets.append(offset)
            index.lengths.append(length)
            offset += length + RECORD_OVERHEAD


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
