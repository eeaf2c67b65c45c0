"""Shared fixtures: exports built in tmp folders by the TensorFlow reference producer."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

# Must be set before anything imports TensorFlow.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# `make test` installs the package (not editable) and sets this, so that the tests import the
# installed copy and a file missing from the wheel fails them. pytest puts the repository root
# on sys.path for the `tests` package; take it off again before any test imports tfrecord_io.
if os.environ.get("TFRECORD_IO_TEST_INSTALLED") == "1":
    _ROOT = Path(__file__).resolve().parent.parent
    sys.path[:] = [p for p in sys.path if Path(p or os.getcwd()).resolve() != _ROOT]
    import tfrecord_io

    if Path(tfrecord_io.__file__).resolve().parent == _ROOT / "tfrecord_io":
        raise RuntimeError(f"the tests import tfrecord_io from {_ROOT}, not the installed package")

if TYPE_CHECKING:
    from tests.tfexport import ExportInfo


@pytest.fixture
def tf_export(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., ExportInfo]:
    """Return ``make(**kwargs)``: :func:`tests.tfexport.write_tf_export` into a fresh tmp folder.

    TensorFlow is imported here, not at collection, so test modules that do not need it stay
    fast; a missing TensorFlow raises ImportError, which makes the test error, never skip.
    """
    from tests.tfexport import write_tf_export

    def make(**kwargs: Any) -> ExportInfo:
        return write_tf_export(tmp_path_factory.mktemp("tfexport"), **kwargs)

    return make


@pytest.fixture
def rng() -> np.random.Generator:
    """Seeded random generator, fresh for each test."""
    return np.random.default_rng(0)


@pytest.fixture
def geotiff(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Any]:
    """Return ``make(array, crs=..., transform=..., block=None, ...)``: a GeoTIFF of ``array``.

    ``array`` is ``(count, height, width)``; ``block`` is ``(width, height)`` of the tiles (GDAL
    needs multiples of 16), untiled when None. Written with rasterio, for differential tests.
    """
    import rasterio

    def make(
        array: np.ndarray,
        *,
        crs: str,
        transform: Any,
        block: tuple[int, int] | None = None,
        nodata: float | None = None,
        descriptions: tuple[str, ...] | None = None,
    ) -> str:
        path = str(tmp_path_factory.mktemp("geotiff") / "mosaic.tif")
        profile: dict[str, Any] = {
            "driver": "GTiff",
            "width": array.shape[2],
            "height": array.shape[1],
            "count": array.shape[0],
            "dtype": array.dtype.name,
            "crs": crs,
            "transform": transform,
            "nodata": nodata,
        }
        if block is not None:
            profile.update(tiled=True, blockxsize=block[0], blockysize=block[1])
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(array)
            if descriptions is not None:
                dst.descriptions = descriptions
        return path

    return make


@pytest.fixture
def tf_table(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Any]:
    """Return ``make(columns=None, kinds=None, rows=50, files=1, **kw)``: a TensorFlow-written
    table export (:func:`tests.tftable.write_tf_table`); by default every kind of column."""
    from tests.tftable import sample_columns, write_tf_table

    def make(
        columns: dict[str, Any] | None = None,
        kinds: dict[str, str] | None = None,
        rows: int = 50,
        **kwargs: Any,
    ) -> Any:
        if columns is None:
            columns, kinds = sample_columns(np.random.default_rng(1), rows)
        assert kinds is not None
        return write_tf_table(tmp_path_factory.mktemp("tftable"), columns, kinds, **kwargs)

    return make
