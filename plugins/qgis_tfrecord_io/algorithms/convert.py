"""``tfrecordio:convert``: an export to GeoTIFF or Cloud Optimized GeoTIFF."""

from __future__ import annotations

from qgis.core import (
    QgsProcessingException,
    QgsProcessingParameterEnum,
    QgsProcessingParameterRasterDestination,
)

from .common import Cancelled, ReadExportAlgorithm, progress_callback, reported

FORMATS = (("GeoTIFF", "GTiff"), ("Cloud Optimized GeoTIFF (COG)", "COG"))


class ConvertAlgorithm(ReadExportAlgorithm):
    """Convert an export with tfrecord_io.gdal.translate.translate, one row of patches at a time."""

    FORMAT = "FORMAT"
    CREATION_OPTIONS = "CREATION_OPTIONS"
    OUTPUT = "OUTPUT"

    algorithm_name = "convert"
    display_name = "Convert export to GeoTIFF/COG"
    help_text = (
        "Writes an Earth Engine TFRecord image export as a GeoTIFF (tiled by patch, DEFLATE) "
        "or a Cloud Optimized GeoTIFF, one row of patches in memory at a time. The output is "
        "written to a temporary file and renamed at the end: a failed or cancelled run "
        "leaves nothing behind. Creation options are GDAL's, as NAME=VALUE separated by "
        "spaces or semicolons."
    )

    def initAlgorithm(self, config=None):
        """Declare the parameters and outputs."""
        self.add_export_parameters()
        self.addParameter(
            QgsProcessingParameterEnum(
                self.FORMAT, "Format", options=[label for label, _ in FORMATS], defaultValue=0
            )
        )
        self.add_optional_text(self.CREATION_OPTIONS, "GDAL creation options (NAME=VALUE ...)")
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT, "Output raster"))

    def processAlgorithm(self, parameters, context, feedback):
        """Run the algorithm: parse the parameters, call the library, report."""
        path = self.export_path(parameters, context)
        options = self.open_options(parameters, context)
        driver = FORMATS[self.parameterAsEnum(parameters, self.FORMAT, context)][1]
        creation = _creation_options(
            self.parameterAsString(parameters, self.CREATION_OPTIONS, context)
        )
        output = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        if feedback.isCanceled():
            raise QgsProcessingException("Cancelled before the conversion started")
        with reported():
            from tfrecord_io.gdal.translate import translate

            try:
                translate(
                    path,
                    output,
                    driver=driver,
                    creation_options=creation,
                    overwrite=True,
                    progress=progress_callback(feedback),
                    **options,
                )
            except Cancelled:
                raise QgsProcessingException(
                    f"Conversion cancelled: nothing was written to '{output}'"
                ) from None
        return {self.OUTPUT: output}


def _creation_options(text):
    """Parse ``NAME=VALUE`` pairs separated by spaces, commas or semicolons."""
    options = {}
    for item in (text or "").replace(";", " ").replace(",", " ").split():
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise QgsProcessingException(f"Creation option {item!r} is not NAME=VALUE")
        options[name.strip().lower()] = value.strip()
    return options
