"""What a distributed export runs on the workers: sizing records, writing one shard.

:func:`size_records` and :func:`write_shard` take the source as something that pickles (a
:class:`RasterPath`, which each worker opens itself, or a row source that pickles, such as
:class:`~tfrecord_io.xarray.source.XarrayRows`) and read only the source rows of the patch rows
they encode, margins included, one patch row at a time; :func:`copy_shard` reads the payloads
:func:`size_records` left on disk one at a time. A worker's memory is bounded by a strip of rows
and the shard writer's chunks, whatever the raster's size. Dask-backed sources are
computed on the worker's own thread (dask's synchronous scheduler), not sent back to the
cluster.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypedDict, Unpack

import dask
import numpy as np
import rasterio

from tfrecord_io.dask.shardplan import ShardTask
from tfrecord_io.errors import OptionError, RecordCountError
from tfrecord_io.format.shards import ShardSink
from tfrecord_io.image.encode import ExportPlan, RowSource, iter_payloads
from tfrecord_io.image.export import RasterioRows

__all__ = ["RasterPath", "ShardWriting", "copy_shard", "open_rows", "size_records", "write_shard"]


@dataclass(frozen=True)
class RasterPath:
    """A raster that each worker opens with rasterio, by its path.

    It is what the cluster is sent in place of an open dataset, which does not pickle.

    Attributes
    ----------
    path : str
        Any path or URL rasterio opens; the workers must reach it.
    nodata : float, optional
        Mask pixels equal to it, instead of the raster's own masks.
    """

    path: str
    nodata: float | None = None


@contextlib.contextmanager
def open_rows(source: RasterPath | RowSource) -> Iterator[RowSource]:
    """Yield the row source of ``source``, opening a :class:`RasterPath` for the time of use."""
    with dask.config.set(scheduler="sync"):
        if isinstance(source, RasterPath):
            with rasterio.open(source.path) as dataset:
                yield RasterioRows(dataset, source.nodata)
        else:
            yield source


def size_records(
    source: RasterPath | RowSource, plan: ExportPlan, patches: range, piece: str
) -> tuple[np.ndarray, int]:
    """Encode ``patches`` into the file ``piece``, payloads back to back; return their sizes.

    Returns
    -------
    sizes : numpy.ndarray
        Payload size of each record, in export order.
    kept : int
        Patches kept (the others had too many masked pixels).
    """
    sizes: list[int] = []
    kept = 0
    with open_rows(source) as rows, open(piece, "wb") as f:
        for _, payloads in iter_payloads(plan, rows, patches=patches):
            kept += 1
            for payload in payloads:
                f.write(payload)
                sizes.append(len(payload))
    return np.asarray(sizes, dtype=np.int64), kept


class ShardWriting(TypedDict, total=False):
    """How a shard task writes its shard: the keywords of :func:`write_shard`, :func:`copy_shard`.

    Attributes
    ----------
    level : int
        zlib compression level of a gzip shard (default 6).
    threads : int
        Threads compressing beside the encoding (``workers`` of the serial writer; default 2).
    """

    level: int
    threads: int


def write_shard(
    source: RasterPath | RowSource,
    plan: ExportPlan,
    task: ShardTask,
    path: str,
    **writing: Unpack[ShardWriting],
) -> str:
    """Encode the records of one shard and write it at ``path``, as the serial writer would.

    Parameters
    ----------
    source : RasterPath or RowSource
        The raster.
    plan : ExportPlan
        The export's plan.
    task : ShardTask
        Which shard, from which patches.
    path : str
        The shard file to write, in the destination's temporary folder.
    **writing
        ``level`` and ``threads`` (:class:`ShardWriting`).

    Returns
    -------
    str
        ``path``.

    Raises
    ------
    OptionError
        The destination's temporary folder is not on this worker's filesystem.
    RecordCountError
        The source gave other records than the shard plan counted (its values changed).
    """

    def fill(sink: ShardSink) -> None:
        record = task.first_record
        with open_rows(source) as rows:
            for _, payloads in iter_payloads(plan, rows, patches=task.patches):
                _check_alive(path)
                for payload in payloads:
                    if record in task.records:
                        sink.write(payload)
                    record += 1

    return _one_shard(path, plan, len(task.records), fill, **writing)


def copy_shard(
    pieces: list[str],
    spans: list[tuple[int, int, np.ndarray]],
    plan: ExportPlan,
    path: str,
    **writing: Unpack[ShardWriting],
) -> str:
    """Write one shard at ``path`` from record payloads the sizing pass left in ``pieces``.

    Parameters
    ----------
    pieces : list of str
        The piece files of :func:`size_records`.
    spans : list of (int, int, numpy.ndarray)
        ``(piece, byte offset, payload sizes)`` of the shard's records
        (:func:`~tfrecord_io.dask.shardplan.piece_spans`).
    plan : ExportPlan
        The export's plan.
    path : str
        The shard file to write.
    **writing
        ``level`` and ``threads`` (:class:`ShardWriting`).

    Returns
    -------
    str
        ``path``.
    """

    def fill(sink: ShardSink) -> None:
        for piece, offset, sizes in spans:
            _check_alive(path)
            with open(pieces[piece], "rb") as f:
                f.seek(offset)
                for size in sizes.tolist():
                    payload = f.read(size)
                    if len(payload) != size:
                        break  # counted below
                    sink.write(payload)

    return _one_shard(path, plan, sum(len(s) for _, _, s in spans), fill, **writing)


def _one_shard(
    path: str,
    plan: ExportPlan,
    expected: int,
    fill: Callable[[ShardSink], None],
    level: int = 6,
    threads: int = 2,
) -> str:
    """Make a shard sink for ``path``, let ``fill`` write into it, check the count, close."""
    options = plan.options
    folder = os.path.dirname(path)
    if not os.path.isdir(folder):
        raise OptionError(
            f"a dask worker cannot reach the export's temporary folder '{folder}': a distributed "
            "export is written by the workers, so its destination must be on a filesystem they "
            "share with the client (a local folder for a LocalCluster, a shared mount otherwise)"
        )
    # One shard, the sink's first: it holds exactly the records it would hold in a serial
    # write, so its chunks, gzip member and trailer are the same bytes.
    sink = ShardSink(
        lambda _: path,
        "shard",
        compressed=options.compressed,
        max_file_size=options.max_file_size,
        level=level,
        workers=threads,
    )
    try:
        fill(sink)
        names = sink.close()
        if len(names) != 1 or sink.records != expected:
            raise RecordCountError(
                f"'{path}': {sink.records} records were written in {len(names)} shard(s) where "
                f"the shard plan counted {expected} in one. The source's values must not change "
                "during an export: export it again from a stable source."
            )
    except BaseException:
        sink.abort()
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)
        raise
    return path


def _check_alive(path: str) -> None:
    """Stop a shard whose export was aborted by the client (its temporary folder is gone)."""
    folder = os.path.dirname(path)
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"the export's temporary folder '{folder}' is gone")
