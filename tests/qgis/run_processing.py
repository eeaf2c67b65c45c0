"""Run one tfrecordio algorithm through PyQGIS's ``processing.run``, headless.

Run by Debian's ``/usr/bin/python3`` (QGIS's Python), never by the project's venv. The plugin is
loaded the way QGIS loads it (``qgis.utils.loadPlugin`` + ``startProcessingPlugin``) from the
plugin folder given, and what happened is written as JSON to ``--out``: the results or the
error, the feedback received, GDAL's configuration after the plugin loaded, and, for layers the
algorithm asks to load, their validity, QGIS's band statistics and their pixels (``--pixels``).

Usage: python3 run_processing.py --plugins DIR --alg tfrecordio:load --params JSON --out FILE
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys

PLUGIN = "qgis_tfrecord_io"


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--plugins", required=True)
    parser.add_argument("--alg")
    parser.add_argument("--params", default="{}")
    parser.add_argument("--out", required=True)
    parser.add_argument("--pixels", help="write the loaded layer's pixels here (.npy)")
    parser.add_argument("--cancel", action="store_true", help="cancel at the first progress")
    parser.add_argument("--vector", help="open this file as a QGIS vector layer (ogr provider)")
    return parser.parse_args()


def _gdal_config() -> dict:
    from osgeo import gdal

    keys = ("GDAL_VRT_ENABLE_PYTHON", "GDAL_VRT_PYTHON_TRUSTED_MODULES")
    return {
        "gdal": {k: gdal.GetConfigOption(k) for k in keys},
        "environ": {k: os.environ.get(k) for k in keys},
    }


def _vector_report(path: str, name: str) -> dict:
    from qgis.core import QgsVectorLayer, QgsWkbTypes

    layer = QgsVectorLayer(path, name, "ogr")
    report: dict = {"path": path, "name": name, "valid": layer.isValid(), "kind": "vector"}
    if layer.isValid():
        report["features"] = layer.featureCount()
        report["fields"] = [[f.name(), f.typeName()] for f in layer.fields()]
        report["geometry"] = QgsWkbTypes.displayString(layer.wkbType())
        report["crs"] = layer.crs().authid()
    del layer
    return report


def _layer_report(path: str, name: str, pixels: str | None) -> dict:
    if not path.lower().endswith((".vrt", ".tif", ".tiff")):
        return _vector_report(path, name)
    import numpy as np
    from qgis.core import Qgis, QgsRasterBandStats, QgsRasterLayer

    dtypes = {
        Qgis.DataType.Byte: np.uint8,
        Qgis.DataType.Int16: np.int16,
        Qgis.DataType.Int32: np.int32,
        Qgis.DataType.Float32: np.float32,
        Qgis.DataType.Float64: np.float64,
    }
    layer = QgsRasterLayer(path, name, "gdal")
    report: dict = {"path": path, "name": name, "valid": layer.isValid()}
    if layer.isValid():
        provider = layer.dataProvider()
        width, height = layer.width(), layer.height()
        report.update(width=width, height=height, bands=layer.bandCount(), stats=[])
        report["crs"] = layer.crs().authid()
        extent = layer.extent()
        report["extent"] = [
            extent.xMinimum(),
            extent.yMinimum(),
            extent.xMaximum(),
            extent.yMaximum(),
        ]
        arrays = []
        for band in range(1, layer.bandCount() + 1):
            stats = provider.bandStatistics(band, QgsRasterBandStats.All, extent, 0)
            report["stats"].append(
                {
                    "min": stats.minimumValue,
                    "max": stats.maximumValue,
                    "mean": stats.mean,
                    "std": stats.stdDev,
                    "count": stats.elementCount,
                }
            )
            block = provider.block(band, extent, width, height)
            dtype = dtypes[block.dataType()]
            data = np.frombuffer(bytes(block.data()), dtype=dtype).reshape(height, width)
            arrays.append(data.copy())
            del block
        if pixels:
            np.save(pixels, np.stack(arrays))
        del provider
    del layer
    return report


def _run(args: argparse.Namespace) -> dict:
    import qgis.utils
    from qgis.core import QgsProcessingContext, QgsProcessingFeedback, QgsProject

    sys.path.insert(0, args.plugins)
    loaded = qgis.utils.loadPlugin(PLUGIN) and qgis.utils.startProcessingPlugin(PLUGIN)
    report: dict = {"plugin_started": bool(loaded), "config_after_load": _gdal_config()}
    if args.vector:
        report["vector"] = _vector_report(args.vector, "vector")
    if not args.alg:
        return report

    import processing
    from processing.core.Processing import Processing

    Processing.initialize()

    class Feedback(QgsProcessingFeedback):
        def __init__(self) -> None:
            super().__init__()
            self.errors: list[str] = []
            self.infos: list[str] = []
            self.progress: list[float] = []
            self.progressChanged.connect(self.progress.append)

        def reportError(self, error: str, fatalError: bool = False) -> None:
            self.errors.append(error)

        def pushInfo(self, info: str) -> None:
            self.infos.append(info)

    feedback = Feedback()
    if args.cancel:
        feedback.progressChanged.connect(lambda value: feedback.cancel())
    context = QgsProcessingContext()
    context.setProject(QgsProject.instance())
    try:
        results = processing.run(
            args.alg, json.loads(args.params), context=context, feedback=feedback
        )
        report["results"] = {k: v for k, v in results.items() if k != "CHILD_RESULTS"}
    except Exception as exc:  # the QgsProcessingException raised by the algorithm
        report["error"] = {"type": type(exc).__name__, "message": str(exc)}
    report["feedback"] = {
        "errors": feedback.errors,
        "infos": feedback.infos,
        "progress": feedback.progress,
        "canceled": feedback.isCanceled(),
    }
    report["layers"] = [
        _layer_report(path, details.name, args.pixels)
        for path, details in context.layersToLoadOnCompletion().items()
    ]
    import tfrecord_io

    report["library"] = tfrecord_io.__file__
    del context
    return report


def main() -> None:
    args = _args()
    sys.path.insert(0, "/usr/share/qgis/python/plugins")
    from qgis.core import QgsApplication

    app = QgsApplication([], False)
    app.initQgis()
    try:
        report = _run(args)
        gc.collect()
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=1)
    finally:
        # Every layer is gone by now: exitQgis crashes while one is referenced.
        app.exitQgis()


if __name__ == "__main__":
    main()
