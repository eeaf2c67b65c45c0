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
3. the same with ``stack_bands=True`` (one ``(band, y, x)`` variable).

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
    contenders = {
        "ds.read()": lambda: read_whole(folder),
        "xarray+dask, band variables": lambda: xarray_whole(folder, False),
        "xarray+dask, stack_bands": lambda: xarray_whole(folder, True),
    }
    walls: dict[str, list[float]] = {name: [] for name in contenders}
    others: list[float] = []
    for name, run in contenders.items():  # warm-up: imports, dask's thread pool, page cache
        if digest(as_mosaic(run())) != meta["mosaic_blake2b"]:
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
    busy = statistics.median(others)
    print(f"  other processes kept {busy:.1f} cores busy (median) during the runs")
    report["other_cores_busy"] = round(busy, 2)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
