"""``tfrecordio:load``: add an export to the project as a raster layer, through a GDAL VRT."""

from __future__ import annotations

import os

from qgis.core import (
    QgsProcessing,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingOutputRasterLayer,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterEnum,
    QgsProcessingUtils,
    QgsRasterLayer,
)

from .common import ReadExportAlgorithm, reported


class LoadAlgorithm(ReadExportAlgorithm):
    """Write the export's VRT (tfrecord_io.build_vrt) and load it as a raster layer."""

    OUTPUT_VRT = "OUTPUT_VRT"
    OVERVIEWS = "OVERVIEWS"
    RESAMPLING = "RESAMPLING"
    RESAMPLINGS = ("average", "nearest")
    OUTPUT = "OUTPUT"

    algorithm_name = "load"
    display_name = "Load export as raster layer"
    help_text = (
        "Adds an Earth Engine TFRecord image export to the project as a raster layer. "
        "A GDAL VRT is written (beside the export unless a file is given; in the temporary "
        "folder when the export's folder is read-only) whose bands tfrecord_io's pixel "
        "function fills: the layer is the reassembled mosaic without kernel margins, "
        "georeferenced by the mixer, read lazily patch by patch. The kernel size is "
        "inferred from the records; give it only when asked to. For a predictions folder, "
        "which has no mixer, give the export's mixer. Build overviews to write VRT.ovr "
        "(levels 2, 4, 8, ... made in one pass over the export), so that zoomed-out views "
        "read those instead of decoding every patch."
    )

    def initAlgorithm(self, config=None):
        """Declare the parameters and outputs."""
        self.add_export_parameters()
        self.add_optional_file_output(
            self.OUTPUT_VRT, "VRT file (beside the export when empty)", "GDAL VRT (*.vrt)"
        )
        self.addParameter(
            QgsProcessingParameterBoolean(
                self.OVERVIEWS, "Build overviews (VRT.ovr) for fast zoomed-out views", False
            )
        )
        self.addParameter(
            QgsProcessingParameterEnum(
                self.RESAMPLING, "Overview resampling", list(self.RESAMPLINGS), defaultValue=0
            )
        )
        self.addOutput(QgsProcessingOutputRasterLayer(self.OUTPUT, "Export layer"))

    def processAlgorithm(self, parameters, context, feedback):
        """Run the algorithm: parse the parameters, call the library, report."""
        path = self.export_path(parameters, context)
        options = self.open_options(parameters, context)
        destination = self.parameterAsFileOutput(parameters, self.OUTPUT_VRT, context)
        if destination in ("", QgsProcessing.TEMPORARY_OUTPUT):
            destination = None
        with reported():
            import tfrecord_io
            from tfrecord_io.image.files import find_export

            files = find_export(path, strict=False, mixer=options.get("mixer"))
            if destination is None and not os.access(files.folder, os.W_OK):
                destination = QgsProcessingUtils.generateTempFilename(files.prefix + ".vrt")
                feedback.pushInfo(
                    f"'{files.folder}' is read-only: writing the VRT to the temporary folder"
                )
            vrt = tfrecord_io.build_vrt(path, destination, overwrite=True, **options)
            feedback.pushInfo(f"Wrote {vrt}")
            if self.parameterAsBool(parameters, self.OVERVIEWS, context):
                resampling = self.RESAMPLINGS[
                    self.parameterAsEnum(parameters, self.RESAMPLING, context)
                ]
                ovr = tfrecord_io.build_overviews(
                    vrt, resampling=resampling, progress=lambda f: feedback.setProgress(100 * f)
                )
                feedback.pushInfo(f"Wrote {ovr}")
        name = files.prefix or os.path.basename(files.folder)
        _check_readable(vrt, name)
        details = QgsProcessingContext.LayerDetails(name, context.project(), self.OUTPUT)
        context.addLayerToLoadOnCompletion(vrt, details)
        return {self.OUTPUT: vrt, self.OUTPUT_VRT: vrt}


def _check_readable(vrt, name):
    """Fail now, with GDAL's message, if the layer would open but render empty.

    Without the trust settings QGIS shows no error and silently draws nothing; reading one
    pixel through QGIS's own GDAL surfaces the problem while the algorithm can still report it.
    """
    from osgeo import gdal

    layer = QgsRasterLayer(vrt, name, "gdal")
    valid = layer.isValid()
    error = layer.error().summary() if not valid else ""
    del layer
    if not valid:
        raise QgsProcessingException(f"QGIS cannot open '{vrt}' as a raster layer: {error}")
    used = gdal.GetUseExceptions()
    gdal.UseExceptions()
    try:
        dataset = gdal.Open(vrt)
        dataset.GetRasterBand(1).ReadRaster(0, 0, 1, 1)
    except RuntimeError as exc:
        raise QgsProcessingException(f"GDAL cannot read '{vrt}': {exc}") from None
    finally:
        dataset = None
        if not used:
            gdal.DontUseExceptions()
