"""The persisted record index of an export: one sidecar file beside its shards.

``PREFIX-index.tfrindex`` holds, for every shard, where each record starts and how long it is,
and for gzip shards the seek points (:mod:`tfrecord_io.format.seekpoints`) with their windows.
It is a cache: each shard's entry carries the shard's identity (:func:`shard_identity`: size
and modification time on a local disk, size and generation or ETag in an object store) and
the whole sidecar is ignored, with a :class:`~tfrecord_io.errors.StaleIndexWarning`, when any
identity differs or the file cannot be parsed. Records read through it are still CRC-checked,
and their header is checked against the indexed length, so a wrong sidecar gives an error,
never wrong data.

Layout (all integers little-endian), laid out so that a reader needs only small ranged reads:

- 16 bytes: the magic ``TFRIDX`` followed by CR LF, the format version (uint32,
  :data:`VERSION`), and the length of the header (uint32);
- the header: UTF-8 JSON ``{"version", "writer", "shards": [...]}``; each shard has ``name``
  (relative to the sidecar's folder), ``identity``, ``compressed``, ``records``, ``spacing``
  and ``sections``, which gives ``[offset, size]`` (counted from the end of the header) of its
  ``offsets`` and ``lengths`` (int64 arrays, one entry per record), its ``points`` table and
  its ``windows``;
- a point table entry is ``<QQBBxxQI``: compressed offset, uncompressed offset, bits, flags
  (1: has a window, 2: at a gzip header), and the offset and size of its window within the
  shard's ``windows`` section, where each window is stored zlib-compressed (32 KiB inflated);
  a window is read only when its point is used.

Written to a temporary file in the same folder and renamed into place (in an object store:
written locally, then put as one object), so a reader sees either the old sidecar or the new
one.
"""

from __future__ import annotations

import json
import os
import struct
import tempfile
import zlib
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import IO, Any

from tfrecord_io.format import storage
from tfrecord_io.format.seekpoints import WINDOW_SIZE, WindowPoint
from tfrecord_io.format.storage import StorageOptions

__all__ = [
    "SIDECAR_SUFFIX",
    "VERSION",
    "IndexedShard",
    "read_sidecar",
    "shard_identity",
    "sidecar_path",
    "write_sidecar",
]

VERSION = 1
SIDECAR_SUFFIX = "-index.tfrindex"
_MAGIC = b"TFRIDX\r\n"
_PREAMBLE = struct.Struct("<8sII")
_POINT = struct.Struct("<QQBBxxQI")
_HAS_WINDOW, _AT_HEADER = 1, 2
_FIRST_READ = 64 << 10  # the preamble and, usually, the whole header in one read


class SidecarError(ValueError):
    """The sidecar cannot be parsed (the caller turns this into a warning)."""


def sidecar_path(folder: str, prefix: str) -> str:
    """Return the sidecar's path (or URL) for the export ``prefix`` in ``folder``."""
    return storage.join(folder, prefix + SIDECAR_SUFFIX)


def shard_identity(path: str, storage_options: StorageOptions = None) -> dict[str, Any]:
    """Return what identifies this version of a shard, as :func:`storage.stat` sees it.

    Locally its size and modification time; in an object store its size and generation (gs),
    ETag (s3) or whatever else changes when the object is replaced. Identities are compared as
    whole dicts.
    """
    return dict(storage.stat(path, storage_options).fields)


@dataclass
class IndexedShard:
    """One shard's saved index: record offsets and lengths, and gzip seek points."""

    name: str
    identity: dict[str, Any]
    compressed: bool
    offsets: array
    lengths: array
    points: list[WindowPoint]
    spacing: int


def write_sidecar(
    path: str, shards: Sequence[IndexedShard], writer: str, storage_options: StorageOptions = None
) -> None:
    """Write the sidecar at ``path`` atomically (temporary file, then rename or one upload)."""
    body = bytearray()
    entries = []
    for shard in shards:
        sections = {}
        for key in ("offsets", "lengths"):
            data = _le(getattr(shard, key)).tobytes()
            sections[key] = [len(body), len(data)]
            body += data
        table = bytearray()
        windows = bytearray()
        for point in shard.points:
            window = point.get_window()
            packed = (
                zlib.compress(window[-WINDOW_SIZE:].rjust(WINDOW_SIZE, b"\0"), 1) if window else b""
            )
            flags = (_HAS_WINDOW if window else 0) | (_AT_HEADER if point.header else 0)
            table += _POINT.pack(
                point.compressed, point.uncompressed, point.bits, flags, len(windows), len(packed)
            )
            windows += packed
        sections["points"] = [len(body), len(table)]
        body += table
        sections["windows"] = [len(body), len(windows)]
        body += windows
        entries.append(
            {
                "name": shard.name,
                "identity": shard.identity,
                "compressed": shard.compressed,
                "records": len(shard.offsets),
                "spacing": shard.spacing,
                "sections": sections,
            }
        )
    header = json.dumps({"version": VERSION, "writer": writer, "shards": entries}).encode()
    remote = storage.is_url(path)
    folder = None if remote else os.path.dirname(os.path.abspath(path))
    fd, temporary = tempfile.mkstemp(prefix=".tfrindex-", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(_PREAMBLE.pack(_MAGIC, VERSION, len(header)))
            f.write(header)
            f.write(body)
        if remote:
            storage.upload(temporary, path, storage_options)
            os.remove(temporary)
            return
        os.chmod(temporary, 0o644)  # mkstemp makes it private; the shards' readers need it
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


def read_sidecar(
    opener: Callable[[], IO[bytes]], window_opener: Callable[[], IO[bytes]] | None = None
) -> list[IndexedShard]:
    """Read a sidecar: the header and each shard's tables; windows are fetched when used.

    Parameters
    ----------
    opener : callable
        Returns the sidecar opened for binary reading (local or remote: only ``seek`` and
        ``read`` are used, a few reads in all, in file order).
    window_opener : callable, optional
        Opens it again to fetch one saved window (one small read; remotely, best without
        read-ahead); ``opener`` by default.

    Raises
    ------
    SidecarError
        Not a sidecar, another version, or inconsistent.
    """
    with opener() as f:
        first = f.read(_FIRST_READ)
        if len(first) < _PREAMBLE.size:
            raise SidecarError("the file is too short to be an index sidecar")
        magic, version, size = _PREAMBLE.unpack_from(first)
        if magic != _MAGIC:
            raise SidecarError("the file is not an index sidecar")
        if version != VERSION:
            raise SidecarError(f"the sidecar has format version {version}, not {VERSION}")
        head = first[_PREAMBLE.size : _PREAMBLE.size + size]
        if len(head) < size:
            f.seek(_PREAMBLE.size)
            head = f.read(size)
        try:
            header = json.loads(head)
            start = _PREAMBLE.size + size
            again = window_opener or opener
            return [_read_shard(f, entry, start, again) for entry in header["shards"]]
        except (ValueError, KeyError, TypeError, struct.error) as exc:
            raise SidecarError(f"the sidecar is inconsistent ({exc})") from exc


def _read_shard(
    f: IO[bytes], entry: dict[str, Any], start: int, opener: Callable[[], IO[bytes]]
) -> IndexedShard:
    arrays = {}
    for key in ("offsets", "lengths"):
        offset, size = entry["sections"][key]
        values = array("q")
        values.frombytes(_read(f, start + offset, size))
        arrays[key] = _le(values)
        if len(values) != entry["records"]:
            raise SidecarError(f"{entry['name']}: {key} holds {len(values)} of {entry['records']}")
    offset, size = entry["sections"]["points"]
    table = _read(f, start + offset, size)
    windows_at = start + entry["sections"]["windows"][0]
    points = []
    for n in range(size // _POINT.size):
        compressed, uncompressed, bits, flags, at, length = _POINT.unpack_from(
            table, n * _POINT.size
        )
        load = _window_loader(opener, windows_at + at, length) if flags & _HAS_WINDOW else None
        points.append(
            WindowPoint(
                compressed,
                uncompressed,
                bits,
                None,
                bool(flags & _HAS_WINDOW),
                bool(flags & _AT_HEADER),
                load,
            )
        )
    if entry["compressed"] and not points:
        raise SidecarError(f"{entry['name']}: a gzip shard without seek points")
    return IndexedShard(
        entry["name"],
        entry["identity"],
        bool(entry["compressed"]),
        arrays["offsets"],
        arrays["lengths"],
        points,
        int(entry["spacing"]),
    )


def _read(f: IO[bytes], offset: int, size: int) -> bytes:
    f.seek(offset)
    data = f.read(size)
    if len(data) != size:
        raise SidecarError(f"the sidecar ends inside a section ({len(data)} of {size} bytes)")
    return data


def _window_loader(opener: Callable[[], IO[bytes]], offset: int, size: int) -> Callable[[], bytes]:
    def load() -> bytes:
        with opener() as f:
            window = zlib.decompress(_read(f, offset, size))
        if len(window) != WINDOW_SIZE:
            raise zlib.error(f"a saved window holds {len(window)} bytes, not {WINDOW_SIZE}")
        return window

    return load


def _le(values: array) -> array:
    """Return an int64 array in little-endian byte order (a copy on big-endian machines)."""
    if struct.pack("=q", 1)[0] == 1:
        return values
    swapped = array("q", values)
    swapped.byteswap()
    return swapped
