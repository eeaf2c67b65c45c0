"""TensorFlow-made Earth Engine table exports: the tests' independent producer and consumer.

Written with ``tf.io.TFRecordWriter`` and ``tf.train`` protos only, nothing from ``tfrecord_io``:
one Example per row, one feature per column, arrays flattened row-major, gzip (as Earth Engine
writes tables; TensorFlow's gzip header differs only in its OS byte).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import tensorflow as tf

__all__ = ["TableInfo", "sample_columns", "tf_parse", "tf_read_examples", "write_tf_table"]


@dataclass(frozen=True, eq=False)
class TableInfo:
    """What :func:`write_tf_table` wrote: the files, the columns and their kinds."""

    paths: tuple[Path, ...]
    columns: dict[str, Any]
    kinds: dict[str, str]

    @property
    def rows(self) -> int:
        """Rows over all files."""
        return len(next(iter(self.columns.values())))


def sample_columns(rng: np.random.Generator, rows: int) -> tuple[dict[str, Any], dict[str, str]]:
    """Columns of every kind: float, int64 and text scalars, arrays, coordinates, raw bytes."""
    columns: dict[str, Any] = {
        "B4": rng.normal(size=rows).astype(np.float32),
        "count": rng.integers(-(2**40), 2**40, size=rows),
        "landcover": [f"class-{i % 7}-é" for i in range(rows)],
        "patch": rng.random((rows, 5, 5)).astype(np.float32),
        "profile": rng.integers(0, 1000, size=(rows, 3)),
        "longitude": rng.uniform(-180, 180, size=rows).astype(np.float32),
        "latitude": rng.uniform(-90, 90, size=rows).astype(np.float32),
        "blob": [bytes([255, i % 256, 0]) for i in range(rows)],
    }
    kinds = {
        "B4": "float",
        "count": "int64",
        "landcover": "bytes",
        "patch": "float",
        "profile": "int64",
        "longitude": "float",
        "latitude": "float",
        "blob": "bytes",
    }
    return columns, kinds


def _feature(kind: str, value: Any) -> tf.train.Feature:
    if kind == "float":
        return tf.train.Feature(float_list=tf.train.FloatList(value=np.ravel(value).tolist()))
    if kind == "int64":
        return tf.train.Feature(int64_list=tf.train.Int64List(value=np.ravel(value).tolist()))
    items = value if isinstance(value, list | tuple) else [value]
    items = [v.encode("utf-8") if isinstance(v, str) else bytes(v) for v in items]
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=items))


def write_tf_table(
    folder: Path,
    columns: dict[str, Any],
    kinds: dict[str, str],
    *,
    files: int = 1,
    name: str = "table",
    compressed: bool = True,
) -> TableInfo:
    """Write ``columns`` (each indexed by row) as a table export split over ``files`` files."""
    rows = len(next(iter(columns.values())))
    bounds = np.linspace(0, rows, files + 1).astype(int)
    paths = []
    for n in range(files):
        suffix = ".tfrecord.gz" if compressed else ".tfrecord"
        path = folder / (f"{name}{suffix}" if files == 1 else f"{name}-{n}{suffix}")
        options = tf.io.TFRecordOptions(compression_type="GZIP" if compressed else "")
        with tf.io.TFRecordWriter(str(path), options) as writer:
            for row in range(bounds[n], bounds[n + 1]):
                feature = {k: _feature(kinds[k], columns[k][row]) for k in columns}
                example = tf.train.Example(features=tf.train.Features(feature=feature))
                writer.write(example.SerializeToString())
        paths.append(path)
    return TableInfo(tuple(paths), columns, kinds)


def tf_read_examples(path: Path) -> list[dict[str, tuple[str, list[Any]]]]:
    """Every record of a file as ``{name: (kind, values)}``, decoded by TensorFlow's protos."""
    out = []
    dataset = tf.data.TFRecordDataset(
        str(path), compression_type="GZIP" if Path(path).suffix == ".gz" else ""
    )
    for record in dataset:
        example = tf.train.Example.FromString(record.numpy())
        row = {}
        for key, feature in example.features.feature.items():
            kind = feature.WhichOneof("kind")
            row[key] = (kind.replace("_list", ""), list(getattr(feature, kind).value))
        out.append(row)
    return out


def tf_parse(path: Path | Sequence[Path], spec: dict[str, Any], batch: int = 4096) -> dict:
    """Parse files with ``TFRecordDataset(...).batch(n).map(parse_example)``; stack the columns."""
    paths = [str(p) for p in (path if isinstance(path, list | tuple) else [path])]
    dataset = tf.data.TFRecordDataset(paths, compression_type="GZIP")
    parts: dict[str, list[np.ndarray]] = {k: [] for k in spec}
    for batch_values in dataset.batch(batch).map(lambda r: tf.io.parse_example(r, spec)):
        for key, value in batch_values.items():
            parts[key].append(value.numpy())
    return {k: np.concatenate(v) for k, v in parts.items()}
