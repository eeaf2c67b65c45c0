"""Write an export's shards on a dask.distributed cluster and commit them from the client.

:func:`write_distributed` takes the place of :func:`~tfrecord_io.image.write.write_export`
when :func:`tfrecord_io.export` is given a ``client``. It plans the shard boundaries first
(:mod:`.shardplan`): by arithmetic when every record has one size, otherwise from the record
sizes a first pass measures on the workers, in parallel. Each worker then encodes and writes
whole shards (:func:`~tfrecord_io.dask.tasks.write_shard`) into the destination's temporary
folder, and the client commits them with the mixer, last, as the serial writer does: the result
is byte for byte the serial export. A failure anywhere cancels the export's tasks and removes
the temporary folder, so nothing is left in the destination.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from typing import Any

import distributed
import numpy as np

from tfrecord_io.dask.shardplan import fixed_shards, patch_chunks, piece_spans, sized_shards
from tfrecord_io.dask.tasks import copy_shard, size_records, write_shard
from tfrecord_io.format.records import framed_size
from tfrecord_io.format.shards import Destination, shard_name
from tfrecord_io.image.encode import ExportPlan, record_size
from tfrecord_io.image.write import export_mixer, warn_dropped

__all__ = ["write_distributed"]

# warn_dropped, write_distributed, close_from, export_rows, tfrecord_io.export: then the caller.
_STACKLEVEL = 6
_SIZING_TASKS_PER_THREAD = 4


def write_distributed(
    plan: ExportPlan,
    source: Any,
    destination: Destination,
    *,
    client: distributed.Client,
    crs: Any,
    level: int,
    workers: int,
    progress: Callable[[int, int], None] | None,
    name: str | None,
) -> list[str]:
    """Encode and write an export's shards on the workers of ``client``, then commit them.

    Called where :func:`~tfrecord_io.image.write.write_export` would be (by
    :meth:`~tfrecord_io.image.writer.EETFRecordWriter.close_from`, which passes every keyword),
    with the same keywords (``crs``, ``level``, ``workers`` per task, ``progress`` called as
    shards are written, ``name``) and the client added. The files are those ``write_export``
    writes.

    Parameters
    ----------
    plan : ExportPlan
        Features, patch grid and format options.
    source : RasterPath or picklable RowSource
        The raster, as the workers read it; sent to the cluster once.
    destination : Destination
        Where the files go; the workers write into its temporary folder, which they must
        reach (the same filesystem as the client).
    client : distributed.Client
        The cluster.
    """
    futures: list[distributed.Future] = []
    options = plan.options
    pieces: list[str] = []
    try:
        shared = client.scatter(source, hash=False)  # its own key: a cancel touches no other export
        futures.append(shared)
        size = record_size(plan)
        if size is not None and options.masked_threshold >= 1:
            # One record size: boundaries by arithmetic, shards encoded from the source rows.
            tasks = fixed_shards(
                plan.grid.total_patches,
                plan.records_per_patch,
                framed_size(size),
                options.max_file_size,
            )
            kept = plan.grid.total_patches
            counts = [len(task.records) for task in tasks]
            jobs: list[tuple[Any, ...]] = [(write_shard, shared, plan, task) for task in tasks]
        else:
            # Sizes vary: the sizing pass leaves the payloads in pieces, shards are copied out.
            pieces, piece_sizes, kept = _size_records(client, plan, shared, destination, futures)
            sizes = np.concatenate(piece_sizes)
            shards = sized_shards(sizes + framed_size(0), options.max_file_size)
            starts = np.concatenate([[0], np.cumsum([len(s) for s in piece_sizes])])
            counts = [len(records) for records in shards]
            jobs = [
                (copy_shard, pieces, piece_spans(records, starts, sizes), plan)
                for records in shards
            ]
        names = [shard_name(destination.prefix, n, options.compressed) for n in range(len(jobs))]
        writes = [
            client.submit(
                *job, destination.temp_path(shard), level=level, threads=workers, pure=False
            )
            for job, shard in zip(jobs, names, strict=True)
        ]
        futures.extend(writes)
        _wait(writes, counts, plan.grid.total_patches, progress)
        for piece in pieces:
            os.remove(piece)
        warn_dropped(plan, kept, name or destination.path, _STACKLEVEL)
        mixer = export_mixer(plan, crs).to_json() if options.writes_mixer else None
        return destination.commit(names, mixer)
    except BaseException:
        client.cancel(futures)
        _abort(destination)
        raise


def _size_records(
    client: distributed.Client,
    plan: ExportPlan,
    source: distributed.Future,
    destination: Destination,
    futures: list[distributed.Future],
) -> tuple[list[str], list[np.ndarray], int]:
    """Encode every patch on the workers into pieces.

    Returns the pieces, the payload sizes of the records of each, and the patches kept.
    """
    threads = sum(client.nthreads().values()) or 1
    chunks = patch_chunks(plan.grid, _SIZING_TASKS_PER_THREAD * threads)
    pieces = [destination.temp_path(f"piece-{i:05d}.payloads") for i in range(len(chunks))]
    sizing = [
        client.submit(size_records, source, plan, chunk, piece, pure=False)
        for chunk, piece in zip(chunks, pieces, strict=True)
    ]
    futures.extend(sizing)
    order = {future.key: i for i, future in enumerate(sizing)}
    results: list[Any] = [None] * len(sizing)
    for future in distributed.as_completed(sizing):
        results[order[future.key]] = future.result()  # raises the first error to come
        future.release()
    return pieces, [s for s, _ in results], sum(k for _, k in results)


def _wait(
    writes: list[distributed.Future],
    counts: list[int],
    total: int,
    progress: Callable[[int, int], None] | None,
) -> None:
    """Wait for every shard, raising the first error; report progress as records are written."""
    records = {future.key: count for future, count in zip(writes, counts, strict=True)}
    total_records = sum(counts)
    done = 0
    for future in distributed.as_completed(writes):
        future.result()  # raises the worker's error
        done += records[future.key]
        if progress is not None:
            progress(total if not total_records else total * done // total_records, total)


def _abort(destination: Destination) -> None:
    """Remove the temporary folder, again if a worker made a file in it as it went."""
    destination.abort()
    folder = os.path.dirname(destination.temp_path("shard"))
    # A cancelled task already running may create its shard file while the folder is being
    # removed; it cannot once the folder is gone, and then stops at its next patch.
    for _ in range(50):
        if not os.path.exists(folder):
            return
        time.sleep(0.1)
        shutil.rmtree(folder, ignore_errors=True)
