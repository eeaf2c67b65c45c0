"""Gzip members inflated one by one, with one header rule for every reader of a shard.

Private to the format package. Sequential reading (:class:`GzipStream`, ``isal`` when
installed, zlib otherwise) inflates through :class:`Inflater`; random access
(:mod:`.inflate`, zlib, whose inflater states can be copied into seek points) has an inflater of
its own, but both check every member's header with :func:`check_member_header`, so both accept
and refuse exactly the same files whichever library happens to inflate. RFC 1952 says a reader
must refuse a header whose reserved FLG bits are set; zlib does, isal does not, so it is checked
here before either sees the member. Data after the last member that is not another member is
refused too.

Errors are raised as the libraries raise them (``zlib.error``, ``EOFError``, isal's
``IsalError``); the callers turn them into :class:`~tfrecord_io.errors.RecordError`.

This module deliberately does not import numpy.
"""

from __future__ import annotations

import io
import zlib
from typing import IO, Any

_isal_zlib: Any
try:  # isal inflates about 1.5x faster than zlib; optional ("fast" extra)
    from isal import isal_zlib as _isal_zlib
except ImportError:  # pragma: no cover - depends on the environment
    _isal_zlib = None

__all__ = ["GZIP_MAGIC", "STREAM_ERRORS", "GzipStream", "Inflater", "check_member_header"]

GZIP_MAGIC = b"\x1f\x8b"
_RESERVED_FLAGS = 0xE0  # FLG bits 5-7
READ_CHUNK = 1 << 20  # compressed bytes read at a time
OUT_CHUNK = 4 << 20  # at most this much inflated output at a time (bounds memory on zeros)
FEED = 32 << 10  # compressed bytes per inflate call: input and output stay in the CPU's cache
PIECE = 1 << 20  # inflated bytes gathered before a piece is returned

# What inflating a damaged stream can raise: zlib's and isal's errors, EOFError for a cut stream.
STREAM_ERRORS: tuple[type[Exception], ...] = (EOFError, zlib.error) + (
    (_isal_zlib.error,) if _isal_zlib is not None else ()
)


def check_member_header(head: bytes) -> None:
    """Refuse the start of a gzip member that zlib or RFC 1952 would refuse.

    Every reader of a shard calls this where a member starts, so that sequential and indexed
    reads accept and refuse the same files whichever library inflates.

    Raises
    ------
    zlib.error
        ``head`` is not the start of a gzip member, or sets reserved header flag bits.
    """
    if head[:2] != GZIP_MAGIC[: len(head[:2])]:
        raise zlib.error("data after the end of a gzip member is not gzip")
    if len(head) >= 4 and head[3] & _RESERVED_FLAGS:
        raise zlib.error(
            f"a gzip header sets reserved flag bits ({head[3]:#04x}), which RFC 1952 "
            "says a reader must refuse"
        )


def fast_member() -> Any:
    """Return the fastest inflater installed for one gzip member (isal, else zlib)."""
    return _isal_zlib.decompressobj(31) if _isal_zlib is not None else zlib.decompressobj(31)


class Inflater:
    """Inflate a gzip file front to back, member by member, with the fastest inflater.

    Parameters
    ----------
    f : binary file
        The compressed file, read from its start.
    """

    def __init__(self, f: IO[bytes]) -> None:
        self._f = f
        self._cpos = 0
        self._d: Any = None
        self._tail = b""  # compressed bytes read and not yet inflated, from self._at on
        self._at = 0
        self._error: Exception | None = None  # met after output that was returned first

    def _fill(self, size: int) -> None:
        """Read until ``size`` unconsumed bytes are at hand, or the file ends."""
        while len(self._tail) - self._at < size:
            self._f.seek(self._cpos)
            more = self._f.read(READ_CHUNK)
            if not more:
                return
            self._cpos += len(more)
            self._tail = self._tail[self._at :] + more
            self._at = 0

    def _start_member(self) -> bool:
        """Check the next member's header; False at the true end of the file."""
        self._fill(4)
        head = self._tail[self._at : self._at + 4]
        if not head:
            return False
        check_member_header(head)
        self._d = fast_member()
        return True

    def inflate(self) -> bytes:
        """Return the next piece of output (about ``PIECE`` bytes); ``b""`` at the true end.

        The compressed bytes are fed ``FEED`` at a time, so that what the inflater reads and
        writes stays in the CPU's cache (a fifth faster than feeding a megabyte at once).
        """
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        pieces: list[bytes] = []
        held = 0
        while held < PIECE:
            try:
                out = self._inflate_some()
            except STREAM_ERRORS as exc:
                if not pieces:
                    raise
                self._error = exc  # the output before the fault comes first, as it is sound
                break
            if not out:
                break
            pieces.append(out)
            held += len(out)
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)

    def _inflate_some(self) -> bytes:
        """Return the output of the next feed; ``b""`` at the true end of the file."""
        while True:
            if self._d is not None and self._d.eof:
                self._tail = self._d.unused_data + self._tail[self._at :]
                self._at = 0
                self._d = None
            if self._d is None and not self._start_member():
                return b""
            if self._at >= len(self._tail):
                self._fill(1)
                if self._at >= len(self._tail):
                    raise EOFError("compressed file ended before the end-of-stream marker")
            assert self._d is not None
            feed = memoryview(self._tail)[self._at : self._at + FEED]
            out = self._d.decompress(feed, OUT_CHUNK)
            # All that was fed is consumed, but for what OUT_CHUNK held back; at the end of a
            # member, unused_data holds the rest of the feed.
            self._at += len(feed) - (0 if self._d.eof else len(self._d.unconsumed_tail))
            if out:
                return out


class GzipStream(io.RawIOBase):
    """A gzip file read front to back as its uncompressed bytes (wrap in a BufferedReader).

    Parameters
    ----------
    f : binary file
        The compressed file; it is closed with the stream.
    """

    def __init__(self, f: IO[bytes]) -> None:
        super().__init__()
        self._f = f
        self._inflater = Inflater(f)
        self._piece = memoryview(b"")

    def readable(self) -> bool:
        """Return True: the stream is readable."""
        return True

    def read_piece(self) -> bytes:
        """Return the next uncompressed bytes as the inflater made them; ``b""`` at the end."""
        if self._piece:
            piece, self._piece = bytes(self._piece), memoryview(b"")
            return piece
        return self._inflater.inflate()

    def readinto(self, buffer: Any) -> int:
        """Fill ``buffer`` with the next uncompressed bytes; 0 at the end."""
        if not self._piece:
            piece = self._inflater.inflate()
            if not piece:
                return 0
            self._piece = memoryview(piece)
        n = min(len(buffer), len(self._piece))
        buffer[:n] = self._piece[:n]
        self._piece = self._piece[n:]
        return n

    def close(self) -> None:
        """Close the compressed file."""
        if not self.closed:
            self._f.close()
        super().close()
