"""Table exports in object stores: s3:// on moto's server and gs:// on the GCS emulator.

TensorFlow writes the tables that are uploaded and read back through ``open_table`` (a file,
a prefix "folder", a glob); ``write_table`` and ``tfrecord-io table convert`` write to URLs,
and TensorFlow reads what they wrote.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import tfrecord_io
from tests.cloudservers import Bucket, bucket_fixture, gcs_bucket_fixture, s3_bucket_fixture  # noqa: F401
from tests.tftable import tf_read_examples
from tfrecord_io import ExportExistsError
from tfrecord_io.cli import main


def _uploaded(bucket: Bucket, tf_table: Any, files: int) -> tuple[Any, str]:
    info = tf_table(rows=30, files=files)
    url = bucket.url("tables")
    fs = bucket.filesystem()
    for path in info.paths:
        fs.put_file(str(path), f"{url.split('://', 1)[1]}/{path.name}")
    fs.invalidate_cache()
    return info, url


@pytest.mark.parametrize("form", ["file", "folder", "glob"])
def test_open_table_reads_a_url_file_folder_or_glob(
    bucket: Bucket, tf_table: Any, form: str
) -> None:
    info, url = _uploaded(bucket, tf_table, files=1 if form == "file" else 3)
    source = {
        "file": f"{url}/{info.paths[0].name}",
        "folder": url + "/",
        "glob": f"{url}/table-*.tfrecord.gz",
    }[form]
    table = tfrecord_io.open_table(source, storage_options=bucket.storage_options)
    assert len(table.files) == len(info.paths)
    assert all(f.startswith(f"{bucket.scheme}://") for f in table.files)
    assert len(table) == 30
    data = table.to_numpy()
    np.testing.assert_array_equal(data["count"], info.columns["count"])
    np.testing.assert_array_equal(data["B4"], info.columns["B4"])
    assert list(data["landcover"]) == info.columns["landcover"]


def test_write_table_puts_one_object_and_never_overwrites(bucket: Bucket, tmp_path: Path) -> None:
    frame = pd.DataFrame({"id": np.arange(20), "value": np.linspace(0, 1, 20, dtype=np.float32)})
    url = bucket.url("t.tfrecord.gz")
    written = tfrecord_io.write_table(frame, url, storage_options=bucket.storage_options)
    assert written == url
    fs = bucket.filesystem()
    local = tmp_path / "t.tfrecord.gz"
    fs.get_file(url.split("://", 1)[1], str(local))
    rows = tf_read_examples(local)  # TensorFlow reads what was uploaded
    assert [r["id"][1][0] for r in rows] == list(range(20))
    with pytest.raises(ExportExistsError, match="overwrite"):
        tfrecord_io.write_table(frame.head(3), url, storage_options=bucket.storage_options)
    back = tfrecord_io.read_table(url, storage_options=bucket.storage_options)
    assert len(back) == 20
    tfrecord_io.write_table(
        frame.head(3), url, overwrite=True, storage_options=bucket.storage_options
    )
    back = tfrecord_io.read_table(url, storage_options=bucket.storage_options)
    assert list(back["id"]) == [0, 1, 2]
    assert fs.ls(url.rsplit("/", 1)[0].split("://", 1)[1], detail=False) == [url.split("://", 1)[1]]


def test_cli_table_convert_between_urls(bucket: Bucket, tf_table: Any) -> None:
    info, url = _uploaded(bucket, tf_table, files=2)
    options = []
    for name, value in bucket.storage_options.items():
        options += ["--storage-option", f"{name}={json.dumps(value)}"]
    dst = bucket.url("out.csv")
    args = ["table", "convert", url + "/", dst, "-q", *options]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    with bucket.filesystem().open(dst.split("://", 1)[1], "rb") as f:
        frame = pd.read_csv(f)
    assert list(frame["count"]) == list(info.columns["count"])
    again = CliRunner().invoke(main, args)
    assert again.exit_code != 0
    assert "exists" in again.output
    back = bucket.url("back.tfrecord.gz")
    result = CliRunner().invoke(main, ["table", "convert", url + "/", back, "-q", *options])
    assert result.exit_code == 0, result.output
    table = tfrecord_io.open_table(back, storage_options=bucket.storage_options)
    np.testing.assert_array_equal(table.to_numpy()["count"], info.columns["count"])
