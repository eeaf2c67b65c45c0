"""Earth Engine TFRecord image exports as lazy, georeferenced, rasterio-style datasets."""

from tfrecord_io.errors import (
    BandIndexError,
    ChecksumError,
    DatasetClosedError,
    DecodeError,
    ExportExistsError,
    GridError,
    KernelSizeError,
    MissingMixerError,
    MissingShardError,
    MixerError,
    NoMixerWarning,
    OptionError,
    PatchesDroppedWarning,
    RecordCountError,
    RecordError,
    StaleIndexWarning,
    TFRecordIOError,
    TFRecordIOWarning,
    TruncatedRecordError,
    WindowError,
)
from tfrecord_io.gdal.vrt import build_vrt, gdal_env
from tfrecord_io.image.dataset import EETFRecordDataset
from tfrecord_io.image.export import export
from tfrecord_io.image.mixer import Mixer
from tfrecord_io.image.predictions import iter_patches, write_predictions
from tfrecord_io.image.tools import build_index, validate
from tfrecord_io.image.writer import EETFRecordWriter
from tfrecord_io.opener import open

__version__ = "0.1.0"

__all__ = [
    "BandIndexError",
    "ChecksumError",
    "DatasetClosedError",
    "DecodeError",
    "EETFRecordDataset",
    "EETFRecordWriter",
    "ExportExistsError",
    "GridError",
    "KernelSizeError",
    "MissingMixerError",
    "MissingShardError",
    "Mixer",
    "MixerError",
    "NoMixerWarning",
    "OptionError",
    "PatchesDroppedWarning",
    "RecordCountError",
    "RecordError",
    "StaleIndexWarning",
    "TFRecordIOError",
    "TFRecordIOWarning",
    "TruncatedRecordError",
    "WindowError",
    "__version__",
    "build_index",
    "build_vrt",
    "export",
    "gdal_env",
    "iter_patches",
    "open",
    "validate",
    "write_predictions",
]
