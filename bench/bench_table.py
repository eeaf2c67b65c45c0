"""Table benchmark: tfrecord_io's table reader and writer against TensorFlow, as ratios.

Run from the repository root (the library is imported from PYTHONPATH)::

    PYTHONPATH=. .venv/bin/python bench/bench_table.py            # 1 M scalar rows, 100 k patches
    PYTHONPATH=. .venv/bin/python bench/bench_table.py --quick    # smoke run

Two tables, written once under ``--out`` (default ``bench/out/table``):

- ``scalars``: ``--rows`` rows (1 M) x 10 float columns, one float each (what Earth Engine writes
  for a sampled FeatureCollection);
- ``patches``: ``--patch-rows`` rows of 33 x 33 patches in 6 bands (``neighborhoodToArray`` +
  ``sampleRegions`` with ``ee.Kernel.square(16)``): 2.6 GB inflated, about 10 minutes in all
  (TensorFlow writing it is most of that).

Measured in one run, best of ``--repeat`` rounds, each pair interleaved so load hits both alike:

1. reading each table into numpy: ``open_table(path).to_numpy()`` against TensorFlow's
   ``TFRecordDataset(path, "GZIP").batch(n).map(parse_example)`` with the numpy batches
   concatenated; both results are checked equal;
2. writing: ``write_table`` against TensorFlow writing the same Examples
   (``tf.train.Example`` per row, ``TFRecordWriter`` with GZIP);
3. ``iter_batches`` peak memory (tracemalloc) as the scalar table grows 4x.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import tracemalloc

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # before TensorFlow is imported

import numpy as np
import tensorflow as tf

import tfrecord_io

SCALARS = [f"c{i}" for i in range(10)]
BANDS = ["B2", "B3", "B4", "B8", "B11", "B12"]
SIDE = 33


def make_scalars(rows: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {name: rng.random(rows, dtype=np.float32) for name in SCALARS}


def make_patches(rows: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    # Reflectances with 4 significant digits, so gzip compresses them about as it does real data.
    return {
        b: (rng.integers(0, 10000, (rows, SIDE, SIDE)) / 10000).astype(np.float32) for b in BANDS
    }


def tf_write(data: dict[str, np.ndarray], path: str) -> float:
    start = time.perf_counter()
    rows = len(next(iter(data.values())))
    flat = {k: v.reshape(rows, -1) for k, v in data.items()}
    with tf.io.TFRecordWriter(path, "GZIP") as writer:
        for i in range(rows):
            feature = {
                k: tf.train.Feature(float_list=tf.train.FloatList(value=v[i]))
                for k, v in flat.items()
            }
            writer.write(
                tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()
            )
    return time.perf_counter() - start


def ours_write(data: dict[str, np.ndarray], path: str) -> float:
    start = time.perf_counter()
    tfrecord_io.write_table(data, path, overwrite=True)
    return time.perf_counter() - start


def tf_read(path: str, shapes: dict[str, list[int]], batch: int) -> tuple[float, dict]:
    spec = {k: tf.io.FixedLenFeature(s, tf.float32) for k, s in shapes.items()}
    start = time.perf_counter()
    dataset = (
        tf.data.TFRecordDataset(path, "GZIP")
        .batch(batch)
        .map(lambda r: tf.io.parse_example(r, spec))
    )
    parts: dict[str, list[np.ndarray]] = {k: [] for k in spec}
    for values in dataset.as_numpy_iterator():
        for k, v in values.items():
            parts[k].append(v)
    out = {k: np.concatenate(v) for k, v in parts.items()}
    return time.perf_counter() - start, out


def ours_read(path: str) -> tuple[float, dict]:
    start = time.perf_counter()
    out = tfrecord_io.open_table(path).to_numpy()
    return time.perf_counter() - start, out


def bench_table(name: str, data: dict, out: str, batch: int, repeat: int) -> dict:
    ours_path = os.path.join(out, f"{name}-ours.tfrecord.gz")
    tf_path = os.path.join(out, f"{name}-tf.tfrecord.gz")
    shapes = {k: list(v.shape[1:]) for k, v in data.items()}
    writes = {"ours": [], "tf": []}
    reads = {"ours": [], "tf": []}
    for _ in range(repeat):
        writes["ours"].append(ours_write(data, ours_path))
        writes["tf"].append(tf_write(data, tf_path))
    for _ in range(repeat):
        seconds, ours = ours_read(tf_path)
        reads["ours"].append(seconds)
        seconds, theirs = tf_read(tf_path, shapes, batch)
        reads["tf"].append(seconds)
    for k in data:
        assert ours[k].tobytes() == theirs[k].tobytes() == data[k].tobytes(), k
    _, ours_of_ours = ours_read(ours_path)
    assert all(ours_of_ours[k].tobytes() == data[k].tobytes() for k in data)
    inflated = sum(v.nbytes for v in data.values())
    result = {
        "rows": len(next(iter(data.values()))),
        "values_mb": round(inflated / 1e6, 1),
        "file_mb_tf": round(os.path.getsize(tf_path) / 1e6, 1),
        "file_mb_ours": round(os.path.getsize(ours_path) / 1e6, 1),
        "read_s": {k: round(min(v), 3) for k, v in reads.items()},
        "write_s": {k: round(min(v), 3) for k, v in writes.items()},
    }
    result["read_ratio"] = round(result["read_s"]["ours"] / result["read_s"]["tf"], 3)
    result["write_ratio"] = round(result["write_s"]["ours"] / result["write_s"]["tf"], 3)
    return result


def bench_memory(rows: int, out: str, batch: int) -> list[dict]:
    results = []
    for fraction in (4, 2, 1):
        n = rows // fraction
        path = os.path.join(out, f"memory-{n}.tfrecord.gz")
        tfrecord_io.write_table(make_scalars(n), path, overwrite=True)
        table = tfrecord_io.open_table(path)
        tracemalloc.start()
        count = 0
        for values in table.iter_batches(batch):
            count += len(values["c0"])
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert count == n
        results.append(
            {"rows": n, "values_mb": round(n * 40 / 1e6, 1), "peak_mb": round(peak / 1e6, 2)}
        )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--patch-rows", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="100 k scalar rows, 2 k patches")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "out", "table"))
    args = parser.parse_args()
    if args.quick:
        args.rows, args.patch_rows, args.repeat = 100_000, 2_000, 1
    os.makedirs(args.out, exist_ok=True)
    report = {
        "machine": f"{platform.node()} {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}",
        "python": sys.version.split()[0],
        "tensorflow": tf.__version__,
        "batch": args.batch,
        "scalars": bench_table(
            "scalars", make_scalars(args.rows), args.out, args.batch, args.repeat
        ),
        "patches": bench_table(
            "patches", make_patches(args.patch_rows), args.out, args.batch // 16, args.repeat
        ),
        "iter_batches_memory": bench_memory(args.rows, args.out, args.batch),
        "load_after": round(os.getloadavg()[0], 1),
    }
    print(json.dumps(report, indent=2))
    with open(os.path.join(args.out, "bench_table.json"), "w") as f:
        json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
