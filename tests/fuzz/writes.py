"""Fuzz target ``write``: a format-level write killed, or out of space, at a random moment.

A write (:class:`Destination` and :class:`ShardSink`, as the image writer drives them) goes into
a fresh folder, beside another export, or over an old export. It is either killed just before
its k-th call that changes a folder (``os.rename``, ``replace``, ``remove``, ``unlink``,
``rmdir``, ``mkdir``; nothing after that point runs, as after SIGKILL), or its files fail with
``ENOSPC`` after a random number of bytes. After recovery (:func:`recover_writes`, as the next
write or ``tfrecord-io doctor`` runs it) the folder must hold exactly the old files or exactly
the new ones, and no temporary file.
"""

from __future__ import annotations

import contextlib
import errno
import os
import random
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.fuzz import corpus
from tests.fuzz.targets import FuzzInput, Target, Violation, register
from tfrecord_io.format import destination, shards
from tfrecord_io.format.destination import Destination, recover_writes
from tfrecord_io.format.records import frame_record
from tfrecord_io.format.shards import ShardSink

__all__ = ["check_write"]

_FS_CALLS = ("rename", "replace", "remove", "unlink", "rmdir", "mkdir")
_MIXER = '{"patchDimensions": [1, 1], "patchesPerRow": 1, "totalPatches": 1}'


class _Killed(BaseException):
    """Stands for SIGKILL: nothing of the writer runs after it."""


@contextlib.contextmanager
def _killed_at(call: int) -> Iterator[None]:
    calls = [0]
    originals = {name: getattr(os, name) for name in _FS_CALLS}

    def wrap(name: str) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            calls[0] += 1
            if calls[0] == call:
                raise _Killed(name)
            return originals[name](*args, **kwargs)

        return wrapper

    for name in _FS_CALLS:
        setattr(os, name, wrap(name))
    try:
        yield
    finally:
        for name, original in originals.items():
            setattr(os, name, original)


class _FullFile:
    """A file whose writes fail with ENOSPC once a shared byte budget is spent."""

    def __init__(self, f: Any, budget: list[int]) -> None:
        self._f, self._budget = f, budget

    def write(self, data: Any) -> int:
        size = len(data)
        if size > self._budget[0]:
            self._f.write(data[: self._budget[0]])
            self._budget[0] = 0
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self._budget[0] -= size
        return self._f.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._f, name)

    def __enter__(self) -> _FullFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self._f.close()


@contextlib.contextmanager
def _full_after(budget: int) -> Iterator[None]:
    left = [budget]

    def limited_open(*args: Any, **kwargs: Any) -> Any:
        return _FullFile(open(*args, **kwargs), left)

    for module in (shards, destination):
        module.open = limited_open  # type: ignore[attr-defined]
    try:
        yield
    finally:
        for module in (shards, destination):
            del module.open  # type: ignore[attr-defined]


def _write(folder: Path, prefix: str, plan: dict[str, Any]) -> None:
    dest = Destination(folder, prefix, overwrite=plan["overwrite"])
    sink = ShardSink(
        dest.temp_path,
        prefix,
        compressed=plan["compressed"],
        max_file_size=plan["max_file_size"],
        workers=0,
    )
    try:
        for payload in plan["payloads"]:
            sink.write(payload)
        dest.commit(sink.close(), _MIXER)
    except _Killed:
        raise
    except BaseException:
        sink.abort()
        dest.abort()
        raise


def _snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def _old_state(root: Path, layout: str, rng: random.Random) -> Path:
    folder = root / "out"
    if layout != "fresh":
        folder.mkdir()
        (folder / "keep.txt").write_text("not an export")
        prefix = "p" if layout == "overwrite" else "other"
        for n in range(rng.randint(1, 3)):
            (folder / f"{prefix}-{n:05d}.tfrecord").write_bytes(frame_record(b"old %d" % n))
        (folder / f"{prefix}-mixer.json").write_text("old mixer")
    return folder


def _make_write(rng: random.Random) -> FuzzInput:
    seed = rng.getrandbits(64)
    return FuzzInput(seed.to_bytes(8, "little"), 1 << 20, "write plan")


def check_write(item: FuzzInput, workdir: Path, rng: random.Random) -> bool:
    """Write with a fault injected; after recovery the old or the new files, nothing else."""
    plan_rng = random.Random(item.data)
    layout = plan_rng.choice(("fresh", "beside", "overwrite"))
    payloads = corpus.record_sets(plan_rng) * plan_rng.randint(1, 3)
    plan = {
        "overwrite": layout == "overwrite",
        "compressed": plan_rng.random() < 0.5,
        "max_file_size": max(len(frame_record(p)) for p in payloads) * plan_rng.randint(1, 4),
        "payloads": payloads,
    }
    shutil.rmtree(workdir / "w", ignore_errors=True)
    expected_root, root = workdir / "w" / "expected", workdir / "w" / "faulty"
    expected_root.mkdir(parents=True)
    root.mkdir()
    _write(_old_state(expected_root, layout, random.Random(item.data)), "p", plan)
    new = _snapshot(expected_root)
    folder = _old_state(root, layout, random.Random(item.data))
    old = _snapshot(root)
    if plan_rng.random() < 0.5:
        fault: Any = _killed_at(plan_rng.randint(1, 24))
    else:
        fault = _full_after(plan_rng.randint(0, 3 * sum(map(len, payloads)) + 4096))
    finished = False
    try:
        with fault:
            _write(folder, "p", plan)
        finished = True
    except _Killed:
        pass
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise
    with _as_if_dead():
        recover_writes(root)
        if folder.is_dir():
            recover_writes(folder)
    now = _snapshot(root)
    if now != old and now != new:
        raise Violation(
            f"{layout}: after recovery neither the old nor the new files: {sorted(now)}"
        )
    leftovers = [p.name for p in root.rglob("*") if ".tmp-" in p.name]
    if leftovers:
        raise Violation(f"{layout}: temporary files left after recovery: {leftovers}")
    if finished and now != new:
        raise Violation(f"{layout}: a write that returned did not leave the new files")
    return finished


@contextlib.contextmanager
def _as_if_dead() -> Iterator[None]:
    """Take this process's own temporary folders for those of a dead writer."""
    original = destination._is_stale
    destination._is_stale = lambda state: True  # type: ignore[assignment]
    try:
        yield
    finally:
        destination._is_stale = original


register(Target("write", _make_write, check_write, weight=0.3))
