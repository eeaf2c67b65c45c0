"""Many SequenceExamples of one structure, decoded and encoded at once with numpy.

A sequence export stores one ``SequenceExample`` per pixel, and every pixel of a patch has the
same features, steps and kinds. Only the value bytes differ, and, for int64 values, the width of
their varints (which changes the length prefixes around them). So the records of a patch fall
into a few groups of equal length; in each group one record is walked (:func:`sequence_slots`)
to find where each value sits, every record of the group is checked to hold the same bytes
everywhere else, and the values are read (or written) for the whole group as columns of a
``(records, length)`` byte array. A record that does not match its group's template is left to
the general decoder of :mod:`.example`, which gives the precise error if it is malformed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from tfrecord_io.errors import DecodeError
from tfrecord_io.format._wire import _I32, _LEN, _VARINT, _as_buffer, _length, _tag, _varint

__all__ = [
    "Slot",
    "decode_sequences",
    "decode_slot",
    "encode_sequences",
    "encode_slot",
    "sequence_slots",
    "varint_widths",
]

_CONTEXT, _LISTS = 1, 2
_KINDS = {1: "bytes", 2: "float", 3: "int64"}
_SHIFTS = np.arange(0, 70, 7, dtype=np.uint64)
_THRESHOLDS = np.uint64(1) << np.arange(7, 70, 7, dtype=np.uint64)


@dataclass(frozen=True)
class Slot:
    """Where one value of one record sits.

    Attributes
    ----------
    kind : {"float", "int64", "bytes"}
        The list the value is in.
    start, end : int
        Its bytes in the payload: 4 for a float, a varint for an int64, the string for bytes.
    """

    kind: str
    start: int
    end: int


class _Unusable(Exception):
    """The record is not a plain one-value-per-step SequenceExample: no template."""


def sequence_slots(payload: bytes, where: str = "") -> dict[tuple[str, int], Slot] | None:
    """Find each value of a one-value-per-step SequenceExample.

    Parameters
    ----------
    payload : bytes
        A serialised SequenceExample.
    where : str, optional
        Names the record in error messages.

    Returns
    -------
    dict or None
        ``(name, step) -> Slot``, with step -1 for a context feature; None when the record is
        not a template (a feature with no value or several, a name given twice, a group): the
        caller then decodes such records one by one.
    """
    buf = _as_buffer(payload)
    slots: dict[tuple[str, int], Slot] = {}
    names: set[str] = set()
    try:
        for field, body, stop in _fields(buf, 0, len(buf), where):
            if field == _CONTEXT:
                for name, value, value_end in _entries(buf, body, stop, where, names):
                    slots[(name, -1)] = _value_slot(buf, value, value_end, where)
            elif field == _LISTS:
                for name, value, value_end in _entries(buf, body, stop, where, names):
                    steps = [
                        _need(f == 1, b, e) for f, b, e in _fields(buf, value, value_end, where)
                    ]
                    for step, (b, e) in enumerate(steps):
                        slots[(name, step)] = _value_slot(buf, b, e, where)
            else:
                raise _Unusable
    except (_Unusable, DecodeError):
        return None
    return slots


def _need(ok: bool, start: int, end: int) -> tuple[int, int]:
    if not ok:
        raise _Unusable
    return start, end


def _fields(
    buf: bytes | memoryview, start: int, end: int, where: str
) -> Iterator[tuple[int, int, int]]:
    """Yield ``(field, body_start, body_end)`` of a message made only of LEN fields."""
    pos = start
    while pos < end:
        field, wire, pos = _tag(buf, pos, end, where)
        if wire != _LEN:
            raise _Unusable
        body, pos = _length(buf, pos, end, where)
        yield field, body, pos


def _entries(
    buf: bytes | memoryview, start: int, end: int, where: str, names: set[str]
) -> Iterator[tuple[str, int, int]]:
    """Yield ``(key, value_start, value_end)`` of a map's entries, each key once."""
    for field, body, stop in _fields(buf, start, end, where):
        parts = dict((f, (b, e)) for f, b, e in _fields(buf, body, stop, where))
        if field != 1 or set(parts) != {1, 2}:
            raise _Unusable
        try:
            key = bytes(buf[parts[1][0] : parts[1][1]]).decode("utf-8")
        except UnicodeDecodeError:
            raise _Unusable from None
        if key in names:
            raise _Unusable
        names.add(key)
        yield key, parts[2][0], parts[2][1]


def _value_slot(buf: bytes | memoryview, start: int, end: int, where: str) -> Slot:
    """Return the slot of the one value of a Feature."""
    lists = list(_fields(buf, start, end, where))
    if len(lists) != 1 or lists[0][0] not in _KINDS:
        raise _Unusable
    field, pos, stop = lists[0]
    kind = _KINDS[field]
    found: list[Slot] = []
    while pos < stop:
        number, wire, pos = _tag(buf, pos, stop, where)
        if number != 1:
            raise _Unusable
        if wire == _LEN:
            body, pos = _length(buf, pos, stop, where)
            found.append(Slot(kind, body, pos))
        elif wire == _I32 and kind == "float":
            found.append(Slot(kind, pos, pos + 4))
            pos += 4
        elif wire == _VARINT and kind == "int64":
            _, after = _varint(buf, pos, stop, where)
            found.append(Slot(kind, pos, after))
            pos = after
        else:
            raise _Unusable
    if len(found) != 1 or found[0].end > stop or found[0].end <= found[0].start:
        raise _Unusable
    return found[0]


def decode_slot(rows: np.ndarray, slot: Slot) -> tuple[np.ndarray, np.ndarray]:
    """Read one value from each row of a ``(records, length)`` uint8 array.

    Returns
    -------
    values, ok : numpy.ndarray
        float32, int64 or uint8 values, and whether the row's bytes there hold exactly one value
        (a float of 4 bytes, one varint, a 1-byte string); rows not ok are left to the caller.
    """
    cols = rows[:, slot.start : slot.end]
    width = slot.end - slot.start
    count = rows.shape[0]
    if slot.kind == "float":
        if width != 4:
            return np.zeros(count, np.float32), np.zeros(count, bool)
        return np.ascontiguousarray(cols).view("<f4")[:, 0].astype(np.float32), np.ones(count, bool)
    if slot.kind == "bytes":
        if width != 1:
            return np.zeros(count, np.uint8), np.zeros(count, bool)
        return cols[:, 0].copy(), np.ones(count, bool)
    if width > 10:
        return np.zeros(count, np.int64), np.zeros(count, bool)
    ok = cols[:, -1] < 0x80
    if width > 1:
        ok &= (cols[:, :-1] >= 0x80).all(axis=1)
    groups = (cols & 0x7F).astype(np.uint64) << _SHIFTS[:width]
    return np.bitwise_or.reduce(groups, axis=1).view(np.int64), ok


def varint_widths(values: np.ndarray) -> np.ndarray:
    """Bytes each int64 takes as a protobuf varint (negative ones take 10)."""
    unsigned = np.asarray(values, dtype=np.int64).view(np.uint64)
    return 1 + (unsigned[..., np.newaxis] >= _THRESHOLDS).sum(axis=-1)


def encode_slot(rows: np.ndarray, slot: Slot, values: np.ndarray) -> None:
    """Write one value into each row of a ``(records, length)`` uint8 array.

    The rows must be copies of a template whose slot has the width the values need (for
    int64, see :func:`varint_widths`).
    """
    if slot.kind == "float":
        rows[:, slot.start : slot.end] = (
            np.ascontiguousarray(values, dtype="<f4").view(np.uint8).reshape(-1, 4)
        )
    elif slot.kind == "bytes":
        rows[:, slot.start] = values
    else:
        width = slot.end - slot.start
        unsigned = np.asarray(values, dtype=np.int64).view(np.uint64)
        groups = (unsigned[:, np.newaxis] >> _SHIFTS[:width]) & np.uint64(0x7F)
        groups[:, :-1] |= np.uint64(0x80)
        rows[:, slot.start : slot.end] = groups.astype(np.uint8)


def _group_slots(
    slots: dict[tuple[str, int], Slot], features: Sequence[tuple[str, str, int]]
) -> list[list[Slot]] | None:
    """Return the slots of each feature's steps; None if the template does not fit."""
    found = []
    for name, kind, depth in features:
        context = (name, -1) in slots
        keys = [(name, -1)] if context else [(name, d) for d in range(depth)]
        if (
            (context and depth != 1)
            or (name, depth) in slots
            or any(k not in slots or slots[k].kind != kind for k in keys)
        ):
            return None
        found.append([slots[k] for k in keys])
    return found


def decode_sequences(
    payloads: list[bytes], features: Sequence[tuple[str, str, int]], out: list[np.ndarray]
) -> np.ndarray:
    """Decode SequenceExamples of one structure into columns, group by group.

    Parameters
    ----------
    payloads : list of bytes
        The records, one per pixel.
    features : list of (name, kind, depth)
        The bands to read: a context feature (depth 1) or a feature list of ``depth`` steps.
    out : list of numpy.ndarray
        One ``(depth, len(payloads))`` array per feature, filled where decoded.

    Returns
    -------
    numpy.ndarray
        Boolean, per record: True where it was decoded; the others are left to the general
        decoder (they do not match a template, or are malformed).
    """
    count = len(payloads)
    done = np.zeros(count, bool)
    if count == 0:
        return done
    lengths = np.fromiter(map(len, payloads), np.int64, count)
    joined = np.frombuffer(b"".join(payloads), np.uint8)
    starts = np.zeros(count, np.int64)
    np.cumsum(lengths[:-1], out=starts[1:])
    for length in np.unique(lengths).tolist():
        members = np.flatnonzero(lengths == length)
        slots = sequence_slots(payloads[members[0]])
        plan = _group_slots(slots, features) if slots is not None else None
        if plan is None or length == 0:
            continue
        rows = joined[starts[members][:, np.newaxis] + np.arange(length)]
        fixed = np.ones(length, bool)
        for slot in slots.values():  # type: ignore[union-attr]
            fixed[slot.start : slot.end] = False
        ok = (rows[:, fixed] == rows[0, fixed]).all(axis=1)
        decoded = []
        for steps in plan:
            for slot in steps:
                values, good = decode_slot(rows, slot)
                ok &= good
                decoded.append(values)
        chosen = members[ok]
        k = 0
        for steps, array in zip(plan, out, strict=True):
            for depth in range(len(steps)):
                array[depth, chosen] = decoded[k][ok]
                k += 1
        done[chosen] = True
    return done


def encode_sequences(
    template_for: Callable[[int], bytes],
    features: Sequence[tuple[str, str, int]],
    values: list[np.ndarray],
) -> list[bytes]:
    """Encode one SequenceExample per pixel, group by group of equal structure.

    Parameters
    ----------
    template_for : callable
        ``template_for(pixel)`` encodes that pixel's record with the general encoder.
    features : list of (name, kind, depth)
        The features, as :func:`decode_sequences` takes them.
    values : list of numpy.ndarray
        One ``(depth, pixels)`` array per feature.

    Returns
    -------
    list of bytes
        The records, byte-identical to what ``template_for`` gives for every pixel.
    """
    pixels = values[0].shape[1] if values else 0
    key = np.zeros(pixels, np.int64)
    for (_, kind, _), array in zip(features, values, strict=True):
        if kind == "int64":
            for plane in array:
                key = key * 11 + varint_widths(plane)
    payloads: list[bytes] = [b""] * pixels
    for group in np.unique(key).tolist():
        members = np.flatnonzero(key == group)
        template = template_for(int(members[0]))
        slots = sequence_slots(template)
        plan = _group_slots(slots, features) if slots is not None else None
        if plan is None:
            for pixel in members.tolist():
                payloads[pixel] = template_for(pixel)
            continue
        length = len(template)
        rows = np.empty((members.size, length), np.uint8)
        rows[:] = np.frombuffer(template, np.uint8)
        for steps, array in zip(plan, values, strict=True):
            for depth, slot in enumerate(steps):
                encode_slot(rows, slot, array[depth, members])
        whole = rows.tobytes()
        for n, pixel in enumerate(members.tolist()):
            payloads[pixel] = whole[n * length : (n + 1) * length]
    return payloads
