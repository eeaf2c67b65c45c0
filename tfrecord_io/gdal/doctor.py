"""Check that GDAL can run tfrecord_io's pixel function here, and say how to fix what cannot.

Each check builds a tiny export in a temporary folder with the library's own writer (so the
pipeline users write with is the one checked), writes its VRT, and reads it back through
GDAL: inside this Python process through rasterio, and through Debian's command-line tools when
they are installed; a small table is read through the vector driver with Debian's ``ogrinfo``.
A check that fails comes with the exact commands that fix it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass

import numpy as np
from affine import Affine

from tfrecord_io.gdal.vrt import build_vrt, gdal_env, gdal_pythonpath
from tfrecord_io.image.writer import EETFRecordWriter
from tfrecord_io.table.writer import write_table

__all__ = ["Check", "run_checks"]


@dataclass(frozen=True)
class Check:
    """The result of one check: what was checked, whether it passed, and how to fix it."""

    name: str
    ok: bool
    detail: str
    fix: str = ""


def _tiny_export(folder: str) -> np.ndarray:
    """Write a 2 x 2-patch export (patch 32, kernel 1) with the library's writer; return it."""
    mosaic = np.arange(64 * 64, dtype=np.float32).reshape(1, 64, 64)
    with EETFRecordWriter(
        folder,
        width=64,
        height=64,
        count=1,
        dtype=mosaic.dtype,
        crs="EPSG:4326",
        transform=Affine(0.01, 0, 10, 0, -0.01, 50),
        file_name_prefix="doctor",
        patch_dimensions=[32, 32],
    ) as writer:
        writer.write(mosaic)
    return mosaic


def run_checks() -> list[Check]:
    """Run every check and return the results in order."""
    import rasterio

    checks = [
        Check(
            "versions",
            True,
            f"Python {sys.version.split()[0]}, numpy {np.__version__}, rasterio "
            f"{rasterio.__version__} (GDAL {rasterio.__gdal_version__})",
        )
    ]
    env = gdal_env()
    exports = "\n".join(f"export {k}={v}" for k, v in env.items())
    with tempfile.TemporaryDirectory(prefix="tfrecord-io-doctor-") as folder:
        mosaic = _tiny_export(folder)
        vrt = build_vrt(folder)
        try:
            with rasterio.Env(**env), rasterio.open(vrt) as src:
                ok = bool(np.array_equal(src.read(), mosaic))
            checks.append(
                Check(
                    "rasterio reads a VRT",
                    ok,
                    "pixel-identical" if ok else "pixels differ",
                    "" if ok else "Report this as a bug.",
                )
            )
        except Exception as exc:  # GDAL's error, whatever its class
            checks.append(
                Check(
                    "rasterio reads a VRT",
                    False,
                    str(exc).splitlines()[0],
                    "Use rasterio.Env(**tfrecord_io.gdal_env()) around the read, or:\n" + exports,
                )
            )
        checks.append(_check_command_line(vrt, mosaic, folder, env))
        checks.append(_check_ogrinfo(folder, env))
    return checks


def _check_ogrinfo(folder: str, env: dict[str, str]) -> Check:
    """Debian's ``ogrinfo`` reads a small table through the Python vector driver."""
    name = "ogrinfo reads a table"
    tool = shutil.which("ogrinfo")
    if tool is None:
        return Check(name, False, "ogrinfo is not installed", "sudo apt-get install gdal-bin")
    table = write_table(
        {"longitude": np.array([1.0, 2.0, 3.0]), "latitude": np.array([4.0, 5.0, 6.0])},
        os.path.join(folder, "doctor-table.tfrecord.gz"),
    )
    settings = {**env, "PYTHONPATH": gdal_pythonpath()}
    done = subprocess.run(
        [tool, "-so", "-al", table],
        env={**os.environ, **settings},
        capture_output=True,
        text=True,
        timeout=120,
    )
    exports = "\n".join(f"export {k}={v}" for k, v in settings.items())
    ok = "using driver `EETFRecordTable'" in done.stdout and "Feature Count: 3" in done.stdout
    if ok:
        return Check(name, True, "ogrinfo and ogr2ogr read tables in the environment above")
    message = (done.stderr.strip().splitlines() or ["the table was not opened by the driver"])[-1]
    return Check(
        name,
        False,
        message,
        "GDAL 3.1 or later runs Python drivers; install python3-numpy python3-crcmod, then:\n"
        + exports,
    )


def _check_command_line(vrt: str, mosaic: np.ndarray, folder: str, env: dict[str, str]) -> Check:
    name = "gdal_translate reads a VRT"
    tool = shutil.which("gdal_translate")
    if tool is None:
        return Check(
            name,
            False,
            "gdal_translate is not installed",
            "sudo apt-get install gdal-bin python3-rasterio python3-crc32c",
        )
    pythonpath = gdal_pythonpath()
    run_env = {**os.environ, **env, "PYTHONPATH": pythonpath}
    out = os.path.join(folder, "out.tif")
    done = subprocess.run(
        [tool, "-q", vrt, out], env=run_env, capture_output=True, text=True, timeout=120
    )
    exports = "\n".join(f"export {k}={v}" for k, v in {**env, "PYTHONPATH": pythonpath}.items())
    if done.returncode != 0:
        message = (done.stderr.strip().splitlines() or ["no message"])[-1]
        return Check(
            name,
            False,
            message,
            "sudo apt-get install python3-numpy python3-rasterio python3-crc32c\n" + exports,
        )
    import rasterio

    with rasterio.open(out) as result:
        ok = bool(np.array_equal(result.read(), mosaic))
    return Check(
        name,
        ok,
        ("pixel-identical; set these before running GDAL's tools:\n" + exports)
        if ok
        else "pixels differ",
        "" if ok else "Report this as a bug.",
    )
