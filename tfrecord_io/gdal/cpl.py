"""GDAL's own error state (CPL), read through ctypes from the GDAL that rasterio uses.

GDAL reports some failures only there: a GeoTIFF written to a full disk gives ``No space left
on device`` through libtiff and GDAL's error handler, while rasterio's ``write`` and ``close``
return normally. :func:`gdal_errors` resets the state, optionally silences GDAL's own printing
(the command line folds GDAL's message into its one-line error instead), and tells what failed.
The state is per thread: it sees the errors of the thread that writes.
"""

from __future__ import annotations

import ctypes
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import rasterio._base

__all__ = ["GDALErrors", "gdal_errors"]

_CE_FAILURE = 3
_library: Any = None


def _gdal() -> Any:
    """Return GDAL's C library as rasterio loaded it (its symbols are found through rasterio)."""
    global _library
    if _library is None:
        library = ctypes.CDLL(rasterio._base.__file__)
        library.CPLGetLastErrorMsg.restype = ctypes.c_char_p
        library.CPLGetLastErrorType.restype = ctypes.c_int
        library.CPLPushErrorHandler.argtypes = [ctypes.c_void_p]
        _library = library
    return _library


class GDALErrors:
    """What GDAL reported since :func:`gdal_errors` began."""

    def failure(self) -> str | None:
        """Return GDAL's last message if it was a failure (CE_Failure or worse), else None."""
        library = _gdal()
        if library.CPLGetLastErrorType() < _CE_FAILURE:
            return None
        message: bytes | None = library.CPLGetLastErrorMsg()
        return " ".join((message or b"").decode("utf-8", "replace").split()) or "unknown error"


@contextmanager
def gdal_errors(quiet: bool = False) -> Iterator[GDALErrors]:
    """Reset GDAL's error state, and with ``quiet`` keep GDAL from printing, for a block.

    Parameters
    ----------
    quiet : bool
        Install GDAL's quiet handler: its messages are recorded, not printed to stderr.
    """
    library = _gdal()
    library.CPLErrorReset()
    if quiet:
        library.CPLPushErrorHandler(ctypes.cast(library.CPLQuietErrorHandler, ctypes.c_void_p))
    try:
        yield GDALErrors()
    finally:
        if quiet:
            library.CPLPopErrorHandler()
