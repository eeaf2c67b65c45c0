"""What the algorithms share: export parameters, library import, errors and progress."""

from __future__ import annotations

import os
from contextlib import contextmanager

from qgis.core import (
    QgsProcessingAlgorithm,
    QgsProcessingException,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterFile,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterString,
)

EXPORT_FILTER = (
    "Earth Engine exports (*.json *.tfrecord *.tfrecord.gz *.tfrecords *.tfr *.gz);;All files (*)"
)
MIXER_FILTER = "Earth Engine mixer (*-mixer.json *.json)"


class Cancelled(Exception):
    """Raised from a progress callback to stop a tool when the user cancels."""


def library():
    """Import and return ``tfrecord_io``, or say which system package is missing."""
    try:
        import tfrecord_io
    except ImportError as exc:
        raise QgsProcessingException(
            f"The tfrecord_io library cannot be imported in QGIS's Python ({exc}). It needs "
            "numpy, rasterio, affine and pyproj from QGIS's Python: on Debian or Ubuntu "
            "install python3-rasterio python3-crc32c."
        ) from exc
    return tfrecord_io


@contextmanager
def reported():
    """Turn tfrecord_io's errors into QgsProcessingException with the library's message."""
    tfrecord_io = library()
    try:
        yield
    except tfrecord_io.TFRecordIOError as exc:
        raise QgsProcessingException(str(exc)) from exc


def progress_callback(feedback, start=0.0, end=100.0):
    """Return ``progress(fraction)`` for a tool: moves the bar, raises Cancelled on cancel."""

    def progress(fraction):
        if feedback is None:
            return
        feedback.setProgress(start + (end - start) * float(fraction))
        if feedback.isCanceled():
            raise Cancelled()

    return progress


def is_url(path):
    """Return True for a URL (``gs://``, ``s3://``, ``https://``), passed to the library as is."""
    library()
    from tfrecord_io.format.storage import is_url as library_is_url

    return library_is_url(path)


def parse_kernel_size(text, name="Kernel size"):
    """Parse ``K`` or ``X,Y`` with the library's parser; None for an empty value."""
    library()
    from tfrecord_io.image.options import parse_kernel_size as parse

    with reported():
        return parse(text, name)


class TFRecordAlgorithm(QgsProcessingAlgorithm):
    """Base of the provider's algorithms: names and help, no group, copies as Processing needs.

    A subclass sets ``algorithm_name`` (its id within the provider), ``display_name`` (shown in
    the Processing toolbox) and ``help_text`` (shown beside its dialog).
    """

    algorithm_name = ""
    display_name = ""
    help_text = ""

    def name(self):
        """Return the id within the provider."""
        return self.algorithm_name

    def displayName(self):
        """Return the name shown in the Processing toolbox."""
        return self.display_name

    def shortHelpString(self):
        """Return the help shown beside the algorithm's dialog."""
        return self.help_text

    def group(self):
        """Return no group: the provider lists its algorithms directly."""
        return ""

    def groupId(self):
        """Return no group id."""
        return ""

    def add_optional_text(self, name, description):
        """Add an optional string parameter (empty means the default the description names)."""
        self.addParameter(QgsProcessingParameterString(name, description, optional=True))

    def add_optional_file_output(self, name, description, file_filter):
        """Add an optional output file, written only when the user names one."""
        self.addParameter(
            QgsProcessingParameterFileDestination(
                name, description, fileFilter=file_filter, optional=True, createByDefault=False
            )
        )

    def createInstance(self):
        """Return a new instance of this algorithm (Processing runs copies)."""
        return type(self)()


class ReadExportAlgorithm(TFRecordAlgorithm):
    """Base for algorithms that read an export: INPUT plus the open() options."""

    INPUT = "INPUT"
    KERNEL_SIZE = "KERNEL_SIZE"
    MIXER = "MIXER"
    BAND_ORDER = "BAND_ORDER"
    ALLOW_MISSING = "ALLOW_MISSING"

    band_order = True

    def add_export_parameters(self):
        """Add INPUT, KERNEL_SIZE, MIXER (and BAND_ORDER) to the algorithm."""
        self.addParameter(
            QgsProcessingParameterFile(
                self.INPUT,
                "Export (folder, mixer JSON or any shard)",
                behavior=QgsProcessingParameterFile.File,
                fileFilter=EXPORT_FILTER,
            )
        )
        self.add_optional_text(
            self.KERNEL_SIZE, "Kernel size (K or X,Y; inferred from the records when empty)"
        )
        self.addParameter(
            QgsProcessingParameterFile(
                self.MIXER,
                "Mixer JSON (for renamed files, or a predictions folder, which has none)",
                behavior=QgsProcessingParameterFile.File,
                fileFilter=MIXER_FILTER,
                optional=True,
            )
        )
        self.addParameter(
            QgsProcessingParameterBoolean(
                self.ALLOW_MISSING,
                "Partial export: read the shards present, missing patches as nodata",
                defaultValue=False,
                optional=True,
            )
        )
        if self.band_order:
            self.add_optional_text(
                self.BAND_ORDER,
                "Band order (comma-separated band names; the records' order when empty)",
            )

    def export_path(self, parameters, context):
        """Return the INPUT path, checked to exist."""
        path = self.parameterAsFile(parameters, self.INPUT, context)
        if not path:
            raise QgsProcessingException("No export given (INPUT)")
        if is_url(path):
            return path  # gs://, s3://, https://: passed through, opened with fsspec
        path = os.path.abspath(os.path.expanduser(path))
        if not os.path.exists(path):
            raise QgsProcessingException(f"'{path}' does not exist")
        return path

    def open_options(self, parameters, context):
        """Return the :func:`tfrecord_io.open` keywords the parameters ask for."""
        options = {}
        kernel = parse_kernel_size(self.parameterAsString(parameters, self.KERNEL_SIZE, context))
        if kernel is not None:
            options["kernel_size"] = kernel
        mixer = self.parameterAsFile(parameters, self.MIXER, context)
        if mixer:
            if not is_url(mixer):
                mixer = os.path.abspath(os.path.expanduser(mixer))
            options["mixer"] = mixer
        if self.parameterAsBoolean(parameters, self.ALLOW_MISSING, context):
            options["allow_missing"] = True
        if self.band_order:
            order = self.parameterAsString(parameters, self.BAND_ORDER, context) or ""
            names = [n.strip() for n in order.split(",") if n.strip()]
            if names:
                options["band_order"] = names
        return options
