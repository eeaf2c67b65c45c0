"""The ``tfrecordio`` Processing provider."""

from __future__ import annotations

from qgis.core import QgsProcessingProvider


class TFRecordIOProvider(QgsProcessingProvider):
    """Earth Engine TFRecord exports: load, convert, export and validate; tables in and out."""

    def id(self):
        """Return the provider id used in algorithm ids (``tfrecordio:NAME``)."""
        return "tfrecordio"

    def name(self):
        """Return the id within the provider."""
        return "Earth Engine TFRecord"

    def longName(self):
        """Return the provider's long name."""
        return "Earth Engine TFRecord image and table exports (tfrecord_io)"

    def loadAlgorithms(self):
        """Add the provider's algorithms."""
        from .algorithms.convert import ConvertAlgorithm
        from .algorithms.export import ExportAlgorithm
        from .algorithms.load import LoadAlgorithm
        from .algorithms.table import ExportTableAlgorithm, LoadTableAlgorithm
        from .algorithms.validate import ValidateAlgorithm

        for algorithm in (
            LoadAlgorithm(),
            ConvertAlgorithm(),
            ExportAlgorithm(),
            ValidateAlgorithm(),
            LoadTableAlgorithm(),
            ExportTableAlgorithm(),
        ):
            self.addAlgorithm(algorithm)
