"""Whole-export operations: the guts of the commands, without argument parsing.

:func:`validate` reads every record of an export and reports every problem it finds, not just
the first, so a user can see at once whether a download is complete and intact.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from tfrecord_io.errors import (
    MissingMixerError,
    MissingShardError,
    RecordCountError,
    RecordError,
    TFRecordIOError,
    location,
)
from tfrecord_io.mixer import Mixer
from tfrecord_io.reader import ExportReader, find_export
from tfrecord_io.records import iter_records

__all__ = ["Problem", "validate"]

_MAX_RECORD_PROBLEMS = 1000


@dataclass(frozen=True)
class Problem:
    """One problem found in an export.

    Attributes
    ----------
    path : str
        The file it is in (the folder for export-wide problems).
    record : int or None
        Index of the record in the whole export, where it applies.
    error : str
        Name of the :class:`TFRecordIOError` subclass that reading would raise.
    message : str
        What is wrong and what to do.
    """

    path: str
    record: int | None
    error: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        """Return the problem as a JSON-ready dict."""
        return {
            "path": self.path,
            "record": self.record,
            "error": self.error,
            "message": self.message,
        }


def _problem(path: str, exc: TFRecordIOError, record: int | None = None) -> Problem:
    return Problem(path, record, type(exc).__name__, str(exc))


def validate(path: str | os.PathLike[str], **options: Any) -> list[Problem]:
    """Check a whole export and return every problem found (an empty list when it is sound).

    Checks: gaps in the shard numbers; the mixer (present, well formed); the framing and
    CRC-32C of every record of every shard; the gzip streams; every record decoded against the
    first record's bands and the grid; the record count against ``totalPatches``.

    Parameters
    ----------
    path : path-like
        The export folder, its mixer, or one of its shards.
    **options
        Passed to :class:`~tfrecord_io.reader.ExportReader` (``kernel_size``, ``mixer``, ...).

    Returns
    -------
    list of Problem
        In the order found.
    """
    problems: list[Problem] = []
    try:
        files = find_export(path, strict=False)
    except TFRecordIOError as exc:
        return [_problem(os.fspath(path), exc)]
    for name in files.missing:
        problems.append(
            Problem(
                os.path.join(files.folder, name),
                None,
                MissingShardError.__name__,
                f"'{os.path.join(files.folder, name)}' is missing, so every later patch would "
                "be shifted. Download it again.",
            )
        )
    layout = None
    expected: int | None = None
    records_per_patch = 1
    if not files.missing:
        try:
            reader = ExportReader(path, **options)
            layout = reader.layout
            expected = reader.grid.total_patches
            records_per_patch = reader.records_per_patch
        except RecordCountError as exc:
            problems.append(_problem(files.folder, exc))
        except MissingMixerError as exc:
            problems.append(_problem(files.folder, exc))
        except RecordError:
            pass  # reported with its record by the scan below
        except TFRecordIOError as exc:
            problems.append(_problem(files.mixer or files.folder, exc))
    if expected is None and files.mixer is not None:
        try:
            mixer = Mixer.from_file(files.mixer)
            expected = mixer.total_patches * records_per_patch if layout is None else expected
        except TFRecordIOError as exc:
            if not any(p.path == files.mixer for p in problems):
                problems.append(_problem(files.mixer, exc))
    total = 0
    record_problems = 0
    for shard in files.shards:
        try:
            for offset, payload in iter_records(shard, first_index=total):
                if layout is not None and not layout.sequence:
                    try:
                        layout.decode(payload, location(shard, total, offset))
                    except TFRecordIOError as exc:
                        record_problems += 1
                        if record_problems <= _MAX_RECORD_PROBLEMS:
                            problems.append(_problem(shard, exc, total))
                total += 1
        except TFRecordIOError as exc:
            record = _record_of(exc, total)
            problems.append(_problem(shard, exc, record))
            total = record  # the rest of the shard cannot be framed; count what was read
    if record_problems > _MAX_RECORD_PROBLEMS:
        problems.append(
            Problem(
                files.folder,
                None,
                "TooManyProblems",
                f"{record_problems - _MAX_RECORD_PROBLEMS} more record problems not listed",
            )
        )
    if (
        expected is not None
        and not files.missing
        and total != expected * (records_per_patch if layout is None else 1)
    ):
        want = expected if layout is not None else expected
        problems.append(
            Problem(
                files.folder,
                None,
                RecordCountError.__name__,
                f"'{files.folder}' holds {total} records in {len(files.shards)} shard(s), but "
                f"the mixer's grid needs {want}. "
                + (
                    "A shard may be missing at the end: download it."
                    if total < want
                    else "Shards of another export may be mixed in."
                ),
            )
        )
    return problems


def _record_of(exc: TFRecordIOError, default: int) -> int:
    text = str(exc)
    marker = ", record "
    if marker in text:
        digits = text.split(marker, 1)[1].split()[0].rstrip(",:")
        if digits.isdigit():
            return int(digits)
    return default
