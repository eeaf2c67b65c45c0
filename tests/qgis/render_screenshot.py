"""Render an export loaded by ``tfrecordio:load`` to a PNG, headless: the README's screenshot.

Run by Debian's ``/usr/bin/python3`` (QGIS's Python). The export is loaded through the plugin's
algorithm (the VRT bridge), drawn as true colour (bands 1, 2, 3 as red, green, blue, each
stretched between its minimum and maximum) by QGIS's map renderer, and saved as PNG.

Usage: python3 render_screenshot.py --plugins DIR --export COPY-OF-SAMPLE --out docs/qgis-sample.png
"""

from __future__ import annotations

import argparse
import gc
import sys

PLUGIN = "qgis_tfrecord_io"


def _render(args: argparse.Namespace) -> None:
    import processing
    import qgis.utils
    from processing.core.Processing import Processing
    from qgis.core import (
        QgsContrastEnhancement,
        QgsMapRendererParallelJob,
        QgsMapSettings,
        QgsMultiBandColorRenderer,
        QgsProcessingContext,
        QgsProcessingFeedback,
        QgsProject,
        QgsRasterBandStats,
        QgsRasterLayer,
    )
    from qgis.PyQt.QtCore import QSize
    from qgis.PyQt.QtGui import QColor

    sys.path.insert(0, args.plugins)
    if not (qgis.utils.loadPlugin(PLUGIN) and qgis.utils.startProcessingPlugin(PLUGIN)):
        raise SystemExit(f"cannot start the plugin from {args.plugins}")
    Processing.initialize()
    context = QgsProcessingContext()
    context.setProject(QgsProject.instance())
    results = processing.run(
        "tfrecordio:load",
        {"INPUT": args.export},
        context=context,
        feedback=QgsProcessingFeedback(),
    )
    layer = QgsRasterLayer(results["OUTPUT"], "export", "gdal")
    if not layer.isValid():
        raise SystemExit(f"QGIS cannot open {results['OUTPUT']}")
    provider = layer.dataProvider()
    renderer = QgsMultiBandColorRenderer(provider, 1, 2, 3)
    setters = (
        renderer.setRedContrastEnhancement,
        renderer.setGreenContrastEnhancement,
        renderer.setBlueContrastEnhancement,
    )
    for band, setter in zip((1, 2, 3), setters, strict=True):
        stats = provider.bandStatistics(band, QgsRasterBandStats.Min | QgsRasterBandStats.Max)
        enhancement = QgsContrastEnhancement(provider.dataType(band))
        enhancement.setContrastEnhancementAlgorithm(QgsContrastEnhancement.StretchToMinimumMaximum)
        enhancement.setMinimumValue(stats.minimumValue)
        enhancement.setMaximumValue(stats.maximumValue)
        setter(enhancement)
    layer.setRenderer(renderer)

    settings = QgsMapSettings()
    settings.setLayers([layer])
    settings.setDestinationCrs(layer.crs())
    settings.setExtent(layer.extent())
    settings.setBackgroundColor(QColor(255, 255, 255))
    settings.setOutputSize(QSize(args.width, round(args.width * layer.height() / layer.width())))
    job = QgsMapRendererParallelJob(settings)
    job.start()
    job.waitForFinished()
    errors = [f"{e.layerID}: {e.message}" for e in job.errors()]
    if errors:
        raise SystemExit("rendering failed: " + "; ".join(errors))
    if not job.renderedImage().save(args.out, "PNG"):
        raise SystemExit(f"cannot write {args.out}")
    del job, settings, renderer, provider, layer, context


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--plugins", required=True, help="folder holding qgis_tfrecord_io/")
    parser.add_argument("--export", required=True, help="a writable copy of the export")
    parser.add_argument("--out", required=True)
    parser.add_argument("--width", type=int, default=768)
    args = parser.parse_args()
    sys.path.insert(0, "/usr/share/qgis/python/plugins")
    from qgis.core import QgsApplication

    app = QgsApplication([], False)
    app.initQgis()
    try:
        _render(args)
        gc.collect()
    finally:
        app.exitQgis()


if __name__ == "__main__":
    main()
