"""``tfrecordio:export``: a raster layer to an Earth Engine TFRecord image export."""

from __future__ import annotations

import json
import os

from qgis.core import (
    QgsProcessingException,
    QgsProcessingOutputFile,
    QgsProcessingOutputNumber,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
    QgsProviderRegistry,
)

from .common import Cancelled, TFRecordAlgorithm, parse_kernel_size, reported


class ExportAlgorithm(TFRecordAlgorithm):
    """Write a raster layer with tfrecord_io.export, every formatOptions key a parameter."""

    INPUT = "INPUT"
    OUTPUT = "OUTPUT"
    FILE_NAME_PREFIX = "FILE_NAME_PREFIX"
    PATCH_DIMENSIONS = "PATCH_DIMENSIONS"
    KERNEL_SIZE = "KERNEL_SIZE"
    COMPRESSED = "COMPRESSED"
    MAX_FILE_SIZE = "MAX_FILE_SIZE"
    DEFAULT_VALUE = "DEFAULT_VALUE"
    TENSOR_DEPTHS = "TENSOR_DEPTHS"
    SEQUENCE_DATA = "SEQUENCE_DATA"
    COLLAPSE_BANDS = "COLLAPSE_BANDS"
    MASKED_THRESHOLD = "MASKED_THRESHOLD"
    BAND_NAMES = "BAND_NAMES"
    MIXER = "MIXER"
    FILE_COUNT = "FILE_COUNT"

    algorithm_name = "export"
    display_name = "Export raster layer as Earth Engine TFRecord"
    help_text = (
        "Writes a raster layer as Earth Engine writes an image export: shards "
        "PREFIX-00000.tfrecord[.gz] ... and PREFIX-mixer.json in the output folder. The "
        "parameters are Earth Engine's formatOptions: patchDimensions (W,H; empty for the "
        "whole image as one patch), kernelSize (K or X,Y), compressed, maxFileSize (bytes "
        "per shard before compression), defaultValue (written for masked pixels and beyond "
        "the image), tensorDepths (BAND:DEPTH,... or a JSON object), sequenceData, "
        "collapseBands and maskedThreshold (below 1, no mixer is written, as in Earth "
        "Engine). Patches that do not fit at the right and bottom edges are dropped, as "
        "Earth Engine does. Band names are the layer's band descriptions unless given. The "
        "layer is streamed one row of patches at a time; a failed or cancelled run leaves "
        "no partial export."
    )

    def initAlgorithm(self, config=None):
        """Declare the parameters and outputs."""
        self.addParameter(QgsProcessingParameterRasterLayer(self.INPUT, "Raster layer"))
        self.add_optional_text(
            self.FILE_NAME_PREFIX, "File name prefix (the output folder's name when empty)"
        )
        self.addParameter(
            QgsProcessingParameterString(
                self.PATCH_DIMENSIONS,
                "patchDimensions (W,H; empty: the whole image is one patch)",
                defaultValue="256,256",
                optional=True,
            )
        )
        self.addParameter(
            QgsProcessingParameterString(
                self.KERNEL_SIZE, "kernelSize (K or X,Y)", defaultValue="1,1", optional=True
            )
        )
        self.addParameter(
            QgsProcessingParameterBoolean(
                self.COMPRESSED, "compressed (gzip shards)", defaultValue=True
            )
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                self.MAX_FILE_SIZE,
                "maxFileSize (bytes per shard, before compression)",
                type=QgsProcessingParameterNumber.Double,
                defaultValue=float(1 << 30),
                minValue=1,
            )
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                self.DEFAULT_VALUE,
                "defaultValue (for masked pixels)",
                type=QgsProcessingParameterNumber.Double,
                defaultValue=0.0,
            )
        )
        self.add_optional_text(self.TENSOR_DEPTHS, "tensorDepths (BAND:DEPTH,... or a JSON object)")
        self.addParameter(
            QgsProcessingParameterBoolean(
                self.SEQUENCE_DATA, "sequenceData (one SequenceExample per pixel)", False
            )
        )
        self.addParameter(
            QgsProcessingParameterBoolean(
                self.COLLAPSE_BANDS, "collapseBands (all bands in one feature)", False
            )
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                self.MASKED_THRESHOLD,
                "maskedThreshold (largest masked fraction of a patch; below 1: no mixer)",
                type=QgsProcessingParameterNumber.Double,
                defaultValue=1.0,
                minValue=0.0,
                maxValue=1.0,
            )
        )
        self.add_optional_text(
            self.BAND_NAMES,
            "Band names (comma-separated; the layer's band descriptions when empty)",
        )
        self.addParameter(QgsProcessingParameterFolderDestination(self.OUTPUT, "Export folder"))
        self.addOutput(QgsProcessingOutputFile(self.MIXER, "Mixer"))
        self.addOutput(QgsProcessingOutputNumber(self.FILE_COUNT, "Files written"))

    def processAlgorithm(self, parameters, context, feedback):
        """Run the algorithm: parse the parameters, call the library, report."""
        layer = self.parameterAsRasterLayer(parameters, self.INPUT, context)
        if layer is None:
            raise QgsProcessingException("No raster layer given (INPUT)")
        source = _gdal_path(layer)
        folder = self.parameterAsString(parameters, self.OUTPUT, context)
        format_options = self.format_options(parameters, context)
        prefix = self.parameterAsString(parameters, self.FILE_NAME_PREFIX, context) or None
        names = self.parameterAsString(parameters, self.BAND_NAMES, context) or ""
        band_names = [n.strip() for n in names.split(",") if n.strip()] or None
        feedback.pushInfo(f"formatOptions: {json.dumps(format_options)}")
        if feedback.isCanceled():
            raise QgsProcessingException("Cancelled before the export started")
        os.makedirs(folder, exist_ok=True)

        def progress(done, total):
            feedback.setProgress(100.0 * done / max(total, 1))
            if feedback.isCanceled():
                raise Cancelled()

        with reported():
            import tfrecord_io

            try:
                files = tfrecord_io.export(
                    source,
                    folder,
                    format_options=format_options,
                    progress=progress,
                    overwrite=True,
                    file_name_prefix=prefix,
                    band_names=band_names,
                )
            except Cancelled:
                raise QgsProcessingException(
                    f"Export cancelled: nothing was written to '{folder}'"
                ) from None
        for path in files:
            feedback.pushInfo(f"Wrote {path}")
        mixers = [f for f in files if f.endswith("-mixer.json")]
        if not mixers:
            feedback.pushWarning(
                "No mixer written (maskedThreshold below 1, as Earth Engine does): the export "
                "cannot be georeferenced from its files alone"
            )
        return {
            self.OUTPUT: folder,
            self.MIXER: mixers[0] if mixers else None,
            self.FILE_COUNT: len(files),
        }

    def format_options(self, parameters, context):
        """Return Earth Engine's ``formatOptions`` dict (camelCase keys) from the parameters."""
        options = {}
        patch = parse_kernel_size(
            self.parameterAsString(parameters, self.PATCH_DIMENSIONS, context), "patchDimensions"
        )
        if patch is not None:
            options["patchDimensions"] = list(patch)
        kernel = parse_kernel_size(
            self.parameterAsString(parameters, self.KERNEL_SIZE, context), "kernelSize"
        )
        if kernel is not None:
            options["kernelSize"] = list(kernel)
        options["compressed"] = self.parameterAsBoolean(parameters, self.COMPRESSED, context)
        size = self.parameterAsDouble(parameters, self.MAX_FILE_SIZE, context)
        if size != int(size):
            raise QgsProcessingException(f"maxFileSize must be a whole number of bytes: {size}")
        options["maxFileSize"] = int(size)
        options["defaultValue"] = self.parameterAsDouble(parameters, self.DEFAULT_VALUE, context)
        depths = _tensor_depths(self.parameterAsString(parameters, self.TENSOR_DEPTHS, context))
        if depths:
            options["tensorDepths"] = depths
        options["sequenceData"] = self.parameterAsBoolean(parameters, self.SEQUENCE_DATA, context)
        options["collapseBands"] = self.parameterAsBoolean(parameters, self.COLLAPSE_BANDS, context)
        options["maskedThreshold"] = self.parameterAsDouble(
            parameters, self.MASKED_THRESHOLD, context
        )
        return options


def _gdal_path(layer):
    """Return what GDAL (and so rasterio) opens for a layer, or explain why there is none."""
    if layer.providerType() != "gdal":
        raise QgsProcessingException(
            f"Layer '{layer.name()}' comes from the '{layer.providerType()}' provider: export "
            "needs a raster GDAL reads from a file. Save it as a GeoTIFF first (Export > Save As)."
        )
    parts = QgsProviderRegistry.instance().decodeUri("gdal", layer.source())
    path = parts.get("path") or layer.source()
    if parts.get("layerName"):
        raise QgsProcessingException(
            f"Layer '{layer.name()}' is one raster of a multi-raster file: save it as a "
            "GeoTIFF first (Export > Save As)."
        )
    return path


def _tensor_depths(text):
    """Parse ``BAND:DEPTH,...`` or a JSON object into ``{band: depth}``."""
    text = (text or "").strip()
    if not text:
        return {}
    if text.startswith("{"):
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise QgsProcessingException(f"tensorDepths is not valid JSON: {exc}") from None
        if not isinstance(value, dict):
            raise QgsProcessingException("tensorDepths must be a JSON object {band: depth}")
        return value
    depths = {}
    for item in text.split(","):
        name, sep, depth = item.partition(":")
        if not sep or not name.strip() or not depth.strip().isdigit():
            raise QgsProcessingException(f"tensorDepths: expected BAND:DEPTH, not {item!r}")
        depths[name.strip()] = int(depth)
    return depths
