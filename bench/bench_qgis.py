"""QGIS benchmark: render a ~1 GiB export headless, zoomed out and zoomed in, twice each.

Run from the repository root with the venv's Python (it runs QGIS in Debian's python3)::

    PYTHONPATH=. .venv/bin/python bench/bench_qgis.py [--out bench/out] [--size 1024]

Export Q (3 float32 bands, 8192 x 8192 pixels, patches 256, kernel 32: 1019 MB of records,
423 MB of gzip shards) is generated once under ``--out/full/Q``. Two VRTs of it are rendered by
``QgsMapRendererParallelJob`` in a fresh QGIS process each (``QgsApplication([], False)``,
``QT_QPA_PLATFORM=offscreen``, the pixel function trusted by ``gdal_env()``):

- ``plain``      the VRT alone;
- ``overviews``  the VRT with ``VRT.ovr`` from ``tfrecord_io.build_overviews`` (timed too).

In each process: open the layer (fixed min/max stretch, so QGIS computes no statistics), then
render the whole extent to a ``--size`` square image (zoomed out) twice, then a
``--size`` x ``--size`` pixel region at full resolution in the middle (zoomed in) twice. The
second render of each view shows what the pixel function's caches give.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

CHILD = r"""
import json, sys, time
sys.path.insert(0, "/usr/share/qgis/python/plugins")
from qgis.core import (QgsApplication, QgsContrastEnhancement, QgsMapRendererParallelJob,
    QgsMapSettings, QgsMultiBandColorRenderer, QgsRasterLayer, QgsRectangle)
from qgis.PyQt.QtCore import QSize
vrt, size = sys.argv[1], int(sys.argv[2])
app = QgsApplication([], False)
app.initQgis()
times = {}
t0 = time.perf_counter()
layer = QgsRasterLayer(vrt, "export", "gdal")
assert layer.isValid(), vrt
provider = layer.dataProvider()
renderer = QgsMultiBandColorRenderer(provider, 1, 2, 3)
for setter in (renderer.setRedContrastEnhancement, renderer.setGreenContrastEnhancement,
               renderer.setBlueContrastEnhancement):
    e = QgsContrastEnhancement(provider.dataType(1))
    e.setContrastEnhancementAlgorithm(QgsContrastEnhancement.StretchToMinimumMaximum)
    e.setMinimumValue(0.0)
    e.setMaximumValue(0.5)
    setter(e)
layer.setRenderer(renderer)
times["open layer"] = time.perf_counter() - t0
full = layer.extent()
cx, cy = full.center().x(), full.center().y()
rx, ry = layer.rasterUnitsPerPixelX(), layer.rasterUnitsPerPixelY()
half_x, half_y = rx * size / 2, ry * size / 2
zoom_in = QgsRectangle(cx - half_x, cy - half_y, cx + half_x, cy + half_y)
for view, extent in (("zoomed out", full), ("zoomed in", zoom_in)):
    for attempt in ("first", "second"):
        settings = QgsMapSettings()
        settings.setLayers([layer])
        settings.setDestinationCrs(layer.crs())
        settings.setExtent(extent)
        settings.setOutputSize(QSize(size, size))
        t0 = time.perf_counter()
        job = QgsMapRendererParallelJob(settings)
        job.start()
        job.waitForFinished()
        times[f"{view}, {attempt}"] = time.perf_counter() - t0
        errors = [e.message for e in job.errors()]
        assert not errors, errors
        image = job.renderedImage()
        assert image.pixel(size // 2, size // 2) != 0, "blank render"
        del job, settings
del renderer, provider, layer
app.exitQgis()
print(json.dumps(times))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(HERE, "out"))
    ap.add_argument("--size", type=int, default=1024, help="rendered image size (pixels)")
    args = ap.parse_args()

    from gen_export import Spec, generate

    import tfrecord_io
    from tfrecord_io.gdal.vrt import gdal_env, gdal_pythonpath

    folder = os.path.join(os.path.abspath(args.out), "full", "Q")
    spec = Spec("exportQ", ("B4", "B3", "B2"), 256, 32, 32, 32, 256 << 20, "isal")
    meta = generate(spec, folder, log=print)
    work = os.path.join(os.path.abspath(args.out), "full", "qgis")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    plain = tfrecord_io.build_vrt(folder, os.path.join(work, "plain.vrt"))
    with_ovr = tfrecord_io.build_vrt(folder, os.path.join(work, "overviews.vrt"))
    t0 = time.perf_counter()
    ovr = tfrecord_io.build_overviews(with_ovr)
    t_ovr = time.perf_counter() - t0
    print(
        f"QGIS benchmark: export Q {meta['mosaic_shape']} float32, "
        f"{meta['uncompressed_bytes'] / 1e6:.0f} MB of records, "
        f"{meta['compressed_bytes'] / 1e6:.0f} MB gzip; {os.cpu_count()} cores; "
        f"load average {os.getloadavg()}"
    )
    print(
        f"  build_overviews: {t_ovr:.2f} s, {os.path.getsize(ovr) / 1e6:.0f} MB .ovr "
        "(levels 2..32, average)"
    )
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GDAL_", "PYTHON", "VIRTUAL_ENV", "CPL_"))
    }
    env.update(
        gdal_env(),
        PYTHONPATH=gdal_pythonpath(os.path.join(work, "gdal-python")),
        QT_QPA_PLATFORM="offscreen",
        HOME=work,
        XDG_RUNTIME_DIR=work,
    )
    results = {}
    for name, vrt in (("plain", plain), ("overviews", with_ovr)):
        done = subprocess.run(
            ["/usr/bin/python3", "-c", CHILD, vrt, str(args.size)],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode:
            raise SystemExit(f"QGIS child failed:\n{done.stdout}\n{done.stderr}")
        results[name] = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"  load average after: {os.getloadavg()}")
    print(f"  {'seconds':<22} {'plain VRT':>10} {'with .ovr':>10}")
    for key in results["plain"]:
        print(f"  {key:<22} {results['plain'][key]:10.2f} {results['overviews'][key]:10.2f}")


if __name__ == "__main__":
    main()
