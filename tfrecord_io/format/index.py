"""Random access into shards: where each record starts, and gzip seek points.

A :class:`ShardIndex` records the offset of every record of one shard in its uncompressed
stream. For a gzip shard scanned in this process, a copy of the zlib inflater
(:meth:`zlib.Decompress.copy`) is kept every ``spacing`` uncompressed bytes, so reading a
record later inflates at most ``spacing`` bytes instead of the whole shard before it; the scan
goes only as far as the records asked for. Each copy holds zlib's 32 KiB window and state:
about 10 MB of memory per GiB of shard at the default 4 MiB. An index loaded from a sidecar
(:meth:`ShardIndex.from_saved`) has saved points instead, restored from their windows
(:mod:`tfrecord_io.format.seekpoints`) and fetched only when used.
"""

from __future__ import annotations

import functools
import os
import threading
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO, cast

from tfrecord_io.errors import RecordError, location
from tfrecord_io.format.inflate import (
    OUT_CHUNK,
    READ_CHUNK,
    READ_ERRORS,
    Inflater,
    Scanner,
    SeekPoint,
    last_at_or_before,
)
from tfrecord_io.format.records import (
    HEADER_SIZE,
    RECORD_OVERHEAD,
    _check_data,
    _check_header,
    _check_length,
    _stream_error,
    is_gzip,
)
from tfrecord_io.format.seekpoints import WindowPoint
from tfrecord_io.format.sidecar import IndexedShard
from tfrecord_io.format.storage import StorageOptions, Store, as_store, is_url, open_input, stat

__all__ = ["DEFAULT_SPACING", "SAVED_SPACING", "ShardIndex", "index_shard"]

DEFAULT_SPACING = 4 << 20
# Saved points cost no memory until used (~12 KB of sidecar each): space them closer, so a
# window read from a sidecar inflates less.
SAVED_SPACING = 1 << 20


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
    store : Store, optional
        Storage options of a shard given by URL, and the identity it had when first opened.
    """

    path: str
    first_index: int
    compressed: bool
    complete: bool = False
    spacing: int = DEFAULT_SPACING
    store: Store | None = None
    offsets: array = field(default_factory=lambda: array("q"))
    lengths: array = field(default_factory=lambda: array("q"))
    _points: list[SeekPoint | WindowPoint] = field(default_factory=list, repr=False)
    _cursor: Inflater | None = field(default=None, repr=False)
    _buffer: bytes = field(default=b"", repr=False)
    _buffer_start: int = field(default=0, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _scanner: Scanner | None = field(default=None, repr=False)
    _raw: BinaryIO | None = field(default=None, repr=False)  # a raw shard's handle for reads
    saved: bool = False  # loaded from a sidecar: its points are WindowPoints

    @classmethod
    def for_shard(
        cls,
        path: str | os.PathLike[str],
        first_index: int = 0,
        spacing: int = DEFAULT_SPACING,
        storage_options: StorageOptions = None,
    ) -> ShardIndex:
        """Return an empty index of a shard (a path, or a URL with its storage options)."""
        path = os.fspath(path)
        store = as_store(storage_options) if is_url(path) else None
        return cls(path, first_index, is_gzip(path, store), spacing=spacing, store=store)

    @classmethod
    def from_saved(
        cls,
        saved: IndexedShard,
        path: str,
        first_index: int,
        storage_options: StorageOptions = None,
    ) -> ShardIndex:
        """Return the complete index of a shard read from a sidecar (a path, or a URL)."""
        return cls(
            path,
            first_index,
            saved.compressed,
            complete=True,
            spacing=saved.spacing,
            store=as_store(storage_options) if is_url(path) else None,
            offsets=saved.offsets,
            lengths=saved.lengths,
            _points=list(saved.points),
            saved=True,
        )

    def to_saved(self, name: str, identity: dict[str, Any]) -> IndexedShard:
        """Return what a sidecar keeps of this complete index (``index_shard_for_saving``)."""
        if not self.complete or any(isinstance(p, SeekPoint) for p in self._points):
            raise ValueError("only a complete index made by index_shard_for_saving can be saved")
        points = cast("list[WindowPoint]", self._points)
        return IndexedShard(
            name, identity, self.compressed, self.offsets, self.lengths, points, self.spacing
        )

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
            scanner = self._scanner = Scanner(self)
            self._points.append(scanner.inflater.seek_point())
        framing = scanner.framing
        try:
            piece = scanner.inflater.inflate()
        except READ_ERRORS as exc:
            record = self.first_index + len(self.offsets)
            raise _stream_error(exc, self.path, record, framing.offset) from exc
        if not piece:
            framing.finish()
            self._close_scanner()
            self.complete = True
            return
        framing.feed(piece)
        if scanner.inflater.position - self._points[-1].uncompressed >= self.spacing:
            self._points.append(scanner.inflater.seek_point())

    def _close_scanner(self) -> None:
        if self._scanner is not None:
            self._scanner.file.close()
            self._scanner = None

    def read(self, local: int, verify: bool = True) -> bytes:
        """Return the payload of the shard's record number ``local`` (0-based).

        A raw shard is read through one handle, opened at the first read and kept until
        :meth:`close`; reads from several threads take turns on it.

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
            except READ_ERRORS as exc:
                self._cursor = None
                self._close_raw()  # the next read opens the shard afresh
                self._check_unchanged()
                raise _stream_error(exc, self.path, record, offset) from exc
        return self._checked(raw, 0, local, verify)

    def split_points(self) -> list[tuple[int, int]]:
        """Return ``(uncompressed offset, first record)`` of each saved seek point.

        Records from one point's first record up to the next point's are what
        :meth:`iter_from` reads when started there. Empty unless the index came from a sidecar
        (only saved points can be restored on several threads at once); every record of a
        raw shard.
        """
        if not self.compressed:
            return [(self.offsets[n], n) for n in range(len(self.offsets))]
        if not self.saved:
            return []
        out: list[tuple[int, int]] = []
        local = 0
        for point in self._points:
            while local < len(self.offsets) and self.offsets[local] < point.uncompressed:
                local += 1
            if not out or out[-1][1] != local:
                out.append((point.uncompressed, local))
        return out

    def iter_from(
        self, start: int, stop: int, verify: bool = True
    ) -> Iterator[tuple[int, int, bytes]]:
        """Yield ``(local, offset, payload)`` for records ``start`` to ``stop - 1``.

        Inflates forwards from the seek point at or before record ``start`` on a private file
        and inflater, so several ranges of one shard can be read on several threads at once.
        Each record's header is checked against the index and its data CRC when ``verify``.

        Raises
        ------
        ChecksumError, TruncatedRecordError, RecordError
            The stream or a record is broken, or disagrees with the index.
        """
        if start >= stop:
            return
        offset = self.offsets[start]
        with open_input(self.path, self.store, cache="none") as f:
            if self.compressed:
                cursor = Inflater(f, self._points[last_at_or_before(self._points, offset)])
                next_piece, buffer_start = cursor.inflate, cursor.position
            else:
                f.seek(offset)
                next_piece, buffer_start = functools.partial(f.read, READ_CHUNK), offset
            buffer = b""
            for local in range(start, stop):
                offset, length = self.offsets[local], self.lengths[local]
                end = offset + length + RECORD_OVERHEAD
                have = buffer_start + len(buffer)
                if have < end:
                    parts, buffer_start = (
                        ([buffer[offset - buffer_start :]], offset) if offset < have else ([], have)
                    )
                    try:
                        while have < end:
                            piece = next_piece()
                            if not piece:
                                raise EOFError("the shard ends before the indexed record")
                            have += len(piece)
                            if have <= offset:  # wholly before the record: only moves on
                                buffer_start = have
                            else:
                                parts.append(piece)
                    except READ_ERRORS as exc:
                        record = self.first_index + local
                        raise _stream_error(exc, self.path, record, offset) from exc
                    buffer = b"".join(parts)
                yield local, offset, self._checked(buffer, offset - buffer_start, local, verify)

    def _checked(self, raw: bytes, at: int, local: int, verify: bool) -> bytes:
        """Return the payload of record ``local``, framed in ``raw`` from ``at`` on, checked."""
        offset, length = self.offsets[local], self.lengths[local]
        record = self.first_index + local
        if _check_header(raw[at : at + HEADER_SIZE], self.path, record, offset) != length:
            raise RecordError(
                f"{location(self.path, record, offset)}: the record's header disagrees with the "
                "record index. The index sidecar is wrong: rebuild it with "
                "`tfrecord-io index --overwrite`.",
                path=self.path,
                record=record,
                offset=offset,
            )
        data = raw[at + HEADER_SIZE : at + HEADER_SIZE + length]
        if verify:
            footer = raw[at + HEADER_SIZE + length : at + length + RECORD_OVERHEAD]
            try:
                _check_data(data, footer, self.path, record, offset)
            except ValueError:
                self._check_unchanged()
                raise
        return data

    def _check_unchanged(self) -> None:
        """Raise ShardChangedError rather than a framing error when a remote shard was replaced."""
        if self.store is not None:
            self.store.check_unchanged(self.path)

    def _read_at(self, offset: int, size: int) -> bytes:
        if not self.compressed:
            return self._read_raw(offset, size)
        return self._inflate_at(offset, size)

    def _read_raw(self, offset: int, size: int) -> bytes:
        """Read a raw shard's bytes through one handle, opened at the first read (lock held)."""
        f = self._raw
        if f is None:
            f = self._raw = open_input(self.path, self.store, cache="none")
        if self.store is None and hasattr(os, "pread"):
            # A local file: pread moves no shared file position, so even a forked process
            # holding a copy of the descriptor reads what it asks for.
            return os.pread(f.fileno(), size, offset)
        f.seek(offset)  # a URL: one ranged read
        return f.read(size)

    def _close_raw(self) -> None:
        if self._raw is not None:
            self._raw.close()
            self._raw = None

    def _inflate_at(self, offset: int, size: int) -> bytes:
        # Continue the current inflater when the target lies ahead of it and no seek point
        # is closer; sequential reads then inflate each byte once. `_buffer` holds the last
        # inflated bytes from `_buffer_start` up to the inflater's position.
        point = self._points[last_at_or_before(self._points, offset)]
        cursor = self._cursor
        if cursor is None or offset < self._buffer_start or point.uncompressed > cursor.position:
            f = open_input(self.path, self.store, cache="none")  # the cursor's, closed below
            try:
                cursor = Inflater(f, point, min(OUT_CHUNK, max(1, self.spacing)))
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
            self._cursor.close()
            self._cursor = None

    def close(self) -> None:
        """Release the open files and inflaters held for reading and scanning."""
        with self._lock:
            self._close_cursor()
            self._close_scanner()
            self._close_raw()
            self._buffer = b""


def index_shard(
    path: str | os.PathLike[str],
    *,
    first_index: int = 0,
    spacing: int = DEFAULT_SPACING,
    storage_options: StorageOptions = None,
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
    storage_options : dict or Store, optional
        fsspec options when ``path`` is a URL.

    Returns
    -------
    ShardIndex

    Raises
    ------
    ChecksumError, TruncatedRecordError, RecordError
        The framing is broken; the message names the shard, the record and the offset.
    """
    index = ShardIndex.for_shard(path, first_index, spacing, storage_options)
    index.scan()
    return index


def _index_raw(index: ShardIndex) -> None:
    size = stat(index.path, index.store).size
    with open_input(index.path, index.store) as f:
        offset = 0
        while offset < size:
            record = index.first_index + len(index.offsets)
            f.seek(offset)
            length = _check_header(f.read(HEADER_SIZE), index.path, record, offset)
            _check_length(length, size - offset, index.path, record, offset)
            index.offsets.append(offset)
            index.lengths.append(length)
            offset += length + RECORD_OVERHEAD
