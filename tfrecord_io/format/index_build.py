"""Index a whole shard with seek points that can be saved: the builders of the sidecar.

The points are found by the fastest inflater installed that reports deflate block
boundaries: ``rapidgzip`` (one pass gives both the index and the framing, at isal's speed),
then ``indexed_gzip`` (its full index, then a framing pass), and without either (QGIS's
Python) the byte-aligned flush points that
:func:`~tfrecord_io.format.seekpoints.find_flush_points` finds. Both libraries export an
``indexed_gzip``-format index, parsed by
:func:`~tfrecord_io.format.seekpoints.points_from_gzidx`; restoring is the same everywhere.
"""

from __future__ import annotations

import importlib
import io
import os
import zlib
from typing import Any

from tfrecord_io.format.index import SAVED_SPACING, ShardIndex
from tfrecord_io.format.inflate import OUT_CHUNK, READ_CHUNK, Framing
from tfrecord_io.format.records import _stream_error, open_stream
from tfrecord_io.format.seekpoints import WindowPoint, find_flush_points, points_from_gzidx

__all__ = ["index_shard_for_saving"]

# Optional ("fast" extra): inflaters that find deflate block boundaries for saved seek
# points. rapidgzip is preferred: one pass gives both the index and the framing, at isal's
# speed; indexed_gzip needs a second pass for the framing. Imported when an index is first
# built, not with the package (rapidgzip alone takes longer to import than numpy).
_UNLOADED: Any = object()
_rapidgzip: Any = _UNLOADED
_indexed_gzip: Any = _UNLOADED


def _optional(name: str) -> Any:
    """Return the optional module ``name`` (``rapidgzip``, ``indexed_gzip``), or None."""
    module = globals()[f"_{name}"]
    if module is _UNLOADED:
        try:
            module = importlib.import_module(name)
        except ImportError:  # depends on the environment (QGIS's Python has neither)
            module = None
        globals()[f"_{name}"] = module
    return module


def index_shard_for_saving(
    path: str | os.PathLike[str], *, first_index: int = 0, spacing: int = SAVED_SPACING
) -> ShardIndex:
    """Scan a whole shard once, keeping seek points that can be saved to a sidecar.

    With ``rapidgzip`` or ``indexed_gzip`` installed, a seek point is kept about every
    ``spacing`` uncompressed bytes of any gzip shard (rapidgzip places them at the ends of its
    chunks). Without either, only the byte-aligned flush points are found
    (:func:`~tfrecord_io.format.seekpoints.find_flush_points`): our own writer's shards have
    one every 4 MiB; a shard without flushes gets the start of the file only.

    Raises
    ------
    ChecksumError, TruncatedRecordError, RecordError
        The framing or the gzip stream is broken.
    """
    index = ShardIndex.for_shard(path, first_index, spacing)
    if not index.compressed:
        index.scan()
        return index
    framing = Framing(index)
    errors: tuple[type[Exception], ...] = (EOFError, zlib.error, OSError)  # isal: OSError
    rapidgzip, indexed_gzip = _optional("rapidgzip"), _optional("indexed_gzip")
    try:
        if rapidgzip is not None:
            errors += (RuntimeError, ValueError)
            points = _rapidgzip_points(rapidgzip, index.path, spacing, framing)
        elif indexed_gzip is not None:
            errors += (indexed_gzip.ZranError,)
            points = _indexed_gzip_points(indexed_gzip, index.path, spacing, framing)
        else:
            with open(index.path, "rb") as f:
                points = find_flush_points(f, spacing, framing.feed)
    except errors as exc:
        raise _stream_error(exc, index.path, first_index + len(index), framing.offset) from exc
    framing.finish()
    index._points = list(points)
    index.complete = True
    return index


def _rapidgzip_points(
    rapidgzip: Any, path: str, spacing: int, framing: Framing
) -> list[WindowPoint]:
    # Its index has a point per chunk, about chunk_size uncompressed bytes apart. One thread:
    # on this project's two shared cores a second one made the scan slower, not faster.
    with rapidgzip.RapidgzipFile(path, parallelization=1, chunk_size=spacing) as f:
        while piece := f.read(OUT_CHUNK):
            framing.feed(piece)
        exported = io.BytesIO()
        f.export_index(exported, rapidgzip.IndexFormat.INDEXED_GZIP)
    return points_from_gzidx(exported.getvalue())


def _indexed_gzip_points(
    indexed_gzip: Any, path: str, spacing: int, framing: Framing
) -> list[WindowPoint]:
    # indexed_gzip keeps points only when asked to build its index (reading through it keeps
    # none for a small file), so the framing is read in a second pass, with isal when present.
    with indexed_gzip.IndexedGzipFile(path, spacing=spacing, readbuf_size=READ_CHUNK) as f:
        f.build_full_index()
        exported = io.BytesIO()
        f.export_index(fileobj=exported)
    with open_stream(path) as stream:
        while piece := stream.read(OUT_CHUNK):
            framing.feed(piece)
    return points_from_gzidx(exported.getvalue())
