"""Earth Engine TFRecord image exports as lazy, georeferenced, rasterio-style datasets."""

from tfrecord_io.errors import (
    BandIndexError,
    ChecksumError,
    DecodeError,
    ExportExistsError,
    ExportKindError,
    GridError,
    KernelSizeError,
    MissingExtraError,
    MissingMixerError,
    MissingShardError,
    MixerError,
    NoMixerWarning,
    OptionError,
    PatchesDroppedWarning,
    RecordCountError,
    RecordError,
    SchemaError,
    TableError,
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
from tfrecord_io.image.tools import validate
from tfrecord_io.image.writer import EETFRecordWriter
from tfrecord_io.opener import open
from tfrecord_io.table import open_table, read_table, tf_feature_spec, write_table

__version__ = "0.1.0"

__all__ = [
    "BandIndexError",
    "EETFRecordDataset",
    "EETFRecordWriter",
    "Mixer",
    "export",
    "iter_patches",
    "open",
    "open_table",
    "read_table",
    "tf_feature_spec",
    "write_table",
    "write_predictions",
    "validate",
    "ChecksumError",
    "DecodeError",
    "ExportExistsError",
    "ExportKindError",
    "GridError",
    "KernelSizeError",
    "MissingExtraError",
    "MissingMixerError",
    "MissingShardError",
    "MixerError",
    "NoMixerWarning",
    "PatchesDroppedWarning",
    "OptionError",
    "RecordCountError",
    "RecordError",
    "SchemaError",
    "TableError",
    "TFRecordIOError",
    "TFRecordIOWarning",
    "TruncatedRecordError",
    "WindowError",
    "__version__",
    "build_vrt",
    "gdal_env",
]
