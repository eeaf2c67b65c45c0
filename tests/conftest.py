"""Shared factory fixtures: rasters, GeoTIFFs and exports (by TensorFlow or by our writer)."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
from affine import Affine

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

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "sample"
UTM = Affine(30.0, 0.0, 500000.0, 0.0, -30.0, 4200000.0)  # EPSG:32610, 30 m pixels


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Give the run a cache of its own: gdal_env() links the package and the table driver there.

    Otherwise every run would re-point the links in ``~/.cache/tfrecord_io`` to its own copy of
    the package, and two runs (two checkouts, CI beside a developer) would pull them from under
    each other. Subprocesses inherit it.
    """
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("xdg-cache"))


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
def raster() -> Callable[..., np.ndarray]:
    """Return ``make(count, height, width, seed=0)``: random float32 ``(band, row, col)`` pixels.

    The same arguments give the same pixels, so a test can make an export of them and compare.
    """

    def make(count: int, height: int, width: int, seed: int = 0) -> np.ndarray:
        return np.random.default_rng(seed).random((count, height, width), dtype=np.float32)

    return make


@pytest.fixture
def tif(tmp_path_factory: pytest.TempPathFactory, raster: Callable[..., np.ndarray]) -> Any:
    """Return ``make(array=None, **profile)``: a GeoTIFF of ``array`` in a fresh tmp folder.

    ``array`` defaults to ``raster(3, 24, 32)``; the GeoTIFF is in EPSG:32610 at 30 m with bands
    described ``B2, B3, ...``; ``profile`` adds to or overrides rasterio's profile.
    """
    import rasterio

    def make(array: np.ndarray | None = None, **profile: Any) -> Path:
        array = raster(3, 24, 32) if array is None else array
        path = tmp_path_factory.mktemp("tif") / "in.tif"
        profile = {
            "driver": "GTiff",
            "width": array.shape[2],
            "height": array.shape[1],
            "count": array.shape[0],
            "dtype": array.dtype,
            "crs": "EPSG:32610",
            "transform": UTM,
            **profile,
        }
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(array)
            dst.descriptions = tuple(f"B{i + 2}" for i in range(array.shape[0]))
        return path

    return make


@pytest.fixture
def export(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Return ``make(array=None, descriptions=None, prefix="exp", **options)``: an export folder.

    Without ``array``, a writable copy of ``data/sample`` (``data/`` is read-only). With it, the
    export our writer makes of ``array`` in EPSG:32610 at 30 m, ``options`` going to
    :func:`tfrecord_io.open` in mode ``"w"``; the folder is named ``prefix``.
    """
    import tfrecord_io

    def make(
        array: np.ndarray | None = None,
        descriptions: tuple[str, ...] | None = None,
        prefix: str = "exp",
        **options: Any,
    ) -> Path:
        if array is None:
            return Path(shutil.copytree(SAMPLE, tmp_path_factory.mktemp("export") / "sample"))
        folder = tmp_path_factory.mktemp("export") / prefix
        options.setdefault("crs", "EPSG:32610")
        options.setdefault("transform", UTM)
        count, height, width = array.shape
        options.update(width=width, height=height, count=count)
        with tfrecord_io.open(folder, "w", **options) as dst:
            if descriptions is not None:
                dst.descriptions = descriptions
            dst.write(array)
        return folder

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
