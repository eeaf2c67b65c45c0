"""Earth Engine table exports: read (:func:`open_table`), write (:func:`write_table`), convert."""

from tfrecord_io.table.reader import TableExport, open_table, read_table
from tfrecord_io.table.schema import Column, Schema
from tfrecord_io.table.tfspec import tf_feature_spec
from tfrecord_io.table.writer import write_table

__all__ = [
    "Column",
    "Schema",
    "TableExport",
    "open_table",
    "read_table",
    "tf_feature_spec",
    "write_table",
]
