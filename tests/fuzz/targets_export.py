"""Fuzz targets on whole exports and their mixers (issue 9, section 3).

Each target is ``target(rng, workdir)``: it makes one mutated input from ``rng`` in ``workdir``
(an empty folder of its own), feeds it to the library, and returns None. It may raise only a
:class:`~tfrecord_io.errors.TFRecordIOError`; anything else, or an ``AssertionError`` of its own,
is a finding. Where the format can reveal a change, the target also checks that it does:

- :func:`mixer_mutation`: the mixer's text or values mutated (bit flips, byte runs, truncation,
  insertion, extreme and non-finite numbers, wrong types, deep nesting, bytes not UTF-8).
  ``open``, ``read`` of a window, ``validate`` and ``Mixer.from_json`` must raise only
  TFRecordIOError, and ``validate`` must raise nothing.
- :func:`reshard`: the records re-cut into other shards (any count, gzip or not, Earth Engine's
  names, hyphenless names, renamed files in a folder, a list). The mosaic must read identical.
- :func:`records_mutation`: records dropped, duplicated or swapped, whole shards swapped. The
  export must read identical when nothing changed, and ``validate`` must report a problem when
  the records differ (a count, or neighbours whose margins disagree).

The source is a small export written once per process by the library's writer: 2 float bands,
patches 6 by 4 with kernel 4 (tiles 10 by 8), a grid of 5 by 4 patches.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import random
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from affine import Affine

import tfrecord_io
from tests.fuzz.targets import FuzzInput, Target, Violation, register
from tfrecord_io.errors import TFRecordIOError
from tfrecord_io.format.records import frame_record, iter_records
from tfrecord_io.image.mixer import Mixer

__all__ = ["TARGETS", "mixer_mutation", "records_mutation", "reshard"]

_SOURCE: dict[str, Any] = {}


def _source() -> dict[str, Any]:
    """Return the source export (written once): its mixer text, payloads and pixels."""
    if not _SOURCE:
        folder = Path(tempfile.mkdtemp(prefix="tfrecord-io-fuzz-")) / "src"
        pixels = np.random.default_rng(7).normal(size=(2, 16, 30)).astype(np.float32)
        with tfrecord_io.open(
            folder,
            "w",
            width=30,
            height=16,
            count=2,
            dtype="float32",
            crs="EPSG:32610",
            transform=Affine(30.0, 0.0, 500000.0, 0.0, -30.0, 4200000.0),
            format_options={"patchDimensions": [6, 4], "kernelSize": [4, 4]},
        ) as dst:
            dst.write(pixels)
        (mixer,) = folder.glob("*-mixer.json")
        payloads = [
            p for shard in sorted(folder.glob("*.tfrecord*")) for _, p in iter_records(shard)
        ]
        with tfrecord_io.open(folder) as ds:
            _SOURCE.update(
                folder=folder, mixer=mixer.read_bytes(), payloads=payloads, pixels=ds.read()
            )
    return _SOURCE


def _write_shards(
    workdir: Path, payloads: list[bytes], cuts: list[int], names: list[str], compress: bool
) -> list[Path]:
    """Write ``payloads`` cut at ``cuts`` into shards named ``names``; return their paths."""
    bounds = [0, *cuts, len(payloads)]
    paths = []
    for name, start, end in zip(names, bounds[:-1], bounds[1:], strict=True):
        path = workdir / name
        data = b"".join(frame_record(p) for p in payloads[start:end])
        path.write_bytes(gzip.compress(data, mtime=0) if compress else data)
        paths.append(path)
    return paths


def _exercise(path: Any, **options: Any) -> np.ndarray | None:
    """Open, read and validate: return the pixels read, None when opening or reading refused."""
    tfrecord_io.validate(path, **options)  # returns problems; raising at all is a finding
    try:
        with tfrecord_io.open(path, **options) as ds:
            return ds.read()
    except TFRecordIOError:
        return None


# -- mixer mutations ----------------------------------------------------------------------------

_VALUES = [
    "NaN", "Infinity", "-Infinity", "1e308", "-0.0", "0", "-1", "1" + "0" * 400, "true", "null",
    '"x"', "[]", "{}", "[1, 2]", "2147483648", "9223372036854775808", "1e-320", '"EPSG:999999"',
]  # fmt: skip


def _mutate_text(rng: np.random.Generator, text: bytes) -> bytes:
    data = bytearray(text)
    kind = int(rng.integers(7))
    if kind == 0 and data:  # bit flips
        for _ in range(int(rng.integers(1, 4))):
            data[int(rng.integers(len(data)))] ^= 1 << int(rng.integers(8))
    elif kind == 1:  # a run of random bytes
        at = int(rng.integers(len(data) + 1))
        data[at:at] = rng.bytes(int(rng.integers(1, 16)))
    elif kind == 2:  # truncation
        del data[int(rng.integers(len(data) + 1)) :]
    elif kind == 3:  # a number or a value replaced
        numbers = [m for m in range(len(data)) if chr(data[m]).isdigit()]
        if numbers:
            at = numbers[int(rng.integers(len(numbers)))]
            end = at
            while end < len(data) and chr(data[end]) in "0123456789.E-":
                end += 1
            data[at:end] = _VALUES[int(rng.integers(len(_VALUES)))].encode()
    elif kind == 4:  # deep nesting
        depth = int(rng.integers(10, 200_000))
        data = bytearray(b"[" * depth + b"]" * depth)
    elif kind == 5:  # a key removed or renamed
        obj = json.loads(text)
        key = list(obj)[int(rng.integers(len(obj)))]
        obj[key + "x" if rng.random() < 0.5 else key] = obj.pop(key)
        if rng.random() < 0.5:
            del obj[key + "x" if key + "x" in obj else key]
        data = bytearray(json.dumps(obj).encode())
    else:  # not UTF-8
        data[int(rng.integers(len(data)))] = 0xFF
    return bytes(data)


def mixer_mutation(rng: np.random.Generator, workdir: Path) -> None:
    """Mutate the mixer of an export; everything must raise only TFRecordIOError."""
    source = _source()
    for shard in sorted(source["folder"].glob("*.tfrecord*")):
        os.symlink(shard, workdir / shard.name)
    mixer = _mutate_text(rng, source["mixer"])
    (workdir / "src-mixer.json").write_bytes(mixer)
    with contextlib.suppress(TFRecordIOError):
        Mixer.from_json(mixer.decode("utf-8", "replace"), "fuzz")
    pixels = _exercise(workdir)
    if pixels is not None and mixer == source["mixer"]:
        assert np.array_equal(pixels, source["pixels"])


# -- re-sharding ----------------------------------------------------------------------------------


def _names(rng: np.random.Generator, count: int, compress: bool) -> tuple[list[str], str]:
    suffix = ".tfrecord.gz" if compress else ".tfrecord"
    scheme = ("ee", "hyphenless", "trailing", "list")[int(rng.integers(4))]
    if scheme == "ee":
        return [f"src-{n:05d}{suffix}" for n in range(count)], "src-mixer.json"
    if scheme == "hyphenless":
        return [f"src{n:05d}{suffix}" for n in range(count)], "src-mixer.json"
    if scheme == "trailing":
        return [f"part_{n * 7 + 3}.tfr" for n in range(count)], "grid.json"
    return [f"z{count - n}_{rng.integers(10**6)}.bin" for n in range(count)], "any.json"


def reshard(rng: np.random.Generator, workdir: Path) -> None:
    """Re-cut the records into other shards under other names; the mosaic must read the same."""
    source = _source()
    payloads = source["payloads"]
    count = int(rng.integers(1, 6))
    cuts = sorted(int(c) for c in rng.choice(np.arange(1, len(payloads)), count - 1, replace=False))
    compress = bool(rng.random() < 0.5)
    names, mixer = _names(rng, count, compress)
    shards = _write_shards(workdir, payloads, cuts, names, compress)
    (workdir / mixer).write_bytes(source["mixer"])
    path: Any = workdir if not names[0].endswith(".bin") else shards
    options = {"mixer": workdir / mixer} if isinstance(path, list) else {}
    problems = tfrecord_io.validate(path, **options)
    assert problems == [], problems
    with tfrecord_io.open(path, **options) as ds:
        assert np.array_equal(ds.read(), source["pixels"])


# -- records dropped, duplicated, swapped ------------------------------------------------------


def _mutate_records(rng: np.random.Generator, payloads: list[bytes]) -> list[bytes]:
    records = list(payloads)
    for _ in range(int(rng.integers(1, 3))):
        kind = int(rng.integers(4))
        a, b = (int(i) for i in rng.integers(len(records), size=2))
        if kind == 0:
            del records[a]
        elif kind == 1:
            records.insert(a, records[b])
        elif kind == 2:
            records[a], records[b] = records[b], records[a]
        else:  # a dropped record next to a duplicated one: the count stays right
            records[a] = records[max(a - 1, 0)]
    return records


def records_mutation(rng: np.random.Generator, workdir: Path) -> None:
    """Drop, duplicate or swap records; a changed export must not validate as sound."""
    source = _source()
    records = _mutate_records(rng, source["payloads"])
    cut = int(rng.integers(1, len(records))) if len(records) > 1 else 1
    _write_shards(
        workdir,
        records,
        [cut] if cut < len(records) else [],
        ["src-00000.tfrecord", "src-00001.tfrecord"][: 2 if cut < len(records) else 1],
        compress=bool(rng.random() < 0.5),
    )
    (workdir / "src-mixer.json").write_bytes(source["mixer"])
    problems = tfrecord_io.validate(workdir)
    if records == source["payloads"]:
        assert problems == [], problems
        pixels = _exercise(workdir)
        assert pixels is not None
        assert np.array_equal(pixels, source["pixels"])
    else:
        assert problems, "a permuted export validated as sound"


TARGETS: dict[str, Callable[[np.random.Generator, Path], None]] = {
    "mixer_mutation": mixer_mutation,
    "reshard": reshard,
    "records_mutation": records_mutation,
}


def run(name: str, seed: int, workdir: Path) -> None:
    """Run target ``name`` once with ``seed`` in a fresh sub-folder of ``workdir``."""
    folder = workdir / f"{name}-{seed}"
    folder.mkdir()
    try:
        TARGETS[name](np.random.default_rng(seed), folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _registered(name: str) -> Target:
    """Wrap export target ``name`` for the harness: the input is its seed, the check runs it."""

    def make(rng: random.Random) -> FuzzInput:
        seed = rng.getrandbits(63)
        # The export the target builds and reads is about 2 MiB: its allocations scale with that.
        return FuzzInput(seed.to_bytes(8, "little"), 2 << 20, f"{name} seed {seed}")

    def check(item: FuzzInput, workdir: Path, rng: random.Random) -> bool:
        folder = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=workdir))
        try:
            TARGETS[name](np.random.default_rng(int.from_bytes(item.data, "little")), folder)
        except AssertionError as exc:  # the target's oracle
            raise Violation(str(exc)) from exc
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return True

    return register(Target(name, make, check, weight=0.1))


for _name in TARGETS:
    _registered(_name)
