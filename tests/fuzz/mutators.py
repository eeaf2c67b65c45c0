"""Seeded mutations of byte strings and of TFRecord record streams.

Every mutator is ``mutate(rng, data) -> bytes`` with ``rng`` a :class:`random.Random`, so a run
is reproduced by its seed. Record-aware mutators take the record boundaries of a valid stream.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable, Sequence

from tfrecord_io.format.records import frame_record, masked_crc32c

__all__ = [
    "BYTE_MUTATORS",
    "Mutator",
    "bit_flip",
    "byte_run",
    "delete",
    "forge_length",
    "insert",
    "mutate_bytes",
    "mutate_payload",
    "truncate",
]

Mutator = Callable[[random.Random, bytes], bytes]

# Lengths a forger tries: around zero, around the real sizes, the int64/uint64 edges.
_FORGED = (
    0,
    1,
    7,
    8,
    12,
    15,
    16,
    255,
    4096,
    1 << 20,
    1 << 31,
    1 << 32,
    (1 << 63) - 1,
    1 << 63,
    (1 << 64) - 1,
    (1 << 64) - 16,
)


def bit_flip(rng: random.Random, data: bytes) -> bytes:
    """Flip 1 to 4 random bits."""
    if not data:
        return data
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        out[rng.randrange(len(out))] ^= 1 << rng.randrange(8)
    return bytes(out)


def byte_run(rng: random.Random, data: bytes) -> bytes:
    """Overwrite a run of 1 to 64 bytes with one value (0x00, 0xff or random) or random bytes."""
    if not data:
        return data
    start = rng.randrange(len(data))
    size = min(rng.randint(1, 64), len(data) - start)
    choice = rng.randrange(4)
    if choice == 3:
        run = rng.randbytes(size)
    else:
        run = bytes([(0x00, 0xFF, rng.randrange(256))[choice]]) * size
    return data[:start] + run + data[start + size :]


def truncate(rng: random.Random, data: bytes) -> bytes:
    """Cut the data at a random point (often near the end, where trailers are)."""
    if not data:
        return data
    cut = len(data) - rng.randint(1, min(len(data), 24)) if rng.random() < 0.5 else 0
    return data[: cut or rng.randrange(len(data))]


def insert(rng: random.Random, data: bytes) -> bytes:
    """Insert 1 to 32 random bytes, or a copy of a slice of the data, at a random point."""
    at = rng.randrange(len(data) + 1)
    if data and rng.random() < 0.5:
        start = rng.randrange(len(data))
        piece = data[start : start + rng.randint(1, 64)]
    else:
        piece = rng.randbytes(rng.randint(1, 32))
    return data[:at] + piece + data[at:]


def delete(rng: random.Random, data: bytes) -> bytes:
    """Delete 1 to 32 bytes at a random point."""
    if not data:
        return data
    start = rng.randrange(len(data))
    return data[:start] + data[start + rng.randint(1, 32) :]


BYTE_MUTATORS: tuple[Mutator, ...] = (bit_flip, byte_run, truncate, insert, delete)


def mutate_bytes(rng: random.Random, data: bytes, rounds: int = 3) -> bytes:
    """Apply 1 to ``rounds`` random byte mutators in turn."""
    for _ in range(rng.randint(1, rounds)):
        data = rng.choice(BYTE_MUTATORS)(rng, data)
    return data


def _length_field(length: int) -> bytes:
    field = struct.pack("<Q", length)
    return field + struct.pack("<I", masked_crc32c(field))


def forge_length(rng: random.Random, payloads: Sequence[bytes]) -> bytes:
    """Frame ``payloads`` with one record's length replaced by a forged one with a valid CRC."""
    victim = rng.randrange(len(payloads))
    parts = []
    for n, payload in enumerate(payloads):
        framed = frame_record(payload)
        if n == victim:
            if rng.random() < 0.5:
                length = rng.choice(_FORGED)
            else:
                length = max(0, len(payload) + rng.randint(-20, 20))
            framed = _length_field(length) + framed[12:]
        parts.append(framed)
    return b"".join(parts)


def mutate_payload(rng: random.Random, payloads: Sequence[bytes]) -> bytes:
    """Frame ``payloads`` with one payload mutated and its CRCs made valid again."""
    victim = rng.randrange(len(payloads))
    mutated = list(payloads)
    mutated[victim] = mutate_bytes(rng, mutated[victim])
    return b"".join(frame_record(p) for p in mutated)
