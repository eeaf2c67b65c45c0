"""Tests of TFRecord framing in tfrecord_io.format.records.

Judges: our own round trip (sequential and random access), TensorFlow as producer and consumer,
and hand-made byte streams (multi-member gzip, corrupted and truncated shards).
"""

from __future__ import annotations

import gc
import gzip
import os
import struct
import tempfile
import tracemalloc
import zlib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import itertools

import tfrecord_io.format.records as records_module
import tfrecord_io.format.storage as storage_module
from tfrecord_io.errors import (
    ChecksumError,
    RecordError,
    TFRecordIOError,
    TruncatedRecordError,
)
from tfrecord_io.format.index import index_shard
from tfrecord_io.format.records import (
    RecordWriter,
    frame_record,
    framed_size,
    is_gzip,
    iter_records,
    masked_crc32c,
    size_hint,
)

SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])

payloads_st = st.lists(st.binary(min_size=0, max_size=300), min_size=0, max_size=12)


def _write(path: Path, payloads: list[bytes], compressed: bool) -> Path:
    with RecordWriter(path, compressed=compressed) as w:
        for p in payloads:
            w.write(p)
    return path


def _raw_bytes(payloads: list[bytes]) -> bytes:
    return b"".join(frame_record(p) for p in payloads)


def _all_records(path: Path, **kwargs: object) -> list[bytes]:
    return [data for _, data in iter_records(path, **kwargs)]  # type: ignore[arg-type]


def _fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


PAYLOADS = [bytes([i]) * (40 + 7 * i) for i in range(6)]


# -- round trips ----------------------------------------------------------------------------


@SETTINGS
@given(
    payloads=payloads_st,
    compressed=st.booleans(),
    spacing=st.integers(1, 200),
    data=st.data(),
)
def test_written_records_read_back_sequentially_and_by_index_in_any_order(
    payloads: list[bytes], compressed: bool, spacing: int, data: st.DataObject
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = _write(Path(tmp) / "x.tfrecord", payloads, compressed)
        assert is_gzip(path) == compressed
        assert _all_records(path) == payloads
        index = index_shard(path, spacing=spacing)
        try:
            assert len(index) == len(payloads)
            order = data.draw(st.permutations(range(len(payloads))))
            for i in order:
                assert index.read(i) == payloads[i]
        finally:
            index.close()


@SETTINGS
@given(payloads=payloads_st, compressed=st.booleans())
def test_offsets_yielded_are_uncompressed_record_starts(
    payloads: list[bytes], compressed: bool
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = _write(Path(tmp) / "x.tfrecord", payloads, compressed)
        offsets = [o for o, _ in iter_records(path)]
        want, pos = [], 0
        for p in payloads:
            want.append(pos)
            pos += framed_size(len(p))
        assert offsets == want
        assert list(index_shard(path).offsets) == want


def test_framed_size_is_the_length_of_the_framed_record() -> None:
    for payload in PAYLOADS:
        assert framed_size(len(payload)) == len(frame_record(payload))


@pytest.mark.parametrize("compressed", [False, True])
def test_size_hint_is_the_uncompressed_stream_length(
    tmp_path: Path, compressed: bool
) -> None:
    path = _write(tmp_path / "x.tfrecord", PAYLOADS, compressed)
    assert size_hint(path) == len(_raw_bytes(PAYLOADS))


def test_frame_record_matches_the_documented_layout() -> None:
    data = b"hello"
    framed = frame_record(data)
    length = struct.pack("<Q", 5)
    assert framed[:8] == length
    assert struct.unpack("<I", framed[8:12])[0] == masked_crc32c(length)
    assert framed[12:17] == data
    assert struct.unpack("<I", framed[17:])[0] == masked_crc32c(data)


def test_masked_crc32c_matches_tensorflow() -> None:
    import tensorflow as tf

    # TensorFlow's own writer output for one record holds masked_crc32c of the payload.
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "t.tfrecord")
        with tf.io.TFRecordWriter(path) as w:
            w.write(b"abc123")
        raw = Path(path).read_bytes()
    assert struct.unpack("<I", raw[-4:])[0] == masked_crc32c(b"abc123")
    assert struct.unpack("<I", raw[8:12])[0] == masked_crc32c(raw[:8])


# -- TensorFlow interoperability --------------------------------------------------------------


@pytest.mark.parametrize("compressed", [False, True])
def test_tensorflow_written_shard_reads_back_identically(tmp_path: Path, compressed: bool) -> None:
    import tensorflow as tf

    path = tmp_path / "tf.tfrecord"
    options = tf.io.TFRecordOptions(compression_type="GZIP" if compressed else "")
    with tf.io.TFRecordWriter(str(path), options) as w:
        for p in PAYLOADS:
            w.write(p)
    assert _all_records(path) == PAYLOADS
    index = index_shard(path, spacing=64)
    assert [index.read(i) for i in reversed(range(len(PAYLOADS)))] == PAYLOADS[::-1]
    index.close()


@pytest.mark.parametrize("compressed", [False, True])
def test_our_shard_reads_back_identically_in_tensorflow(tmp_path: Path, compressed: bool) -> None:
    import tensorflow as tf

    path = _write(tmp_path / "ours.tfrecord", PAYLOADS, compressed)
    ds = tf.data.TFRecordDataset(str(path), compression_type="GZIP" if compressed else "")
    assert [bytes(r.numpy()) for r in ds] == PAYLOADS


# -- gzip details ---------------------------------------------------------------------------


@SETTINGS
@given(
    payloads=st.lists(st.binary(min_size=0, max_size=120), min_size=1, max_size=8),
    cuts=st.lists(st.integers(0, 10_000), max_size=5),
    spacing=st.integers(1, 100),
)
def test_multi_member_gzip_reads_sequentially_and_by_index(
    payloads: list[bytes], cuts: list[int], spacing: int
) -> None:
    raw = _raw_bytes(payloads)
    bounds = sorted({0, len(raw), *(c % (len(raw) + 1) for c in cuts)})
    members = b"".join(gzip.compress(raw[a:b]) for a, b in itertools.pairwise(bounds))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "multi.tfrecord.gz"
        path.write_bytes(members)
        assert _all_records(path) == payloads
        index = index_shard(path, spacing=spacing)
        try:
            assert [index.read(i) for i in reversed(range(len(payloads)))] == payloads[::-1]
        finally:
            index.close()


def test_member_boundary_inside_a_record_reads_correctly(tmp_path: Path) -> None:
    raw = _raw_bytes(PAYLOADS)
    middle = 16 + len(PAYLOADS[0]) + 20  # inside the second record's payload
    path = tmp_path / "split.tfrecord.gz"
    path.write_bytes(gzip.compress(raw[:middle]) + gzip.compress(raw[middle:]))
    assert _all_records(path) == PAYLOADS
    index = index_shard(path, spacing=8)
    assert index.read(1) == PAYLOADS[1]
    assert index.read(0) == PAYLOADS[0]
    index.close()


def test_gzip_named_tfrecord_is_detected_by_magic(tmp_path: Path) -> None:
    path = tmp_path / "x.tfrecord"
    path.write_bytes(gzip.compress(_raw_bytes(PAYLOADS)))
    assert is_gzip(path)
    assert _all_records(path) == PAYLOADS
    assert index_shard(path).read(3) == PAYLOADS[3]


def test_raw_named_tfrecord_gz_is_detected_by_magic(tmp_path: Path) -> None:
    path = tmp_path / "x.tfrecord.gz"
    path.write_bytes(_raw_bytes(PAYLOADS))
    assert not is_gzip(path)
    assert _all_records(path) == PAYLOADS
    assert index_shard(path).read(3) == PAYLOADS[3]


# -- corruption -----------------------------------------------------------------------------


def _flip(path: Path, position: int) -> None:
    data = bytearray(path.read_bytes())
    data[position] ^= 0x01
    path.write_bytes(bytes(data))


def _record_start(n: int) -> int:
    return sum(framed_size(len(p)) for p in PAYLOADS[:n])


def test_flipped_payload_byte_raises_checksum_error_naming_file_and_record(
    tmp_path: Path,
) -> None:
    path = _write(tmp_path / "bad.tfrecord", PAYLOADS, compressed=False)
    _flip(path, _record_start(2) + 12 + 5)
    with pytest.raises(ChecksumError) as excinfo:
        _all_records(path, first_index=100)
    message = str(excinfo.value)
    assert str(path) in message
    assert "record 102" in message


def test_flipped_payload_byte_raises_checksum_error_on_indexed_read(tmp_path: Path) -> None:
    path = _write(tmp_path / "bad.tfrecord.gz", PAYLOADS, compressed=False)
    _flip(path, _record_start(4) + 12 + 1)
    index = index_shard(path, first_index=7)  # only length CRCs are checked here
    assert index.read(3) == PAYLOADS[3]
    with pytest.raises(ChecksumError, match=r"record 11\b") as excinfo:
        index.read(4)
    assert str(path) in str(excinfo.value)


def test_flipped_payload_byte_in_gzip_shard_raises_checksum_error(tmp_path: Path) -> None:
    raw = bytearray(_raw_bytes(PAYLOADS))
    raw[_record_start(1) + 12] ^= 0x80
    path = tmp_path / "bad.tfrecord.gz"
    path.write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(ChecksumError, match=r"record 1\b"):
        _all_records(path)


@pytest.mark.parametrize("byte", [0, 3, 7])
def test_flipped_length_byte_raises_checksum_error(tmp_path: Path, byte: int) -> None:
    path = _write(tmp_path / "bad.tfrecord", PAYLOADS, compressed=False)
    _flip(path, _record_start(1) + byte)
    with pytest.raises(ChecksumError, match=r"record 1\b"):
        _all_records(path)
    with pytest.raises(ChecksumError, match=r"record 1\b"):
        index_shard(path)


def _huge_header(length: int) -> bytes:
    head = struct.pack("<Q", length)
    return head + struct.pack("<I", masked_crc32c(head))


_READ_BUDGET = 1000  # reads of a ~100-byte file: far more than framing it takes


class _CountedReads:
    """A file whose reads are counted; past the budget a read raises, so a loop that would
    read forever (or toward a bogus length in small pieces) fails instead of hanging."""

    def __init__(self, f: Any, reads: list[int]) -> None:
        self._f, self._reads = f, reads

    def read(self, size: int = -1) -> bytes:
        self._reads[0] += 1
        if self._reads[0] > _READ_BUDGET:
            raise AssertionError(f"more than {_READ_BUDGET} reads of a tiny file")
        data: bytes = self._f.read(size)
        self._reads[1] += len(data)
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self._f, name)

    def __enter__(self) -> _CountedReads:
        return self

    def __exit__(self, *exc: object) -> None:
        self._f.close()


def _raises_with_bounded_work(
    func: Any, error: type[Exception], path: Path, monkeypatch: pytest.MonkeyPatch
) -> Exception:
    """Run ``func``, expecting ``error``; check it read little and allocated little."""
    reads = [0, 0]  # read calls, bytes read

    def counted(real: Any) -> Any:
        return lambda *args, **kwargs: _CountedReads(real(*args, **kwargs), reads)

    monkeypatch.setattr(records_module, "open_file", counted(records_module.open_file))
    monkeypatch.setattr(storage_module, "open_file", counted(storage_module.open_file))
    tracemalloc.start()
    try:
        with pytest.raises(error) as excinfo:
            func()
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        monkeypatch.undo()
    assert 0 < reads[0] <= 50
    assert reads[1] <= 4 * path.stat().st_size  # the file is read a few times at the most
    assert peak < 64 << 20
    return excinfo.value


def test_huge_length_in_raw_shard_raises_record_error_without_allocating(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "huge.tfrecord"
    path.write_bytes(frame_record(b"ok") + _huge_header(2**60) + b"x" * 100)
    exc = _raises_with_bounded_work(lambda: _all_records(path), RecordError, path, monkeypatch)
    assert "record 1" in str(exc)
    _raises_with_bounded_work(lambda: index_shard(path), RecordError, path, monkeypatch)


def test_huge_length_in_gzip_shard_raises_truncated_error_without_allocating(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "huge.tfrecord.gz"
    path.write_bytes(gzip.compress(frame_record(b"ok") + _huge_header(2**60) + b"x" * 100))
    exc = _raises_with_bounded_work(
        lambda: _all_records(path), TruncatedRecordError, path, monkeypatch
    )
    assert str(path) in str(exc)
    _raises_with_bounded_work(lambda: index_shard(path), TruncatedRecordError, path, monkeypatch)


@pytest.mark.parametrize("keep", [0.3, 0.6, 0.9])
def test_truncated_gzip_shard_raises_truncated_record_error_naming_file(
    tmp_path: Path, keep: float
) -> None:
    path = _write(tmp_path / "cut.tfrecord.gz", PAYLOADS * 20, compressed=True)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    got: list[bytes] = []
    with pytest.raises(TruncatedRecordError) as excinfo:
        got.extend(payload for _, payload in iter_records(path))
    assert str(path) in str(excinfo.value)
    # Every record inflated whole before the cut comes first: the reader gathers a megabyte of
    # output at a time, and a fault met while gathering must not swallow the sound records
    # before it (GDAL reads patch 0 of a cut last shard).
    inflated = zlib.decompressobj(31).decompress(path.read_bytes())
    whole, at = 0, 0
    while at + 12 <= len(inflated):
        at += struct.unpack_from("<Q", inflated, at)[0] + 16
        whole += at <= len(inflated)
    assert whole > 0
    assert got == (PAYLOADS * 20)[:whole]
    with pytest.raises(TruncatedRecordError) as excinfo:
        index_shard(path)
    assert str(path) in str(excinfo.value)


def test_gzip_cut_at_record_boundary_without_trailer_raises_truncated_record_error(
    tmp_path: Path,
) -> None:
    path = tmp_path / "cut.tfrecord.gz"
    path.write_bytes(gzip.compress(_raw_bytes(PAYLOADS))[:-8])  # drop the CRC and size trailer
    with pytest.raises(TruncatedRecordError):
        _all_records(path)
    with pytest.raises(TruncatedRecordError):
        index_shard(path)


@pytest.mark.parametrize(
    "where", ["in_header", "in_payload", "in_footer"], ids=lambda w: w.replace("_", "-")
)
def test_truncated_raw_shard_raises_truncated_record_error(tmp_path: Path, where: str) -> None:
    path = _write(tmp_path / "cut.tfrecord", PAYLOADS, compressed=False)
    start = _record_start(3)
    cut = {"in_header": start + 5, "in_payload": start + 20, "in_footer": _record_start(4) - 2}
    path.write_bytes(path.read_bytes()[: cut[where]])
    with pytest.raises(TruncatedRecordError) as excinfo:
        _all_records(path)
    assert "record 3" in str(excinfo.value)
    with pytest.raises(TruncatedRecordError) as excinfo:
        index_shard(path)
    assert "record 3" in str(excinfo.value)


def test_records_before_corruption_are_yielded_first(tmp_path: Path) -> None:
    path = _write(tmp_path / "bad.tfrecord", PAYLOADS, compressed=False)
    _flip(path, _record_start(3) + 14)
    seen = []
    records = iter_records(path)
    with pytest.raises(ChecksumError):
        seen.extend(data for _, data in records)
    assert seen == PAYLOADS[:3]


def test_garbage_file_raises_tfrecordio_error(tmp_path: Path) -> None:
    path = tmp_path / "garbage.tfrecord"
    path.write_bytes(os.urandom(64))
    with pytest.raises(TFRecordIOError):
        _all_records(path)


# -- resources ------------------------------------------------------------------------------


@pytest.mark.parametrize("compressed", [False, True])
def test_abandoned_iteration_closes_the_file(tmp_path: Path, compressed: bool) -> None:
    path = _write(tmp_path / "x.tfrecord", PAYLOADS, compressed)
    gc.collect()
    before = _fd_count()
    it = iter_records(path)
    next(it)
    assert _fd_count() == before + 1  # the shard is open while iterating
    del it
    gc.collect()
    assert _fd_count() == before


@pytest.mark.parametrize("compressed", [False, True])
def test_loop_broken_early_leaves_no_open_file(tmp_path: Path, compressed: bool) -> None:
    path = _write(tmp_path / "x.tfrecord", PAYLOADS, compressed)
    gc.collect()
    before = _fd_count()

    def first() -> bytes:
        for _, data in iter_records(path):
            return data
        raise AssertionError("no record")

    assert first() == PAYLOADS[0]
    gc.collect()
    assert _fd_count() == before


def test_shard_index_close_releases_its_file(tmp_path: Path) -> None:
    path = _write(tmp_path / "x.tfrecord.gz", PAYLOADS, compressed=True)
    gc.collect()
    before = _fd_count()
    index = index_shard(path, spacing=16)
    index.read(2)
    index.close()
    assert _fd_count() == before


def test_random_reads_of_a_raw_shard_open_it_once_until_closed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import random

    import tfrecord_io.format.index as index_module

    path = _write(tmp_path / "x.tfrecord", PAYLOADS * 20, compressed=False)
    index = index_shard(path)
    opened: list[object] = []
    real_open = index_module.open_input

    def counted(*args: object, **kwargs: object) -> object:
        opened.append(args[0])
        return real_open(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(index_module, "open_input", counted)
    gc.collect()
    before = _fd_count()
    order = random.Random(0).choices(range(len(index)), k=200)
    assert [index.read(n) for n in order] == [(PAYLOADS * 20)[n] for n in order]
    assert opened == [str(path)]
    index.close()
    assert _fd_count() == before
    assert index.read(7) == PAYLOADS[1]  # reopened after close
    assert len(opened) == 2
    index.close()


def test_threads_reading_one_raw_shard_get_their_own_records(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    records = [bytes([i % 251]) * (10 + i % 37) for i in range(400)]
    index = index_shard(_write(tmp_path / "x.tfrecord", records, compressed=False))
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(index.read, range(len(records))))
    index.close()
    assert got == records
