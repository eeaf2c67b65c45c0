"""XARRAY benchmark: computing a whole export through the ``eetfrecord`` engine and dask, against
``ds.read()``.

Run from the repository root (the library is imported from PYTHONPATH)::

    PYTHONPATH=. .venv/bin/python bench/bench_xarray.py            # ~160 MB export, 3 shards
    PYTHONPATH=. .venv/bin/python bench/bench_xarray.py --quick    # ~40 MB, 3 shards

The export is generated once under ``--out`` (default ``bench/out``) and reused (the same
generator as ``bench_read.py``). In each round, interleaved so that load from other work hits all
alike, after the files are in the page cache:

1. ``tfrecord_io.open(export).read()``: the reader's whole read (every shard streamed once,
   on two threads);
2. ``xr.open_dataset(export, engine="eetfrecord", chunks={}).compute()`` with dask's default
   threaded scheduler: one chunk per patch, one variable per band, each record decoded once;
3. the same with ``stack_bands=True`` (one ``(band, y, x)`` variable);
4. the floors: Datasets of the same variables and chunks (both layouts) over arrays already in
   memory, which is what xarray and dask alone spend on the chunks, with no reading at all.

The figure is the ratio of medians, xarray over ``read()`` (goal: <= 1.2). Each contender runs
once untimed first (imports, dask's thread pool), and that result is checked against the mosaic
digest the generator recorded.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
from typing import Any

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import bench_read  # noqa: E402
from bench_read import MiB, digest, shard_paths, timed, warm  # noqa: E402
from gen_export import Spec, generate  # noqa: E402

import tfrecord_io  # noqa: E402


def spec(quick: bool) -> Spec:
    bands = ("B2", "B3", "B4")
    if quick:
        return Spec("exportA", bands, 256, 32, 8, 5, 16 * MiB, "zlib6")
    return Spec("exportA", bands, 256, 32, 16, 10, 64 * MiB, "zlib6")


def read_whole(path: str) -> np.ndarray:
    with tfrecord_io.open(path) as ds:
        return ds.read()


def xarray_whole(path: str, stack_bands: bool) -> Any:
    import xarray as xr

    from tfrecord_io.xarray import EETFRecordBackendEntrypoint

    # The engine class itself, so the benchmark runs without installing the package; installed,
    # engine="eetfrecord" is the same class.
    with xr.open_dataset(
        path, engine=EETFRecordBackendEntrypoint, chunks={}, stack_bands=stack_bands
    ) as ds:
        return ds.compute()


def in_memory_dataset(mosaic: np.ndarray, names: list[str], chunk: int, stacked: bool) -> Any:
    """The same Dataset over arrays already in memory, chunked alike: xarray and dask's floor.

    Each variable is a ``BackendArray`` over a numpy array, opened lazily and chunked by patch
    as the engine's are, so computing it costs what xarray and dask spend on the chunks alone.
    """
    import xarray as xr
    from xarray.backends import BackendArray
    from xarray.core import indexing

    class InMemory(BackendArray):
        def __init__(self, values: np.ndarray) -> None:
            self.values, self.shape, self.dtype = values, values.shape, values.dtype

        def __getitem__(self, key: Any) -> Any:
            return indexing.explicit_indexing_adapter(
                key, self.shape, indexing.IndexingSupport.BASIC, self.values.__getitem__
            )

    if stacked:
        variable = xr.Variable(("band", "y", "x"), indexing.LazilyIndexedArray(InMemory(mosaic)))
        return xr.Dataset({"band_data": variable}).chunk({"band": -1, "y": chunk, "x": chunk})
    variables = {
        name: xr.Variable(("y", "x"), indexing.LazilyIndexedArray(InMemory(mosaic[i])))
        for i, name in enumerate(names)
    }
    return xr.Dataset(variables).chunk({"y": chunk, "x": chunk})


def as_mosaic(result: Any) -> np.ndarray:
    """The ``(band, y, x)`` array of a result (outside the timing: checking only)."""
    if isinstance(result, np.ndarray):
        return result
    if "band_data" in result:
        return result["band_data"].values
    return np.stack([result[name].values for name in result.data_vars])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a ~40 MB export")
    parser.add_argument("--out", default=os.path.join(HERE, "out"))
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    s = spec(args.quick)
    folder = os.path.join(args.out, s.prefix)
    meta = generate(s, folder)
    paths = shard_paths(folder, meta)
    warm(paths)
    size = s.total * len(s.bands) * s.patch * s.patch * 4
    print(
        f"export {s.prefix}: {s.total} patches x {len(s.bands)} bands x {s.tile}x{s.tile} "
        f"float32, {len(paths)} shard(s); mosaic {size / 1e6:.0f} MB"
    )
    mosaic = read_whole(folder)
    floors = [in_memory_dataset(mosaic, list(s.bands), s.patch, stacked) for stacked in (0, 1)]
    del mosaic
    contenders = {
        "ds.read()": lambda: read_whole(folder),
        "xarray+dask, band variables": lambda: xarray_whole(folder, False),
        "xarray+dask, stack_bands": lambda: xarray_whole(folder, True),
        "floor, band variables": floors[0].compute,
        "floor, stack_bands": floors[1].compute,
    }
    walls: dict[str, list[float]] = {name: [] for name in contenders}
    others: list[float] = []
    for name, run in contenders.items():  # warm-up: imports, dask's thread pool, page cache
        if digest(np.ascontiguousarray(as_mosaic(run()))) != meta["mosaic_blake2b"]:
            raise SystemExit(f"{name}: the mosaic differs from the generator's")
    for _ in range(args.rounds):
        for name, run in contenders.items():
            result, wall, _ = timed(run)
            walls[name].append(wall)
            others.append(bench_read.last_others)
            del result
    base = statistics.median(walls["ds.read()"])
    report = {"machine": f"{platform.machine()}, {os.cpu_count()} cores", "rounds": args.rounds}
    for name, times in walls.items():
        median = statistics.median(times)
        report[name] = {"median_s": round(median, 3), "ratio_to_read": round(median / base, 2)}
        print(
            f"  {name:30s} median {median:6.2f} s  {size / median / 1e6:6.0f} MB/s  "
            f"x{median / base:.2f} of ds.read()"
        )
    read_s = statistics.median(walls["ds.read()"])
    for layout in ("band variables", "stack_bands"):
        floor_s = statistics.median(walls[f"floor, {layout}"])
        print(
            f"  {layout}: xarray and dask alone cost {floor_s:.3f} s on these chunks "
            f"({floor_s / read_s:.2f}x of ds.read()), so ds.read() + that is "
            f"x{(read_s + floor_s) / read_s:.2f}"
        )
        report[f"read_plus_floor, {layout}"] = round((read_s + floor_s) / read_s, 2)
    busy = statistics.median(others)
    print(f"  other processes kept {busy:.1f} cores busy (median) during the runs")
    report["other_cores_busy"] = round(busy, 2)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
