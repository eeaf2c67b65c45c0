"""The four ways to write share one pipeline, so they write the same bytes.

The writer (``tfrecord_io.open(path, "w")`` + ``write``), :func:`tfrecord_io.export` from a
GeoTIFF and :func:`tfrecord_io.write_predictions` (given the same patches in export order and a
mixer built here, independently of the writer) write the same raster with the same options
(kernel 1, float bands, one prefix, several shards through ``maxFileSize``): the shard names,
the shard bytes and the mixer bytes must all be identical. The pipeline's promises are checked
once here for every path: ``export()`` makes no spill file, and a failed write (a warning raised
as an error, a bad option) leaves nothing behind.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from affine import Affine

import tfrecord_io
from tfrecord_io.errors import OptionError, PatchesDroppedWarning
from tfrecord_io.image.mixer import Mixer

UTM = Affine(30.0, 0.0, 500000.0, 0.0, -30.0, 4200000.0)
CRS = "EPSG:32610"
NAMES = ("B2", "B3")
PATCH = 16
PREFIX = "paths"
MAX_FILE_SIZE = 5000  # two 2-band 16 x 16 float patches per shard


@pytest.fixture
def raster(rng) -> np.ndarray:
    return rng.random((2, 3 * PATCH, 4 * PATCH), dtype=np.float32)


def files_of(folder: Path) -> dict[str, bytes]:
    """Every file of an export folder by name, with its bytes (no hidden leftovers allowed)."""
    return {name: (folder / name).read_bytes() for name in sorted(os.listdir(folder))}


def by_writer(folder: Path, raster: np.ndarray, options: dict[str, Any]) -> dict[str, bytes]:
    count, height, width = raster.shape
    with tfrecord_io.open(
        folder, "w", width=width, height=height, count=count, dtype="float32", crs=CRS,
        transform=UTM, file_name_prefix=PREFIX, **options,
    ) as dst:  # fmt: skip
        dst.descriptions = NAMES
        dst.write(raster)
    return files_of(folder)


def by_export(folder: Path, tif: str, options: dict[str, Any]) -> dict[str, bytes]:
    tfrecord_io.export(tif, folder, file_name_prefix=PREFIX, **options)
    return files_of(folder)


def by_predictions(folder: Path, raster: np.ndarray, options: dict[str, Any]) -> dict[str, bytes]:
    _, height, width = raster.shape
    per_row = width // PATCH
    total = per_row * (height // PATCH)
    mixer = Mixer(CRS, UTM, PATCH, PATCH, per_row, total)
    patches = (
        raster[:, r * PATCH : (r + 1) * PATCH, c * PATCH : (c + 1) * PATCH]
        for r in range(height // PATCH)
        for c in range(per_row)
    )
    tfrecord_io.write_predictions(
        mixer, folder, patches, NAMES, file_name_prefix=PREFIX,
        compressed=options["compressed"], max_file_size=options["max_file_size"],
    )  # fmt: skip
    return files_of(folder)


@pytest.mark.parametrize("compressed", [True, False], ids=["gzip", "plain"])
def test_writer_export_and_predictions_write_identical_shards_and_mixer(
    tmp_path, geotiff, raster, compressed
) -> None:
    options = {
        "patch_dimensions": [PATCH, PATCH],
        "kernel_size": [1, 1],
        "compressed": compressed,
        "max_file_size": MAX_FILE_SIZE,
    }
    tif = geotiff(raster, crs=CRS, transform=UTM, descriptions=NAMES)
    written = by_writer(tmp_path / "writer", raster, options)
    exported = by_export(tmp_path / "export", tif, options)
    predicted = by_predictions(tmp_path / "predictions", raster, options)
    suffix = ".tfrecord.gz" if compressed else ".tfrecord"
    assert list(written) == [f"{PREFIX}-{i:05d}{suffix}" for i in range(6)] + [
        f"{PREFIX}-mixer.json"
    ]
    assert list(exported) == list(written)
    assert list(predicted) == list(written)
    for name, data in written.items():
        assert exported[name] == data, f"export() wrote another {name}"
        assert predicted[name] == data, f"write_predictions wrote another {name}"


def test_export_streams_its_source_without_a_spill_file(tmp_path, geotiff, raster) -> None:
    tif = geotiff(raster, crs=CRS, transform=UTM, descriptions=NAMES)
    seen: list[list[str]] = []  # the temporary folder's files after each patch row

    def progress(done: int, total: int) -> None:
        # the temporary folder (beside it lies its marker, .export.tmp-XXXX.json)
        (temp,) = [p for p in tmp_path.glob(".export.tmp-*") if p.is_dir()]
        seen.append(sorted(os.listdir(temp)))

    tfrecord_io.export(tif, tmp_path / "export", progress=progress, patch_dimensions=[PATCH, PATCH])
    assert len(seen) == 3
    assert all(files == ["export-00000.tfrecord.gz"] for files in seen), seen


def test_dropped_pixels_warning_raised_as_error_leaves_nothing(tmp_path, raster) -> None:
    count, height, width = raster.shape
    dst = tfrecord_io.open(
        tmp_path / "out", "w", width=width, height=height, count=count, crs=CRS,
        transform=UTM, patch_dimensions=[PATCH + 1, PATCH + 1],
    )  # fmt: skip
    dst.write(raster)
    with warnings.catch_warnings():
        warnings.simplefilter("error", PatchesDroppedWarning)
        with pytest.raises(PatchesDroppedWarning):
            dst.close()
    assert os.listdir(tmp_path) == []


def test_predictions_with_a_bad_compression_level_leave_nothing(tmp_path, raster) -> None:
    mixer = Mixer(CRS, UTM, PATCH, PATCH, 4, 12)
    with pytest.raises(OptionError, match="compression_level"):
        tfrecord_io.write_predictions(
            mixer, tmp_path / "pred", [], NAMES, compressed=True, compression_level=12
        )
    assert os.listdir(tmp_path) == []
