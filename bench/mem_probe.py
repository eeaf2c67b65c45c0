"""Peak memory of reading an export, run in a fresh process by bench_read.py.

Usage: python mem_probe.py EXPORT_FOLDER MODE CACHE_BYTES
MODE is ``blocks`` (``for _, w in ds.block_windows(): ds.read(window=w)``) or ``full``
(``ds.read()``). Prints one JSON line: the baseline ``ru_maxrss`` after the imports and the
open, the peak after reading, both in bytes, the time, and checksums of what was read.
"""

from __future__ import annotations

import json
import resource
import sys
import time

import numpy as np  # noqa: F401  (imported before the baseline, as any user would)
import rasterio  # noqa: F401

import tfrecord_io


def maxrss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kB on Linux


def main() -> None:
    folder, mode, cache = sys.argv[1], sys.argv[2], int(sys.argv[3])
    ds = tfrecord_io.open(folder, cache_size=cache)
    base = maxrss()
    t0 = time.perf_counter()
    sums = np.zeros(ds.count)
    if mode == "blocks":
        n = 0
        for _, w in ds.block_windows():
            a = ds.read(window=w)
            sums += a.sum(axis=(1, 2), dtype=np.float64)
            n += 1
    elif mode == "full":
        a = ds.read()
        sums += a.sum(axis=(1, 2), dtype=np.float64)
        n = 1
        del a
    else:
        raise SystemExit(f"unknown mode {mode}")
    seconds = time.perf_counter() - t0
    seek_points = sum(len(i._points) for i in ds._reader._indexes)
    print(json.dumps({
        "baseline": base, "peak": maxrss(), "seconds": seconds, "reads": n,
        "band_sums": sums.tolist(), "seek_points": seek_points,
    }))


if __name__ == "__main__":
    main()
