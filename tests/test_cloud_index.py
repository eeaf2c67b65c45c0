"""The persisted record index of an export in an object store, and remote overwrites.

memory:// for the unit tests; s3:// on moto's server and gs:// on the GCS emulator (the
``bucket`` fixture) for the stores' own identities (ETag, generation). TensorFlow writes the
exports that are uploaded.
"""

from __future__ import annotations

import gzip
import uuid
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import fsspec
import numpy as np
import pytest
from affine import Affine
from click.testing import CliRunner
from fsspec.implementations.memory import MemoryFileSystem
from rasterio.windows import Window

import tfrecord_io
from tests.cloudservers import Bucket, bucket_fixture, gcs_bucket_fixture, s3_bucket_fixture  # noqa: F401
from tests.test_cloud import _write as write_export
from tfrecord_io import StaleIndexWarning
from tfrecord_io.cli import main
from tfrecord_io.format.sidecar import read_sidecar
from tfrecord_io.format.storage import open_input

Make = Callable[..., Any]
NORTH_UP = Affine(30.0, 0.0, 500000.0, 0.0, -30.0, 4200000.0)
WINDOW = Window(33, 25, 11, 13)  # in the last shards: needs the records before it


def _tf_export(tf_export: Make) -> Any:
    rng = np.random.default_rng(4)
    bands = {n: rng.normal(size=(40, 48)).astype(np.float32) for n in ("B1", "B2")}
    info = tf_export(
        bands=bands, max_file_size=5000, transform=NORTH_UP, patch_size=(8, 8), compressed=True
    )
    assert len(info.shards) >= 3
    return info


def _upload(fs: Any, info: Any, url: str) -> None:
    root = url.split("://", 1)[1]
    for path in [*info.shards, info.mixer]:
        fs.put_file(str(path), f"{root}/{Path(path).name}")
    fs.invalidate_cache()


def _read(url: str, info: Any, options: Any = None) -> tuple[np.ndarray, bool]:
    """Read WINDOW in a fresh dataset; return it and whether the sidecar was loaded."""
    with tfrecord_io.open(url, storage_options=options, band_order=list(info.band_names)) as ds:
        block = ds.read(window=WINDOW)
        indexes = ds._reader._indexes
    return block, bool(indexes) and indexes[0].saved and indexes[0].store is not None


def _expected(info: Any) -> np.ndarray:
    return info.expected[:, 25:38, 33:44]


# -- memory:// ------------------------------------------------------------------------------


@pytest.fixture
def memory_export(tf_export: Make) -> tuple[Any, str]:
    info = _tf_export(tf_export)
    url = f"memory://idx-{uuid.uuid4().hex[:10]}/tf"
    _upload(fsspec.filesystem("memory"), info, url)
    return info, url


def test_build_index_writes_the_sidecar_into_the_store(memory_export: Any) -> None:
    info, url = memory_export
    sidecar = tfrecord_io.build_index(url)
    assert sidecar == f"{url}/{info.prefix}-index.tfrindex"
    saved = read_sidecar(lambda: open_input(sidecar))
    assert [entry.name for entry in saved] == [p.name for p in info.shards]
    assert all(set(entry.identity) == {"size", "created"} for entry in saved)
    block, loaded = _read(url, info)
    assert loaded
    np.testing.assert_array_equal(block, _expected(info))


def test_build_index_leaves_a_current_remote_sidecar_alone(memory_export: Any) -> None:
    _, url = memory_export
    sidecar = tfrecord_io.build_index(url)
    fs = fsspec.filesystem("memory")
    created = fs.info(sidecar.split("://", 1)[1])["created"]
    assert tfrecord_io.build_index(url) == sidecar
    assert fs.info(sidecar.split("://", 1)[1])["created"] == created


def test_reuploaded_shard_makes_the_remote_sidecar_stale(memory_export: Any) -> None:
    info, url = memory_export
    tfrecord_io.build_index(url)
    fs = fsspec.filesystem("memory")
    shard = info.shards[-1]
    fs.put_file(str(shard), f"{url.split('://', 1)[1]}/{shard.name}")  # same bytes, new object
    with pytest.warns(StaleIndexWarning, match="has changed since it was indexed"):
        block, loaded = _read(url, info)
    assert not loaded
    np.testing.assert_array_equal(block, _expected(info))


def test_cli_index_takes_a_url(memory_export: Any) -> None:
    info, url = memory_export
    result = CliRunner().invoke(main, ["index", url])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"{url}/{info.prefix}-index.tfrindex"
    assert _read(url, info)[1]


# -- the stores -----------------------------------------------------------------------------


def test_sidecar_in_the_bucket_is_built_loaded_and_goes_stale(
    bucket: Bucket, tf_export: Make
) -> None:
    info = _tf_export(tf_export)
    url = bucket.url("tf")
    fs = bucket.filesystem()
    _upload(fs, info, url)
    without, loaded = _read(url, info, bucket.storage_options)
    assert not loaded
    sidecar = tfrecord_io.build_index(url, storage_options=bucket.storage_options)
    assert fs.exists(sidecar.split("://", 1)[1])
    key = {"s3": "ETag", "gs": "generation"}[bucket.scheme]
    saved = read_sidecar(lambda: open_input(sidecar, bucket.storage_options))
    assert all(set(entry.identity) == {"size", key} for entry in saved)
    with warnings.catch_warnings():
        warnings.simplefilter("error", StaleIndexWarning)
        block, loaded = _read(url, info, bucket.storage_options)
    assert loaded
    np.testing.assert_array_equal(block, without)
    np.testing.assert_array_equal(block, _expected(info))
    # The same records, compressed again: another object (another ETag and generation).
    shard = info.shards[-1]
    fs.pipe_file(
        f"{url.split('://', 1)[1]}/{shard.name}",
        gzip.compress(gzip.decompress(shard.read_bytes()), 1),
    )
    with pytest.warns(StaleIndexWarning, match=shard.name):
        block, loaded = _read(url, info, bucket.storage_options)
    assert not loaded
    np.testing.assert_array_equal(block, _expected(info))


# -- overwrites -----------------------------------------------------------------------------


class WatchedFileSystem(MemoryFileSystem):
    """The memory store, recording the prefix's files after every put and remove.

    ``fail_at`` makes that put or remove (counted from 0) raise instead, as an interrupted
    upload would.
    """

    protocol = "watched"
    states: ClassVar[list[dict[str, bytes]]] = []
    fail_at: ClassVar[int | None] = None
    calls: ClassVar[int] = 0

    def _step(self) -> None:
        if WatchedFileSystem.fail_at == WatchedFileSystem.calls:
            WatchedFileSystem.calls += 1
            raise ConnectionError("interrupted")
        WatchedFileSystem.calls += 1

    def put_file(self, lpath: Any, rpath: Any, *args: Any, **kwargs: Any) -> Any:
        self._step()
        super().put_file(lpath, rpath, *args, **kwargs)
        self._record(str(rpath))

    def rm_file(self, path: Any) -> Any:
        self._step()
        super().rm_file(path)
        self._record(str(path))

    def _record(self, path: str) -> None:
        folder = self._strip_protocol(path).rsplit("/", 1)[0]
        WatchedFileSystem.states.append(
            {p.rsplit("/", 1)[-1]: self.cat_file(p) for p in self.ls(folder, detail=False)}
        )


@pytest.fixture
def watched() -> Iterator[type[WatchedFileSystem]]:
    fsspec.register_implementation("watched", WatchedFileSystem, clobber=True)
    WatchedFileSystem.fail_at = None
    yield WatchedFileSystem
    WatchedFileSystem.fail_at = None


def _write(url: str, array: np.ndarray, **options: Any) -> dict[str, bytes]:
    """Write ``array`` to ``url``; return the export's files and their bytes."""
    fs = fsspec.filesystem("watched")
    return {f.rsplit("/", 1)[-1]: fs.cat_file(f) for f in write_export(url, array, **options)}


@pytest.mark.parametrize(("old_rows", "new_rows"), [(48, 16), (16, 48)])
def test_interrupted_overwrite_never_pairs_a_mixer_with_other_shards(
    watched: type[WatchedFileSystem], old_rows: int, new_rows: int
) -> None:
    rng = np.random.default_rng(5)
    array = rng.normal(size=(2, 48, 64)).astype(np.float32)
    new_array = rng.normal(size=(2, new_rows, 64)).astype(np.float32)
    steps = None
    fail_at = 0
    while steps is None or fail_at <= steps:
        url = f"watched://ow-{uuid.uuid4().hex[:10]}/out"
        old = _write(url, array[:, :old_rows])
        tfrecord_io.build_index(url)
        watched.states, watched.calls, watched.fail_at = [], 0, fail_at
        try:
            new = _write(url, new_array, overwrite=True)
        except ConnectionError:
            new = None
        watched.fail_at = None
        if new is not None:  # not interrupted: every step was taken
            steps = watched.calls
            assert watched.states[-1] == new
        for state in watched.states:
            if "out-mixer.json" in state:
                complete = [files for files in (old, new) if files is not None]
                sidecar_free = {k: v for k, v in state.items() if not k.endswith(".tfrindex")}
                assert sidecar_free in complete, sorted(state)
        fail_at += 1
    assert steps is not None
    assert steps >= 4
