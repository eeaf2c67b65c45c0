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
from tfrecord_io.format import storage
from tfrecord_io.format.storage import StorageOptions

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


def find_export(
    path: str | os.PathLike[str], strict: bool = True, storage_options: StorageOptions = None
) -> ExportFiles:
    """Find an export's shards and mixer from its folder, its mixer or one of its shards.

    Parameters
    ----------
    path : path-like or str
        A folder holding one export, ``PREFIX-mixer.json``, or a ``PREFIX-NNNNN.tfrecord[.gz]``;
        a local path or a URL (a folder URL is a prefix: ``gs://bucket/exports/``).
    strict : bool
        Raise on a gap in the shard numbers; otherwise list the missing names in ``missing``.
    storage_options : dict or Store, optional
        fsspec options when ``path`` is a URL.

    Raises
    ------
    MissingShardError
        No shard found, or the shard numbers have a gap (a lost download).
    OptionError
        A folder holds several exports: name one by its mixer or a shard.
    """
    is_folder = storage.isdir(path, storage_options)
    path = storage.abspath(path)
    if is_folder:
        folder, prefix = path, None
    else:
        folder, name = storage.split(path)
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
        if not storage.exists(path, storage_options):
            raise MissingShardError(f"'{path}' does not exist")
    numbers: dict[str, dict[int, str]] = {}
    entries = sorted(storage.list_export(folder, prefix, storage_options))
    for entry in entries:
        match = _SHARD.match(entry)
        if match and (prefix is None or match["prefix"] == prefix):
            numbers.setdefault(match["prefix"], {})[int(match["number"])] = entry
    if prefix is None:
        mixers = [e[: -len(_MIXER_SUFFIX)] for e in entries if e.endswith(_MIXER_SUFFIX)]
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
    mixer = storage.join(folder, prefix + _MIXER_SUFFIX)
    return ExportFiles(
        folder=folder,
        prefix=prefix,
        shards=tuple(storage.join(folder, found[n]) for n in sorted(found)),
        mixer=mixer if prefix + _MIXER_SUFFIX in entries else None,
        missing=missing,
    )
