"""Find an export's files: its shards in order and its mixer, as Earth Engine named them or not.

Earth Engine names shards ``PREFIX-NNNNN.tfrecord[.gz]`` with five-digit numbers, so sorting the
names gives the order and a gap in the numbers is a lost shard; the mixer is
``PREFIX-mixer.json`` (the ``-`` is added even when the prefix ends in ``_``). Shards named
without the hyphen (``PREFIX00000.tfrecord``) are read the same way.

Users rename their files once they leave Earth Engine [seen], so other names are accepted too:
a shard or a list of shards in the order given, with the mixer named by the caller or found
beside them; or a folder holding one JSON file with the mixer's keys and TFRecord files under
other names, ordered by their trailing number, else by name. :attr:`ExportFiles.order` says
which order was used. Paths may be URLs (``gs://bucket/prefix/``), listed through
:mod:`tfrecord_io.format.storage`.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tfrecord_io.errors import MissingShardError, OptionError, TFRecordIOError
from tfrecord_io.format import storage
from tfrecord_io.format.storage import StorageOptions

__all__ = ["ORDERS", "ExportFiles", "find_export", "is_mixer_file", "is_tfrecord_name"]

_SHARD = re.compile(r"^(?P<prefix>.*?)(?P<sep>-?)(?P<number>\d{5})\.tfrecord(?:\.gz)?$")
_TFRECORD = re.compile(r"\.(?:tfrecords?|tfr)(?:\.gz)?$|\.gz$", re.IGNORECASE)
_TRAILING_NUMBER = re.compile(r"(\d+)\D*$")
_MIXER_SUFFIX = "-mixer.json"
_MAX_MIXER_BYTES = 1 << 20

#: The orders :func:`find_export` can give the shards, as :attr:`ExportFiles.order` names them.
ORDERS = ("shard-number", "given", "trailing-number", "name")

PathArg = str | os.PathLike[str]


@dataclass(frozen=True)
class ExportFiles:
    """The files of one export: its shards in order and its mixer, if any.

    Attributes
    ----------
    folder : str
        The folder of the (first) shard.
    prefix : str
        The export's name: ``PREFIX`` of Earth Engine's names, else the stem of the mixer or of
        the first shard.
    shards : tuple of str
        Absolute paths of the shards present, in export order.
    mixer : str or None
        The mixer's path, None when there is none.
    missing : tuple of str
        Names of the shards missing from a gap in the shard numbers (``strict=False``).
    order : str
        How the order of ``shards`` was found: ``"shard-number"`` (Earth Engine's names),
        ``"given"`` (as the caller listed them), ``"trailing-number"`` or ``"name"``.
    numbers : tuple of int
        Earth Engine's shard number of each shard (with ``order="shard-number"``), else
        ``0, 1, ...``.
    """

    folder: str
    prefix: str
    shards: tuple[str, ...]
    mixer: str | None
    missing: tuple[str, ...] = ()
    order: str = "shard-number"
    numbers: tuple[int, ...] = ()


def is_tfrecord_name(path: PathArg) -> bool:
    """Return True if a name ends as TFRecord files do (``.tfrecord[s]``, ``.tfr``, ``.gz``)."""
    return bool(_TFRECORD.search(os.fspath(path)))


def is_mixer_file(path: PathArg, storage_options: StorageOptions = None) -> bool:
    """Return True if ``path`` is a small JSON file holding a mixer's keys.

    The keys are ``projection`` (with ``crs`` and ``affine``), ``patchDimensions``,
    ``patchesPerRow`` and ``totalPatches``. Nothing is raised: an unreadable or malformed file is
    simply not a mixer.
    """
    try:
        if storage.is_url(path):
            if storage.stat(path, storage_options).size > _MAX_MIXER_BYTES:
                return False
            data = json.loads(storage.read_text(path, storage_options))
        else:
            if not os.path.isfile(path) or os.path.getsize(path) > _MAX_MIXER_BYTES:
                return False
            with open(path, "rb") as f:
                data = json.loads(f.read().decode("utf-8"))
    except (OSError, ValueError, RecursionError, TFRecordIOError):
        return False
    return (
        isinstance(data, dict)
        and {"projection", "patchDimensions", "patchesPerRow", "totalPatches"} <= set(data)
        and isinstance(data["projection"], dict)
        and {"crs", "affine"} <= set(data["projection"])
    )


def find_export(
    path: PathArg | Sequence[PathArg],
    strict: bool = True,
    mixer: Any = None,
    storage_options: StorageOptions = None,
) -> ExportFiles:
    """Find an export's shards and mixer from its folder, its mixer, a shard or a list of shards.

    Parameters
    ----------
    path : path-like, str or sequence of them
        A folder holding one export; ``PREFIX-mixer.json`` or any mixer JSON; a shard under any
        name; or a list of shards in export order. Local paths or URLs (a folder URL is a
        prefix: ``gs://bucket/exports/``).
    strict : bool
        Raise on a gap in the shard numbers; otherwise list the missing names in ``missing``.
    mixer : path-like or object, optional
        The mixer the caller gives (its path is reported as :attr:`ExportFiles.mixer`).
    storage_options : dict or Store, optional
        fsspec options for URLs.

    Raises
    ------
    MissingShardError
        No shard found, a file named does not exist, or the shard numbers have a gap.
    OptionError
        A folder holds several exports or several mixers: name one.
    """
    so = storage_options
    given = storage.abspath(mixer) if isinstance(mixer, str | os.PathLike) else None
    if not isinstance(path, str | os.PathLike):
        return _listed([storage.abspath(p) for p in path], given, so)
    is_folder = storage.isdir(path, so)
    path = storage.abspath(path)
    if is_folder:
        return _folder(path, None, strict, given, so)
    if not _exists(path, so):
        raise MissingShardError(f"'{path}' does not exist")
    folder, name = storage.split(path)
    match = _SHARD.match(name)
    if match:
        return _folder(folder, (match["prefix"], match["sep"]), strict, given, so)
    if name.endswith(_MIXER_SUFFIX):
        return _folder(folder, (name[: -len(_MIXER_SUFFIX)], "-"), strict, given, so)
    if name.lower().endswith(".json"):
        return _loose(folder, given or path, so)
    return _listed([path], given, so)


def _exists(path: str, so: StorageOptions) -> bool:
    """Whether ``path`` exists; a local dangling link counts (its error comes when opened)."""
    return storage.exists(path, so) if storage.is_url(path) else os.path.lexists(path)


def _listed(shards: list[str], mixer: str | None, so: StorageOptions) -> ExportFiles:
    """Return the shards the caller listed, in that order."""
    if not shards:
        raise MissingShardError("no shard was given: name at least one TFRecord file")
    for shard in shards:
        if not _exists(shard, so):
            raise MissingShardError(f"'{shard}' does not exist")
    folder = storage.split(shards[0])[0]
    stem = _stem(shards[0])
    if mixer is None:
        beside = storage.join(folder, stem + ".json")
        mixer = beside if is_mixer_file(beside, so) else _single_mixer(folder, so)
    return ExportFiles(
        folder=folder,
        prefix=_stem(mixer) if mixer else stem,
        shards=tuple(shards),
        mixer=mixer,
        order="given",
        numbers=tuple(range(len(shards))),
    )


def _folder(
    folder: str,
    named: tuple[str, str] | None,
    strict: bool,
    given: str | None,
    so: StorageOptions,
) -> ExportFiles:
    """Shards with Earth Engine's names (hyphen or not), or a folder's TFRecord files."""
    entries = sorted(storage.list_export(folder, named[0] if named else None, so))
    numbers: dict[tuple[str, str], dict[int, str]] = {}
    for entry in entries:
        match = _SHARD.match(entry)
        key = (match["prefix"], match["sep"]) if match else None
        if key is not None and (named is None or key[0] == named[0]):
            numbers.setdefault(key, {})[int(match["number"])] = entry  # type: ignore[index]
    if named is None:
        mixers = {e[: -len(_MIXER_SUFFIX)] for e in entries if e.endswith(_MIXER_SUFFIX)}
        prefixes = sorted({p for p, _ in numbers} | mixers)
        if len(prefixes) > 1:
            raise OptionError(
                f"'{folder}' holds several exports ({', '.join(prefixes)}): open one by its "
                "PREFIX-mixer.json or one of its shards"
            )
        if not numbers:
            return _loose(folder, given, so)
        key = next(iter(numbers))
    else:
        key = named if named in numbers else next(iter(numbers), named)
    prefix, sep = key
    found = numbers.get(key, {})
    if not found:
        raise MissingShardError(f"'{folder}' holds no shard named {prefix}-NNNNN.tfrecord[.gz]")
    missing = tuple(
        f"{prefix}{sep}{n:05d}.tfrecord[.gz]" for n in range(max(found) + 1) if n not in found
    )
    if missing and strict:
        names = ", ".join(missing[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise MissingShardError(
            f"'{folder}': shard(s) {names}{more} are missing, so every later patch would be "
            "shifted. Download the missing shard(s) again, or open with allow_missing=True to "
            "read the patches that are present."
        )
    mixer = given
    for candidate in (prefix + _MIXER_SUFFIX, prefix + "mixer.json"):
        if mixer is None and candidate in entries:
            mixer = storage.join(folder, candidate)
    return ExportFiles(
        folder=folder,
        prefix=prefix,
        shards=tuple(storage.join(folder, found[n]) for n in sorted(found)),
        mixer=mixer,
        missing=missing,
        order="shard-number",
        numbers=tuple(sorted(found)),
    )


def _loose(folder: str, mixer: str | None, so: StorageOptions) -> ExportFiles:
    """Return a folder's renamed TFRecord files: by trailing number, else by name."""
    local = not storage.is_url(folder)
    names = sorted(
        e
        for e in storage.listdir(folder, so)
        if not e.startswith(".")
        and _TFRECORD.search(e)
        and (not local or os.path.isfile(os.path.join(folder, e)))
    )
    if not names:
        raise MissingShardError(
            f"'{folder}' holds no TFRecord file (*.tfrecord, *.tfrecord.gz, *.tfrecords, *.gz)"
        )
    if mixer is None:
        mixer = _single_mixer(folder, so)
    trailing = [_TRAILING_NUMBER.search(_stem(n)) for n in names]
    numbers = [int(m.group(1)) if m else None for m in trailing]
    if None not in numbers and len(set(numbers)) == len(numbers):
        order = "trailing-number"
        names = [n for _, n in sorted(zip(numbers, names, strict=True))]
    else:
        order = "name"
    return ExportFiles(
        folder=folder,
        prefix=_stem(mixer) if mixer else _stem(names[0]),
        shards=tuple(storage.join(folder, n) for n in names),
        mixer=mixer,
        order=order,
        numbers=tuple(range(len(names))),
    )


def _single_mixer(folder: str, so: StorageOptions) -> str | None:
    """Return the one JSON file of ``folder`` holding a mixer's keys (None if none)."""
    candidates = sorted(
        storage.join(folder, e)
        for e in storage.listdir(folder, so)
        if e.lower().endswith(".json") and is_mixer_file(storage.join(folder, e), so)
    )
    if len(candidates) > 1:
        raise OptionError(
            f"'{folder}' holds several mixer JSON files "
            f"({', '.join(map(storage.basename, candidates))}): name the one to use with mixer="
        )
    return candidates[0] if candidates else None


def _stem(path: str) -> str:
    """Return a file's name without its folder, ``.gz`` and last extension."""
    name = storage.basename(path)
    if name.lower().endswith(".gz"):
        name = name[:-3]
    if name.endswith("-mixer.json"):
        return name[: -len("-mixer.json")]
    return os.path.splitext(name)[0]
