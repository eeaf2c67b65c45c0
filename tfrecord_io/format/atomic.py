"""Atomic writing of one file: write beside it under a temporary name, then rename into place.

:class:`~tfrecord_io.format.shards.Destination` does this for an export's folder; a table export
and the files a conversion writes are single files, so they go through :func:`atomic_file`: a
failed or interrupted write leaves the destination as it was, and a reader never sees half a file.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from tfrecord_io.errors import ExportExistsError, OptionError

__all__ = ["atomic_file", "check_writable"]


def check_writable(path: str | os.PathLike[str], overwrite: bool) -> str:
    """Check that a file can be written at ``path``, and return it as an absolute path.

    Parameters
    ----------
    path : path-like
        The file to create.
    overwrite : bool
        Whether an existing file may be replaced.

    Raises
    ------
    ExportExistsError
        The file exists and ``overwrite`` is False.
    OptionError
        The path is a folder, or its parent folder does not exist.
    """
    path = os.path.abspath(os.fspath(path))
    if os.path.isdir(path):
        raise OptionError(f"'{path}' is a folder: give the path of the file to write")
    parent = os.path.dirname(path)
    if not os.path.isdir(parent):
        raise OptionError(f"the folder '{parent}' does not exist: create it first")
    if os.path.exists(path) and not overwrite:
        raise ExportExistsError(f"'{path}' exists: pass overwrite=True (--overwrite) to replace it")
    return path


@contextmanager
def atomic_file(path: str | os.PathLike[str], overwrite: bool = False) -> Iterator[str]:
    """Yield a temporary path beside ``path``; rename it to ``path`` when the block succeeds.

    The temporary file keeps the destination's suffix (some writers choose the format by it).
    On an exception it is removed and the destination is untouched.

    Parameters
    ----------
    path, overwrite
        As :func:`check_writable` takes them; ``overwrite`` is checked again at the rename.

    Yields
    ------
    str
        Where to write; the caller creates the file there.

    Raises
    ------
    ExportExistsError, OptionError
        As :func:`check_writable`.
    """
    final = check_writable(path, overwrite)
    folder, name = os.path.split(final)
    suffix = "".join(name.partition(".")[1:]) if "." in name.lstrip(".") else ""
    fd, temp = tempfile.mkstemp(prefix=f".{name}.tmp-", suffix=suffix, dir=folder)
    os.close(fd)
    os.remove(temp)  # writers that refuse an existing file (GDAL's) create it themselves
    try:
        yield temp
        if not os.path.exists(temp):
            raise OptionError(f"nothing was written to '{final}'")
        check_writable(final, overwrite)  # it may have appeared meanwhile
        os.replace(temp, final)
    finally:
        if os.path.exists(temp):
            os.remove(temp)
