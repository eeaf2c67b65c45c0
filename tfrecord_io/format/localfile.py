"""Local regular files opened for reading: folders, FIFOs and other special files refused.

A FIFO would block the reader until a writer comes, and a folder or a device is never a shard or
a mixer, so :func:`open_file` checks the file's kind before opening it and names what it found.
:mod:`tfrecord_io.format.storage` opens every local path through it.
"""

from __future__ import annotations

import os
import stat as _st
from typing import BinaryIO

from tfrecord_io.errors import MissingFileError, UnreadableFileError

__all__ = ["file_kind", "open_file"]

_KINDS = {
    _st.S_IFDIR: "a folder",
    _st.S_IFIFO: "a FIFO (named pipe)",
    _st.S_IFSOCK: "a socket",
    _st.S_IFCHR: "a character device",
    _st.S_IFBLK: "a block device",
}


def file_kind(mode: int) -> str:
    """Describe what a file that is not a regular file is, from its ``st_mode``."""
    return _KINDS.get(_st.S_IFMT(mode), "a special file")


def open_file(path: str | os.PathLike[str], what: str = "shard") -> BinaryIO:
    """Open a regular file for reading in binary mode, refusing anything else before opening.

    Parameters
    ----------
    path : path-like
        The file.
    what : str
        What the file is to the caller ("shard", "mixer"), for the error message.

    Returns
    -------
    binary file object
        The caller closes it.

    Raises
    ------
    MissingFileError
        The path does not exist, or is a symbolic link to nothing (also a FileNotFoundError).
    UnreadableFileError
        The path is a folder, a FIFO or other special file, a looping symbolic link, or it
        cannot be opened.
    """
    try:
        mode = os.stat(path).st_mode
        if not _st.S_ISREG(mode):  # checked first: opening a FIFO blocks until a writer comes
            raise UnreadableFileError(
                f"'{os.fspath(path)}': the {what} is {file_kind(mode)}, not a regular file. "
                f"Replace it with the {what} file downloaded from Earth Engine."
            )
        return open(path, "rb")  # the caller closes it
    except UnreadableFileError:
        raise
    except OSError as exc:
        cause = exc.strerror or type(exc).__name__
        if isinstance(exc, FileNotFoundError) and os.path.islink(path):
            cause = "a symbolic link to a file that does not exist"
        error = MissingFileError if isinstance(exc, FileNotFoundError) else UnreadableFileError
        raise error(
            f"'{os.fspath(path)}': the {what} cannot be read ({cause}). Check that it exists, "
            "is a file and may be read, or download it again."
        ) from exc
