"""Distributed export benchmark: a two-worker LocalCluster against the serial export.

One run, side by side, of ``tfrecord_io.export(tif, dst, ...)`` and of the same call with
``client=`` a ``LocalCluster(n_workers=2, threads_per_worker=1, processes=True)``, on the raster
of ``bench_write.py`` (float32, patches 256, kernel 32, gzip) and, with ``--kinds float,int64``,
on the same raster scaled to integers and written as ``int64_list`` (whose varying record sizes
take the distributed export's sizing pass). Prints, per kind:

- the wall time of each and the speed-up (serial / distributed), the cluster already started;
- the peak memory: VmHWM of the serial export's own fresh process, and of each worker process
  (reset through ``/proc/self/clear_refs`` before the export, read through ``client.run``),
  GDAL's block cache capped at 64 MB in all of them;
- that the two exports are byte-identical.

The machine's load (``uptime``) before and after is printed too: on a shared two-core machine
the figures move with what else runs. Usage:
``python bench/bench_distributed.py [--mb 300] [--max-file-size-mb 32] [--kinds float,int64]``.
"""

from __future__ import annotations

import argparse
import filecmp
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import rasterio

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_write import OPTIONS, ROOT, make_geotiff, size_for

SERIAL_SCRIPT = r"""
import json, sys, time, warnings
sys.path.insert(0, sys.argv[1])
import tfrecord_io


def _status_kb(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1])


options = json.loads(sys.argv[4])
warnings.simplefilter("ignore")
base = _status_kb("VmHWM")
start = time.perf_counter()
tfrecord_io.export(sys.argv[2], sys.argv[3], **options)
seconds = time.perf_counter() - start
peak = _status_kb("VmHWM")
print(json.dumps({"seconds": seconds, "base_mb": base / 1024, "peak_mb": peak / 1024}))
"""


# GDAL's block cache, capped for the serial process and the workers alike (its default, 5% of
# the RAM, would be counted as the export's memory); 64 MB holds the tiles of a strip.
GDAL_CACHE = "64"


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=True).stdout.strip()


def serial_export(tif: Path, out: Path, options: dict) -> dict[str, float]:
    """The serial export in a fresh process (its VmHWM is its own), timed inside it."""
    result = subprocess.run(
        [sys.executable, "-c", SERIAL_SCRIPT, str(ROOT), str(tif), str(out), json.dumps(options)],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "GDAL_CACHEMAX": GDAL_CACHE},
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def status_kb(key: str) -> int:
    """A ``/proc/self/status`` figure in kB (``VmRSS``, ``VmHWM``)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise KeyError(key)


def reset_peak() -> int:
    """Reset this process's VmHWM to its current RSS (Linux: ``5`` into ``clear_refs``)."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    return status_kb("VmRSS")


def peak() -> int:
    """This process's VmHWM, in kB."""
    return status_kb("VmHWM")


def int_geotiff(src: Path, dst: Path) -> None:
    """The float raster as int32 (x 10000): integer records of several varint lengths."""
    with rasterio.open(src) as s:
        profile = {**s.profile, "dtype": "int32"}
        with rasterio.open(dst, "w", **profile) as d:
            for _, window in s.block_windows(1):
                d.write((s.read(window=window) * 10000).astype(np.int32), window=window)


def same_export(a: Path, b: Path) -> bool:
    names = sorted(os.listdir(a))
    if names != sorted(os.listdir(b)):
        return False
    _, mismatch, errors = filecmp.cmpfiles(a, b, names, shallow=False)
    return not mismatch and not errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=300, help="size of the float32 raster")
    parser.add_argument("--max-file-size-mb", type=float, default=32, help="maxFileSize")
    parser.add_argument("--kinds", default="float,int64")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from distributed import Client, LocalCluster

    import tfrecord_io

    warnings.simplefilter("ignore")
    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench_distributed_"))
    work.mkdir(parents=True, exist_ok=True)
    os.environ["GDAL_CACHEMAX"] = GDAL_CACHE  # the workers inherit it
    try:
        width, height = size_for(args.mb)
        tifs = {"float": work / "float.tif"}
        make_geotiff(tifs["float"], width, height)
        if "int64" in args.kinds:
            tifs["int64"] = work / "int.tif"
            int_geotiff(tifs["float"], tifs["int64"])
        print(f"load before: {uptime()}")
        print(
            f"raster: 3 x {height} x {width} ({args.mb:.0f} MB as float32); {OPTIONS}, "
            f"maxFileSize {args.max_file_size_mb:g} MiB; {os.cpu_count()} cores"
        )
        print()
        print(
            "| kind | serial s | distributed s | speed-up | serial peak | worker peaks "
            "(RSS before) | shards | identical |"
        )
        print("|---|---|---|---|---|---|---|---|")
        with (
            LocalCluster(
                n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
            ) as cluster,
            Client(cluster) as client,
        ):
            client.run(lambda: __import__("tfrecord_io.dask.tasks"))  # warm the workers' imports
            for kind in args.kinds.split(","):
                tif = tifs[kind]
                with rasterio.open(tif) as src:  # the page cache as every run finds it
                    src.read()
                options = {
                    "format_options": OPTIONS,
                    "max_file_size": int(args.max_file_size_mb * (1 << 20)),
                    "kinds": kind,
                }
                for name in (f"serial-{kind}", f"dist-{kind}"):
                    (work / name).mkdir()
                serial = serial_export(tif, work / f"serial-{kind}" / "exp", options)
                before = client.run(reset_peak)
                start = time.perf_counter()
                tfrecord_io.export(tif, work / f"dist-{kind}" / "exp", client=client, **options)
                seconds = time.perf_counter() - start
                peaks = client.run(peak)
                workers = ", ".join(
                    f"{peaks[w] / 1024:.0f} MB ({before[w] / 1024:.0f})" for w in sorted(peaks)
                )
                same = same_export(work / f"serial-{kind}" / "exp", work / f"dist-{kind}" / "exp")
                shards = len(os.listdir(work / f"dist-{kind}" / "exp")) - 1
                print(
                    f"| {kind} | {serial['seconds']:.2f} | {seconds:.2f} | "
                    f"**{serial['seconds'] / seconds:.2f}x** | {serial['peak_mb']:.0f} MB | "
                    f"{workers} | {shards} | {same} |"
                )
                shutil.rmtree(work / f"serial-{kind}")
                shutil.rmtree(work / f"dist-{kind}")
        print()
        print(f"load after: {uptime()}")
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
