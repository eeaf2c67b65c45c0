"""Make ``data/sample/``: a small EE-style TFRecord export written by TensorFlow.

Run from the repository root::

    PYTHONPATH=. python data/make_sample.py

The output is deterministic: seeded pixels, a fixed feature order, and TensorFlow's gzip
writer puts no timestamp in the header. Importing this file (e.g. with ``runpy.run_path``)
gives ``make_bands()`` and the parameters without writing anything, so a test can rebuild the
mosaic a reader must return.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from affine import Affine

FOLDER = Path(__file__).parent / "sample"
PREFIX = "sample"
BAND_NAMES = ("B2", "B3", "B4")
# The generated image is larger than the patch grid: the 16 px right strip and 8 px bottom
# strip are dropped like EE's partial edge patches, but still feed the margins next to them.
HEIGHT, WIDTH = 200, 400
PATCH_SIZE = (64, 48)  # (width, height)
KERNEL_SIZE = (16, 16)  # tiles are 80 wide x 64 high
CRS = "EPSG:32610"
# North-up UTM 10N, 30 m pixels, top-left corner near Sacramento, California.
TRANSFORM = Affine(30.0, 0.0, 630000.0, 0.0, -30.0, 4272000.0)
FEATURE_ORDER = ("B4", "B3", "B2")  # the hash order TensorFlow was seen to pick for B2, B3, B4
MAX_FILE_SIZE = 580_000  # one record is 61 520 bytes framed: 9 + 9 + 6 records
SEED = 20240611


def make_bands(seed: int = SEED) -> dict[str, np.ndarray]:
    """Return the full ``(HEIGHT, WIDTH)`` float32 bands: smooth reflectance-like fields."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float64)
    field = np.zeros((HEIGHT, WIDTH))
    for _ in range(6):
        fy, fx = rng.uniform(0.002, 0.015, size=2)
        angle, phase = rng.uniform(0, 2 * np.pi, size=2)
        u = x * np.cos(angle) + y * np.sin(angle)
        v = -x * np.sin(angle) + y * np.cos(angle)
        field += np.sin(2 * np.pi * fx * u + phase) * np.cos(2 * np.pi * fy * v)
    field = (field - field.min()) / (field.max() - field.min())  # 0..1
    # Blue is darkest, red brightest over bare ground, like a dry Californian summer scene.
    offsets = {"B2": (0.03, 0.08), "B3": (0.05, 0.12), "B4": (0.04, 0.20)}
    bands = {}
    for name in BAND_NAMES:
        low, span = offsets[name]
        noisy = low + span * field + rng.normal(0.0, 0.004, size=field.shape)
        bands[name] = np.clip(noisy, 0.0, 0.3).astype(np.float32)
    return bands


def main() -> None:
    """Write the sample export into ``data/sample/`` and print what was written."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # before TensorFlow is imported
    import tensorflow as tf

    from tests.tfexport import write_tf_export

    FOLDER.mkdir(parents=True, exist_ok=True)
    for old in FOLDER.glob(f"{PREFIX}-*"):
        old.unlink()
    info = write_tf_export(
        FOLDER,
        make_bands(),
        transform=TRANSFORM,
        crs=CRS,
        patch_size=PATCH_SIZE,
        kernel_size=KERNEL_SIZE,
        prefix=PREFIX,
        compressed=True,
        max_file_size=MAX_FILE_SIZE,
        feature_order=FEATURE_ORDER,
    )
    assert info.records_per_shard == (9, 9, 6), info.records_per_shard
    assert info.wire_order == FEATURE_ORDER
    print(f"tensorflow {tf.__version__}")
    print(f"mosaic (count, height, width) = {info.expected.shape}, {info.expected.dtype}")
    print(f"records per shard = {info.records_per_shard}, wire order = {info.wire_order}")
    for path in (*info.shards, info.mixer):
        print(path)


if __name__ == "__main__":
    main()
