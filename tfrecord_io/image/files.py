"""Find an export's files: its shards in order and its mixer, from any one of them.

Shards are ``PREFIX-NNNNN.tfrecord[.gz]`` with five-digit numbers, so sorting the names gives
the order, and a gap in the numbers is a lost shard; the mixer is ``PREFIX-mixer.json`` (the
``-`` is added even when the prefix ends in ``_``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from tfrecord_io.errors import MissingShardError, OptionError

__all__ = ["ExportFiles", "find_export"]

_SHARD = re.compile(r"^(?P<prefix>.*)-(?P<number>\d{5})\.tfrecord(?:\.gz)?$")
_MIXER_SUFFIX = "-mixer.json"


@dataclass(frozen=True)
class ExportFiles:
    """The files of one export: its shards in order and its mixer, if any."""

    folder: str
    prefix: str
    shards: tuple[str, ...]
    mixer: str | None
    missing: tuple[str, ...] = ()


def find_export(path: str | os.PathLike[str], strict: bool = True) -> ExportFiles:
    """Find an export's shards and mixer from its folder, its mixer or one of its shards.

    Parameters
    ----------
    path : path-like
        A folder holding one export, ``PREFIX-mixer.json``, or a ``PREFIX-NNNNN.tfrecord[.gz]``.
    strict : bool
        Raise on a gap in the shard numbers; otherwise list the missing names in ``missing``.

    Raises
    ------
    MissingShardError
        No shard found, or the shard numbers have a gap (a lost download).
    OptionError
        A folder holds several exports: name one by its mixer or a shard.
    """
    path = os.path.abspath(os.fspath(path))
    if os.path.isdir(path):
        folder, prefix = path, None
    else:
        folder, name = os.path.split(path)
        match = _SHARD.match(name)
        if match:
            prefix = match["prefix"]
        elif name.endswith(_MIXER_SUFFIX):
            prefix = name[: -len(_MIXER_SUFFIX)]
        else:
            raise MissingShardError(
                f"'{path}' is neither an export folder, a PREFIX-mixer.json nor a "
                "PREFIX-NNNNN.tfrecord[.gz] shard"
            )
        if not os.path.exists(path):
            raise MissingShardError(f"'{path}' does not exist")
    numbers: dict[str, dict[int, str]] = {}
    for entry in sorted(os.listdir(folder)):
        match = _SHARD.match(entry)
        if match and (prefix is None or match["prefix"] == prefix):
            numbers.setdefault(match["prefix"], {})[int(match["number"])] = entry
    if prefix is None:
        mixers = [e[: -len(_MIXER_SUFFIX)] for e in os.listdir(folder) if e.endswith(_MIXER_SUFFIX)]
        prefixes = sorted(set(numbers) | set(mixers))
        if len(prefixes) > 1:
            raise OptionError(
                f"'{folder}' holds several exports ({', '.join(prefixes)}): open one by its "
                "PREFIX-mixer.json or one of its shards"
            )
        prefix = prefixes[0] if prefixes else ""
    found = numbers.get(prefix, {})
    if not found:
        raise MissingShardError(f"'{folder}' holds no shard named {prefix}-NNNNN.tfrecord[.gz]")
    missing = tuple(
        f"{prefix}-{n:05d}.tfrecord[.gz]" for n in range(max(found) + 1) if n not in found
    )
    if missing and strict:
        names = ", ".join(missing[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise MissingShardError(
            f"'{folder}': shard(s) {names}{more} are missing, so every later patch would be "
            "shifted. Download the missing shard(s) again."
        )
    mixer = os.path.join(folder, prefix + _MIXER_SUFFIX)
    return ExportFiles(
        folder=folder,
        prefix=prefix,
        shards=tuple(os.path.join(folder, found[n]) for n in sorted(found)),
        mixer=mixer if os.path.exists(mixer) else None,
        missing=missing,
    )
