"""Benchmark the persisted index: a window read from a fresh process, with and without it.

The export is multi-shard gzip, written like Earth Engine's (one zlib stream per shard, no
flushes, so seek points fall inside bytes). The window is 256 x 256, unaligned (it touches
four patches), in the middle of the last shard. Each run is a new Python process that imports
tfrecord_io, opens the export and reads the window; runs with and without the sidecar
alternate, and the medians are compared. Last, random windows in one process: a warm in-memory
index against the sidecar. Two ratios are given: the whole process (what a
``rio`` or ``gdal_translate`` command costs) and the open + read inside it (import excluded).

Usage: ``python bench/bench_index.py [--quick] [--rounds N] [--out DIR]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np
from rasterio.windows import Window

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

from gen_export import Spec, generate  # noqa: E402 - after the sys.path set-up

import tfrecord_io  # noqa: E402
from tfrecord_io.format.sidecar import sidecar_path  # noqa: E402
from tfrecord_io.image.files import find_export  # noqa: E402
from tfrecord_io.image.indexing import load_saved_indexes  # noqa: E402

MiB = 1 << 20

CHILD = r"""
import hashlib, json, sys, time
t0 = time.perf_counter()
import tfrecord_io
from rasterio.windows import Window
t1 = time.perf_counter()
col, row = int(sys.argv[2]), int(sys.argv[3])
with tfrecord_io.open(sys.argv[1]) as ds:
    data = ds.read(window=Window(col, row, 256, 256))
t2 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "read": t2 - t1,
                  "digest": hashlib.blake2b(data.tobytes(), digest_size=16).hexdigest()}))
"""


def spec(quick: bool, big: bool) -> Spec:
    if quick:  # 3 bands x 288^2 x 4 B x 64 patches = 64 MB, 16 MiB shards -> 4 shards
        return Spec("exportI", ("B2", "B3", "B4"), 256, 32, 8, 8, 16 * MiB, "zlib6")
    if big:  # Earth Engine's default shard size: 1216 patches = 1.21 GB, 1 GiB shards -> 2
        return Spec("exportJ", ("B2", "B3", "B4"), 256, 32, 32, 38, 1 << 30, "isal")
    # 256 patches = 255 MB of records, 64 MiB shards -> 4 shards
    return Spec("exportI", ("B2", "B3", "B4"), 256, 32, 16, 16, 64 * MiB, "zlib6")


def fresh_read(folder: str, col: int, row: int) -> dict:
    env = dict(os.environ, PYTHONPATH=ROOT)
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", CHILD, folder, str(col), str(row)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(done.stdout)
    result["process"] = time.perf_counter() - t0
    return result


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="a small export for a smoke run")
    ap.add_argument("--big", action="store_true", help="1.2 GB in shards of 1 GiB, as EE cuts")
    ap.add_argument("--rounds", type=int, default=5, help="fresh processes of each kind")
    ap.add_argument("--out", default=os.path.join(HERE, "out"), help="data folder (reused)")
    ap.add_argument("--windows", type=int, default=30, help="random windows in one process")
    args = ap.parse_args()

    s = spec(args.quick, args.big)
    folder = os.path.join(args.out, s.prefix)
    meta = generate(s, folder)
    files = find_export(folder)
    print(f"export: {len(files.shards)} gzip shards, {meta['uncompressed_bytes'] / 1e6:.0f} MB")
    print(f"load average before: {loadavg()}")

    t0 = time.perf_counter()
    path = tfrecord_io.build_index(folder, overwrite=True)
    build = time.perf_counter() - t0
    disk = sum(os.path.getsize(shard) for shard in files.shards)
    print(
        f"build_index: {build:.2f} s ({disk / build / 1e6:.0f} MB/s of gzip), sidecar "
        f"{os.path.getsize(path) / 1e3:.0f} kB for {disk / 1e6:.0f} MB of shards"
    )
    indexes = load_saved_indexes(files)
    assert indexes is not None
    last = indexes[-1]
    middle = last.first_index + len(last) // 2
    row, col = divmod(middle, s.patches_per_row)
    col = min(col, s.patches_per_row - 2)  # the window reaches into the next patch
    wcol, wrow = col * s.patch + s.patch // 2, row * s.patch + s.patch // 2
    print(
        f"window: 256 x 256 at col {wcol}, row {wrow} (patch {middle}; the last shard holds "
        f"patches {last.first_index}..{last.first_index + len(last) - 1})"
    )

    hidden = path + ".hidden"
    runs: dict[str, list[dict]] = {"without": [], "with": []}
    for _ in range(args.rounds):
        os.replace(path, hidden)
        try:
            runs["without"].append(fresh_read(folder, wcol, wrow))
        finally:
            os.replace(hidden, path)
        runs["with"].append(fresh_read(folder, wcol, wrow))
    digests = {r["digest"] for kind in runs.values() for r in kind}
    assert len(digests) == 1, f"the window differs with the sidecar: {digests}"

    def med(kind: str, key: str) -> float:
        return statistics.median(r[key] for r in runs[kind])

    print(f"\nmedians of {args.rounds} fresh processes each (load average after: {loadavg()}):")
    print("| measure | without sidecar | with sidecar | ratio | target |")
    print("| --- | --- | --- | --- | --- |")
    for key, label in (("process", "whole process"), ("read", "open + window read")):
        a, b = med("without", key), med("with", key)
        print(f"| {label} | {a * 1e3:.0f} ms | {b * 1e3:.0f} ms | **{b / a:.3f}** | <= 0.2 |")
    print(f"| import tfrecord_io (in both) | {med('without', 'import') * 1e3:.0f} ms | | | |")
    assert sidecar_path(files.folder, files.prefix) == path

    # Random windows in one process: the sidecar's points against a warm in-memory index.
    rng = np.random.default_rng(3)
    size = s.patch * s.patches_per_row, s.patch * s.patch_rows
    windows = [
        (int(rng.integers(1, size[0] - 257)), int(rng.integers(1, size[1] - 257)))
        for _ in range(args.windows)
    ]
    os.replace(path, hidden)
    try:
        with tfrecord_io.open(folder, cache_size=0) as ds:
            ds.build_index()
            warm = window_latencies(ds, windows)
    finally:
        os.replace(hidden, path)
    with tfrecord_io.open(folder, cache_size=0) as ds:
        saved = window_latencies(ds, windows)
    print(f"\n{len(windows)} random unaligned 256 x 256 windows, band 1, cache_size=0:")
    print("| index | median ms | p90 ms |")
    print("| --- | --- | --- |")
    for label, values in (("in memory, warm (zlib copies, 4 MiB)", warm), ("sidecar", saved)):
        print(f"| {label} | {values[0]:.1f} | {values[1]:.1f} |")
    return 0


def window_latencies(ds, windows: list[tuple[int, int]]) -> tuple[float, float]:
    """Median and 90th percentile, in ms, of reading each window once."""
    out = []
    for col, row in windows:
        t0 = time.perf_counter()
        ds.read(1, window=Window(col, row, 256, 256))
        out.append((time.perf_counter() - t0) * 1e3)
    out.sort()
    return statistics.median(out), out[min(len(out) - 1, round(0.9 * (len(out) - 1)))]


if __name__ == "__main__":
    raise SystemExit(main())
