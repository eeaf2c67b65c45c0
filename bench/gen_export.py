"""Make synthetic Earth Engine-like TFRecord image exports quickly, for the benchmarks.

Content is map-like and compresses like real imagery: several octaves of smooth fields (bilinear
upsampling of coarse random grids), a little pixel noise, values quantised to 1e-4 (reflectance
stored as float, as EE exports scaled integers), and patches of "water" at ``defaultValue`` 0.
The field is made larger than the exported region by the kernel margin on every side, so tile
margins carry the neighbours' real pixels as Earth Engine's do; each tile is a slice of it.

Records are encoded with ``tfrecord_io.format.example.encode_example`` and framed with
``tfrecord_io.format.records.frame_record``; shards are cut at ``max_file_size`` uncompressed
bytes like EE's ``maxFileSize`` and gzipped either with zlib level 6 (``RecordWriter``, like a
Java writer) or with isal (fast). A ``PREFIX-meta.json`` next to the export records what a
correct reader must return (the mosaic's per-band sums and a hash of its bytes), so a rerun can
reuse the files.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from affine import Affine

from tfrecord_io.format.example import encode_example, float_feature
from tfrecord_io.format.records import RECORD_OVERHEAD, RecordWriter, frame_record
from tfrecord_io.image.mixer import Mixer

GEN_VERSION = 2  # bump when the content or layout changes, to regenerate cached exports


@dataclass(frozen=True)
class Spec:
    """What to generate."""

    prefix: str
    bands: tuple[str, ...]
    patch: int
    kernel: int
    patches_per_row: int
    patch_rows: int
    max_file_size: int
    compressor: str  # "zlib6" (RecordWriter) or "isal"
    seed: int = 0

    @property
    def margin(self) -> int:
        return self.kernel // 2

    @property
    def tile(self) -> int:
        return self.patch + 2 * self.margin

    @property
    def total(self) -> int:
        return self.patches_per_row * self.patch_rows

    def key(self) -> dict:
        return json.loads(json.dumps({**self.__dict__, "gen_version": GEN_VERSION}))


def _upsample(coarse: np.ndarray, height: int, width: int, step: int) -> np.ndarray:
    """Bilinear upsampling of ``coarse`` by ``step`` to ``(height, width)``, in float32."""

    def axis(n: int) -> tuple[np.ndarray, np.ndarray]:
        pos = np.arange(n, dtype=np.float32) / step
        i0 = np.floor(pos).astype(np.intp)
        return i0, (pos - i0).astype(np.float32)

    r0, rw = axis(height)
    c0, cw = axis(width)
    rows = coarse[r0] * (1 - rw)[:, None] + coarse[r0 + 1] * rw[:, None]  # (height, cw)
    return rows[:, c0] * (1 - cw)[None, :] + rows[:, c0 + 1] * cw[None, :]


def make_field(
    height: int, width: int, rng: np.random.Generator, water: np.ndarray | None
) -> np.ndarray:
    """One band: smooth multi-octave field + noise, quantised to 1e-4, water at 0."""
    out = np.zeros((height, width), np.float32)
    for step, amp in ((512, 0.12), (128, 0.05), (32, 0.02), (8, 0.008)):
        coarse = rng.random((height // step + 2, width // step + 2), dtype=np.float32)
        out += amp * _upsample(coarse, height, width, step)
    out += rng.standard_normal((height, width), dtype=np.float32) * np.float32(0.002)
    np.clip(out, 0, None, out=out)
    out = np.round(out * 10000) / np.float32(10000)
    out = out.astype(np.float32)
    if water is not None:
        out[water] = 0.0
    return out


def _payloads(spec: Spec, fields: list[np.ndarray]):
    t, p = spec.tile, spec.patch
    for row in range(spec.patch_rows):
        for col in range(spec.patches_per_row):
            y, x = row * p, col * p
            yield encode_example(
                {
                    name: float_feature(f[y : y + t, x : x + t])
                    for name, f in zip(spec.bands, fields, strict=True)
                }
            )


def _split(spec: Spec, record_size: int) -> list[tuple[int, int]]:
    """(first, count) of each shard: records are never split, shards cut at max_file_size."""
    per = max(1, spec.max_file_size // record_size)
    return [(s, min(per, spec.total - s)) for s in range(0, spec.total, per)]


def _write_shard(path: str, compressor: str, records) -> int:
    if compressor == "zlib6":
        with RecordWriter(path, compressed=True, level=6) as w:
            for payload in records:
                w.write(payload)
            return w.size
    if compressor == "isal":
        from isal import igzip

        size = 0
        with (
            open(path, "wb") as raw,
            igzip.IGzipFile(fileobj=raw, mode="wb", compresslevel=2, mtime=0) as g,
        ):
            for payload in records:
                framed = frame_record(payload)
                g.write(framed)
                size += len(framed)
        return size
    raise ValueError(compressor)


def sample_windows(spec: Spec, n: int, size: int = 256, seed: int = 1) -> list[tuple[int, int]]:
    """``n`` random ``(col, row)`` window offsets, never aligned to the patch grid."""
    rng = np.random.default_rng(seed)
    height, width = spec.patch_rows * spec.patch, spec.patches_per_row * spec.patch
    out: list[tuple[int, int]] = []
    while len(out) < n:
        col = int(rng.integers(1, width - size))
        row = int(rng.integers(1, height - size))
        if col % spec.patch and row % spec.patch:
            out.append((col, row))
    return out


def window_digest(array: np.ndarray) -> str:
    return hashlib.blake2b(
        np.ascontiguousarray(array, dtype=np.float32), digest_size=16
    ).hexdigest()


def generate(spec: Spec, folder: str, log=print, n_windows: int = 0) -> dict:
    """Write the export (or reuse it when its meta matches ``spec``); return its meta.

    With ``n_windows``, also record the expected digest of band 1 over that many random
    256 x 256 windows (``sample_windows``), so window reads can be checked.
    """
    os.makedirs(folder, exist_ok=True)
    meta_path = os.path.join(folder, f"{spec.prefix}-meta.json")
    if os.path.exists(meta_path):
        with open(meta_path) as f:
            meta = json.load(f)
        if (
            meta.get("spec") == spec.key()
            and len(meta.get("windows", [])) >= n_windows
            and all(os.path.exists(os.path.join(folder, s)) for s in meta["shards"])
        ):
            log(f"  reusing {spec.prefix} in {folder}")
            return meta
    for name in os.listdir(folder):
        if name.startswith(spec.prefix + "-"):
            os.remove(os.path.join(folder, name))
    t0 = time.perf_counter()
    rng = np.random.default_rng(spec.seed)
    m = spec.margin
    height, width = spec.patch_rows * spec.patch, spec.patches_per_row * spec.patch
    fh, fw = height + 2 * m, width + 2 * m
    water_field = _upsample(
        rng.random((fh // 256 + 2, fw // 256 + 2), dtype=np.float32), fh, fw, 256
    )
    water = water_field < 0.12
    del water_field
    fields = [make_field(fh, fw, rng, water) for _ in spec.bands]
    del water
    t_content = time.perf_counter() - t0
    mosaic_hash = hashlib.blake2b(digest_size=16)
    sums = []
    for f in fields:
        core = np.ascontiguousarray(f[m : m + height, m : m + width])
        mosaic_hash.update(core)
        sums.append(float(core.sum(dtype=np.float64)))
        del core
    windows = [
        [col, row, window_digest(fields[0][m + row : m + row + 256, m + col : m + col + 256])]
        for col, row in sample_windows(spec, n_windows)
    ]
    first = next(_payloads(spec, fields))
    record_size = len(first) + RECORD_OVERHEAD
    layout = _split(spec, record_size)
    shards = [f"{spec.prefix}-{n:05d}.tfrecord.gz" for n in range(len(layout))]

    def one(n: int) -> int:
        first_rec, count = layout[n]
        gen = _payloads(spec, fields)
        records = itertools.islice(gen, first_rec, first_rec + count)
        return _write_shard(os.path.join(folder, shards[n]), spec.compressor, records)

    # zlib and isal release the GIL while compressing: one thread per core.
    with ThreadPoolExecutor(max_workers=2) as pool:
        sizes = list(pool.map(one, range(len(layout))))
    mixer = Mixer(
        crs="EPSG:32633",
        transform=Affine(10.0, 0.0, 500000.0, 0.0, -10.0, 5100000.0),
        patch_width=spec.patch,
        patch_height=spec.patch,
        patches_per_row=spec.patches_per_row,
        total_patches=spec.total,
    )
    with open(os.path.join(folder, f"{spec.prefix}-mixer.json"), "w") as f:
        f.write(mixer.to_json())
    meta = {
        "spec": spec.key(),
        "shards": shards,
        "records_per_shard": [c for _, c in layout],
        "uncompressed_bytes": sum(sizes),
        "shard_uncompressed": sizes,
        "compressed_bytes": sum(os.path.getsize(os.path.join(folder, s)) for s in shards),
        "payload_float_bytes": spec.total * len(spec.bands) * spec.tile * spec.tile * 4,
        "mosaic_shape": [len(spec.bands), height, width],
        "mosaic_blake2b": mosaic_hash.hexdigest(),
        "band_sums": sums,
        "windows": windows,
        "seconds": {"content": t_content, "total": time.perf_counter() - t0},
    }
    with open(meta_path, "w") as f:
        json.dump(meta, f, indent=1)
    log(
        f"  generated {spec.prefix}: {len(shards)} shard(s), "
        f"{meta['uncompressed_bytes'] / 1e6:.0f} MB -> "
        f"{meta['compressed_bytes'] / 1e6:.0f} MB gzip "
        f"in {meta['seconds']['total']:.1f} s (content {t_content:.1f} s)"
    )
    return meta
