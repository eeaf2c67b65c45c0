"""Peak memory of reading an export, run in a fresh process by bench_read.py.

Usage: python mem_probe.py EXPORT_FOLDER MODE CACHE_BYTES
MODE is ``blocks`` (``for _, w in ds.block_windows(): ds.read(window=w)``) or ``full``
(``ds.read()``). Prints one JSON line: the baseline ``ru_maxrss`` after the imports and the
open, the peak after reading, both in bytes, the time, and checksums of what was read.

Why VmHWM next to ru_maxrss: on Linux, exec records the *parent's* memory high-water mark in
the child's ``ru_maxrss`` (the signal struct's maxrss survives fork and exec), so a probe started
by a benchmark that already holds a GiB reports that GiB as its own baseline and peak. VmHWM in
/proc/self/status is the high-water mark of this process's own address space only. Both are
printed; the benchmark uses VmHWM when it is available.
"""

from __future__ import annotations

import json
import resource
import sys
import time

import numpy as np
import rasterio  # noqa: F401 - imported before the first measurement, so its load is not counted

import tfrecord_io


def maxrss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kB on Linux


def vmhwm() -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def main() -> None:
    folder, mode, cache = sys.argv[1], sys.argv[2], int(sys.argv[3])
    ds = tfrecord_io.open(folder, cache_size=cache)
    base, base_hwm = maxrss(), vmhwm()
    t0 = time.perf_counter()
    sums = np.zeros(ds.count)
    if mode == "blocks":
        n = 0
        for n, (_, w) in enumerate(ds.block_windows(), start=1):  # noqa: B007 - n is the count
            a = ds.read(window=w)
            sums += a.sum(axis=(1, 2), dtype=np.float64)
    elif mode == "full":
        a = ds.read()
        sums += a.sum(axis=(1, 2), dtype=np.float64)
        n = 1
        del a
    else:
        raise SystemExit(f"unknown mode {mode}")
    seconds = time.perf_counter() - t0
    seek_points = sum(len(i._points) for i in ds._reader._indexes)
    print(
        json.dumps(
            {
                "baseline": base,
                "peak": maxrss(),
                "baseline_hwm": base_hwm,
                "peak_hwm": vmhwm(),
                "seconds": seconds,
                "reads": n,
                "band_sums": sums.tolist(),
                "seek_points": seek_points,
            }
        )
    )


if __name__ == "__main__":
    main()
