"""Fuzz targets: how each input is made from a seed, and the oracle that judges it.

A target's ``check`` may raise :class:`~tfrecord_io.errors.TFRecordIOError` (the input was
refused, as it should be) or :class:`Violation` (a wrong answer); anything else is reported by
the runner as a foreign exception. The oracles here:

- ``framing`` and ``gzip``: a shard is read sequentially (:func:`scan_records`) and through the
  random-access index (:class:`ShardIndex`, with seek points every few bytes, records read in
  random order). Both must accept or both refuse, and agree on every offset and payload;
  payloads that pass their CRC go on to the codec oracle. The table reader's framer, fed the
  inflated stream cut at random places, must give the same payloads and refuse exactly what
  the scan finds at fault.
- ``example``: a payload is decoded by the codec; when it decodes, the protobuf reference must
  parse it too and hold the same features, bit for bit (NaN payloads aside).
- ``write`` (in :mod:`.writes`): a write killed at a random file-system call, or running out of
  space at a random byte, leaves the old or the new export after recovery, never neither.
"""

from __future__ import annotations

import itertools
import random
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tests.fuzz import corpus, mutators
from tfrecord_io.errors import ChecksumError, DecodeError, TFRecordIOError
from tfrecord_io.format import example
from tfrecord_io.format import sequence as sequence_codec
from tfrecord_io.format._gzip import STREAM_ERRORS
from tfrecord_io.format.index import ShardIndex
from tfrecord_io.format.records import frame_record, iter_inflated, scan_records
from tfrecord_io.table.frames import _Framer

__all__ = ["TARGETS", "FuzzInput", "Target", "Violation", "check_payload", "register"]


class Violation(AssertionError):
    """An oracle saw a wrong answer (not merely a refused input)."""


@dataclass(frozen=True)
class FuzzInput:
    """One input: its bytes, the size its allocations may scale with, and how it was made."""

    data: bytes
    true_size: int
    note: str


@dataclass(frozen=True)
class Target:
    """A fuzz target: ``make(rng)`` builds an input, ``check(input, workdir, rng)`` judges it.

    ``check`` returns True when the library accepted the input, False when it refused it.
    """

    name: str
    make: Callable[[random.Random], FuzzInput]
    check: Callable[[FuzzInput, Path, random.Random], bool]
    weight: float = 1.0


TARGETS: dict[str, Target] = {}


def register(target: Target) -> Target:
    """Add a target to :data:`TARGETS` (by name) and return it."""
    TARGETS[target.name] = target
    return target


def inflated_size(data: bytes, limit: int = 1 << 28) -> int:
    """Return how many bytes the gzip members at the start of ``data`` inflate to (best effort)."""
    total, rest = 0, data
    while rest[:2] == b"\x1f\x8b" and total < limit:
        d = zlib.decompressobj(31)
        try:
            while rest and not d.eof and total < limit:
                total += len(d.decompress(rest, 1 << 22))
                rest = d.unconsumed_tail
        except zlib.error:
            break
        if not d.eof:
            break
        rest = d.unused_data
    return max(total, len(data))


# -- framing and gzip -------------------------------------------------------------------------


def _make_framing(rng: random.Random) -> FuzzInput:
    payloads = corpus.record_sets(rng)
    how = rng.randrange(3)
    if how == 0:
        stream, note = mutators.forge_length(rng, payloads), "forged length"
    elif how == 1:
        stream, note = mutators.mutate_payload(rng, payloads), "payload, CRCs valid"
    else:
        framed = b"".join(frame_record(p) for p in payloads)
        stream, note = mutators.mutate_bytes(rng, framed), "stream bytes"
    if rng.random() < 0.5:
        return FuzzInput(corpus.gzip_members(rng, stream), len(stream), note + ", gzip")
    return FuzzInput(stream, len(stream), note + ", raw")


def _make_gzip(rng: random.Random) -> FuzzInput:
    stream = b"".join(frame_record(p) for p in corpus.record_sets(rng))
    data = corpus.gzip_members(rng, stream)
    choice = rng.random()
    if choice < 0.2:  # a valid header with optional fields, mutated or not
        data, note = corpus.gzip_with_header(rng, stream), "optional header fields"
        if rng.random() < 0.5:
            data, note = mutators.mutate_bytes(rng, data[:40]) + data[40:], note + ", mutated"
    elif choice < 0.3:  # header flags: reserved bits, FEXTRA, FNAME, FCOMMENT, FHCRC
        data = data[:3] + bytes([rng.randrange(256)]) + data[4:]
        note = "header flags"
    else:
        data, note = mutators.mutate_bytes(rng, data), "compressed bytes"
    return FuzzInput(data, inflated_size(data), note)


def check_shard(item: FuzzInput, workdir: Path, rng: random.Random) -> bool:
    """Read a shard sequentially and by index; both must agree, records must decode cleanly."""
    path = workdir / "shard.tfrecord"
    path.write_bytes(item.data)
    sequential: list[tuple[int, bytes, bool]] = []
    seq_error = idx_error = None
    try:
        for _, offset, payload, error in scan_records(path):
            sequential.append((offset, payload, error is None))
    except TFRecordIOError as exc:
        seq_error = exc
    index = ShardIndex.for_shard(path, spacing=rng.choice((16, 256, 1 << 22)))
    early: dict[int, bytes | None] = {}  # records read while the scan was still going
    try:
        try:
            until = rng.randrange(3)
            while not index.complete:  # in steps, reading as the reader does between them
                index.scan(until)
                until += rng.randint(1, 3)
                if len(index):
                    local = rng.randrange(len(index))
                    early[local] = _read_or_none(index, local)
        except TFRecordIOError as exc:
            idx_error = exc
        if (seq_error is None) != (idx_error is None):
            raise Violation(
                f"sequential read says {seq_error!r} but indexed read says {idx_error!r}"
            )
        if seq_error is None:
            _compare_index(index, sequential, rng)
            for local, got in early.items():
                if got != (sequential[local][1] if sequential[local][2] else None):
                    raise Violation(f"record {local} read during the scan differs")
    finally:
        index.close()
    _compare_table_framing(path, sequential, seq_error is None, rng)
    decoded = [check_payload(payload) for _, payload, ok in sequential if ok]
    return seq_error is None and all(decoded) and len(decoded) == len(sequential)


def _compare_table_framing(
    path: Path, sequential: list[tuple[int, bytes, bool]], sound: bool, rng: random.Random
) -> None:
    """The table reader's framer, fed the inflated stream cut at random, must agree with the
    sequential scan: the same payloads, and an error exactly when the scan found a fault."""
    good = sound and all(ok for _, _, ok in sequential)
    framer = _Framer(str(path), True, None)
    got: list[bytes] = []
    error: TFRecordIOError | None = None
    try:
        pieces = iter_inflated(path)
        while True:
            try:
                piece = next(pieces)
            except (OSError, *STREAM_ERRORS):
                framer.fail()  # as iter_payload_runs does: the error worded by iter_records
            cuts = rng.sample(range(1, len(piece)), min(max(len(piece) - 1, 0), rng.randint(0, 4)))
            for a, b in itertools.pairwise([0, *sorted(cuts), len(piece)]):
                for run in framer.feed(piece[a:b]):
                    got += [bytes(p) if isinstance(run, list) else p.tobytes() for p in run]
            if not piece:
                list(framer.feed(b""))
                break
    except TFRecordIOError as exc:
        error = exc
    if good != (error is None):
        verdict = "reads" if good else "refuses"
        raise Violation(f"the scan {verdict} it, but the table framer says {error!r}")
    if got != [payload for _, payload, _ in sequential][: len(got)]:
        raise Violation("the table framer gives other payloads than the scan")
    if good and len(got) != len(sequential):
        raise Violation(f"the table framer gives {len(got)} records, the scan {len(sequential)}")


def _compare_index(
    index: ShardIndex, sequential: list[tuple[int, bytes, bool]], rng: random.Random
) -> None:
    if len(index) != len(sequential):
        raise Violation(f"{len(sequential)} records read in sequence, {len(index)} indexed")
    order = list(range(len(index)))
    rng.shuffle(order)
    for local in order:
        offset, payload, ok = sequential[local]
        if index.offsets[local] != offset:
            raise Violation(f"record {local}: offset {offset} in sequence, {index.offsets[local]}")
        got = _read_or_none(index, local)
        if (got == payload) != ok:
            raise Violation(f"record {local}: indexed read differs from the sequential one")


def _read_or_none(index: ShardIndex, local: int) -> bytes | None:
    try:
        return index.read(local)
    except ChecksumError:
        return None


# -- the Example codec -----------------------------------------------------------------------


def _make_example(rng: random.Random) -> FuzzInput:
    payload = rng.choice(corpus.payloads())
    data = mutators.mutate_bytes(rng, payload, rounds=rng.choice((1, 2, 4)))
    return FuzzInput(data, len(data), "payload bytes")


def check_payload(payload: bytes) -> bool:
    """Decode a payload every way; what the codec accepts, protobuf must read the same.

    Returns True when the payload decodes as an Example.
    """
    try:
        features: dict[str, example.Feature] | None = example.decode_example(payload)
    except DecodeError:
        features = None
    try:
        example.is_sequence_example(payload)
        sequence = sequence_codec.decode_sequence_example(payload)
    except DecodeError:
        sequence = None
    if features is not None:
        _compare_features(features, _parse("Example", payload).features.feature)
    if sequence is not None:
        reference = _parse("SequenceExample", payload)
        _compare_features(sequence[0], reference.context.feature)
        lists = reference.feature_lists.feature_list
        if sorted(lists) != sorted(sequence[1]):
            raise Violation(f"feature lists {sorted(sequence[1])}, protobuf reads {sorted(lists)}")
        for key, steps in sequence[1].items():
            if len(steps) != len(lists[key].feature):
                raise Violation(f"feature list {key!r}: step counts differ from protobuf's")
            for n, step in enumerate(steps):
                _compare_features({"": step}, {"": lists[key].feature[n]})
    return features is not None


def _parse(name: str, payload: bytes) -> Any:
    from google.protobuf.message import DecodeError as ProtobufDecodeError

    from tests._protobuf import message_class

    reference = message_class(name)()
    try:
        reference.ParseFromString(payload)
    except ProtobufDecodeError as exc:
        raise Violation(f"the codec decodes a payload protobuf refuses as {name} ({exc})") from None
    return reference


def _compare_features(features: dict[str, example.Feature], expected: Any) -> None:
    if sorted(expected) != sorted(features):
        raise Violation(f"features {sorted(features)} but protobuf reads {sorted(expected)}")
    for key, feature in features.items():
        kind = expected[key].WhichOneof("kind")
        want = {"float_list": "float", "int64_list": "int64", "bytes_list": "bytes", None: None}
        values = getattr(expected[key], kind).value if kind else []
        if want[kind] not in (feature.kind, None) or (kind is None and len(feature)):
            raise Violation(f"feature {key!r}: kind {feature.kind} but protobuf reads {kind}")
        if feature.kind == "bytes":
            same = list(feature.values) == list(values)
        else:
            dtype = np.float32 if feature.kind == "float" else np.int64
            same = np.array_equal(
                np.asarray(feature.values), np.asarray(values, dtype=dtype), equal_nan=True
            )
        if not same:
            raise Violation(f"feature {key!r}: values differ from protobuf's")


def _check_example(item: FuzzInput, workdir: Path, rng: random.Random) -> bool:
    return check_payload(item.data)


register(Target("framing", _make_framing, check_shard, weight=3.0))
register(Target("gzip", _make_gzip, check_shard, weight=3.0))
register(Target("example", _make_example, _check_example, weight=3.0))
