"""Read a table file's records in runs: many small records per read of the inflated stream.

Table records are small (a few hundred bytes), so :func:`~tfrecord_io.format.records.
iter_records`, which makes three reads per record, spends most of its time per call. Here the
inflated stream is read in large chunks and split in one loop; a header already seen (tables
repeat the same record length) skips its CRC computation, its CRC having matched once. Every
payload CRC is still checked. On any fault the file is read again with ``iter_records`` up to
the faulty record, which raises the error with its full wording (file, record, byte offset).
"""

from __future__ import annotations

import gzip
import queue
import struct
import threading
import zlib
from collections.abc import Generator, Iterator
from typing import NoReturn

import numpy as np

from tfrecord_io.errors import RecordError, location
from tfrecord_io.format.records import (
    HEADER_SIZE,
    RECORD_OVERHEAD,
    iter_inflated,
    iter_records,
    masked_crc32c,
)
from tfrecord_io.format.records import _crc32c as _crc  # google-crc32c, or crcmod in Debian
from tfrecord_io.format.storage import StorageOptions

__all__ = ["Run", "iter_payload_runs"]

Run = list[bytes] | np.ndarray
"""Consecutive payloads: a list of bytes, or a ``(records, length)`` uint8 matrix of records of
one length."""

_HEADER = struct.Struct("<QI")
_U32 = struct.Struct("<I")
_CHUNK = 1 << 20  # inflated bytes per read: bounds the memory held beside a batch
_KNOWN_HEADERS = 4096  # bound of the cache of headers whose CRC matched
_MASK_DELTA = np.uint32(0xA282EAD8)


def _takes_arrays() -> bool:
    """Whether the CRC function reads numpy views (google-crc32c does; crcmod wants bytes)."""
    try:
        _crc(np.zeros(4, np.uint8))  # type: ignore[arg-type]
    except TypeError:
        return False
    return True


_CRC_OF_VIEWS = _takes_arrays()  # then payloads are checksummed in place, not copied first


def _equal_length_run(
    buf: bytes, pos: int, end: int, length: int, verify: bool
) -> tuple[np.ndarray, int]:
    """Split the records of one length that start at ``pos`` as one matrix, checked in bulk.

    Returns the ``(k, length)`` payload matrix and, when a payload CRC fails, the index of the
    first bad one in it (``-1`` otherwise).
    """
    stride = length + RECORD_OVERHEAD
    count = (end - pos) // stride
    frames = np.frombuffer(buf, np.uint8, count=count * stride, offset=pos).reshape(count, stride)
    same = (frames[:, :HEADER_SIZE] == frames[0, :HEADER_SIZE]).all(axis=1)
    k = count if bool(same.all()) else int(np.argmin(same))
    frames = frames[:k]
    bad = -1
    if verify and k:
        starts = range(pos + HEADER_SIZE, pos + HEADER_SIZE + k * stride, stride)
        source = np.frombuffer(buf, np.uint8) if _CRC_OF_VIEWS else buf
        crcs = np.fromiter((_crc(source[s : s + length]) for s in starts), np.uint32, k)
        masked = ((crcs >> np.uint32(15)) | (crcs << np.uint32(17))) + _MASK_DELTA
        footers = np.ascontiguousarray(frames[:, stride - 4 :]).view("<u4").reshape(k)
        wrong = np.flatnonzero(masked != footers)
        bad = int(wrong[0]) if wrong.size else -1
    return frames[:, HEADER_SIZE : HEADER_SIZE + length], bad


def _raise_at(path: str, record: int, verify: bool, options: StorageOptions = None) -> NoReturn:
    """Read ``path`` record by record up to ``record``, letting ``iter_records`` raise."""
    for index, _ in enumerate(iter_records(path, verify=verify, storage_options=options)):
        if index > record:
            break
    raise RecordError(
        f"{location(path, record)}: the record could not be read. The file is corrupt: "
        "download it again.",
        path=path,
        record=record,
    )


def _inflated_chunks(
    path: str, depth: int = 3, options: StorageOptions = None
) -> Generator[bytes, None, None]:
    """Yield the inflated stream in pieces, inflating on a thread one to ``depth`` pieces ahead.

    zlib and isal release the GIL while they inflate, so inflating overlaps the framing and
    decoding done on the calling thread. The last piece is ``b""``. Read errors are raised here.
    """
    chunks: queue.Queue[bytes | BaseException] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: bytes | BaseException) -> None:
        while not stop.is_set():
            try:
                chunks.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def produce() -> None:
        try:
            for data in iter_inflated(path, options):
                put(data)
                if not data or stop.is_set():
                    return
        except BaseException as exc:  # handed to the consumer, which raises it
            put(exc)

    thread = threading.Thread(target=produce, name="tfrecord-io-inflate", daemon=True)
    thread.start()
    try:
        while True:
            item = chunks.get()
            if isinstance(item, BaseException):
                raise item
            yield item
            if not item:
                return
    finally:
        stop.set()
        thread.join()


class _Framer:
    """Split the pieces of one file's inflated stream into runs of payloads, checking them.

    A record cut by the end of a piece is completed from the next piece: only its own bytes are
    joined, never the rest of the piece.
    """

    def __init__(self, path: str, verify: bool, options: StorageOptions) -> None:
        self.path = path
        self.verify = verify
        self.options = options
        self.record = 0  # records yielded so far
        self._known: dict[bytes, int] = {}  # headers whose CRC matched -> length
        self._rest: list[bytes] = []  # the start of a record cut by the end of a piece
        self._rest_size = 0

    def fail(self, offset: int = 0) -> NoReturn:
        """Raise the error of record ``self.record + offset``, worded by ``iter_records``."""
        _raise_at(self.path, self.record + offset, self.verify, self.options)

    def _length(self, header: bytes) -> int:
        """Return the payload length a header announces, checking its CRC when first seen."""
        length = self._known.get(header)
        if length is None:
            length, length_crc = _HEADER.unpack(header)
            if masked_crc32c(header[:8]) != length_crc:
                self.fail()
            if len(self._known) >= _KNOWN_HEADERS:
                self._known.clear()
            self._known[header] = length
        return length

    def feed(self, data: bytes) -> Iterator[Run]:
        """Yield the runs of payloads that ``data``, the next piece (``b""``: the end), ends."""
        pos = 0
        if self._rest:
            if not data:
                self.fail()  # the stream ends inside a record
            if self._rest_size < HEADER_SIZE:  # the header itself was cut: frame from it again
                data = b"".join(self._rest) + data
            else:
                first = self._rest[0]
                head = first if len(first) >= HEADER_SIZE else b"".join(self._rest)
                need = self._length(head[:HEADER_SIZE]) + RECORD_OVERHEAD - self._rest_size
                if need > len(data):
                    self._rest.append(data)
                    self._rest_size += len(data)
                    return
                yield from self._frame(b"".join(self._rest) + data[:need])
                pos = need
            self._rest, self._rest_size = [], 0
        pos = yield from self._frame(data, pos)
        if pos < len(data):
            self._rest, self._rest_size = [data[pos:]], len(data) - pos

    def _frame(self, buf: bytes, pos: int = 0) -> Generator[Run, None, int]:
        """Yield the runs of whole records in ``buf`` from ``pos``; return where they end."""
        end_of_buf = len(buf)
        out: list[bytes] = []
        while end_of_buf - pos >= HEADER_SIZE:
            header = buf[pos : pos + HEADER_SIZE]
            length = self._known.get(header)
            if length is not None and end_of_buf - pos >= 2 * (length + RECORD_OVERHEAD):
                matrix, bad = _equal_length_run(buf, pos, end_of_buf, length, self.verify)
                if bad >= 0:
                    self.fail(bad)
                if out:
                    yield out
                    out = []
                yield matrix
                pos += len(matrix) * (length + RECORD_OVERHEAD)
                self.record += len(matrix)
                continue
            if length is None:
                length = self._length(header)
            end = pos + length + RECORD_OVERHEAD
            if end > end_of_buf:
                break
            payload = buf[pos + HEADER_SIZE : end - 4]
            if self.verify and masked_crc32c(payload) != _U32.unpack_from(buf, end - 4)[0]:
                self.fail()
            out.append(payload)
            pos = end
            self.record += 1
        if out:
            yield out
        return pos


def iter_payload_runs(
    path: str, verify: bool = True, storage_options: StorageOptions = None
) -> Iterator[Run]:
    """Yield the payloads of a file's records, in order, as lists (one per chunk read).

    Parameters
    ----------
    path : str
        A raw or gzip TFRecord file.
    verify : bool
        Check every payload's CRC-32C (length fields are always checked).
    storage_options : dict or Store, optional
        fsspec options when ``path`` is a URL.

    Yields
    ------
    list of bytes or numpy.ndarray
        The next records' payloads; records of one length that follow one another come as one
        ``(records, length)`` uint8 matrix (a view of the inflated piece).

    Raises
    ------
    ChecksumError, TruncatedRecordError, RecordError
        As :func:`~tfrecord_io.format.records.iter_records` raises them.
    """
    framer = _Framer(path, verify, storage_options)
    chunks = _inflated_chunks(path, options=storage_options)
    try:
        while True:
            try:
                data = next(chunks)
            except (EOFError, OSError, zlib.error, gzip.BadGzipFile):
                framer.fail()
            yield from framer.feed(data)
            if not data:
                return
    finally:
        chunks.close()
