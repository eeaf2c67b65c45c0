"""Random access into shards: where each record starts, and gzip seek points.

A :class:`ShardIndex` records the offset of every record of one shard in its uncompressed
stream. For a gzip shard, a copy of the zlib inflater (:meth:`zlib.Decompress.copy`) is kept
every ``spacing`` uncompressed bytes while the shard is scanned, so reading a record later
inflates at most ``spacing`` bytes instead of the whole shard before it; the scan itself goes
only as far as the records asked for. ``indexed_gzip`` does the same in C, but it is not
available in QGIS's Python (Debian 12 ships an old build and no ``isal``), and the standard
library's inflater copies give the same seek points in a few dozen lines, with one code path
everywhere. Each seek point holds zlib's 32 KiB window and state, so the default spacing of
4 MiB costs about 10 MB of memory per GiB of uncompressed shard.
"""

from __future__ import annotations

import os
import threading
from array import array
from dataclasses import dataclass, field

from tfrecord_io.errors import TruncatedRecordError, location
from tfrecord_io.format._gzip import START, STREAM_ERRORS, Inflater, SeekPoint
from tfrecord_io.format.records import (
    FOOTER_SIZE,
    HEADER_SIZE,
    RECORD_OVERHEAD,
    _check_data,
    _check_header,
    _check_length,
    _stream_error,
    is_gzip,
    open_file,
)

__all__ = ["DEFAULT_SPACING", "ShardIndex", "index_shard"]

DEFAULT_SPACING = 4 << 20


class _Scanner:
    """Where the framing scan of a gzip shard stopped: its inflater and partial record."""

    def __init__(self, path: str) -> None:
        self.file = open_file(path)  # closed by ShardIndex._close_scanner
        self.inflater = Inflater(self.file, START)
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
    _points: list[SeekPoint] = field(default_factory=list, repr=False)
    _cursor: Inflater | None = field(default=None, repr=False)
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
        except STREAM_ERRORS as exc:
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
            except STREAM_ERRORS as exc:
                self._close_cursor()
                raise _stream_error(exc, self.path, record, offset) from exc
        data = raw[HEADER_SIZE : HEADER_SIZE + length]
        if verify:
            _check_data(data, raw[HEADER_SIZE + length :], self.path, record, offset)
        return data

    def _read_at(self, offset: int, size: int) -> bytes:
        if not self.compressed:
            with open_file(self.path) as f:
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
            f = open_file(self.path)  # owned by the cursor, closed below
            try:
                cursor = Inflater(f, point)
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
            self._cursor.file.close()
            self._cursor = None

    def close(self) -> None:
        """Release the open files and inflaters held for reading and scanning."""
        with self._lock:
            self._close_cursor()
            self._close_scanner()
            self._buffer = b""


def _last_at_or_before(points: list[SeekPoint], offset: int) -> int:
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
    with open_file(index.path) as f:
        size = os.fstat(f.fileno()).st_size
        offset = 0
        while offset < size:
            record = index.first_index + len(index.offsets)
            f.seek(offset)
            length = _check_header(f.read(HEADER_SIZE), index.path, record, offset)
            _check_length(length, size - offset, index.path, record, offset)
            index.offsets.append(offset)
            index.lengths.append(length)
            offset += length + RECORD_OVERHEAD
