"""The xarray engine on a URL: memory:// (one process, threaded scheduler) and moto's S3.

TensorFlow writes the export, which is uploaded; the engine's arrays must pickle the URL and
the storage options, so a fresh process reads the bucket with them.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dask
import fsspec
import numpy as np
import xarray as xr

from tests.cloudservers import Bucket, s3_bucket_fixture  # noqa: F401
from tests.test_cloud_index import _tf_export as _export
from tests.test_cloud_index import _upload

ENGINE = "eetfrecord"
Make = Callable[..., Any]


def test_engine_reads_a_memory_url_chunked_by_patch(tf_export: Make) -> None:
    info = _export(tf_export)
    url = f"memory://xr-{uuid.uuid4().hex[:10]}/tf"
    _upload(fsspec.filesystem("memory"), info, url)
    with (
        dask.config.set(scheduler="threads"),
        xr.open_dataset(
            url + "/",
            engine=ENGINE,
            storage_options={},
            chunks={},
            band_order=list(info.band_names),
        ) as ds,
    ):
        assert ds["B1"].chunks == ((8,) * 5, (8,) * 6)
        computed = ds.compute()
        again = pickle.loads(pickle.dumps(ds))  # the URL and options travel with the arrays
        np.testing.assert_array_equal(again[info.band_names[1]].values, info.expected[1])
    for k, name in enumerate(info.band_names):
        np.testing.assert_array_equal(computed[name].values, info.expected[k])


def test_engine_reads_s3_and_pickles_the_url_and_options(
    s3_bucket: Bucket, tf_export: Make, tmp_path: Path
) -> None:
    info = _export(tf_export)
    url = s3_bucket.url("tf")
    _upload(s3_bucket.filesystem(), info, url)
    options = s3_bucket.storage_options
    order = list(info.band_names)
    with xr.open_dataset(url + "/", engine=ENGINE, storage_options=options, band_order=order) as ds:
        np.testing.assert_array_equal(ds[order[0]].values, info.expected[0])
        lazy = ds[order[1]].isel(y=slice(3, 21))
        payload = pickle.dumps(lazy)
    assert url.encode() in payload
    (tmp_path / "ds.pickle").write_bytes(payload)
    code = (
        "import pickle, sys, numpy as np; a = pickle.load(open(sys.argv[1], 'rb')); "
        "np.save(sys.argv[2], a.values)"
    )
    subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "ds.pickle"), str(tmp_path / "out.npy")],
        check=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
    )
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), info.expected[1, 3:21])
