"""Inflating a gzip shard forwards from a seek point, and finding its record framing.

The machinery under :class:`~tfrecord_io.format.index.ShardIndex`: a :class:`SeekPoint` is a
copy of zlib's inflater at a known place, an :class:`Inflater` inflates forwards from one (or
from a :class:`~tfrecord_io.format.seekpoints.WindowPoint` restored from a sidecar),
:class:`Framing` finds where each record starts in the inflated bytes, and a :class:`Scanner`
is where an index's framing scan stopped.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING

from tfrecord_io.errors import TruncatedRecordError, location
from tfrecord_io.format._gzip import check_member_header
from tfrecord_io.format.records import FOOTER_SIZE, HEADER_SIZE, RECORD_OVERHEAD, _check_header
from tfrecord_io.format.seekpoints import INFLATE_ERRORS, RestoredStream, WindowPoint
from tfrecord_io.format.storage import open_input

if TYPE_CHECKING:
    from tfrecord_io.format.index import ShardIndex

__all__ = [
    "OUT_CHUNK",
    "READ_CHUNK",
    "READ_ERRORS",
    "Framing",
    "Inflater",
    "Scanner",
    "SeekPoint",
    "last_at_or_before",
]

READ_CHUNK = 1 << 20  # compressed bytes read at a time
_RESTORE_CHUNK = 128 << 10  # compressed bytes per piece from a window point: cache-sized
READ_ERRORS: tuple[type[Exception], ...] = (EOFError, *INFLATE_ERRORS)
OUT_CHUNK = 4 << 20  # at most this much inflated output at a time (bounds memory on zeros)


@dataclass(frozen=True)
class SeekPoint:
    """An inflater state: feeding the file from ``compressed`` on yields from ``uncompressed``."""

    compressed: int
    uncompressed: int
    inflater: zlib._Decompress


class Inflater:
    """Inflate a gzip file forwards from a seek point, keeping unconsumed input."""

    def __init__(
        self, f: IO[bytes], point: SeekPoint | WindowPoint, out_chunk: int = OUT_CHUNK
    ) -> None:
        self._f = f
        self._out_chunk = out_chunk
        self._cpos = point.compressed
        self._stream: RestoredStream | None = None
        if isinstance(point, WindowPoint):
            self._stream = RestoredStream(f, point, _RESTORE_CHUNK)
            self._d = self._stream.inflater
        else:
            self._d = point.inflater.copy()
        self._tail = b""
        self.position = point.uncompressed  # uncompressed offset of the next byte produced
        # At a member's start, its header is checked as every reader checks it (zlib parses it).
        self._header_due = isinstance(point, SeekPoint) and point.uncompressed == 0

    def seek_point(self) -> SeekPoint:
        """Return a seek point at the next byte this inflater produces."""
        return SeekPoint(self._cpos - len(self._tail), self.position, self._d.copy())

    def inflate(self) -> bytes:
        """Return the next piece of output; ``b""`` at the true end of the file."""
        while True:
            if self._d.eof:
                rest = self._d.unused_data
                if self._stream is not None:  # a raw member ended: skip its 8-byte trailer
                    self._cpos, rest = self._stream.member_end(len(rest)) + 8, b""
                    self._stream = None
                if not rest:
                    self._f.seek(self._cpos)
                    rest = self._f.read(READ_CHUNK)
                    self._cpos += len(rest)
                    if not rest:
                        return b""
                check_member_header(rest)
                self._d = zlib.decompressobj(31)
                self._tail = rest
            if not self._tail:
                if self._stream is not None:
                    self._tail = self._stream.read()
                else:
                    self._f.seek(self._cpos)
                    self._tail = self._f.read(READ_CHUNK)
                    self._cpos += len(self._tail)
                if not self._tail:
                    raise EOFError("compressed file ended before the end-of-stream marker")
            if self._header_due:
                self._header_due = False
                check_member_header(self._tail)
            out = self._d.decompress(self._tail, self._out_chunk)
            self._tail = self._d.unconsumed_tail
            if out:
                self.position += len(out)
                return out

    def close(self) -> None:
        """Close the file this inflater reads."""
        self._f.close()


class Framing:
    """Record framing found in a shard's uncompressed bytes fed piece by piece."""

    def __init__(self, index: ShardIndex) -> None:
        self.index = index
        self.header = b""
        self.skip = 0
        self.offset = 0

    def feed(self, piece: bytes) -> None:
        """Index the records whose headers are in ``piece`` (the bytes after the last fed)."""
        index, view, p = self.index, memoryview(piece), 0
        while p < len(piece):
            if self.skip:
                step = min(self.skip, len(piece) - p)
                p, self.skip = p + step, self.skip - step
                continue
            take = min(HEADER_SIZE - len(self.header), len(piece) - p)
            self.header += view[p : p + take]
            p += take
            if len(self.header) == HEADER_SIZE:
                record = index.first_index + len(index.offsets)
                length = _check_header(self.header, index.path, record, self.offset)
                index.offsets.append(self.offset)
                index.lengths.append(length)
                self.skip, self.header = length + FOOTER_SIZE, b""
                self.offset += length + RECORD_OVERHEAD

    def finish(self) -> None:
        """Refuse a stream that ends inside a record."""
        if self.header or self.skip:
            record = self.index.first_index + len(self.index.offsets) - (0 if self.header else 1)
            raise TruncatedRecordError(
                f"{location(self.index.path, record)}: the shard ends inside a record. "
                "The file is truncated: download it again.",
                path=self.index.path,
                record=record,
            )


class Scanner:
    """Where the framing scan of a gzip shard stopped: its inflater and partial record."""

    def __init__(self, index: ShardIndex) -> None:
        # the inflater reads 1 MiB pieces; closed by the index when its scan ends
        self.file = open_input(index.path, index.store, cache="none")
        start = SeekPoint(0, 0, zlib.decompressobj(31))
        # Pieces no longer than the spacing, so that seek points can be that close.
        self.inflater = Inflater(self.file, start, min(OUT_CHUNK, max(1, index.spacing)))
        self.framing = Framing(index)


def last_at_or_before(points: Sequence[SeekPoint | WindowPoint], offset: int) -> int:
    """Return the position in sorted ``points`` of the last one at or before ``offset``."""
    lo, hi = 0, len(points)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if points[mid].uncompressed <= offset:
            lo = mid
        else:
            hi = mid
    return lo
