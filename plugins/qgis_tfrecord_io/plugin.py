"""The plugin object QGIS holds: registers the Processing provider and nothing else."""

from __future__ import annotations

from qgis.core import QgsApplication

from . import configure_gdal


class TFRecordIOPlugin:
    """Adds the ``tfrecordio`` Processing provider (desktop QGIS and ``qgis_process``)."""

    def __init__(self, iface=None):
        self.iface = iface
        self.provider = None

    def initProcessing(self):
        """Register the provider; called by QGIS before the GUI, and alone by qgis_process."""
        configure_gdal()
        if self.provider is None:
            from .provider import TFRecordIOProvider

            self.provider = TFRecordIOProvider()
            QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self):
        """Register the provider (the algorithms live in the Processing toolbox only)."""
        self.initProcessing()

    def unload(self):
        """Remove the provider."""
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
