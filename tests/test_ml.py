"""The training loaders: PatchDataset and IterablePatchDataset, in spawn worker pools.

torch is not a test dependency; worker identity comes from the loaders' arguments, and the
workers are processes of a ``multiprocessing`` pool using the spawn start method (what torch's
``DataLoader`` uses on macOS and Windows, and the strictest: nothing is inherited but pickles).
"""

from __future__ import annotations

import multiprocessing
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from affine import Affine

import tfrecord_io
from tfrecord_io import IterablePatchDataset, OptionError, PatchDataset
from tfrecord_io.ml import worker_identity

TRANSFORM = Affine(10.0, 0.0, 300000.0, 0.0, -10.0, 5000000.0)


@pytest.fixture
def export(tf_export: Callable[..., Any], rng: np.random.Generator) -> Any:
    """Three bands, 6 x 4 patches of 8 x 8 with kernel 2, in three shards (8 records each)."""
    bands = {n: rng.normal(size=(32, 48)).astype(np.float32) for n in ("B2", "B3", "B4")}
    record = 3 * 10 * 10 * 4 + 200
    return tf_export(
        bands=bands,
        transform=TRANSFORM,
        patch_size=(8, 8),
        kernel_size=(2, 2),
        max_file_size=8 * record,
    )


def _tiles(path: Any, trim: bool = False) -> list[np.ndarray]:
    return [array for _, _, array in tfrecord_io.iter_patches(path, trim=trim)]


def _digest(array: np.ndarray) -> bytes:
    return np.ascontiguousarray(array).tobytes()


# -- run in the spawned workers (importable from this module) ----------------------------


def _read_every_other(args: tuple[PatchDataset, int, int]) -> list[tuple[int, bytes]]:
    dataset, worker, workers = args
    return [(i, _digest(dataset[i])) for i in range(worker, len(dataset), workers)]


def _stream(args: tuple[str, int, int]) -> list[bytes]:
    path, worker, workers = args
    loader = IterablePatchDataset(path, trim=True, worker_id=worker, num_workers=workers)
    return [_digest(patch) for patch in loader]


def _spawn_pool(workers: int) -> Any:
    return multiprocessing.get_context("spawn").Pool(workers)


# -- PatchDataset --------------------------------------------------------------------------


def test_patch_dataset_gives_stored_tiles_in_export_order(export) -> None:
    dataset = PatchDataset(export.folder)
    tiles = _tiles(export.folder)
    assert len(dataset) == export.total_patches == len(tiles)
    for i, tile in enumerate(tiles):
        np.testing.assert_array_equal(dataset[i], tile)
    assert dataset[0].shape == (3, 10, 10)


def test_trim_gives_the_unpadded_patch_of_the_mosaic(export) -> None:
    dataset = PatchDataset(export.folder, trim=True)
    with tfrecord_io.open(export.folder) as ds:
        for i, (_, window) in enumerate(ds.block_windows()):
            np.testing.assert_array_equal(dataset[i], ds.read(window=window))


def test_bands_select_and_order_and_dict_keeps_dtypes(tf_export, rng) -> None:
    bands = {
        "f": rng.normal(size=(16, 16)).astype(np.float32),
        "u": rng.integers(0, 255, size=(16, 16)).astype(np.uint8),
    }
    info = tf_export(bands=bands, kinds={"u": "bytes"}, transform=TRANSFORM, patch_size=(8, 8))
    stacked = PatchDataset(info.folder, bands=["u", "f"])
    assert stacked.band_names == ("u", "f")
    np.testing.assert_array_equal(stacked[1][0], bands["u"][:8, 8:])
    by_band = PatchDataset(info.folder, as_dict=True)
    item = by_band[3]
    assert {k: v.dtype for k, v in item.items()} == {"f": np.float32, "u": np.uint8}
    np.testing.assert_array_equal(item["f"], bands["f"][8:, 8:])


def test_negative_index_counts_from_the_end_and_beyond_raises(export) -> None:
    dataset = PatchDataset(export.folder)
    np.testing.assert_array_equal(dataset[-1], dataset[len(dataset) - 1])
    with pytest.raises(IndexError, match="out of range"):
        dataset[len(dataset)]


def test_unknown_band_raises_option_error(export) -> None:
    with pytest.raises(OptionError, match="no band"):
        PatchDataset(export.folder, bands=["B9"])


def test_patch_dataset_in_a_spawn_pool_gives_every_patch_once(export) -> None:
    dataset = PatchDataset(export.folder)
    dataset[0]  # the parent has its own reader open: it must not travel to the workers
    with _spawn_pool(2) as pool:
        parts = pool.map(_read_every_other, [(dataset, 0, 2), (dataset, 1, 2)])
    got = sorted(item for part in parts for item in part)
    assert [i for i, _ in got] == list(range(export.total_patches))
    assert [d for _, d in got] == [_digest(t) for t in _tiles(export.folder)]


# -- IterablePatchDataset ------------------------------------------------------------------


@pytest.mark.parametrize("workers", [2, 3, 4])
def test_iterable_workers_give_every_patch_exactly_once(export, workers: int) -> None:
    assert len(export.shards) == 3
    with _spawn_pool(2) as pool:
        parts = pool.map(_stream, [(str(export.folder), w, workers) for w in range(workers)])
    expected = Counter(_digest(t) for t in _tiles(export.folder, trim=True))
    assert len(expected) == export.total_patches  # the patches differ, so digests identify them
    assert Counter(d for part in parts for d in part) == expected


def test_iterable_splits_shards_round_robin(export) -> None:
    shards = [str(s) for s in export.shards]
    loaders = [IterablePatchDataset(export.folder, worker_id=w, num_workers=2) for w in (0, 1)]
    assert [loader.shards() for loader in loaders] == [shards[0::2], shards[1::2]]


def test_one_iterable_worker_streams_in_export_order(export) -> None:
    loader = IterablePatchDataset(export.folder, bands=["B3"])
    got = list(loader)
    assert len(loader) == len(got) == export.total_patches
    b3 = tfrecord_io.open(export.folder).descriptions.index("B3")
    for item, tile in zip(got, _tiles(export.folder), strict=True):
        np.testing.assert_array_equal(item, tile[b3 : b3 + 1])


def test_worker_identity_outside_torch_comes_from_arguments() -> None:
    assert worker_identity() == (0, 1)
    assert worker_identity(2, 3) == (2, 3)
    with pytest.raises(OptionError, match="worker_id"):
        worker_identity(3, 3)


def test_sequence_exports_are_refused_by_the_iterable_loader(tf_export, rng) -> None:
    bands = {"a": rng.normal(size=(4, 4)).astype(np.float32)}
    info = tf_export(bands=bands, transform=TRANSFORM, patch_size=(2, 2), sequence_data=True)
    with pytest.raises(OptionError, match="PatchDataset"):
        IterablePatchDataset(info.folder)
    np.testing.assert_array_equal(PatchDataset(info.folder)[1][0], bands["a"][:2, 2:])
