"""TRANSLATE benchmark: an export to a tiled GeoTIFF, by three routes, side by side in one run.

Run from the repository root (the library is imported from PYTHONPATH)::

    PYTHONPATH=. .venv/bin/python bench/bench_translate.py            # full (~160 MB export A)
    PYTHONPATH=. .venv/bin/python bench/bench_translate.py --quick    # smoke run (~32 MB)
    PYTHONPATH=. .venv/bin/python bench/bench_translate.py --out ../wt-bench/bench/out

Export A is generated once under ``--out/{full,quick}/A`` (the same spec and place as
``bench_read.py``'s, so either benchmark reuses the other's data); outputs go to ``--work``.
Each route writes the same GeoTIFF (``TILED=YES BLOCKXSIZE=256 BLOCKYSIZE=256`` with
``COMPRESS=DEFLATE``, and again with no compression to separate encoding from reading), in a
child process of its own, so that each has its wall time, CPU time (``os.wait4``) and peak RSS
(``/usr/bin/time``):

- ``gdal VRT``  Debian's ``gdal_translate`` on the VRT of ``tfrecord_io.build_vrt`` (the pixel
  function runs in Debian's python3, trusted by ``gdal_env()``, package on ``PYTHONPATH`` through
  ``gdal_pythonpath()``);
- ``CLI``       ``tfrecord-io translate SRC DST -co ...`` (this tree's ``cli.main``);
- ``library``   ``tfrecord_io.gdal.translate.translate(export, dst, creation_options=...)``
  called in a fresh interpreter; the call alone is also timed (``call s``) to show the
  start-up share;
- ``gdal TIFF``  reference: ``gdal_translate`` of the same mosaic stored as a plain, uncompressed
  tiled GeoTIFF (prepared once), i.e. what GDAL does on native data.

Three read-only probes (``translate_probe.py``) split the library's reading cost: ``ds.read()``
of the whole mosaic against reading it one row of patches at a time as ``translate()`` does, with
the default patch cache and with ``cache_size=0``.

Runs are interleaved round by round (every route once per round) and the best of the rounds is
kept. Extra variants (``GDAL_CACHEMAX 512``, ``-co NUM_THREADS=2``) are timed in the same rounds
and reported separately. Every output is read back and its pixel checksum compared with the
digest the generator recorded for the mosaic.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from gen_export import Spec, generate  # noqa: E402 - after the sys.path set-up

MB = 1e6
MiB = 1 << 20
GDAL_TRANSLATE = shutil.which("gdal_translate", path="/usr/bin:/bin") or "gdal_translate"
LIB_CHILD = """
import json, sys, time
t0 = time.perf_counter()
from tfrecord_io.gdal.translate import translate
t1 = time.perf_counter()
translate(sys.argv[1], sys.argv[2], creation_options=json.loads(sys.argv[3]), overwrite=True)
t2 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "call": t2 - t1}))
"""
CLI_CHILD = "from tfrecord_io.cli import main; main()"


def spec_a(quick: bool) -> Spec:
    bands = ("B2", "B3", "B4")
    if quick:
        # 32 patches x 3 bands x 288 x 288 float32 = 32 MB, 12 MiB shards -> 3 shards
        return Spec("exportA", bands, 256, 32, 8, 4, 12 * MiB, "zlib6")
    # 160 patches x 3 bands x 288 x 288 float32 = 159 MB, 64 MiB shards -> 3 shards
    # (identical to bench_read.py's export A, so the data is shared)
    return Spec("exportA", bands, 256, 32, 16, 10, 64 * MiB, "zlib6")


def creation(compress: str | None, threads: bool = False) -> dict[str, str]:
    co = {"TILED": "YES", "BLOCKXSIZE": "256", "BLOCKYSIZE": "256", "COMPRESS": compress or "NONE"}
    if threads:
        co["NUM_THREADS"] = "2"
    return co


def co_args(co: dict[str, str]) -> list[str]:
    return [a for k, v in co.items() for a in ("-co", f"{k}={v}")]


def warm(paths: list[str]) -> None:
    """Read the files once so every timed run reads from the page cache."""
    for p in paths:
        with open(p, "rb") as f:
            while f.read(16 * MiB):
                pass


def system_busy() -> float:
    """CPU seconds all processes have spent busy since boot (from /proc/stat)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


@dataclass
class Run:
    wall: float
    cpu: float
    rss_mb: float
    others: float  # cores the rest of the machine kept busy meanwhile
    call: float | None = None  # library call alone (inside the child)


def run_child(argv: list[str], env: dict[str, str], rss_file: str) -> tuple[Run, str]:
    """Run argv to completion; return its wall, CPU, peak RSS and its stdout.

    The peak RSS comes from GNU time (``%M``), not from this process's ``wait4``: Linux records
    the high-water mark of the address space a child leaves at ``exec``, and with ``vfork``
    (which subprocess uses) that is this (big) Python process, so ``wait4`` would report at
    least our own RSS. ``/usr/bin/time`` is small, so its child's figure is the child's own.
    """
    b0, t0 = system_busy(), time.perf_counter()
    argv = ["/usr/bin/time", "-f", "%M", "-o", rss_file, *argv]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    # Collect the child with wait4 to get its own rusage; pipes are small (quiet runs).
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    out, err = proc.stdout.read().decode(), proc.stderr.read().decode()  # type: ignore[union-attr]
    if proc.returncode:
        raise RuntimeError(f"{argv[0]} failed ({proc.returncode}):\n{' '.join(argv)}\n{err}{out}")
    cpu = usage.ru_utime + usage.ru_stime
    others = max(0.0, (system_busy() - b0 - cpu) / wall)
    with open(rss_file) as f:
        rss_kb = int(f.read().split()[-1])
    return Run(wall, cpu, rss_kb / 1024, others), out


@dataclass
class Route:
    name: str
    group: str  # "main" (the comparison) or "extra"
    compress: str | None
    argv: list[str]
    env: dict[str, str]
    dst: str
    runs: list[Run] = field(default_factory=list)

    def once(self) -> Run:
        if os.path.exists(self.dst):
            os.remove(self.dst)
        run, out = run_child(self.argv, self.env, self.dst + ".rss")
        if self.name.startswith(("library", "read ")):
            run.call = json.loads(out.strip().splitlines()[-1])["call"]
        self.runs.append(run)
        return run

    @property
    def best(self) -> Run:
        return min(self.runs, key=lambda r: r.wall)


def digest_of(path: str) -> tuple[str, tuple[int, ...], dict]:
    import numpy as np
    import rasterio

    with rasterio.open(path) as ds:
        data = ds.read()
        info = {
            "blocks": ds.block_shapes[0],
            "compress": ds.compression.name if ds.compression else "none",
            "interleave": ds.interleaving.name if ds.interleaving else "?",
            "descriptions": ds.descriptions,
        }
    h = hashlib.blake2b(np.ascontiguousarray(data, dtype=np.float32), digest_size=16)
    return h.hexdigest(), data.shape, info


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small export (~32 MB) for a smoke run")
    ap.add_argument(
        "--out", default=os.path.join(HERE, "out"), help="data folder (export in OUT/MODE/A)"
    )
    ap.add_argument(
        "--work",
        default=None,
        help="where the VRT, the reference TIFF and outputs go (default bench/out/MODE/translate)",
    )
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (best kept)")
    ap.add_argument("--no-extras", action="store_true", help="skip the extra variants")
    args = ap.parse_args()

    import tfrecord_io
    from tfrecord_io.gdal.translate import translate
    from tfrecord_io.gdal.vrt import build_vrt, gdal_env, gdal_pythonpath

    mode = "quick" if args.quick else "full"
    folder = os.path.join(os.path.abspath(args.out), mode, "A")
    work = os.path.abspath(args.work or os.path.join(HERE, "out", mode, "translate"))
    os.makedirs(work, exist_ok=True)
    py = sys.executable
    tree = os.path.dirname(os.path.dirname(os.path.abspath(tfrecord_io.__file__)))

    gdal_version = subprocess.run(
        [GDAL_TRANSLATE, "--version"], capture_output=True, text=True
    ).stdout.strip()
    print(
        f"TRANSLATE benchmark ({mode}) - {platform.python_implementation()} "
        f"{platform.python_version()}, {os.cpu_count()} cores, {platform.machine()}"
    )
    print(f"  library: {os.path.dirname(tfrecord_io.__file__)}")
    print(
        f"  command-line GDAL: {GDAL_TRANSLATE} ({gdal_version}); "
        "pixel function in /usr/bin/python3"
    )
    import rasterio

    print(
        f"  in-venv rasterio {rasterio.__version__} (GDAL {rasterio.__gdal_version__}) for "
        "the CLI and library routes"
    )

    # -- data --------------------------------------------------------------------------------
    meta = generate(spec_a(args.quick), folder, log=lambda m: print(m))
    shards = [os.path.join(folder, s) for s in meta["shards"]]
    bands, height, width = meta["mosaic_shape"]
    mosaic_bytes = bands * height * width * 4
    print(
        f"  export A: {folder}\n"
        f"    {len(shards)} gzip shards, {meta['compressed_bytes'] / MB:.1f} MB on disk, "
        f"{meta['uncompressed_bytes'] / MB:.1f} MB of records; mosaic {bands} x {height} x "
        f"{width} float32 = {mosaic_bytes / MB:.1f} MB"
    )
    expected = meta["mosaic_blake2b"]

    vrt = build_vrt(folder, os.path.join(work, "exportA.vrt"))
    pypath = gdal_pythonpath(os.path.join(work, "gdal-python"))
    reference = os.path.join(work, "reference-plain.tif")
    if not os.path.exists(reference) or digest_of(reference)[0] != expected:
        t0 = time.perf_counter()
        translate(folder, reference, creation_options=creation(None), overwrite=True)
        print(f"  prepared the reference plain tiled GeoTIFF in {time.perf_counter() - t0:.1f} s")
    print(f"  VRT: {vrt}\n  reference GeoTIFF (uncompressed, tiled 256): {reference}")

    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("GDAL_", "PYTHON"))}
    gdal_vrt_env = {**base_env, **gdal_env(), "PYTHONPATH": pypath}
    lib_env = {**base_env, "PYTHONPATH": tree}
    gdal_env_plain = dict(base_env)

    routes: list[Route] = []

    def add(name: str, group: str, compress: str | None, make) -> None:
        dst = os.path.join(
            work, f"{name.replace(' ', '_').replace('=', '')}-{compress or 'none'}.tif"
        )
        argv, env = make(dst)
        routes.append(Route(name, group, compress, argv, env, dst))

    for compress in ("DEFLATE", None):
        co = creation(compress)
        add(
            "gdal VRT",
            "main",
            compress,
            lambda d, co=co: (
                [GDAL_TRANSLATE, "-q", "-of", "GTiff", *co_args(co), vrt, d],
                gdal_vrt_env,
            ),
        )
        add(
            "CLI",
            "main",
            compress,
            lambda d, co=co: (
                [
                    py,
                    "-c",
                    CLI_CHILD,
                    "translate",
                    folder,
                    d,
                    "-of",
                    "GTiff",
                    *co_args(co),
                    "-q",
                    "--overwrite",
                ],
                lib_env,
            ),
        )
        add(
            "library",
            "main",
            compress,
            lambda d, co=co: ([py, "-c", LIB_CHILD, folder, d, json.dumps(co)], lib_env),
        )
        add(
            "gdal TIFF",
            "main",
            compress,
            lambda d, co=co: (
                [GDAL_TRANSLATE, "-q", "-of", "GTiff", *co_args(co), reference, d],
                gdal_env_plain,
            ),
        )
    probe = os.path.join(HERE, "translate_probe.py")
    for mode, label in (
        ("whole", "read ds.read() whole"),
        ("strips", "read strips (cache)"),
        ("strips0", "read strips cache=0"),
    ):
        add(label, "probe", None, lambda d, m=mode: ([py, probe, m, folder], lib_env))
    if not args.no_extras:
        co = creation("DEFLATE")
        cot = creation("DEFLATE", threads=True)
        add(
            "gdal VRT CACHEMAX=512",
            "extra",
            "DEFLATE",
            lambda d: (
                [
                    GDAL_TRANSLATE,
                    "-q",
                    "--config",
                    "GDAL_CACHEMAX",
                    "512",
                    "-of",
                    "GTiff",
                    *co_args(co),
                    vrt,
                    d,
                ],
                gdal_vrt_env,
            ),
        )
        add(
            "gdal VRT NUM_THREADS=2",
            "extra",
            "DEFLATE",
            lambda d: ([GDAL_TRANSLATE, "-q", "-of", "GTiff", *co_args(cot), vrt, d], gdal_vrt_env),
        )
        add(
            "library NUM_THREADS=2",
            "extra",
            "DEFLATE",
            lambda d: ([py, "-c", LIB_CHILD, folder, d, json.dumps(cot)], lib_env),
        )
        add(
            "gdal TIFF NUM_THREADS=2",
            "extra",
            "DEFLATE",
            lambda d: (
                [GDAL_TRANSLATE, "-q", "-of", "GTiff", *co_args(cot), reference, d],
                gdal_env_plain,
            ),
        )

    # -- timed rounds --------------------------------------------------------------------------
    warm([*shards, reference])
    print(
        f"\n{args.rounds} interleaved rounds of {len(routes)} runs "
        "(wall s / CPU s / peak RSS MB / other cores busy):"
    )
    for r in range(args.rounds):
        order = routes if r % 2 == 0 else routes[::-1]  # alternate order against drift
        line = []
        for route in order:
            run = route.once()
            line.append(f"{route.name}/{(route.compress or 'none')[:4]} {run.wall:.2f}")
        print(f"  round {r + 1}: " + ", ".join(line))

    # -- check pixels --------------------------------------------------------------------------
    print("\npixel check (blake2b of the read-back float32 arrays vs the generator's digest):")
    ok = True
    for route in routes:
        if route.group == "probe":
            continue
        got, shape, info = digest_of(route.dst)
        same = got == expected and tuple(shape) == (bands, height, width)
        ok &= same
        print(
            f"  {route.name:<24} {route.compress or 'NONE':<8} {got}  "
            f"{'OK' if same else 'MISMATCH'}  blocks {info['blocks']} {info['compress']} "
            f"{info['interleave']} {os.path.getsize(route.dst) / MB:6.1f} MB"
        )
    print(f"  expected{'':<26}{expected}  -> {'all identical' if ok else 'OUTPUTS DIFFER'}")

    # -- table ---------------------------------------------------------------------------------
    def row(route: Route) -> str:
        b = route.best
        call = f"{b.call:7.2f}" if b.call is not None else f"{'':7}"
        size = f"{os.path.getsize(route.dst) / MB:.1f}" if os.path.exists(route.dst) else "-"
        compress = "-" if route.group == "probe" else route.compress or "NONE"
        return (
            f"  {route.name:<24} {compress:<8} {b.wall:7.2f} {call} "
            f"{mosaic_bytes / MB / b.wall:7.1f} {b.cpu:7.2f} {b.rss_mb:8.0f} "
            f"{size:>8} {b.others:6.2f}"
        )

    header = (
        f"  {'route':<24} {'compress':<8} {'wall s':>7} {'call s':>7} {'MB/s':>7} "
        f"{'CPU s':>7} {'RSS MB':>8} {'out MB':>8} {'others':>6}"
    )
    print(
        f"\nbest of {args.rounds} (MB/s of the {mosaic_bytes / MB:.1f} MB uncompressed mosaic; "
        "wall = whole process incl. start-up;\n call s = translate() alone in the library "
        "child; others = cores busy with other work meanwhile):"
    )
    print(header)
    for compress in ("DEFLATE", None):
        for route in routes:
            if route.group == "main" and route.compress == compress:
                print(row(route))
    extras = [r for r in routes if r.group == "extra"]
    if extras:
        print("  extra variants (same DEFLATE options plus the named setting):")
        for route in extras:
            print(row(route))
    probes = [r for r in routes if r.group == "probe"]
    print("  read-only probes of the library (no output file; call s = the reads alone):")
    for route in probes:
        print(row(route))

    def best(name: str, compress: str | None) -> Run:
        return next(r.best for r in routes if r.name == name and r.compress == compress)

    print("\nratios (wall, best of rounds; > 1 = slower than the library):")
    for compress in ("DEFLATE", None):
        lib = best("library", compress)
        vrt_r, cli, ref = (best(n, compress) for n in ("gdal VRT", "CLI", "gdal TIFF"))
        print(
            f"  {compress or 'NONE':<8} VRT route / library {vrt_r.wall / lib.wall:5.2f}   "
            f"CLI / library {cli.wall / lib.wall:5.2f}   "
            f"library / gdal on plain TIFF {lib.wall / ref.wall:5.2f}   "
            f"(library call alone {lib.call:.2f} s of {lib.wall:.2f} s)"
        )
    for name in ("gdal VRT", "CLI", "library", "gdal TIFF"):
        d, n = best(name, "DEFLATE"), best(name, None)
        print(
            f"  encoding share, {name:<10}: DEFLATE {d.wall:6.2f} s - NONE {n.wall:6.2f} s "
            f"= {d.wall - n.wall:5.2f} s"
        )
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
