"""The persisted record index: PREFIX-index.tfrindex, its seek points, and how open uses it."""

from __future__ import annotations

import contextlib
import functools
import gzip
import os
import shutil
import warnings
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st
from rasterio.windows import Window

import tfrecord_io
from tests.conftest import SAMPLE, UTM
from tfrecord_io.cli import main
from tfrecord_io.errors import OptionError, RecordError, StaleIndexWarning
from tfrecord_io.format import index_build, seekpoints
from tfrecord_io.format.index import index_shard
from tfrecord_io.format.index_build import index_shard_for_saving
from tfrecord_io.format.records import iter_records
from tfrecord_io.format.seekpoints import RestoredStream
from tfrecord_io.format.sidecar import read_sidecar, write_sidecar
from tfrecord_io.image.files import find_export
from tfrecord_io.image.indexing import load_saved_indexes

SPACING = 64 << 10  # small, so that small test shards get several seek points


@pytest.fixture
def tf_gzip(tf_export: Any, rng: np.random.Generator) -> Path:
    """A TensorFlow-written gzip export of 4 shards of smooth-ish float data."""
    folder = Path(_make_tf_export(tf_export, rng, ("B1", "B2"), 600_000).folder)
    assert len(find_export(folder).shards) >= 3
    return folder


def _make_tf_export(
    tf_export: Any,
    rng: np.random.Generator,
    names: tuple[str, ...],
    max_file_size: int,
    compressed: bool = True,
) -> Any:
    """Random-walk rows (compressible, yet with many deflate blocks), patches of 64, kernel 8."""
    bands = {n: np.cumsum(rng.normal(size=(256, 768)), axis=1).astype(np.float32) for n in names}
    return tf_export(
        bands=bands,
        transform=UTM,
        crs="EPSG:32610",
        patch_size=(64, 64),
        kernel_size=(8, 8),
        max_file_size=max_file_size,
        compressed=compressed,
    )


def _force_pure_python(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(index_build, "_rapidgzip", None)
    monkeypatch.setattr(index_build, "_indexed_gzip", None)


@pytest.fixture(params=["rapidgzip", "indexed_gzip"])
def builder(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Build seek points with rapidgzip, or with indexed_gzip (rapidgzip switched off)."""
    assert index_build._optional("rapidgzip") is not None  # installed: fails, never skips
    assert index_build._optional("indexed_gzip") is not None
    if request.param == "indexed_gzip":
        monkeypatch.setattr(index_build, "_rapidgzip", None)
    return str(request.param)


def _read(folder: Path, window: Window) -> tuple[np.ndarray, Any]:
    with tfrecord_io.open(folder) as ds:
        data = ds.read(window=window)
        indexes = list(ds._reader._indexes)
    return data, indexes


def _last_shard_window(folder: Path) -> Window:
    with tfrecord_io.open(folder) as ds:
        return Window(ds.width // 2 + 5, ds.height - 40, 40, 30)


def test_sidecar_round_trips_offsets_lengths_and_points(tf_gzip: Path, builder: str) -> None:
    path = tfrecord_io.build_index(tf_gzip, spacing=SPACING)
    assert os.path.basename(path) == "export-index.tfrindex"
    assert os.stat(path).st_mode & 0o777 == 0o644  # readable by whoever reads the shards
    saved = read_sidecar(functools.partial(open, path, "rb"))
    files = find_export(tf_gzip)
    first = 0
    for entry, shard in zip(saved, files.shards, strict=True):
        fresh = index_shard(shard, first_index=first)
        assert entry.name == os.path.basename(shard)
        assert list(entry.offsets) == list(fresh.offsets)
        assert list(entry.lengths) == list(fresh.lengths)
        assert len(entry.points) > 3
        assert all(len(p.get_window() or b"\0" * 32768) == 32768 for p in entry.points)
        first += len(fresh)


def test_window_read_with_sidecar_decodes_the_same_and_indexes_nothing(
    tf_gzip: Path, builder: str
) -> None:
    window = _last_shard_window(tf_gzip)
    without, _ = _read(tf_gzip, window)
    tfrecord_io.build_index(tf_gzip, spacing=SPACING)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        first_shard, indexes = _read(tf_gzip, Window(0, 0, 20, 20))
        with_sidecar, _ = _read(tf_gzip, window)
    np.testing.assert_array_equal(with_sidecar, without)
    assert all(index.complete for index in indexes)  # loaded whole: no shard was scanned
    assert len(indexes) == len(find_export(tf_gzip).shards)
    assert first_shard.shape == (2, 20, 20)


@pytest.mark.parametrize("inflater", ["isal", "zlib"])
def test_every_saved_point_restores_the_tensorflow_stream(
    tf_gzip: Path, builder: str, inflater: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if inflater == "zlib":  # the standard library alone, as in QGIS's Python
        monkeypatch.setattr(seekpoints, "_inflate", zlib)
    assert seekpoints._inflate.__name__ == {"isal": "isal.isal_zlib", "zlib": "zlib"}[inflater]
    shard = find_export(tf_gzip).shards[-1]
    points = index_shard_for_saving(shard, spacing=SPACING)._points
    stream = gzip.decompress(Path(shard).read_bytes())
    assert {p.bits for p in points} - {0}, "TensorFlow's stream should have unaligned blocks"
    for point in points:
        with open(shard, "rb") as f:
            restored = RestoredStream(f, point, 1 << 16)
            out = restored.inflater.decompress(restored.read(), 20000)
        assert out == stream[point.uncompressed : point.uncompressed + len(out)]
        assert len(out) > 0 or point.uncompressed == len(stream)


def test_pure_python_build_finds_our_writers_flush_points(
    export: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    array = np.cumsum(np.random.default_rng(1).normal(size=(2, 1100, 1100)), axis=2)
    folder = export(array.astype(np.float32), blockxsize=256, blockysize=256)
    _force_pure_python(monkeypatch)
    window = Window(700, 800, 256, 256)
    without, _ = _read(folder, window)
    tfrecord_io.build_index(folder, spacing=1 << 20)
    saved = load_saved_indexes(find_export(folder))
    assert saved is not None
    points = saved[0]._points
    assert len(points) > 1
    assert all(p.bits == 0 for p in points)
    with_sidecar, _ = _read(folder, window)
    np.testing.assert_array_equal(with_sidecar, without)


def test_pure_python_build_of_an_unflushed_stream_keeps_only_its_start(
    tf_gzip: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _force_pure_python(monkeypatch)
    window = _last_shard_window(tf_gzip)
    without, _ = _read(tf_gzip, window)
    tfrecord_io.build_index(tf_gzip, spacing=SPACING)
    saved = load_saved_indexes(find_export(tf_gzip))
    assert saved is not None
    assert all(len(index._points) == 1 for index in saved)
    np.testing.assert_array_equal(_read(tf_gzip, window)[0], without)


def test_stale_sidecar_is_ignored_with_a_warning(tf_gzip: Path) -> None:
    window = _last_shard_window(tf_gzip)
    expected, _ = _read(tf_gzip, window)
    tfrecord_io.build_index(tf_gzip, spacing=SPACING)
    shard = find_export(tf_gzip).shards[-1]
    stat = os.stat(shard)
    os.utime(shard, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))  # "rewritten"
    with pytest.warns(StaleIndexWarning, match="has changed since it was indexed"):
        got, indexes = _read(tf_gzip, window)
    np.testing.assert_array_equal(got, expected)
    assert not any(index.saved for index in indexes)  # scanned, not loaded from the sidecar


def test_rebuilt_export_makes_the_old_sidecar_stale(tf_gzip: Path) -> None:
    tfrecord_io.build_index(tf_gzip, spacing=SPACING)
    shard = Path(find_export(tf_gzip).shards[0])
    shard.write_bytes(gzip.compress(gzip.decompress(shard.read_bytes()), 1))
    with pytest.warns(StaleIndexWarning):
        assert load_saved_indexes(find_export(tf_gzip)) is None


def test_corrupt_sidecar_is_ignored_with_a_warning(tf_gzip: Path) -> None:
    window = _last_shard_window(tf_gzip)
    expected, _ = _read(tf_gzip, window)
    path = Path(tfrecord_io.build_index(tf_gzip, spacing=SPACING))
    data = path.read_bytes()
    path.write_bytes(data[:16] + b"{not json" + data[25:])
    with pytest.warns(StaleIndexWarning, match="inconsistent"):
        got, _ = _read(tf_gzip, window)
    np.testing.assert_array_equal(got, expected)
    path.write_bytes(data[: len(data) // 2])
    with pytest.warns(StaleIndexWarning, match="ends inside a section"):
        assert load_saved_indexes(find_export(tf_gzip)) is None


def _rewrite_sidecar(folder: Path, change: Any) -> None:
    path = os.path.join(folder, "export-index.tfrindex")
    saved = read_sidecar(functools.partial(open, path, "rb"))
    for entry in saved:
        for point in entry.points:
            point.get_window()
        change(entry)
    write_sidecar(path, saved, "test")


def _read_every_record(folder: Path) -> tuple[list[bytes | None], int]:
    """Each record's payload through the index (None where it raised), and how many raised.

    Read last to first, so that every read restores a seek point rather than inflating on
    from the previous record.
    """
    with tfrecord_io.open(folder) as ds:
        count = ds._reader.expected_records or 0
        payloads: list[bytes | None] = [None] * count
        for record in reversed(range(count)):
            with contextlib.suppress(RecordError):
                payloads[record] = ds._reader._read_record(record)[0]
    return payloads, payloads.count(None)


def test_sidecar_with_a_lying_offset_raises_instead_of_returning_data(tf_gzip: Path) -> None:
    tfrecord_io.build_index(tf_gzip, spacing=SPACING)

    def shift(entry: Any) -> None:
        for n in range(len(entry.offsets)):
            entry.offsets[n] += 8

    _rewrite_sidecar(tf_gzip, shift)
    payloads, raised = _read_every_record(tf_gzip)
    assert raised == len(payloads)


def test_sidecar_with_wrong_windows_never_returns_wrong_data(tf_gzip: Path) -> None:
    truth = [data for _, data in _iter_all(tf_gzip)]
    tfrecord_io.build_index(tf_gzip, spacing=SPACING)

    def scramble(entry: Any) -> None:
        for point in entry.points:
            if point.window is not None:
                point.window = bytes(reversed(point.window))

    _rewrite_sidecar(tf_gzip, scramble)
    payloads, raised = _read_every_record(tf_gzip)
    assert raised > 0
    assert all(got is None or got == want for got, want in zip(payloads, truth, strict=True))


def _iter_all(folder: Path) -> list[tuple[int, bytes]]:
    records = []
    for shard in find_export(folder).shards:
        records.extend(iter_records(shard))
    return records


def test_cli_index_writes_the_sidecar_and_keeps_a_current_one(tf_gzip: Path) -> None:
    runner = CliRunner()
    done = runner.invoke(main, ["index", str(tf_gzip)])
    assert done.exit_code == 0, done.output
    path = Path(done.output.strip())
    assert path == tf_gzip / "export-index.tfrindex"
    mtime = path.stat().st_mtime_ns
    assert runner.invoke(main, ["index", "-q", str(tf_gzip)]).output == ""
    assert path.stat().st_mtime_ns == mtime  # current: left alone
    assert runner.invoke(main, ["index", "--overwrite", "-q", str(tf_gzip)]).exit_code == 0
    assert path.stat().st_mtime_ns != mtime


def test_sidecar_name_is_not_a_shard_of_the_export(tf_gzip: Path) -> None:
    tfrecord_io.build_index(tf_gzip)
    assert all("index" not in os.path.basename(s) for s in find_export(tf_gzip).shards)
    assert tfrecord_io.validate(tf_gzip) == []


def test_records_spanning_gzip_members_read_through_saved_points(
    tf_gzip: Path, builder: str
) -> None:
    # Concatenated members split mid-record: a read restored from an unaligned point in the
    # first member must skip its trailer and go on in the next member.
    shard = Path(find_export(tf_gzip).shards[0])
    stream = gzip.decompress(shard.read_bytes())
    cut = len(stream) // 2 + 12345
    shard.write_bytes(gzip.compress(stream[:cut], 6) + gzip.compress(stream[cut:], 6))
    truth = [data for _, data in _iter_all(tf_gzip)]
    tfrecord_io.build_index(tf_gzip, spacing=SPACING)
    saved = load_saved_indexes(find_export(tf_gzip))
    assert saved is not None
    assert {p.bits for p in saved[0]._points} - {0}
    payloads, raised = _read_every_record(tf_gzip)
    assert raised == 0
    assert payloads == truth


@pytest.mark.parametrize("compressed", [True, False])
def test_full_read_with_sidecar_splits_shards_and_matches_without(
    tf_export: Any, rng: np.random.Generator, compressed: bool
) -> None:
    info = _make_tf_export(tf_export, rng, ("B1",), 800_000, compressed)
    folder = Path(info.folder)
    with tfrecord_io.open(folder) as ds:
        without = ds.read()
    tfrecord_io.build_index(folder, spacing=SPACING)
    with tfrecord_io.open(folder) as ds:
        ranges = ds._reader.saved_ranges(8)
        with_sidecar = ds.read()
    assert ranges is not None
    assert len(ranges) > len(find_export(folder).shards)  # shards are cut into ranges
    np.testing.assert_array_equal(with_sidecar, without)
    np.testing.assert_array_equal(without, info.expected)


@given(data=st.binary(min_size=2, max_size=200), shift=st.integers(1, 7))
def test_shift_down_reads_the_bytes_as_a_bit_stream_from_the_shift(data: bytes, shift: int) -> None:
    expected = (int.from_bytes(data, "little") >> shift).to_bytes(len(data), "little")[:-1]
    assert seekpoints.shift_down(data, shift) == expected


def test_build_index_refuses_a_spacing_under_64_kib(tf_gzip: Path) -> None:
    with pytest.raises(OptionError, match="spacing must be at least 65536"):
        tfrecord_io.build_index(tf_gzip, spacing=32 << 10)
    assert not (tf_gzip / "export-index.tfrindex").exists()


def test_opening_a_shard_loads_the_exports_sidecar(tf_gzip: Path) -> None:
    tfrecord_io.build_index(tf_gzip, spacing=SPACING)
    shard = find_export(tf_gzip).shards[1]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _, indexes = _read(Path(shard), Window(0, 0, 10, 10))
    assert all(index.saved for index in indexes)


def test_an_export_without_a_sidecar_opens_without_a_warning(tmp_path: Path) -> None:
    folder = Path(shutil.copytree(SAMPLE, tmp_path / "sample"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with tfrecord_io.open(folder) as ds:
            window = ds.read(1, window=Window(200, 100, 64, 64))
    assert window.shape == (64, 64)


def test_overwriting_an_export_removes_its_old_sidecar(export: Any, raster: Any) -> None:
    folder = export(raster(1, 32, 32), patch_dimensions=[16, 16])
    sidecar = Path(tfrecord_io.build_index(folder))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with tfrecord_io.open(
            folder, "w", width=32, height=32, count=1, crs="EPSG:32610", transform=UTM,
            patch_dimensions=[8, 8], file_name_prefix="exp", overwrite=True,
        ) as dst:  # fmt: skip
            dst.write(raster(1, 32, 32, seed=1))
        assert not sidecar.exists()
        with tfrecord_io.open(folder) as ds:
            assert ds.read(1).shape == (32, 32)
