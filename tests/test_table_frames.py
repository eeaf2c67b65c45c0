"""The table reader's framing of inflated pieces, and ``to_numpy`` decoding in place.

The framer is fed the inflated stream cut anywhere (inside a header, a payload, a footer, many
times inside one record); it must give exactly the payloads TensorFlow wrote. ``to_numpy``
decodes into arrays allocated once when the files' sizes tell the row count, and must give the
same columns when they tell it wrong.
"""

from __future__ import annotations

import gzip
import hashlib
import itertools
import random
from pathlib import Path

import numpy as np
import pytest

import tfrecord_io
from tests.tftable import tf_parse, tf_read_examples
from tfrecord_io.errors import ChecksumError, TruncatedRecordError
from tfrecord_io.format.records import iter_inflated, iter_records
from tfrecord_io.table.frames import _Framer, iter_payload_runs
from tfrecord_io.table.sink import rows_hint


def _payloads(runs) -> list[bytes]:
    out: list[bytes] = []
    for run in runs:
        out += [bytes(p) for p in run] if isinstance(run, list) else [r.tobytes() for r in run]
    return out


def _feed(path: str, stream: bytes, cuts: list[int]) -> list[bytes]:
    framer = _Framer(path, True, None)
    runs = []
    bounds = [0, *cuts, len(stream)]
    for a, b in itertools.pairwise(bounds):
        if b > a:
            runs += list(framer.feed(stream[a:b]))
    runs += list(framer.feed(b""))
    return _payloads(runs)


@pytest.fixture(scope="module")
def mixed_table(tmp_path_factory):
    """A raw TensorFlow-written table whose records differ in length (strings of any size)."""
    import tensorflow as tf

    path = tmp_path_factory.mktemp("frames") / "mixed.tfrecord"
    rng = np.random.default_rng(3)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for row in range(12):
            size = [0, 1, 5, 40, 300][row % 5]
            feature = {
                "v": tf.train.Feature(float_list=tf.train.FloatList(value=rng.random(4))),
                "s": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"x" * size])),
            }
            writer.write(
                tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()
            )
    return str(path)


def test_a_stream_cut_at_every_offset_frames_as_tensorflow_wrote_it(mixed_table):
    stream = b"".join(iter_inflated(mixed_table))
    expected = [payload for _, payload in iter_records(mixed_table)]
    assert len(expected) == 12
    for cut in range(len(stream) + 1):
        assert _feed(mixed_table, stream, [cut]) == expected, cut


def test_a_stream_cut_many_times_frames_as_tensorflow_wrote_it(mixed_table):
    stream = b"".join(iter_inflated(mixed_table))
    expected = [payload for _, payload in iter_records(mixed_table)]
    rng = random.Random(5)
    for _ in range(300):
        # Cuts close together put several inside one header or one record.
        cuts = sorted(rng.sample(range(1, len(stream)), rng.randint(2, 40)))
        assert _feed(mixed_table, stream, cuts) == expected, cuts
    assert _feed(mixed_table, stream, list(range(1, len(stream)))) == expected  # byte by byte


def test_a_cut_stream_still_names_the_bad_record(mixed_table, tmp_path):
    data = bytearray(Path(mixed_table).read_bytes())
    offsets = [o for _, o, _, _ in tfrecord_io.format.records.scan_records(mixed_table)]
    data[offsets[7] + 20] ^= 0xFF  # inside record 7's payload
    bad = tmp_path / "bad.tfrecord"
    bad.write_bytes(bytes(data))
    for cut in (offsets[7] + 5, offsets[7] + 13, offsets[7] + 21, offsets[8] - 2):
        with pytest.raises(ChecksumError, match="record 7"):
            _feed(str(bad), bytes(data), [cut])
    cut = tmp_path / "cut.tfrecord"
    cut.write_bytes(bytes(data[: offsets[5] + 9]))
    with pytest.raises(TruncatedRecordError, match="record 5"):
        _feed(str(cut), cut.read_bytes(), [offsets[5] + 3])


def test_large_records_straddling_many_pieces_read_whole(tf_table, tmp_path):
    # 1.3 MB records: each spans two or more of the inflater's pieces of about a megabyte.
    rows = 5
    columns = {"big": [np.arange(330_000, dtype=np.float32) + r for r in range(rows)]}
    info = tf_table(columns=columns, kinds={"big": "float"}, rows=rows)
    table = tfrecord_io.open_table(info.paths[0], shapes={"big": (330_000,)})
    data = table.to_numpy()
    np.testing.assert_array_equal(data["big"], np.stack(columns["big"]))
    assert len(_payloads(iter_payload_runs(str(info.paths[0])))) == rows


def test_rows_hint_tells_the_rows_of_a_table_of_one_record_length(tf_table):
    patches = {"p": list(np.random.default_rng(0).random((30, 9, 9), dtype=np.float32))}
    path = str(tf_table(columns=patches, kinds={"p": "float"}, rows=30).paths[0])
    assert rows_hint(path) == 30
    assert len(tf_read_examples(path)) == 30
    varied = tf_table(rows=30)  # strings of several lengths: the size tells nothing
    assert rows_hint(str(varied.paths[0])) is None


def test_a_forged_trailer_gives_no_hint_and_the_table_still_reads(tf_table, tmp_path):
    patches = {"p": list(np.random.default_rng(2).random((20, 3, 3), dtype=np.float32))}
    info = tf_table(columns=patches, kinds={"p": "float"}, rows=20)
    data = bytearray(info.paths[0].read_bytes())
    stride = len(gzip.decompress(bytes(data))) // 20
    # A trailer claiming more rows than any deflate stream of this size could hold.
    data[-4:] = ((len(data) * 1032 // stride + 1) * stride).to_bytes(4, "little")
    path = tmp_path / "forged.tfrecord.gz"
    path.write_bytes(bytes(data))
    assert rows_hint(str(path)) is None
    with pytest.raises(tfrecord_io.errors.RecordError):  # gzip itself refuses the trailer
        tfrecord_io.open_table(str(path)).to_numpy()


def test_to_numpy_decodes_into_arrays_allocated_once(tf_table):
    import tracemalloc

    rows = 6000
    patches = {"p": list(np.random.default_rng(0).random((rows, 33, 33), dtype=np.float32))}
    info = tf_table(columns=patches, kinds={"p": "float"}, rows=rows)
    table = tfrecord_io.open_table(info.paths[0])
    tracemalloc.start()
    try:
        data = table.to_numpy(batch_size=256)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    np.testing.assert_array_equal(data["p"], np.stack(patches["p"]))
    # Decoded into one array allocated once, beside a few pieces of the inflated stream in
    # flight; batches of 256 rows joined at the end would peak at twice the output.
    assert data["p"].base is None
    assert peak < data["p"].nbytes + (12 << 20), (peak, data["p"].nbytes)


def test_iter_batches_decodes_as_the_stream_arrives(tf_table):
    import tracemalloc

    rows, size = 6000, 3000
    patches = {"p": list(np.random.default_rng(4).random((rows, 33, 33), dtype=np.float32))}
    info = tf_table(columns=patches, kinds={"p": "float"}, rows=rows)
    table = tfrecord_io.open_table(info.paths[0])
    batch_bytes = size * 33 * 33 * 4
    expected = [
        hashlib.blake2b(np.stack(patches["p"][at : at + size]).data).hexdigest()
        for at in range(0, rows, size)
    ]
    digests = []
    tracemalloc.start()
    try:
        for batch in table.iter_batches(size):
            digests.append(hashlib.blake2b(batch["p"].data).hexdigest())  # no copy
            del batch
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert digests == expected
    assert len(table) == rows  # counted on the way
    # One batch, decoded as the inflated pieces arrive: holding the batch's records until it is
    # full, then decoding them, would peak at twice the batch.
    assert peak < batch_bytes + (8 << 20), (peak, batch_bytes)


@pytest.mark.parametrize("members", [2, 3])
def test_a_wrong_hint_still_reads_every_row(tf_table, tmp_path, members):
    # Re-compressed as several gzip members, the trailer's size is the last member's only:
    # the hint is too small, and the rows beyond it must still come, in order.
    patches = {"p": list(np.random.default_rng(1).random((90, 5, 5), dtype=np.float32))}
    info = tf_table(columns=patches, kinds={"p": "float"}, rows=90)
    stream = gzip.decompress(info.paths[0].read_bytes())
    stride = len(stream) // 90
    cut = [round(k * 90 / members) * stride for k in range(members + 1)]
    path = tmp_path / "members.tfrecord.gz"
    path.write_bytes(b"".join(gzip.compress(stream[a:b]) for a, b in itertools.pairwise(cut)))
    hint = rows_hint(str(path))
    assert hint is not None
    assert hint < 90
    table = tfrecord_io.open_table(str(path))
    data = table.to_numpy(batch_size=7)
    np.testing.assert_array_equal(data["p"], np.stack(patches["p"]))
    import tensorflow as tf

    expected = tf_parse(path, {"p": tf.io.FixedLenFeature([5, 5], tf.float32)})
    np.testing.assert_array_equal(data["p"], expected["p"])
    assert len(table) == 90
