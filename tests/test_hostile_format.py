"""Regression tests of the format layer against hostile files (issue 9, section 2).

Each test is named for the claim it checks and carries the audit's defect number. Reproductions
start from the sample export ``data/sample`` copied to ``tmp_path``.
"""

from __future__ import annotations

import gzip
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import tfrecord_io
from tests.child import python_env
from tfrecord_io.errors import (
    RecordError,
    TruncatedRecordError,
    UnreadableFileError,
)
from tfrecord_io.format import example
from tfrecord_io.format.index import index_shard
from tfrecord_io.format.records import RecordWriter, is_gzip, iter_records, masked_crc32c

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "sample"
ROOT = Path(__file__).resolve().parent.parent


def _sample(tmp_path: Path) -> Path:
    folder = tmp_path / "sample"
    shutil.copytree(SAMPLE, folder)
    return folder


def _read_all(folder: Path) -> np.ndarray:
    with tfrecord_io.open(folder) as dataset:
        return dataset.read()


def _forged_header(length: int) -> bytes:
    field = struct.pack("<Q", length)
    return field + struct.pack("<I", masked_crc32c(field))


def test_d1_flipped_bit_in_gzip_shard_raises_record_error_not_isal_error(tmp_path: Path) -> None:
    folder = _sample(tmp_path)
    shard = folder / "sample-00001.tfrecord.gz"
    data = bytearray(shard.read_bytes())
    data[394] ^= 0x80  # isal: "Invalid lookback distance found"
    shard.write_bytes(bytes(data))
    with pytest.raises(RecordError, match="gzip stream is corrupt"):
        list(iter_records(shard))
    with pytest.raises(RecordError, match="sample-00001"):
        _read_all(folder)


def _make_dangling(path: Path) -> None:
    path.symlink_to(path.parent / "nowhere")


def _make_loop(path: Path) -> None:
    path.symlink_to(path)


@pytest.mark.parametrize(
    ("make", "says"),
    [(os.mkdir, "is a folder"), (_make_dangling, "does not exist"), (_make_loop, "symbolic")],
    ids=["folder", "dangling-link", "looping-link"],
)
def test_d5_shard_that_is_not_a_file_raises_unreadable_file_error(
    tmp_path: Path, make: object, says: str
) -> None:
    folder = _sample(tmp_path)
    shard = folder / "sample-00001.tfrecord.gz"
    shard.unlink()
    make(shard)  # type: ignore[operator]
    with pytest.raises(UnreadableFileError, match=says):
        is_gzip(shard)
    with pytest.raises(UnreadableFileError, match="sample-00001"):
        _read_all(folder)


@pytest.mark.parametrize("content", [b"\x1f\x8b", b"\x1f\x8b\x08"], ids=["2-byte", "3-byte"])
def test_d6_tiny_gzip_shard_after_the_first_raises_truncated_record_error(
    tmp_path: Path, content: bytes
) -> None:
    folder = _sample(tmp_path)
    (folder / "sample-00001.tfrecord.gz").write_bytes(content)
    with pytest.raises(TruncatedRecordError, match="sample-00001"):
        _read_all(folder)


def test_d7_crc_valid_length_beyond_2_63_raises_truncated_record_error(tmp_path: Path) -> None:
    folder = _sample(tmp_path)
    shard = folder / "sample-00001.tfrecord.gz"
    shard.write_bytes(gzip.compress(_forged_header(2**63 + 5) + b"x" * 100))
    with pytest.raises(TruncatedRecordError, match="more than any file can hold"):
        index_shard(shard)
    with tfrecord_io.open(folder) as dataset, pytest.raises(TruncatedRecordError):
        dataset.read(1, window=((100, 110), (0, 10)))  # patch row 2: in shard 1


@pytest.mark.parametrize("what", ["shard", "mixer"])
def test_d11_fifo_as_shard_or_mixer_raises_at_once_instead_of_blocking(
    tmp_path: Path, what: str
) -> None:
    folder = _sample(tmp_path)
    name = "sample-00001.tfrecord.gz" if what == "shard" else "sample-mixer.json"
    (folder / name).unlink()
    os.mkfifo(folder / name)
    code = (
        "import tfrecord_io\n"
        "from tfrecord_io.errors import UnreadableFileError\n"
        "try:\n"
        f"    with tfrecord_io.open({str(folder)!r}) as ds:\n"
        "        ds.read()\n"
        "except UnreadableFileError as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env=python_env(),
    )
    assert done.returncode == 0, done.stderr
    assert f"the {what} is a FIFO" in done.stdout


def test_d16_reserved_gzip_flag_is_refused_by_sequential_and_indexed_reads_alike(
    tmp_path: Path,
) -> None:
    folder = _sample(tmp_path)
    shard = folder / "sample-00000.tfrecord.gz"
    data = bytearray(shard.read_bytes())
    data[3] |= 0x80
    shard.write_bytes(bytes(data))
    with pytest.raises(RecordError, match="reserved flag bits"):
        list(iter_records(shard))
    with pytest.raises(RecordError, match="reserved flag bits"):
        index_shard(shard)
    with pytest.raises(RecordError, match="reserved flag bits"):
        _read_all(folder)


def test_d17_example_with_unknown_field_2_is_read_as_an_example(tmp_path: Path) -> None:
    folder = _sample(tmp_path)
    expected = _read_all(folder)
    shard = folder / "sample-00000.tfrecord.gz"
    payloads = [payload for _, payload in iter_records(shard)]
    payloads[0] += b"\x12\x03abc"  # field 2, length-delimited, not a FeatureLists
    assert not example.is_sequence_example(payloads[0])
    with RecordWriter(shard, compressed=True) as writer:
        for payload in payloads:
            writer.write(payload)
    np.testing.assert_array_equal(_read_all(folder), expected)
