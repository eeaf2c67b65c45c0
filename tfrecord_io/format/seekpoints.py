"""Gzip seek points that can be saved to a file and restored in any Python: zran's method.

A :class:`WindowPoint` is where a deflate block starts in a gzip shard: its compressed byte
offset, the bit inside the byte preceding it (deflate blocks need not start on a byte), the
uncompressed offset it corresponds to, and the 32 KiB of output before it (deflate's window).
Restoring one is zlib's ``zran`` example in the standard library alone: a raw inflater
started with the window as its dictionary (``zlib.decompressobj(-15, zdict=window)``; isal's
``isal_zlib`` takes the same call and is used when installed). The
standard library has no ``inflatePrime`` for a point inside a byte, so the compressed bytes
are shifted down by the bit offset before they are fed (deflate reads bits least significant
first, so the stream is one little-endian integer and this is an integer shift, done with numpy
eight bytes at a time on each piece read: :func:`shift_down`). A point with no window is the
start of a gzip member.

Finding block boundaries needs an inflater that reports them. ``indexed_gzip`` (the ``fast``
extra) does, and its exported index (``GZIDX`` version 1) is parsed here by
:func:`points_from_gzidx`. Without it, :func:`find_flush_points` finds the byte-aligned
boundaries a sync or full flush leaves (the ``00 00 ff ff`` of an empty stored block), which
our own writer puts after every 4 MiB chunk; each candidate is checked by restoring it and
comparing its output with the real stream, since those four bytes may also occur by chance.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any, cast

import numpy as np

__all__ = [
    "INFLATE_ERRORS",
    "WINDOW_SIZE",
    "RestoredStream",
    "WindowPoint",
    "find_flush_points",
    "points_from_gzidx",
]

_inflate: Any = zlib
INFLATE_ERRORS: tuple[type[Exception], ...] = (zlib.error,)
try:  # optional ("fast" extra): isal restores a window point too, about 1.5x zlib's speed
    from isal import isal_zlib

    _inflate = isal_zlib
    INFLATE_ERRORS = (zlib.error, cast("type[Exception]", isal_zlib.error))
except ImportError:  # pragma: no cover - depends on the environment (QGIS's Python)
    pass

WINDOW_SIZE = 32768
_FLUSH_MARKER = b"\x00\x00\xff\xff"
_GZIDX = struct.Struct("<5sBBQQIII")  # id, version, flags, sizes, spacing, window, npoints
_GZIDX_POINT = struct.Struct("<QQBB")  # compressed, uncompressed, bits, has data
_CHECK = 4096  # output bytes compared when checking a flush candidate
_OUT_CHUNK = 4 << 20  # at most this much inflated output at a time (bounds memory on zeros)


@dataclass
class WindowPoint:
    """A restorable place in a gzip stream.

    Attributes
    ----------
    compressed : int
        Offset of the first whole byte of the block in the file.
    uncompressed : int
        Offset of the block's first output byte in the uncompressed stream.
    bits : int
        When not 0, the block starts this many bits before ``compressed``, in the byte
        ``compressed - 1`` (zran's convention).
    window : bytes or None
        The 32 KiB of output before the point (zero-padded at the start of the stream), or
        None when the block needs none (the first block of a gzip member).
    has_window : bool
        The point needs a window (held in ``window`` or fetched by ``load``).
    header : bool
        The point is a gzip member's header rather than a deflate block.
    load : callable, optional
        Called once to fetch ``window`` when it is None and ``has_window`` is True.
    """

    compressed: int
    uncompressed: int
    bits: int = 0
    window: bytes | None = None
    has_window: bool = False
    header: bool = False
    load: Callable[[], bytes] | None = field(default=None, repr=False)

    def get_window(self) -> bytes | None:
        """Return the window, fetching it on first use."""
        if self.window is None and self.has_window and self.load is not None:
            self.window = self.load()
        return self.window


class RestoredStream:
    """Raw deflate from a :class:`WindowPoint`, fed bit-shifted when the point needs it.

    :meth:`read` returns the next compressed bytes ready for the inflater, and :meth:`member_end`
    says where the gzip member that the inflater finished ends in the file.
    """

    def __init__(self, f: IO[bytes], point: WindowPoint, chunk: int) -> None:
        self._f = f
        self._chunk = chunk
        self.shift = (8 - point.bits) % 8
        self.start = point.compressed - (1 if point.bits else 0)
        self._pos = self.start  # next file byte to read
        self.fed = 0  # (shifted) bytes handed out so far
        window = point.get_window()
        self.raw = not point.header
        self.inflater = (
            _inflate.decompressobj(31)
            if point.header
            else _inflate.decompressobj(-zlib.MAX_WBITS, zdict=window)
            if window is not None
            else _inflate.decompressobj(-zlib.MAX_WBITS)
        )

    def read(self) -> bytes:
        """Return the next piece of input for the inflater; ``b""`` at the end of the file."""
        self._f.seek(self._pos)
        if not self.shift:
            data = self._f.read(self._chunk)
            self._pos += len(data)
            self.fed += len(data)
            return data
        data = self._f.read(self._chunk + 1)  # one byte more: the high bits of the last one
        if len(data) < 2:
            return b""
        self._pos += len(data) - 1
        self.fed += len(data) - 1
        return shift_down(data, self.shift)

    def member_end(self, unused: int) -> int:
        """Return the file offset of the trailer of the member the raw inflater just ended.

        ``unused`` is the number of handed-out bytes the inflater did not consume.
        """
        consumed = self.fed - unused
        if not self.shift:
            return self.start + consumed
        # The last consumed shifted byte holds the end of the final block; the trailer starts
        # at the next whole file byte, which is one of these two.
        for trailer in (self.start + consumed, self.start + consumed + 1):
            self._f.seek(trailer + 8)
            after = self._f.read(2)
            if not after or after == b"\x1f\x8b":
                return trailer
        raise zlib.error("no gzip trailer after the end of the deflate stream")


def shift_down(data: bytes, shift: int) -> bytes:
    """Return ``data`` read as a bit stream from bit ``shift`` (1-7): ``len(data) - 1`` bytes.

    Deflate is read least significant bit first, so this is ``int.from_bytes(data, "little")
    >> shift``; numpy does it eight bytes at a time (about 2 GB/s, ten times the integer).
    """
    words = (len(data) - 8) // 8 if len(data) >= 16 else 0
    head = b""
    if words:
        w = np.frombuffer(data, "<u8", count=words + 1)
        out = w[:-1] >> np.uint64(shift)
        out |= w[1:] << np.uint64(64 - shift)
        head = out.tobytes()
    tail = np.frombuffer(data, np.uint8)[words * 8 :]
    rest = tail[1:] << (8 - shift)
    rest |= tail[:-1] >> shift
    return head + rest.tobytes()


def points_from_gzidx(data: bytes) -> list[WindowPoint]:
    """Return the seek points of an index exported by ``indexed_gzip`` (``GZIDX`` version 1).

    Raises
    ------
    ValueError
        The bytes are not a version 1 ``GZIDX`` index.
    """
    magic, version, _, _, _, _, window_size, count = _GZIDX.unpack_from(data)
    if magic != b"GZIDX" or version != 1:
        raise ValueError(f"not a version 1 GZIDX index (id {magic!r}, version {version})")
    points, windows = [], _GZIDX.size + count * _GZIDX_POINT.size
    for n in range(count):
        compressed, uncompressed, bits, has = _GZIDX_POINT.unpack_from(
            data, _GZIDX.size + n * _GZIDX_POINT.size
        )
        window = None
        if has:
            window = data[windows + window_size - WINDOW_SIZE : windows + window_size]
            windows += window_size
        points.append(WindowPoint(compressed, uncompressed, bits, window, window is not None))
    return points


def find_flush_points(
    f: IO[bytes],
    spacing: int,
    sink: Callable[[bytes], None] | None = None,
    chunk: int = 1 << 20,
) -> list[WindowPoint]:
    """Inflate a gzip shard once and return its flush points at least ``spacing`` bytes apart.

    ``sink``, when given, receives the whole uncompressed stream piece by piece.

    The first point is the start of the file. A candidate is an offset just past ``00 00 ff
    ff`` in the compressed bytes; the stream is fed up to it exactly, so the output so far is
    the point's uncompressed offset and its last 32 KiB the window; the candidate is kept only
    if restoring it reproduces the next output of the real stream.

    Raises
    ------
    zlib.error, EOFError
        The gzip stream is corrupt or truncated.
    """
    points = [WindowPoint(0, 0, header=True)]
    inflater = zlib.decompressobj(31)
    tail = bytearray(WINDOW_SIZE)  # the last 32 KiB of output
    produced, cpos, pending = 0, 0, None  # pending: a candidate waiting for its check
    check = bytearray()
    data = f.read(chunk)
    while data and not inflater.eof:
        cuts, start = [], 0
        while (hit := data.find(_FLUSH_MARKER, start)) >= 0:
            cuts.append(hit + len(_FLUSH_MARKER))
            start = hit + 1
        cuts.append(len(data))
        begin = 0
        for cut in cuts:
            piece, begin = data[begin:cut], cut
            while piece:
                out = inflater.decompress(piece, _OUT_CHUNK)
                piece = inflater.unconsumed_tail
                if sink is not None:
                    sink(out)
                produced += len(out)
                tail = (tail + out)[-WINDOW_SIZE:]
                if pending is not None:
                    check += out[: _CHECK - len(check)]
                    if len(check) >= _CHECK or inflater.eof:
                        if _restores(pending, check, f):
                            points.append(pending)
                        pending = None
                if inflater.eof:
                    break
            if inflater.eof:
                break
            if (
                pending is None
                and cut < len(data)
                and produced - points[-1].uncompressed >= spacing
            ):
                window = bytes(tail)
                pending, check = WindowPoint(cpos + cut, produced, 0, window, True), bytearray()
        cpos += len(data)
        data = f.read(chunk)
    if not inflater.eof:
        raise EOFError("compressed file ended before the end-of-stream marker")
    return points


def _restores(point: WindowPoint, expected: bytes | bytearray, f: IO[bytes]) -> bool:
    here = f.tell()
    try:
        f.seek(point.compressed)
        inflater = zlib.decompressobj(-zlib.MAX_WBITS, zdict=point.window or b"")
        return inflater.decompress(f.read(len(expected) + 1024), len(expected)) == expected
    except zlib.error:
        return False
    finally:
        f.seek(here)
