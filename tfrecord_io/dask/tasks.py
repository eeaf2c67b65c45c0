"""What a distributed export runs on the workers: sizing records, writing one shard.

Both functions take the source as something that pickles (a :class:`RasterPath`, which each
worker opens itself, or a row source that pickles, such as
:class:`~tfrecord_io.xarray.source.XarrayRows`) and read only the source rows of the patch rows
they encode, margins included, one patch row at a time: a worker's memory is bounded by a strip
of rows and the shard writer's chunks, whatever the raster's size. Dask-backed sources are
computed on the worker's own thread (dask's synchronous scheduler), not sent back to the
cluster.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import dask
import numpy as np
import rasterio

from tfrecord_io.dask.shardplan import ShardTask
from tfrecord_io.errors import OptionError, RecordCountError
from tfrecord_io.format.records import framed_size
from tfrecord_io.format.shards import ShardSink
from tfrecord_io.image.encode import ExportPlan, RowSource, iter_payloads
from tfrecord_io.image.export import RasterioRows

__all__ = ["RasterPath", "open_rows", "size_records", "write_shard"]


@dataclass(frozen=True)
class RasterPath:
    """A raster that each worker opens with rasterio, by its path.

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
    source: RasterPath | RowSource, plan: ExportPlan, patches: range
) -> tuple[np.ndarray, np.ndarray]:
    """Encode ``patches`` and return their record counts and framed record sizes.

    Returns
    -------
    counts : numpy.ndarray
        Records of each patch of ``patches`` (0 for a patch dropped by ``maskedThreshold``).
    sizes : numpy.ndarray
        Framed size of each record, in export order.
    """
    counts = np.zeros(len(patches), dtype=np.int64)
    sizes: list[int] = []
    with open_rows(source) as rows:
        for index, payloads in iter_payloads(plan, rows, patches=patches):
            counts[index - patches.start] = len(payloads)
            sizes.extend(framed_size(len(payload)) for payload in payloads)
    return counts, np.asarray(sizes, dtype=np.int64)


def write_shard(
    source: RasterPath | RowSource,
    plan: ExportPlan,
    task: ShardTask,
    path: str,
    *,
    level: int = 6,
    threads: int = 2,
) -> str:
    """Encode the records of one shard and write it into ``folder``, as the serial writer would.

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
    level : int
        zlib compression level of a gzip shard.
    threads : int
        Threads compressing beside the encoding (``workers`` of the serial writer).

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
        _write_records(sink, source, plan, task, folder)
        names = sink.close()
        if len(names) != 1 or sink.records != len(task.records):
            raise RecordCountError(
                f"'{path}': the source gave {sink.records} records in {len(names)} shard(s) "
                f"where the shard plan counted {len(task.records)} in one. The source's values "
                "must not change during an export: export it again from a stable source."
            )
    except BaseException:
        sink.abort()
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)
        raise
    return path


def _write_records(
    sink: ShardSink, source: Any, plan: ExportPlan, task: ShardTask, folder: str
) -> None:
    record = task.first_record
    with open_rows(source) as rows:
        for _, payloads in iter_payloads(plan, rows, patches=task.patches):
            if not os.path.isdir(folder):  # the client aborted the export: stop early
                raise FileNotFoundError(f"the export's temporary folder '{folder}' is gone")
            for payload in payloads:
                if record in task.records:
                    sink.write(payload)
                record += 1
