"""Benchmark full reads against bare gunzip of the same shards, on one and two cores.

Export A is bench_read.py's (3 float32 bands, 3 gzip shards written like a Java writer, no
flushes); export S is a single gzip shard. The contenders run interleaved, each round in the
same process, and the best wall time of the rounds is kept, with the process CPU time of that
run (the machine may be shared: the CPU time is the steadier measure of work done).

Bare gunzip is isal's (the fastest inflater installed), two ways: ``igzip.open`` read into a
16 MiB buffer, and an ``isal_zlib`` decompress object fed 1 MiB pieces; the faster of the two
is the reference. Two threads of gunzip take the shards from one queue, as the reader does.
For S, ``rapidgzip`` with two threads inflates the one member in parallel. Each export gets
an index sidecar; "sidecar" contenders read with it (ranges from saved seek points on both
threads, also within one shard), the others with it hidden.

Usage: ``python bench/bench_full.py [--quick] [--rounds N] [--out DIR]``.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from gen_export import Spec, generate  # noqa: E402 - after the sys.path set-up

import tfrecord_io  # noqa: E402 - after the sys.path set-up
from tfrecord_io.format.sidecar import sidecar_path  # noqa: E402
from tfrecord_io.image.files import find_export  # noqa: E402

MiB = 1 << 20


def specs(quick: bool) -> tuple[Spec, Spec]:
    bands = ("B2", "B3", "B4")
    if quick:
        return (
            Spec("exportA", bands, 256, 32, 8, 5, 16 * MiB, "zlib6"),
            Spec("exportS", ("B1",), 256, 32, 12, 12, 1 << 30, "isal"),
        )
    return (
        Spec("exportA", bands, 256, 32, 16, 10, 64 * MiB, "zlib6"),  # 159 MB, 3 shards
        Spec("exportS", ("B1",), 256, 32, 24, 24, 1 << 30, "isal"),  # 191 MB, 1 shard
    )


def gunzip_igzip(path: str) -> int:
    from isal import igzip

    view, total = memoryview(bytearray(16 * MiB)), 0
    with igzip.open(path, "rb") as f:
        while n := f.readinto(view):
            total += n
    return total


def gunzip_isal_zlib(path: str) -> int:
    from isal import isal_zlib

    inflater, total = isal_zlib.decompressobj(31), 0
    with open(path, "rb") as f:
        while piece := f.read(MiB):
            while piece:
                total += len(inflater.decompress(piece, 16 * MiB))
                piece = inflater.unconsumed_tail
    return total


def gunzip_rapidgzip(path: str, threads: int) -> int:
    import rapidgzip

    total = 0
    with rapidgzip.RapidgzipFile(path, parallelization=threads) as f:
        while piece := f.read(16 * MiB):
            total += len(piece)
    return total


def on_threads(fn: Callable[[str], int], paths: list[str], threads: int) -> int:
    if threads == 1:
        return sum(map(fn, paths))
    with ThreadPoolExecutor(threads) as pool:
        return sum(pool.map(fn, paths))


def ours(folder: str, workers: int, sidecar: bool = False) -> np.ndarray:
    """``ds.read()`` (workers=2), or the same with the reader's parallelism off.

    The export's index sidecar is hidden unless ``sidecar``.
    """
    files = find_export(folder)
    path = sidecar_path(files.folder, files.prefix)
    if sidecar:
        return _read(folder, workers)
    os.replace(path, path + ".hidden")
    try:
        return _read(folder, workers)
    finally:
        os.replace(path + ".hidden", path)


def _read(folder: str, workers: int) -> np.ndarray:
    with tfrecord_io.open(folder) as ds:
        if workers == 2:
            return ds.read()
        grid = ds._reader.grid
        bands = list(range(ds.count))
        data = np.empty((ds.count, ds.height, ds.width), dtype=ds.dtypes[0])
        parts = {
            part.index: part
            for part in grid.iter_samples(np.arange(ds.height), np.arange(ds.width))
        }
        ds._reader.read_all(lambda i, tile: ds._copy(data, bands, tile, parts[i]), workers=1)
        return data


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def run(contenders: dict[str, Callable[[], object]], rounds: int) -> dict[str, tuple[float, float]]:
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, fn in contenders.items():
            c0, t0 = cpu(), time.perf_counter()
            fn()
            runs[name].append((time.perf_counter() - t0, cpu() - c0))
    return {name: min(values) for name, values in runs.items()}


def report(
    title: str, best: dict[str, tuple[float, float]], ratios: list[tuple[str, str, str, str]]
) -> None:
    """Print the contenders and the ratios ``(label, numerator, denominator(s), target)``."""
    print(f"\n## {title} (load average {' '.join(f'{x:.2f}' for x in os.getloadavg())})")
    print("| contender | best wall s | its CPU s |")
    print("| --- | --- | --- |")
    for name, (wall, cpus) in best.items():
        print(f"| {name} | {wall:.3f} | {cpus:.3f} |")
    print("\n| ratio | wall | CPU | target |")
    print("| --- | --- | --- | --- |")
    for label, num, den, target in ratios:
        n, d = best[num], _ref(best, den)
        print(f"| {label} | **{n[0] / d[0]:.3f}** | {n[1] / d[1]:.3f} | {target} |")


def _ref(best: dict[str, tuple[float, float]], names: str) -> tuple[float, float]:
    """The fastest of the ``|``-separated contenders."""
    return min(best[name] for name in names.split("|"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="small exports for a smoke run")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds")
    ap.add_argument("--out", default=os.path.join(HERE, "out"), help="data folder (reused)")
    args = ap.parse_args()
    spec_a, spec_s = specs(args.quick)
    folder_a = os.path.join(args.out, spec_a.prefix)
    folder_s = os.path.join(args.out, spec_s.prefix)
    generate(spec_a, folder_a)
    generate(spec_s, folder_s)
    shards_a = list(find_export(folder_a).shards)
    shards_s = list(find_export(folder_s).shards)
    for folder in (folder_a, folder_s):
        tfrecord_io.build_index(folder)

    best = run(
        {
            "gunzip igzip.open, 1 thread": lambda: on_threads(gunzip_igzip, shards_a, 1),
            "gunzip isal_zlib, 1 thread": lambda: on_threads(gunzip_isal_zlib, shards_a, 1),
            "gunzip igzip.open, 2 threads": lambda: on_threads(gunzip_igzip, shards_a, 2),
            "gunzip isal_zlib, 2 threads": lambda: on_threads(gunzip_isal_zlib, shards_a, 2),
            "ours, workers=2": lambda: ours(folder_a, 2),
            "ours, workers=2, sidecar": lambda: ours(folder_a, 2, sidecar=True),
            "ours, workers=1": lambda: ours(folder_a, 1),
        },
        args.rounds,
    )
    g1 = "gunzip igzip.open, 1 thread|gunzip isal_zlib, 1 thread"
    g2 = "gunzip igzip.open, 2 threads|gunzip isal_zlib, 2 threads"
    report(
        f"Export A: {len(shards_a)} shards",
        best,
        [
            ("ours workers=2 / fastest 2-thread gunzip", "ours, workers=2", g2, "<= 1.15"),
            ("the same with the sidecar", "ours, workers=2, sidecar", g2, "<= 1.15"),
            ("ours workers=1 / fastest 1-thread gunzip", "ours, workers=1", g1, "<= 1.1"),
        ],
    )
    best = run(
        {
            "gunzip igzip.open, 1 thread": lambda: on_threads(gunzip_igzip, shards_s, 1),
            "gunzip isal_zlib, 1 thread": lambda: on_threads(gunzip_isal_zlib, shards_s, 1),
            "gunzip rapidgzip, 2 threads": lambda: gunzip_rapidgzip(shards_s[0], 2),
            "ours, workers=2": lambda: ours(folder_s, 2),
            "ours, workers=2, sidecar": lambda: ours(folder_s, 2, sidecar=True),
            "ours, workers=1": lambda: ours(folder_s, 1),
        },
        args.rounds,
    )
    report(
        "Export S: one shard",
        best,
        [
            ("ours workers=2 / fastest 1-thread gunzip", "ours, workers=2", g1, "stated"),
            ("the same with the sidecar", "ours, workers=2, sidecar", g1, "stated"),
            ("ours workers=1 / fastest 1-thread gunzip", "ours, workers=1", g1, "stated"),
            ("rapidgzip 2 threads / 1-thread gunzip", "gunzip rapidgzip, 2 threads", g1, "-"),
        ],
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
