"""Earth Engine TFRecord image exports as lazy, georeferenced, rasterio-style datasets."""

from tfrecord_io.errors import (
    BandIndexError,
    ChecksumError,
    DatasetClosedError,
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
    ShardChangedError,
    StaleIndexWarning,
    StorageAccessError,
    TableError,
    TFRecordIOError,
    TFRecordIOWarning,
    TruncatedRecordError,
    UnreadableFileError,
    UnreadableMixerError,
    WindowError,
    WriteError,
)
from tfrecord_io.exporting import export
from tfrecord_io.gdal.overviews import build_overviews
from tfrecord_io.gdal.vrt import build_vrt, gdal_env
from tfrecord_io.image.dataset import EETFRecordDataset
from tfrecord_io.image.mixer import Mixer
from tfrecord_io.image.opener import open
from tfrecord_io.image.predictions import iter_patches, write_predictions
from tfrecord_io.image.tools import build_index, validate
from tfrecord_io.image.writer import EETFRecordWriter
from tfrecord_io.ml import IterablePatchDataset, IterableTableDataset, PatchDataset, TableDataset
from tfrecord_io.table import open_table, read_table, tf_feature_spec, write_table

__version__ = "0.1.0"

__all__ = [
    "BandIndexError",
    "ChecksumError",
    "DatasetClosedError",
    "DecodeError",
    "EETFRecordDataset",
    "EETFRecordWriter",
    "ExportExistsError",
    "ExportKindError",
    "GridError",
    "IterablePatchDataset",
    "IterableTableDataset",
    "KernelSizeError",
    "MissingExtraError",
    "MissingMixerError",
    "MissingShardError",
    "Mixer",
    "MixerError",
    "NoMixerWarning",
    "OptionError",
    "PatchDataset",
    "PatchesDroppedWarning",
    "RecordCountError",
    "RecordError",
    "SchemaError",
    "ShardChangedError",
    "StaleIndexWarning",
    "StorageAccessError",
    "TFRecordIOError",
    "TFRecordIOWarning",
    "TableDataset",
    "TableError",
    "TruncatedRecordError",
    "UnreadableFileError",
    "UnreadableMixerError",
    "WindowError",
    "WriteError",
    "__version__",
    "build_index",
    "build_overviews",
    "build_vrt",
    "export",
    "gdal_env",
    "iter_patches",
    "open",
    "open_table",
    "read_table",
    "tf_feature_spec",
    "validate",
    "write_predictions",
    "write_table",
]
