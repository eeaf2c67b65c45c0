"""Earth Engine TFRecord image exports as lazy, georeferenced, rasterio-style datasets."""

from tfrecord_io.errors import (
    ChecksumError,
    DecodeError,
    ExportExistsError,
    GridError,
    KernelSizeError,
    MissingMixerError,
    MissingShardError,
    MixerError,
    OptionError,
    RecordCountError,
    RecordError,
    TFRecordIOError,
    TFRecordIOWarning,
    TruncatedRecordError,
    WindowError,
)

__version__ = "0.1.0"

__all__ = [
    "ChecksumError",
    "DecodeError",
    "ExportExistsError",
    "GridError",
    "KernelSizeError",
    "MissingMixerError",
    "MissingShardError",
    "MixerError",
    "OptionError",
    "RecordCountError",
    "RecordError",
    "TFRecordIOError",
    "TFRecordIOWarning",
    "TruncatedRecordError",
    "WindowError",
    "__version__",
]
