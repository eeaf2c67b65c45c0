"""SEQUENCE benchmark: a sequence export (one SequenceExample per pixel), decoded and written.

Run from the repository root::

    PYTHONPATH=. .venv/bin/python bench/bench_sequence.py [--size 768] [--out DIR]

Side by side in one run, on the same data (3 float32 bands: a context scalar ``s`` and a
feature list ``A`` of 2 steps; patches 256, kernel 1, gzip):

- decoding one patch's records: the general per-record decoder (the path before the columnar
  one, ``BandLayout._fill_pixel`` per record) against ``BandLayout.decode_sequence``;
- encoding one patch: the general per-pixel encoder against ``encode._sequence_payloads``;
- a full read ``tfrecord_io.open(...).read()`` against TensorFlow's pipeline
  (``TFRecordDataset`` + ``parse_single_sequence_example`` mapped on all cores + numpy
  reassembly), records per second;
- writing the export with ``tfrecord_io.open(..., "w", sequence_data=True)``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import time

import numpy as np
from affine import Affine

import tfrecord_io
from tfrecord_io.format import example as wire
from tfrecord_io.format.sequence import encode_sequence_example
from tfrecord_io.image import encode

PATCH = 256


def timed(fn, rounds: int = 3) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(rounds):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def make_raster(size: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    return (rng.random((3, size, size), dtype=np.float32) * 1e4).round() / 1e4


def write_export(arr: np.ndarray, folder: str) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(os.path.dirname(folder), exist_ok=True)
    with tfrecord_io.open(
        folder,
        "w",
        width=arr.shape[2],
        height=arr.shape[1],
        count=3,
        dtype="float32",
        crs="EPSG:32610",
        transform=Affine(30, 0, 500000, 0, -30, 4200000),
        file_name_prefix="seq",
        patch_dimensions=[PATCH, PATCH],
        sequence_data=True,
        tensor_depths={"A": 2},
        max_file_size=64 << 20,
    ) as dst:
        dst.descriptions = ("s", "A_0", "A_1")
        dst.write(arr)


def tf_read(folder: str, shape: tuple[int, int, int]) -> np.ndarray:
    import tensorflow as tf

    files = sorted(os.path.join(folder, f) for f in os.listdir(folder) if ".tfrecord" in f)
    context = {"s": tf.io.FixedLenFeature([], tf.float32)}
    lists = {"A": tf.io.FixedLenSequenceFeature([], tf.float32)}

    def parse(record):
        c, s = tf.io.parse_single_sequence_example(record, context, lists)
        return tf.concat([c["s"][tf.newaxis], s["A"]], 0)

    data = tf.data.TFRecordDataset(files, compression_type="GZIP")
    data = data.map(parse, num_parallel_calls=tf.data.AUTOTUNE).batch(PATCH * PATCH)
    bands, _, width = shape
    out = np.empty(shape, np.float32)
    per_row = width // PATCH
    for n, batch in enumerate(data.as_numpy_iterator()):
        r, c = divmod(n, per_row)
        out[:, r * PATCH : (r + 1) * PATCH, c * PATCH : (c + 1) * PATCH] = batch.T.reshape(
            bands, PATCH, PATCH
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=768, help="raster width and height (pixels)")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "out", "sequence"))
    args = ap.parse_args()
    arr = make_raster(args.size)
    folder = os.path.join(os.path.abspath(args.out), "seq")
    records = args.size * args.size
    print(f"SEQUENCE benchmark: {arr.shape} float32, {records} records, cores {os.cpu_count()}")
    print(f"  load average before: {os.getloadavg()}")

    t_write, _ = timed(lambda: write_export(arr, folder), rounds=1)

    with tfrecord_io.open(folder) as ds:
        layout = ds._reader.layout
        first = list(ds._reader.stream.iter_payloads())[: PATCH * PATCH]
        batch = [(payload, "bench") for _, _, _, payload in first]
        specs = layout.features

        def general() -> tuple[np.ndarray, ...]:
            out = tuple(np.empty((f.depth, len(batch)), f.dtype) for f in specs)
            for pixel, (payload, where) in enumerate(batch):
                layout._fill_pixel(out, pixel, payload, where)
            return out

        t_general, old = timed(general, rounds=1)
        t_columns, new = timed(lambda: layout.decode_sequence(batch))
        assert all(np.array_equal(a.reshape(b.shape), b) for a, b in zip(old, new, strict=True))

    plans = [
        encode.FeaturePlan("s", "float", (0,)),
        encode.FeaturePlan("A", "float", (1, 2), array=True),
    ]
    tiles = [arr[0:1, :PATCH, :PATCH], arr[1:3, :PATCH, :PATCH]]

    def encode_general() -> list[bytes]:
        out = []
        for p in range(PATCH * PATCH):
            r, c = divmod(p, PATCH)
            context = {"s": wire.Feature("float", tiles[0][:, r, c].copy())}
            lists = {"A": [wire.Feature("float", tiles[1][d, r, c : c + 1].copy()) for d in (0, 1)]}
            out.append(encode_sequence_example(context, lists))
        return out

    t_enc_general, enc_old = timed(encode_general, rounds=1)
    t_enc_columns, enc_new = timed(lambda: encode._sequence_payloads(plans, tiles))
    assert enc_old == enc_new

    def ours() -> np.ndarray:
        with tfrecord_io.open(folder) as ds:
            return ds.read()

    t_ours, got = timed(ours)
    t_tf, want = timed(lambda: tf_read(folder, arr.shape), rounds=2)
    assert np.array_equal(got, arr)
    assert np.array_equal(want, arr)

    n = PATCH * PATCH
    print(f"  load average after: {os.getloadavg()}")
    print("decode one patch (65536 records):")
    print(f"  general per record {n / t_general:10.0f} records/s ({t_general:.2f} s)")
    print(f"  columnar           {n / t_columns:10.0f} records/s ({t_columns:.3f} s)")
    print(f"  speed-up           {t_general / t_columns:10.1f} x   (goal >= 10)")
    print("encode one patch:")
    print(f"  general per pixel  {n / t_enc_general:10.0f} records/s ({t_enc_general:.2f} s)")
    print(f"  columnar           {n / t_enc_columns:10.0f} records/s ({t_enc_columns:.3f} s)")
    print(f"  speed-up           {t_enc_general / t_enc_columns:10.1f} x")
    print("full read of the export (gzip, all records):")
    print(f"  tfrecord_io read() {records / t_ours:10.0f} records/s ({t_ours:.2f} s)")
    print(f"  TensorFlow         {records / t_tf:10.0f} records/s ({t_tf:.2f} s)")
    print(f"  ratio ours / TF    {t_ours / t_tf:10.2f}     (goal <= 0.5)")
    print(f"write the export     {records / t_write:10.0f} records/s ({t_write:.2f} s)")


if __name__ == "__main__":
    main()
