"""Valid inputs the mutators start from: Example payloads and record streams.

Small on purpose (a few KB each), so that a run covers many inputs per second.
"""

from __future__ import annotations

import functools
import gzip
import random
import struct
import zlib

import numpy as np

from tfrecord_io.format import example, sequence

__all__ = ["gzip_members", "gzip_with_header", "payloads", "record_sets"]


@functools.cache
def payloads() -> tuple[bytes, ...]:
    """Valid Example and SequenceExample payloads of every feature kind."""
    rng = np.random.default_rng(0)
    floats = example.float_feature(rng.normal(size=64).astype(np.float32))
    ints = example.int64_feature(rng.integers(-(1 << 62), 1 << 62, size=16))
    small = example.int64_feature(np.arange(20))
    raw = example.bytes_feature(rng.integers(0, 255, size=48, dtype=np.uint8))
    return (
        example.encode_example({"B1": floats, "B2": floats, "B3": floats}),
        example.encode_example({"a": ints, "b": small, "c": raw}),
        example.encode_example({"x": example.bytes_feature([b"one", b"", b"three"])}),
        example.encode_example({}),
        sequence.encode_sequence_example(
            {"ctx": small}, {"steps": [floats, floats], "ids": [small]}
        ),
    )


def record_sets(rng: random.Random) -> list[bytes]:
    """A list of 1 to 6 payloads drawn from :func:`payloads`, as one shard holds them."""
    pool = payloads()
    kind = rng.randrange(3)
    if kind == 0:  # one record layout repeated, as an image export writes it
        return [pool[0]] * rng.randint(1, 6)
    if kind == 1:
        return [rng.choice(pool) for _ in range(rng.randint(1, 6))]
    return [pool[4]] * rng.randint(1, 3)


def gzip_members(rng: random.Random, stream: bytes) -> bytes:
    """Gzip ``stream`` as one member, or as several members split at random points."""
    if len(stream) < 2 or rng.random() < 0.6:
        return gzip.compress(stream, compresslevel=rng.choice((1, 6, 9)), mtime=0)
    cuts = sorted(rng.sample(range(1, len(stream)), min(3, len(stream) - 1)))
    pieces = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    return b"".join(gzip.compress(p, mtime=0) for p in pieces)


def gzip_with_header(rng: random.Random, stream: bytes) -> bytes:
    """Gzip ``stream`` as one member whose valid header sets random optional fields.

    FTEXT, FHCRC (with the right CRC-16), FEXTRA, FNAME and FCOMMENT, a random mtime, XFL and
    OS: every reader must accept all of them alike.
    """
    flags = rng.getrandbits(5)
    header = bytearray(b"\x1f\x8b\x08")
    header.append(flags)
    header += struct.pack("<I", rng.getrandbits(32)) + bytes(
        [rng.choice((0, 2, 4)), rng.randrange(256)]
    )
    if flags & 4:  # FEXTRA
        extra = rng.randbytes(rng.randint(0, 40))
        header += struct.pack("<H", len(extra)) + extra
    for bit in (8, 16):  # FNAME, FCOMMENT: zero-terminated
        if flags & bit:
            header += bytes(rng.randint(1, 255) for _ in range(rng.randint(0, 20))) + b"\0"
    if flags & 2:  # FHCRC: the low 16 bits of the header's CRC-32
        header += struct.pack("<H", zlib.crc32(bytes(header)) & 0xFFFF)
    deflate = zlib.compressobj(rng.choice((0, 1, 6, 9)), zlib.DEFLATED, -15)
    body = deflate.compress(stream) + deflate.flush()
    return bytes(header) + body + struct.pack("<II", zlib.crc32(stream), len(stream) & 0xFFFFFFFF)
