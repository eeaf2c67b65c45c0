"""READ benchmark of tfrecord_io against TensorFlow's tf.data and a bare gunzip.

Run from the repository root (the library is imported from PYTHONPATH)::

    PYTHONPATH=. .venv/bin/python bench/bench_read.py            # full (~150 MB A, 1 GiB B)
    PYTHONPATH=. .venv/bin/python bench/bench_read.py --quick    # smoke run (~40 MB A)

Exports are generated once under ``--out`` (default ``bench/out``) and reused. Measured, in one
run, with full reads interleaved round by round so that load from other work hits all alike:

1. export A full read: ``ds.read()`` (the reader's 2 threads) and the single-core figure
   (``ExportReader.read_all(place, workers=1)``), against Earth Engine's documented tf.data
   pipeline (``TFRecordDataset(GZIP)`` + ``parse_single_example`` + numpy reassembly);
2. the same read against a bare single-thread isal gunzip of the shards;
3. export B (a ~1 GiB shard): ``build_index()`` time, then random unaligned 256 x 256 windows
   read with ``cache_size=0``: median and p90;
4. peak RSS of block-by-block reads in a subprocess, against the export's uncompressed size.

Every mosaic and window read is checked against digests the generator recorded.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # before TensorFlow is imported

import numpy as np
from rasterio.windows import Window

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from gen_export import Spec, generate, window_digest  # noqa: E402 - after the sys.path set-up

import tfrecord_io  # noqa: E402 - after the environment set-up

MB = 1e6
MiB = 1 << 20


# -- exports -------------------------------------------------------------------------------


def specs(quick: bool) -> tuple[Spec, Spec]:
    bands = ("B2", "B3", "B4")
    if quick:
        a = Spec("exportA", bands, 256, 32, 8, 5, 16 * MiB, "zlib6")  # 40 MB, 3 shards
        b = Spec("exportB", ("B1",), 256, 32, 16, 16, 64 * MiB, "isal")  # 85 MB, 2 shards
    else:
        # 160 patches x 3 bands x 288 x 288 float32 = 159 MB, 64 MiB shards -> 3 shards
        a = Spec("exportA", bands, 256, 32, 16, 10, 64 * MiB, "zlib6")
        # 3136 patches x 288 x 288 float32 = 1.04 GB: one shard of ~1 GiB (maxFileSize 1 GiB)
        b = Spec("exportB", ("B1",), 256, 32, 56, 56, 1 << 30, "isal")
    return a, b


def shard_paths(folder: str, meta: dict) -> list[str]:
    return [os.path.join(folder, s) for s in meta["shards"]]


def warm(paths: list[str]) -> None:
    """Read the files once so every timed read comes from the page cache."""
    for p in paths:
        with open(p, "rb") as f:
            while f.read(16 * MiB):
                pass


# -- timing helpers ------------------------------------------------------------------------


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def system_busy() -> float:
    """CPU seconds all processes have spent busy since boot (from /proc/stat), or NaN."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except OSError:
        return float("nan")
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def timed(fn):
    """Run fn(); return (result, wall seconds, process CPU seconds).

    Also notes how busy the rest of the machine was meanwhile (``last_others``).
    """
    global last_others
    b0, c0, t0 = system_busy(), cpu(), time.perf_counter()
    result = fn()
    wall, cpus = time.perf_counter() - t0, cpu() - c0
    last_others = max(0.0, (system_busy() - b0 - cpus) / wall)
    return result, wall, cpus


last_others = float("nan")


def digest(mosaic: np.ndarray) -> str:
    return hashlib.blake2b(np.ascontiguousarray(mosaic), digest_size=16).hexdigest()


# -- the contenders for a full read --------------------------------------------------------


def ours_parallel(folder: str) -> np.ndarray:
    with tfrecord_io.open(folder) as ds:
        return ds.read()


def ours_single(folder: str) -> np.ndarray:
    """``ds.read()`` with the reader's parallelism off: the dataset's own placing, workers=1."""
    with tfrecord_io.open(folder) as ds:
        grid = ds._reader.grid
        bands = list(range(ds.count))
        data = np.empty((ds.count, ds.height, ds.width), dtype=ds.dtypes[0])
        ds._reader.read_all(
            lambda i, tile: ds._place(data, bands, tile, grid.patch_window(i)), workers=1
        )
        return data


class TFPipeline:
    """Earth Engine's documented reading: TFRecordDataset + parse_single_example, then numpy."""

    def __init__(self, meta: dict, folder: str) -> None:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        import tensorflow as tf

        self.tf = tf
        spec = meta["spec"]
        self.bands = spec["bands"]
        self.tile = spec["patch"] + 2 * (spec["kernel"] // 2)
        self.margin = spec["kernel"] // 2
        self.patch = spec["patch"]
        self.per_row = spec["patches_per_row"]
        self.shape = tuple(meta["mosaic_shape"])
        self.files = shard_paths(folder, meta)
        self.features = {
            b: tf.io.FixedLenFeature([self.tile, self.tile], tf.float32) for b in self.bands
        }

    def __call__(self) -> np.ndarray:
        tf = self.tf
        features = self.features

        def parse(example_proto):
            return tf.io.parse_single_example(example_proto, features)

        dataset = tf.data.TFRecordDataset(self.files, compression_type="GZIP")
        dataset = dataset.map(parse, num_parallel_calls=tf.data.AUTOTUNE)
        mosaic = np.empty(self.shape, np.float32)
        p, m = self.patch, self.margin
        for i, example in enumerate(dataset.as_numpy_iterator()):
            r, c = divmod(i, self.per_row)
            for k, band in enumerate(self.bands):
                mosaic[k, r * p : (r + 1) * p, c * p : (c + 1) * p] = example[band][
                    m : m + p, m : m + p
                ]
        return mosaic


def isal_gunzip(paths: list[str]) -> int:
    """Inflate each shard to its end in 16 MiB chunks, single thread; return the byte count."""
    from isal import igzip

    buf = bytearray(16 * MiB)
    view = memoryview(buf)
    total = 0
    for p in paths:
        with igzip.open(p, "rb") as f:
            while True:
                n = f.readinto(view)
                if not n:
                    break
                total += n
    return total


# -- report --------------------------------------------------------------------------------


def verdict(value: float, target: float) -> str:
    return "PASS" if value <= target else "FAIL"


def run_mem_probe(folder: str, mode: str, cache: int) -> dict:
    env = dict(os.environ)
    out = subprocess.run(
        [sys.executable, os.path.join(HERE, "mem_probe.py"), folder, mode, str(cache)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if out.returncode:
        raise RuntimeError(f"mem_probe failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="small exports for a smoke run")
    ap.add_argument("--out", default=os.path.join(HERE, "out"), help="data folder (reused)")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds of full reads")
    ap.add_argument("--windows", type=int, default=50, help="random windows read in export B")
    ap.add_argument("--no-tf", action="store_true", help="skip the TensorFlow baseline")
    args = ap.parse_args()
    t_start = time.perf_counter()
    mode = "quick" if args.quick else "full"
    base = os.path.join(os.path.abspath(args.out), mode)
    folder_a, folder_b = os.path.join(base, "A"), os.path.join(base, "B")
    spec_a, spec_b = specs(args.quick)

    import isal

    print(f"# tfrecord_io READ benchmark ({mode})")
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} logical cores "
        f"(affinity {len(os.sched_getaffinity(0))}), load avg {os.getloadavg()[0]:.2f}, "
        f"Python {platform.python_version()}, numpy {np.__version__}, isal {isal.__version__} "
        f"(tfrecord_io uses isal: {tfrecord_io.format.records._igzip is not None})"
    )
    print("generating / reusing exports ...")
    t0 = time.perf_counter()
    meta_a = generate(spec_a, folder_a)
    meta_b = generate(spec_b, folder_b, n_windows=args.windows)
    gen_seconds = time.perf_counter() - t0
    paths_a = shard_paths(folder_a, meta_a)
    paths_b = shard_paths(folder_b, meta_b)
    warm(paths_a + paths_b)
    size_a = meta_a["uncompressed_bytes"]
    size_b = meta_b["uncompressed_bytes"]
    print(
        f"export A: {len(paths_a)} shards, {size_a / MB:.1f} MB uncompressed "
        f"({meta_a['payload_float_bytes'] / MB:.1f} MB float32), "
        f"{meta_a['compressed_bytes'] / MB:.1f} MB gzip (zlib level 6), "
        f"mosaic {tuple(meta_a['mosaic_shape'])}, records/shard {meta_a['records_per_shard']}"
    )
    print(
        f"export B: {len(paths_b)} shard(s), {size_b / MB:.1f} MB uncompressed "
        f"(shards {[round(s / MiB) for s in meta_b['shard_uncompressed']]} MiB), "
        f"{meta_b['compressed_bytes'] / MB:.1f} MB gzip (isal), "
        f"mosaic {tuple(meta_b['mosaic_shape'])}"
    )
    print(f"generation/reuse: {gen_seconds:.1f} s")

    # -- 1 & 2: full reads of A, interleaved ---------------------------------------------
    contenders: dict[str, object] = {
        "tfrecord_io ds.read() (workers=2)": lambda: ours_parallel(folder_a),
        "tfrecord_io read_all(workers=1)": lambda: ours_single(folder_a),
        "isal gunzip, 1 thread": lambda: isal_gunzip(paths_a),
    }
    if not args.no_tf:
        print("importing TensorFlow ...")
        tfp = TFPipeline(meta_a, folder_a)
        contenders["tf.data + parse_single_example"] = tfp
        tfp()  # warm-up: graph tracing, thread pools
    ours_parallel(folder_a)  # warm-up
    runs: dict[str, list[tuple[float, float]]] = {k: [] for k in contenders}
    checks: dict[str, str] = {}
    others: dict[str, list[float]] = {k: [] for k in contenders}
    for _ in range(args.rounds):
        for name, fn in contenders.items():
            result, wall, cpus = timed(fn)
            runs[name].append((wall, cpus))
            others[name].append(last_others)
            if isinstance(result, np.ndarray):
                ok = (
                    result.shape == tuple(meta_a["mosaic_shape"])
                    and digest(result) == meta_a["mosaic_blake2b"]
                )
                checks[name] = "mosaic digest OK" if ok else "MOSAIC DIFFERS"
                del result
            else:
                ok = result == size_a
                checks[name] = f"{result} bytes OK" if ok else f"BYTES {result} != {size_a}"

    def best(name: str) -> tuple[float, float]:
        return min(runs[name])

    print()
    print(
        f"## Full read of export A ({size_a / MB:.1f} MB uncompressed), best of {args.rounds} "
        "interleaved rounds"
    )
    print(
        "(CPU/wall: this process during the best run; others: CPU/wall of every other process "
        "on the machine, median over the rounds)"
    )
    print(
        f"{'method':<36} {'best s':>7} {'median s':>8} {'MB/s':>7} {'CPU/wall':>8} "
        f"{'others':>6}  check"
    )
    for name in contenders:
        wall, cpus = best(name)
        med = statistics.median(w for w, _ in runs[name])
        print(
            f"{name:<36} {wall:7.3f} {med:8.3f} {size_a / MB / wall:7.0f} {cpus / wall:8.2f} "
            f"{statistics.median(others[name]):6.2f}  {checks[name]}"
        )

    # -- single-shard export: does workers=2 help? ----------------------------------------
    b_runs: dict[str, list[tuple[float, float]]] = {"workers=2": [], "workers=1": []}
    b_ok = True
    b_others: dict[str, float] = {}
    for _ in range(2):
        for name, fn in (("workers=2", ours_parallel), ("workers=1", ours_single)):
            result, wall, cpus = timed(lambda fn=fn: fn(folder_b))
            b_runs[name].append((wall, cpus))
            b_others[name] = last_others
            b_ok &= digest(result) == meta_b["mosaic_blake2b"]
            del result
    print()
    print(
        f"## Full read of single-shard export B ({size_b / MB:.0f} MB), best of 2: "
        f"{'mosaic digest OK' if b_ok else 'MOSAIC DIFFERS'}"
    )
    for name, r in b_runs.items():
        wall, cpus = min(r)
        print(
            f"tfrecord_io full read {name:<10} {wall:7.3f} s {size_b / MB / wall:6.0f} MB/s  "
            f"CPU/wall {cpus / wall:.2f} (others {b_others[name]:.2f})"
        )

    # -- 3: random windows in B ------------------------------------------------------------
    ds = tfrecord_io.open(folder_b, cache_size=0)
    _, t_index, c_index = timed(ds.build_index)
    n_points = sum(len(i._points) for i in ds._reader._indexes)
    lat = []
    bad = 0
    for col, row, expect in meta_b["windows"][: args.windows]:
        arr, wall, _ = timed(lambda col=col, row=row: ds.read(1, window=Window(col, row, 256, 256)))
        lat.append(wall)
        bad += window_digest(arr) != expect
    ds.close()
    lat_ms = sorted(x * 1000 for x in lat)
    med_ms = statistics.median(lat_ms)
    p90_ms = lat_ms[min(len(lat_ms) - 1, round(0.9 * (len(lat_ms) - 1)))]
    print()
    print(
        f"## Export B ({size_b / MB:.0f} MB uncompressed, {len(paths_b)} shard(s)): index, then "
        f"{len(lat)} random unaligned 256x256 windows, cache_size=0"
    )
    print(
        f"build_index(): {t_index:.2f} s ({size_b / MB / t_index:.0f} MB/s, CPU/wall "
        f"{c_index / t_index:.2f}), {n_points} seek points"
    )
    print(
        f"window read: median {med_ms:.1f} ms, p90 {p90_ms:.1f} ms, min {lat_ms[0]:.1f} ms, "
        f"max {lat_ms[-1]:.1f} ms; {len(lat) - bad}/{len(lat)} windows match the generator"
    )

    # -- 4: memory ---------------------------------------------------------------------------
    mem_runs = [
        ("A blocks, cache 256 MiB (default)", folder_a, "blocks", 256 * MiB, meta_a),
        ("A blocks, cache 32 MiB", folder_a, "blocks", 32 * MiB, meta_a),
        ("A full ds.read(), for reference", folder_a, "full", 256 * MiB, meta_a),
        ("B blocks, cache 256 MiB (default)", folder_b, "blocks", 256 * MiB, meta_b),
        ("B blocks, cache 0", folder_b, "blocks", 0, meta_b),
    ]
    print()
    print(
        "## Peak memory (subprocess; peak RSS minus baseline after imports+open; VmHWM, as the "
        "child's ru_maxrss inherits this process's peak through exec)"
    )
    print(
        f"{'run':<36} {'export MB':>9} {'peak+ MB':>9} {'ratio':>6} {'time s':>7} "
        f"{'MB/s':>6}  check"
    )
    mem_results: dict[str, float] = {}
    mem_points: dict[str, int] = {}
    for label, folder, mode_, cache, meta in mem_runs:
        r = run_mem_probe(folder, mode_, cache)
        if r["peak_hwm"] is not None:
            delta = (r["peak_hwm"] - r["baseline_hwm"]) / MB
        else:  # ru_maxrss may carry the parent's peak: see mem_probe.py
            delta = (r["peak"] - r["baseline"]) / MB
        ok = np.allclose(r["band_sums"], meta["band_sums"], rtol=1e-9, atol=1e-3)
        mem_results[label] = delta
        mem_points[label] = r["seek_points"]
        size = meta["uncompressed_bytes"]
        print(
            f"{label:<36} {size / MB:9.0f} {delta:9.1f} {delta * MB / size:6.2f} "
            f"{r['seconds']:7.2f} {size / MB / r['seconds']:6.0f}  "
            f"{'band sums OK' if ok else 'BAND SUMS DIFFER'} ({r['reads']} reads, "
            f"{r['seek_points']} seek points)"
        )

    # -- summary -----------------------------------------------------------------------------
    def med(name: str) -> float:
        return statistics.median(w for w, _ in runs[name])

    P, S, G, T = (
        "tfrecord_io ds.read() (workers=2)",
        "tfrecord_io read_all(workers=1)",
        "isal gunzip, 1 thread",
        "tf.data + parse_single_example",
    )
    ours2, ours1, gz = best(P)[0], best(S)[0], best(G)[0]
    print()
    print("## Ratios against targets (verdict on the best-of-rounds ratio; median ratio beside it)")
    print(f"{'measure':<52} {'value':>8} {'median':>8} {'target':>8}  verdict")
    rows = []
    if T in runs:
        tfw = best(T)[0]
        rows.append(
            ("1. full read / tf.data pipeline (workers=2)", ours2 / tfw, med(P) / med(T), 0.4)
        )
        rows.append(
            ("1. full read / tf.data pipeline (workers=1)", ours1 / tfw, med(S) / med(T), 0.4)
        )
    rows.append(("2. full read / isal gunzip (workers=2)", ours2 / gz, med(P) / med(G), 1.25))
    rows.append(("2. full read / isal gunzip (workers=1)", ours1 / gz, med(S) / med(G), 1.25))
    rows.append(("3. random 256x256 window, median ms (B)", med_ms, med_ms, 50.0))
    for label, value, median_value, target in rows:
        print(
            f"{label:<52} {value:8.3f} {median_value:8.3f} {target:8.2f}  {verdict(value, target)}"
        )
    p90_line = f"3. random window p90 ms (B): {p90_ms:.1f}; build_index {t_index:.2f} s"
    print(p90_line)
    default_a = mem_results["A blocks, cache 256 MiB (default)"]
    default_b = mem_results["B blocks, cache 256 MiB (default)"]
    # tile cache + seek points (a zlib state and its 32 KiB window, ~45 kB each) + 32 MB of
    # buffers (inflate chunks of 4 MiB, the current record, numpy/rasterio working memory)
    bound = (256 * MiB + mem_points["B blocks, cache 256 MiB (default)"] * 45e3) / MB + 32
    print(
        f"4. block-by-block peak: A {default_a:.0f} MB for {size_a / MB:.0f} MB "
        f"({default_a * MB / size_a:.2f}x), B {default_b:.0f} MB for {size_b / MB:.0f} MB "
        f"({default_b * MB / size_b:.2f}x); bound cache + seek points + 32 MB = {bound:.0f} MB: "
        f"{verdict(max(default_a, default_b), bound)}"
    )
    print(
        f"parallel speed-up of the full read (workers=1 / workers=2): {ours1 / ours2:.2f}x "
        f"on {os.cpu_count()} cores"
    )
    print(
        f"total benchmark time: {time.perf_counter() - t_start:.0f} s; load avg now "
        f"{os.getloadavg()[0]:.2f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
