"""Protocol-buffer wire primitives for :mod:`.example`: varints, tags, packed lists.

Private to the codec. Packed float lists become zero-copy numpy views and packed varints are
decoded and encoded vectorised in numpy; everything raises
:class:`~tfrecord_io.errors.DecodeError` with the byte offset on malformed input.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from tfrecord_io.errors import DecodeError

_Buffer = bytes | memoryview

# Wire types.
_VARINT, _I64, _LEN, _SGROUP, _EGROUP, _I32 = 0, 1, 2, 3, 4, 5
_VALUE_FIELD = frozenset({1})  # `value`, the one field of BytesList, FloatList and Int64List
_MASK64 = (1 << 64) - 1
# protobuf's own limit on nested groups; beyond it, protobuf also refuses the message.
_MAX_DEPTH = 100
_EMPTY_F32 = np.empty(0, dtype=np.float32)
_EMPTY_I64 = np.empty(0, dtype=np.int64)
_EMPTY_F32.flags.writeable = False
_EMPTY_I64.flags.writeable = False
# Bit offsets of the 7-bit groups of a varint, and the smallest value needing k + 1 bytes.
_SHIFTS = [np.uint64(7 * k) for k in range(10)]
_THRESHOLDS = [np.uint64(1) << np.uint64(7 * k) for k in range(1, 10)]


def _error(where: str, pos: int, what: str) -> DecodeError:
    text = f"{what} at byte {pos} of the payload"
    return DecodeError(f"{where}: {text}" if where else text)


def _as_buffer(data: bytes | bytearray | memoryview) -> _Buffer:
    if isinstance(data, bytes):
        return data
    view = memoryview(data)
    if view.format == "B" and view.ndim == 1:
        return view
    if not view.c_contiguous:
        return view.tobytes()
    return view.cast("B")


def _varint(buf: _Buffer, pos: int, end: int, where: str) -> tuple[int, int]:
    if pos >= end:
        raise _error(where, pos, "varint runs past the end of its message")
    byte = buf[pos]
    if byte < 0x80:  # one-byte varints are nearly all tags and short lengths
        return byte, pos + 1
    start = pos
    result = byte & 0x7F
    shift = 7
    pos += 1
    while True:
        if pos >= end:
            raise _error(where, start, "varint runs past the end of its message")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result & _MASK64, pos
        shift += 7
        if shift >= 70:
            raise _error(where, start, "varint longer than 10 bytes")


def _tag(buf: _Buffer, pos: int, end: int, where: str) -> tuple[int, int, int]:
    tag, next_pos = _varint(buf, pos, end, where)
    field = tag >> 3
    if field == 0 or tag > 0xFFFFFFFF:
        raise _error(where, pos, f"invalid field tag {tag:#x}")
    return field, tag & 7, next_pos


def _length(buf: _Buffer, pos: int, end: int, where: str) -> tuple[int, int]:
    size, start = _varint(buf, pos, end, where)
    if start + size > end:
        raise _error(
            where, pos, f"length {size} runs past the end of its message ({end - start} bytes left)"
        )
    return start, start + size


def _len_fields(
    buf: _Buffer,
    start: int,
    end: int,
    where: str,
    message: str,
    known: frozenset[int],
    entry: bool = False,
) -> Iterator[tuple[int, int, int]]:
    """Yield ``(field, body_start, body_end)`` for each known length-delimited field of a message.

    Unknown fields are skipped, except in a map entry (``entry``), where one is refused: no writer
    puts one there, TensorFlow's parser rejects such a record and upb silently drops the entry,
    so refusing is the only answer that loses nothing silently. A known field of another wire
    type is an error too.
    """
    pos = start
    while pos < end:
        tag_pos = pos
        field, wire, pos = _tag(buf, pos, end, where)
        if field not in known:
            if entry:
                raise _error(where, tag_pos, f"map entry has unknown field {field}")
            pos = _skip(buf, field, wire, pos, end, where, tag_pos)
            continue
        if wire != _LEN:
            raise _wrong_wire(where, tag_pos, message, field, wire)
        body, pos = _length(buf, pos, end, where)
        yield field, body, pos


def _skip(
    buf: _Buffer,
    field: int,
    wire: int,
    pos: int,
    end: int,
    where: str,
    tag_pos: int,
    depth: int = 0,
) -> int:
    """Return the position after the value of an unknown field whose tag ended at `pos`."""
    if wire == _VARINT:
        return _varint(buf, pos, end, where)[1]
    if wire == _LEN:
        return _length(buf, pos, end, where)[1]
    if wire in (_I64, _I32):
        size = 8 if wire == _I64 else 4
        if pos + size > end:
            raise _error(where, pos, f"{size}-byte value of field {field} runs past the end")
        return pos + size
    if wire == _SGROUP:
        if depth >= _MAX_DEPTH:
            raise _error(where, tag_pos, "groups nested too deeply")
        while True:
            inner_pos = pos
            inner_field, inner_wire, pos = _tag(buf, pos, end, where)
            if inner_wire == _EGROUP:
                if inner_field != field:
                    raise _error(
                        where, inner_pos, f"end of group {inner_field} inside group {field}"
                    )
                return pos
            pos = _skip(buf, inner_field, inner_wire, pos, end, where, inner_pos, depth + 1)
    if wire == _EGROUP:
        raise _error(where, tag_pos, f"end of group {field} without a start")
    raise _error(where, tag_pos, f"invalid wire type {wire} for field {field}")


def _wrong_wire(where: str, pos: int, message: str, field: int, wire: int) -> DecodeError:
    if wire > _I32:
        return _error(where, pos, f"invalid wire type {wire} for {message} field {field}")
    return _error(where, pos, f"{message} field {field} has wire type {wire}, which it never has")


def _decode_packed_varints(buf: _Buffer, start: int, end: int, where: str) -> np.ndarray:
    size = end - start
    if size == 0:
        return _EMPTY_I64
    data = np.frombuffer(buf, dtype=np.uint8, count=size, offset=start)
    if data[-1] & 0x80:
        raise _error(where, end - 1, "packed varint runs past the end of its list")
    if int(data.max()) < 0x80:  # every value in 0..127: one byte each
        return data.astype(np.int64)
    ends = np.flatnonzero(data < 0x80)
    starts = np.empty_like(ends)
    starts[0] = 0
    starts[1:] = ends[:-1] + 1
    lengths = ends - starts + 1
    longest = int(lengths.max())
    if longest > 10:
        first = int(starts[np.argmax(lengths > 10)])
        raise _error(where, start + first, "varint longer than 10 bytes")
    # Byte k of a varint holds bits 7k..7k+6. The 10th byte's surplus bits fall off the top of
    # the uint64, exactly as protobuf truncates them. One pass per byte position (at most 10),
    # each over all values at once.
    if int(lengths.min()) == longest:  # all the same length (e.g. all negative): a plain reshape
        grid = (data & 0x7F).reshape(-1, longest)
        result = grid[:, 0].astype(np.uint64)
        for k in range(1, longest):
            result |= grid[:, k].astype(np.uint64) << _SHIFTS[k]
        return result.view(np.int64)
    # Padding lets byte k of the last varints be gathered without running off the end.
    low = np.zeros(size + longest, dtype=np.uint8)
    np.bitwise_and(data, 0x7F, out=low[:size])
    result = low[starts].astype(np.uint64)
    for k in range(1, longest):
        part = low[starts + k]
        part[lengths <= k] = 0  # that byte belongs to the next varint
        result |= part.astype(np.uint64) << _SHIFTS[k]
    return result.view(np.int64)


def _next_value_field(buf: _Buffer, pos: int, end: int, where: str) -> tuple[int, int, int] | None:
    """Find the next field 1 (``value``) of a number list, skipping unknown fields.

    Returns ``(wire_type, tag_pos, pos)`` with ``pos`` just after the tag, or None at ``end``.
    """
    while pos < end:
        tag_pos = pos
        field, wire, pos = _tag(buf, pos, end, where)
        if field == 1:
            return wire, tag_pos, pos
        pos = _skip(buf, field, wire, pos, end, where, tag_pos)
    return None


def _decode_float_list(buf: _Buffer, start: int, end: int, where: str) -> np.ndarray:
    size = end - start
    # Nearly every writer emits one packed chunk; take it as a view without a loop.
    if size and buf[start] == 0x0A:
        body, body_end = _length(buf, start + 1, end, where)
        if body_end == end:
            if (body_end - body) % 4:
                raise _error(where, start, f"packed float list of {body_end - body} bytes")
            view = np.frombuffer(buf, dtype="<f4", count=(body_end - body) // 4, offset=body)
            return view.astype(np.float32, copy=False)
    # Unpacked, as some writers emit: 5-byte (tag 0x0d, value) pairs, read as one strided view.
    if size and size % 5 == 0:
        tags = np.ndarray((size // 5,), dtype=np.uint8, buffer=buf, offset=start, strides=(5,))
        if bool((tags == 0x0D).all()):
            values = np.ndarray(
                (size // 5,), dtype="<f4", buffer=buf, offset=start + 1, strides=(5,)
            )
            return values.astype(np.float32)
    chunks: list[np.ndarray] = []
    pos = start
    while (found := _next_value_field(buf, pos, end, where)) is not None:
        wire, tag_pos, pos = found
        if wire == _LEN:
            body, pos = _length(buf, pos, end, where)
            if (pos - body) % 4:
                raise _error(where, tag_pos, f"packed float list of {pos - body} bytes")
            chunks.append(np.frombuffer(buf, dtype="<f4", count=(pos - body) // 4, offset=body))
        elif wire == _I32:
            if pos + 4 > end:
                raise _error(where, pos, "float value runs past the end of its list")
            chunks.append(np.frombuffer(buf, dtype="<f4", count=1, offset=pos))
            pos += 4
        else:
            raise _wrong_wire(where, tag_pos, "FloatList", 1, wire)
    if not chunks:
        return _EMPTY_F32
    return np.concatenate(chunks).astype(np.float32, copy=False)


def _decode_int64_list(buf: _Buffer, start: int, end: int, where: str) -> np.ndarray:
    if start < end and buf[start] == 0x0A:
        body, body_end = _length(buf, start + 1, end, where)
        if body_end == end:
            return _decode_packed_varints(buf, body, body_end, where)
    if start < end and buf[start] == 0x08:
        # Unpacked: tags and values are all varints, so decode the body as one run of varints
        # and keep every second one, provided every other one is the tag 0x08.
        try:
            run = _decode_packed_varints(buf, start, end, where)
        except DecodeError:
            run = None  # let the field walk below say precisely what is wrong
        if run is not None and run.size % 2 == 0 and bool((run[0::2] == 0x08).all()):
            return run[1::2].copy()
    chunks: list[np.ndarray] = []
    scalars: list[int] = []
    pos = start
    while (found := _next_value_field(buf, pos, end, where)) is not None:
        wire, tag_pos, pos = found
        if wire == _LEN:
            body, pos = _length(buf, pos, end, where)
            if scalars:
                chunks.append(np.array(scalars, dtype=np.uint64).view(np.int64))
                scalars = []
            chunks.append(_decode_packed_varints(buf, body, pos, where))
        elif wire == _VARINT:
            value, pos = _varint(buf, pos, end, where)
            scalars.append(value)
        else:
            raise _wrong_wire(where, tag_pos, "Int64List", 1, wire)
    if scalars:
        chunks.append(np.array(scalars, dtype=np.uint64).view(np.int64))
    if not chunks:
        return _EMPTY_I64
    return chunks[0] if len(chunks) == 1 else np.concatenate(chunks)


def _decode_bytes_list(buf: _Buffer, start: int, end: int, where: str) -> list[bytes]:
    return [
        bytes(buf[body:stop])
        for _, body, stop in _len_fields(buf, start, end, where, "BytesList", _VALUE_FIELD)
    ]


def encode_varint(value: int) -> bytes:
    if value < 0x80:
        return bytes((value,))
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _encode_packed_varints(values: np.ndarray) -> bytes:
    unsigned = np.ascontiguousarray(values, dtype=np.int64).view(np.uint64)
    if unsigned.size == 0:
        return b""
    if int(unsigned.max()) < 0x80:  # every value in 0..127: one byte each
        return unsigned.astype(np.uint8).tobytes()
    # Negative numbers are sign-extended to 64 bits, hence 10 bytes, as protobuf writes them.
    nbytes = np.ones(unsigned.size, dtype=np.intp)
    for threshold in _THRESHOLDS:
        above = unsigned >= threshold
        if not above.any():
            break
        nbytes += above
    longest = int(nbytes.max())
    grid = np.empty((unsigned.size, longest), dtype=np.uint8)
    for k in range(longest):
        column = (unsigned >> _SHIFTS[k]).astype(np.uint8) & np.uint8(0x7F)
        if k < longest - 1:
            column |= (nbytes > k + 1).view(np.uint8) << np.uint8(7)  # continuation bit
        grid[:, k] = column
    if int(nbytes.min()) == longest:
        return grid.tobytes()
    # The boolean mask walks the (value, byte) grid row by row, which is the wire order.
    return grid[np.arange(longest) < nbytes[:, None]].tobytes()
