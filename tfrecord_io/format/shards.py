"""The files of a write: shard sinks, and the destination they are committed to.

:class:`Destination` (from :mod:`.destination`, re-exported here) writes into a temporary folder
and commits by renames; after a crash, the next write or ``tfrecord-io doctor FOLDER`` finishes or
undoes the commit (:func:`recover_writes`).

:class:`ShardSink` frames records and starts a new ``PREFIX-NNNNN.tfrecord[.gz]`` shard whenever
the next record would take the current one past ``maxFileSize`` bytes before compression; a
record is never split. Gzip shards are one gzip member whose deflate stream is compressed in
independent chunks on worker threads (as pigz does: each chunk ends on a byte boundary with a
sync flush), so compression, which dominates a write, runs beside the encoding. ``isal`` is used
when installed (several times zlib's speed), zlib otherwise; ``level`` is on zlib's 0-9 scale and
:func:`isal_level` is the one place it is mapped to isal's 0-3.
"""

from __future__ import annotations

import struct
import zlib
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import IO

from tfrecord_io.errors import OptionError
from tfrecord_io.format.destination import Destination, export_file_names, recover_writes
from tfrecord_io.format.records import frame_record

try:  # optional ("fast" extra): deflate several times faster than zlib
    from isal import isal_zlib as _isal
except ImportError:  # pragma: no cover - depends on the environment
    _isal = None  # type: ignore[assignment]

__all__ = [
    "CHUNK_SIZE",
    "Destination",
    "ShardSink",
    "export_file_names",
    "isal_level",
    "recover_writes",
    "shard_name",
]

CHUNK_SIZE = 4 << 20  # uncompressed bytes per independently compressed deflate chunk
_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # deflate, no flags, mtime 0, OS unknown
_TRAILER = struct.Struct("<II")


def shard_name(prefix: str, number: int, compressed: bool) -> str:
    """Return Earth Engine's shard file name, ``PREFIX-00000.tfrecord[.gz]``."""
    return f"{prefix}-{number:05d}.tfrecord{'.gz' if compressed else ''}"


def isal_level(level: int) -> int:
    """Map a zlib compression level (1-9) to isal's (0-3): 1 -> 0, 2-3 -> 1, 4-6 -> 2, 7-9 -> 3."""
    return 0 if level <= 1 else 1 if level <= 3 else 2 if level <= 6 else 3


def _deflate(chunk: bytes, level: int, final: bool) -> bytes:
    """Raw-deflate one chunk; non-final chunks end with a sync flush on a byte boundary."""
    if _isal is not None and level > 0:
        c = _isal.compressobj(isal_level(level), _isal.DEFLATED, -15)
        return c.compress(chunk) + c.flush(_isal.Z_FINISH if final else _isal.Z_SYNC_FLUSH)
    z = zlib.compressobj(level, zlib.DEFLATED, -15)
    return z.compress(chunk) + z.flush(zlib.Z_FINISH if final else zlib.Z_SYNC_FLUSH)


_crc32: Callable[[bytes, int], int] = _isal.crc32 if _isal is not None else zlib.crc32


class ShardSink:
    """Write records into numbered shards, each at most ``max_file_size`` bytes uncompressed.

    Parameters
    ----------
    path_for : callable
        ``path_for(name)`` gives where to create the shard file ``name``.
    prefix : str
        Shard name prefix.
    compressed : bool
        Write gzip shards (``.tfrecord.gz``).
    max_file_size : int
        Uncompressed bytes per shard, framing included.
    level : int
        zlib compression level, 0 to 9.
    workers : int
        Threads compressing chunks (0 compresses on the calling thread).
    """

    def __init__(
        self,
        path_for: Callable[[str], str],
        prefix: str,
        *,
        compressed: bool = True,
        max_file_size: int = 1 << 30,
        level: int = 6,
        workers: int = 2,
    ) -> None:
        if not 0 <= level <= 9:
            raise OptionError(f"compression_level must be 0 to 9 (zlib's scale), not {level}")
        self._path_for = path_for
        self.prefix = prefix
        self.compressed = compressed
        self.max_file_size = max_file_size
        self.level = level
        self.names: list[str] = []
        self.counts: list[int] = []  # records per shard
        self._file: IO[bytes] | None = None
        self._size = 0  # uncompressed bytes in the current shard
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._crc = 0
        self._inflight: deque[Future[bytes]] = deque()
        self._pool = ThreadPoolExecutor(workers) if compressed and workers > 0 else None
        self._max_inflight = 2 * max(workers, 1)

    @property
    def records(self) -> int:
        """Records written so far."""
        return sum(self.counts)

    def write(self, payload: bytes) -> None:
        """Append one record, starting a new shard first if it would not fit in this one.

        Raises
        ------
        OptionError
            The record alone is larger than ``max_file_size``.
        """
        framed = frame_record(payload)
        if len(framed) > self.max_file_size:
            raise OptionError(
                f"a record of {len(framed)} bytes is larger than maxFileSize "
                f"({self.max_file_size}) and a record is never split: raise maxFileSize to at "
                f"least {len(framed)}, or use smaller patchDimensions"
            )
        if self._file is None or self._size + len(framed) > self.max_file_size:
            self._start_shard()
        self._size += len(framed)
        self.counts[-1] += 1
        if not self.compressed:
            assert self._file is not None
            self._file.write(framed)
            return
        self._pending.append(framed)
        self._pending_size += len(framed)
        if self._pending_size >= CHUNK_SIZE:
            self._submit(final=False)

    def _start_shard(self) -> None:
        self._finish_shard()
        name = shard_name(self.prefix, len(self.names), self.compressed)
        self._file = open(self._path_for(name), "wb")  # noqa: SIM115 - closed in _finish_shard
        self.names.append(name)
        self.counts.append(0)
        self._size = 0
        self._crc = 0
        if self.compressed:
            self._file.write(_GZIP_HEADER)

    def _submit(self, final: bool) -> None:
        chunk = b"".join(self._pending)
        self._pending, self._pending_size = [], 0
        self._crc = _crc32(chunk, self._crc)
        if self._pool is None:
            self._write_out(_deflate(chunk, self.level, final))
            return
        self._inflight.append(self._pool.submit(_deflate, chunk, self.level, final))
        while len(self._inflight) >= self._max_inflight:
            self._write_out(self._inflight.popleft().result())

    def _write_out(self, data: bytes) -> None:
        assert self._file is not None
        self._file.write(data)

    def _finish_shard(self) -> None:
        if self._file is None:
            return
        if self.compressed:
            self._submit(final=True)
            while self._inflight:
                self._write_out(self._inflight.popleft().result())
            self._file.write(_TRAILER.pack(self._crc, self._size & 0xFFFFFFFF))
        self._file.close()
        self._file = None

    def close(self) -> list[str]:
        """Finish the last shard (making an empty one if no record was written).

        Returns
        -------
        list of str
            The shard file names, in order.
        """
        if not self.names:
            self._start_shard()
        self._finish_shard()
        if self._pool is not None:
            self._pool.shutdown()
        return list(self.names)

    def abort(self) -> None:
        """Stop writing: close the current file and drop pending work (the caller removes it)."""
        for future in self._inflight:
            future.cancel()
        self._inflight.clear()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        if self._file is not None:
            self._file.close()
            self._file = None
