"""Exports in object stores: s3:// on moto's server and gs:// on a GCS emulator, on loopback.

Each test runs against both stores (the ``bucket`` fixture). Exports are made by TensorFlow
(the independent producer) in a temporary folder and uploaded, or written by our writer
straight to the bucket.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.windows import Window

import tfrecord_io
from tests.cloudservers import (  # noqa: F401 - the fixtures are used by name
    Bucket,
    bucket_fixture,
    gcs_bucket_fixture,
    make_s3_bucket,
    s3_bucket_fixture,
    s3_options,
    start_moto,
)
from tfrecord_io import ExportExistsError, MissingShardError, ShardChangedError, StorageAccessError

NORTH_UP = Affine(30.0, 0.0, 500000.0, 0.0, -30.0, 4200000.0)
Make = Callable[..., Any]


def _tf_export(tf_export: Make, **kwargs: Any) -> Any:
    rng = np.random.default_rng(1)
    bands = {n: rng.normal(size=(40, 48)).astype(np.float32) for n in ("B1", "B2")}
    options = {"transform": NORTH_UP, "patch_size": (8, 8), "kernel_size": (2, 2)}
    return tf_export(bands=bands, max_file_size=12000, **{**options, **kwargs})


def _upload(bucket: Bucket, info: Any, url: str) -> None:
    fs = bucket.filesystem()
    root = url.split("://", 1)[1]
    for path in [*info.shards, info.mixer]:
        fs.put_file(str(path), f"{root}/{Path(path).name}")
    fs.invalidate_cache()


@pytest.fixture
def uploaded(bucket: Bucket, tf_export: Make) -> tuple[Bucket, Any, str]:
    info = _tf_export(tf_export)
    url = bucket.url("tf")
    _upload(bucket, info, url)
    assert len(info.shards) >= 3
    return bucket, info, url


def _open(bucket: Bucket, url: str, info: Any = None, **kwargs: Any) -> Any:
    if info is not None:
        kwargs["band_order"] = list(info.band_names)
    return tfrecord_io.open(url, storage_options=bucket.storage_options, **kwargs)


# -- reads ----------------------------------------------------------------------------------


def test_window_read_from_bucket_equals_tensorflow_mosaic(uploaded: Any) -> None:
    bucket, info, url = uploaded
    with _open(bucket, url + "/", info) as ds:
        window = Window(9, 21, 17, 11)
        np.testing.assert_array_equal(ds.read(window=window), info.expected[:, 21:32, 9:26])


def test_whole_read_from_bucket_streams_every_shard(uploaded: Any) -> None:
    bucket, info, url = uploaded
    with _open(bucket, url, info) as ds:
        np.testing.assert_array_equal(ds.read(), info.expected)


def test_raw_shards_read_from_bucket_in_ranges(bucket: Bucket, tf_export: Make) -> None:
    info = _tf_export(tf_export, compressed=False)
    url = bucket.url("raw")
    _upload(bucket, info, url)
    with _open(bucket, url, info) as ds:
        window = Window(20, 12, 20, 20)
        np.testing.assert_array_equal(ds.read(window=window), info.expected[:, 12:32, 20:40])
        np.testing.assert_array_equal(ds.read(), info.expected)


def test_shard_url_opens_the_export_in_the_bucket(uploaded: Any) -> None:
    bucket, info, url = uploaded
    shard = f"{url}/{info.shards[1].name}"
    with _open(bucket, shard, info) as ds:
        assert ds.files[0] == f"{url}/{info.shards[0].name}"
        assert ds.shape == info.expected.shape[1:]


def test_validate_finds_a_sound_export_in_the_bucket(uploaded: Any) -> None:
    bucket, _, url = uploaded
    assert tfrecord_io.validate(url, storage_options=bucket.storage_options) == []


def test_validate_names_the_url_of_a_corrupt_shard(uploaded: Any) -> None:
    bucket, info, url = uploaded
    raw = bytearray(gzip.decompress(info.shards[1].read_bytes()))
    raw[40] ^= 0xFF  # inside the first record's payload
    shard = f"{url}/{info.shards[1].name}"
    bucket.filesystem().pipe_file(shard.split("://", 1)[1], gzip.compress(bytes(raw)))
    problems = tfrecord_io.validate(url, storage_options=bucket.storage_options)
    assert [p.error for p in problems] == ["ChecksumError"]
    assert problems[0].path == shard
    assert shard in problems[0].message


def test_missing_prefix_raises_missing_shard_error_naming_the_url(bucket: Bucket) -> None:
    url = bucket.url("nothing-here") + "/"
    with pytest.raises(MissingShardError, match=url.rstrip("/")):
        _open(bucket, url)


def test_missing_shard_url_raises_missing_shard_error_naming_it(uploaded: Any) -> None:
    bucket, _, url = uploaded
    shard = f"{url}/tf-00099.tfrecord.gz"
    with pytest.raises(MissingShardError, match=shard):
        _open(bucket, shard)


def test_shard_replaced_between_reads_raises_shard_changed_error(uploaded: Any) -> None:
    bucket, info, url = uploaded
    fs = bucket.filesystem()
    with _open(bucket, url, info, cache_size=0) as ds:
        assert info.records_per_shard[-1] == 2  # patches 28 and 29
        ds.read(window=Window(40, 32, 8, 8))  # patch 29: indexes every shard
        last = f"{url}/{info.shards[-1].name}"
        fs.pipe_file(last.split("://", 1)[1], info.shards[0].read_bytes())
        with pytest.raises(ShardChangedError, match=last):
            ds.read(window=Window(32, 32, 8, 8))  # earlier in the same shard: read again


# -- writes ---------------------------------------------------------------------------------


def _array() -> np.ndarray:
    return np.random.default_rng(2).normal(size=(2, 40, 48)).astype(np.float32)


def _write(bucket: Bucket, url: str, array: np.ndarray, **options: Any) -> list[str]:
    count, height, width = array.shape
    profile = {
        "width": width,
        "height": height,
        "count": count,
        "dtype": "float32",
        "crs": "EPSG:32610",
        "transform": NORTH_UP,
        "format_options": {"patchDimensions": [8, 8], "maxFileSize": 5000},
        "storage_options": bucket.storage_options,
    }
    with tfrecord_io.open(url, "w", **{**profile, **options}) as dst:
        dst.write(array)
    return dst.files


def test_export_written_to_bucket_reads_back(bucket: Bucket) -> None:
    url, array = bucket.url("out"), _array()
    files = _write(bucket, url, array)
    assert files[-1] == f"{url}/out-mixer.json"
    listed = bucket.filesystem().ls(url.split("://", 1)[1], detail=False)
    assert sorted(p.rsplit("/", 1)[-1] for p in listed) == sorted(
        f.rsplit("/", 1)[-1] for f in files
    )
    with _open(bucket, url) as ds:
        np.testing.assert_array_equal(ds.read(), array)


def test_write_to_bucket_never_overwrites(bucket: Bucket) -> None:
    url = bucket.url("out")
    _write(bucket, url, _array())
    with pytest.raises(ExportExistsError, match=url):
        _write(bucket, url, _array())


def test_predictions_written_to_bucket_carry_the_export_mixer(uploaded: Any) -> None:
    bucket, info, url = uploaded
    options = bucket.storage_options
    patches = [
        a[:1] + 1
        for _, _, a in tfrecord_io.iter_patches(
            url, trim=True, storage_options=options, band_order=list(info.band_names)
        )
    ]
    dst = bucket.url("predictions")
    files = tfrecord_io.write_predictions(url, dst, patches, ["p"], storage_options=options)
    fs = bucket.filesystem()
    mixer = fs.cat_file(files[-1].split("://", 1)[1])
    assert mixer == info.mixer.read_bytes()
    with _open(bucket, dst) as ds:
        np.testing.assert_allclose(ds.read(1), info.expected[0] + 1)


# -- GDAL through the VRT -------------------------------------------------------------------


def test_vrt_reads_the_bucket_through_fsspec(uploaded: Any, tmp_path: Path) -> None:
    bucket, info, url = uploaded
    vrt = tfrecord_io.build_vrt(
        url,
        tmp_path / "remote.vrt",
        storage_options=bucket.storage_options,
        band_order=list(info.band_names),
    )
    assert url in Path(vrt).read_text()
    with rasterio.Env(**tfrecord_io.gdal_env()), rasterio.open(vrt) as src:
        window = Window(3, 5, 30, 20)
        np.testing.assert_array_equal(src.read(window=window), info.expected[:, 5:25, 3:33])


# -- access denied --------------------------------------------------------------------------


def test_denied_credentials_raise_storage_access_error_naming_the_url() -> None:
    import requests

    server, endpoint = start_moto()
    reset = f"{endpoint}/moto-api/reset-auth"
    try:
        make_s3_bucket(endpoint)
        # From now on moto checks every request's credentials, and "testing" is no IAM user.
        # The setting is moto's, process-wide: it is put back below for the other tests.
        requests.post(reset, data=b"0", timeout=10).raise_for_status()
        url = "s3://tfrecord-io-test/denied/"
        with pytest.raises(StorageAccessError, match="s3://tfrecord-io-test/denied"):
            tfrecord_io.open(url, storage_options=s3_options(endpoint))
    finally:
        requests.post(reset, data=b"inf", timeout=10).raise_for_status()
        server.stop()


# -- the command line -----------------------------------------------------------------------


def test_cli_validates_a_url_with_storage_options(uploaded: Any) -> None:
    import json

    from click.testing import CliRunner

    from tfrecord_io.cli import main

    bucket, _, url = uploaded
    items = [f"{k}={json.dumps(v)}" for k, v in bucket.storage_options.items()]
    args = ["validate", url, "--json"]
    for item in items:
        args += ["--storage-option", item]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["valid"] is True
