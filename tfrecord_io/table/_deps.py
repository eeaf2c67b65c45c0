"""Lazy imports of the table extra's packages, with an error naming the extra to install."""

from __future__ import annotations

import importlib
from types import ModuleType

from tfrecord_io.errors import MissingExtraError

__all__ = ["require"]


def require(module: str, purpose: str) -> ModuleType:
    """Import ``module``, or raise an error saying how to install it.

    Parameters
    ----------
    module : str
        The module to import (``"pandas"``, ``"pyarrow"``, ``"geopandas"``, ...).
    purpose : str
        What it is needed for, e.g. ``"to_pandas()"``.

    Raises
    ------
    MissingExtraError
        The module is not installed.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(
            f"{purpose} needs {module.split('.')[0]}, which is not installed: "
            "pip install 'tfrecord_io[table]'"
        ) from exc
