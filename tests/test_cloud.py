"""Unit tests of URLs through fsspec's ``memory://`` store: reads, writes, clean-up, errors.

The object-store servers (S3, GCS) are exercised in ``test_cloud_stores.py``.
"""

from __future__ import annotations

import functools
import http.server
import io
import os
import re
import subprocess
import sys
import threading
import uuid
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import fsspec
import numpy as np
import pytest
from affine import Affine
from fsspec.implementations.memory import MemoryFileSystem
from rasterio.windows import Window

import tfrecord_io
from tfrecord_io import (
    ExportExistsError,
    MissingShardError,
    ShardChangedError,
    StorageAccessError,
    TFRecordIOError,
)
from tfrecord_io.format import storage

ROOT = Path(__file__).resolve().parent.parent
UTM = Affine(30.0, 0.0, 500000.0, 0.0, -30.0, 4200000.0)
NORTH_UP = Affine(30.0, 0.0, 500000.0, 0.0, -30.0, 4200000.0)
Make = Callable[..., Any]


def _url(*parts: str) -> str:
    return "/".join([f"memory://test-{uuid.uuid4().hex[:10]}", *parts])


def _profile(array: np.ndarray, **options: Any) -> dict[str, Any]:
    count, height, width = array.shape
    return {
        "width": width,
        "height": height,
        "count": count,
        "dtype": str(array.dtype),
        "crs": "EPSG:32610",
        "transform": UTM,
        "format_options": {"patchDimensions": [16, 16], "maxFileSize": 6000, "compressed": True},
        **options,
    }


def _write(url: str, array: np.ndarray, **options: Any) -> list[str]:
    with tfrecord_io.open(url, "w", **_profile(array, **options)) as dst:
        dst.write(array)
    return dst.files


@pytest.fixture
def array() -> np.ndarray:
    return np.random.default_rng(3).normal(size=(2, 48, 64)).astype(np.float32)


def _names(url: str) -> list[str]:
    fs = fsspec.filesystem("memory")
    folder = url.split("://", 1)[1]
    return (
        sorted(p.rsplit("/", 1)[-1] for p in fs.ls(folder, detail=False))
        if fs.exists(folder)
        else []
    )


# -- paths and URLs -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("gs://b/x", True),
        ("s3://b/x/", True),
        ("https://h/x", True),
        ("/tmp/x", False),
        ("x/y", False),
        ("C:\\x", False),
    ],
)
def test_is_url_tells_urls_from_local_paths(path: str, expected: bool) -> None:
    assert storage.is_url(path) is expected


def test_join_and_split_keep_the_scheme() -> None:
    assert storage.join("gs://b/exp/", "p-mixer.json") == "gs://b/exp/p-mixer.json"
    assert storage.split("gs://b/exp/p-00000.tfrecord.gz") == ("gs://b/exp", "p-00000.tfrecord.gz")


def test_local_reads_do_not_import_fsspec(tmp_path: Path, array: np.ndarray) -> None:
    folder = tmp_path / "exp"
    _write(str(folder), array)
    code = (
        "import sys, tfrecord_io\n"
        f"ds = tfrecord_io.open({str(folder)!r})\n"
        "ds.read(window=((0, 16), (0, 16)))\n"
        "print('fsspec' in sys.modules)\n"
    )
    env = dict(os.environ)
    if os.environ.get("TFRECORD_IO_TEST_INSTALLED") != "1":
        env["PYTHONPATH"] = str(ROOT)  # the worktree's source; `make test` uses the installed one
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


# -- reads ----------------------------------------------------------------------------------


def test_tensorflow_export_reads_from_memory_url(tf_export: Make) -> None:
    rng = np.random.default_rng(0)
    bands = {n: rng.normal(size=(24, 32)).astype(np.float32) for n in ("B1", "B2")}
    info = tf_export(bands=bands, transform=NORTH_UP, patch_size=(8, 8), max_file_size=3000)
    url = _url("tf")
    fs = fsspec.filesystem("memory")
    for path in [*info.shards, info.mixer]:
        fs.put_file(str(path), f"{url.split('://', 1)[1]}/{Path(path).name}")
    assert len(info.shards) > 2
    with tfrecord_io.open(url + "/", band_order=list(info.band_names)) as ds:
        np.testing.assert_array_equal(ds.read(), info.expected)
        window = Window(5, 3, 17, 13)
        np.testing.assert_array_equal(ds.read(window=window), info.expected[:, 3:16, 5:22])


def test_mixer_url_and_shard_url_open_the_export(array: np.ndarray) -> None:
    url = _url("exp")
    files = _write(url, array)
    for path in (files[-1], files[1]):
        with tfrecord_io.open(path) as ds:
            np.testing.assert_array_equal(ds.read(), array)


def test_missing_url_raises_missing_shard_error_naming_it() -> None:
    url = _url("nothing") + "/"
    with pytest.raises(MissingShardError, match=url.rstrip("/")):
        tfrecord_io.open(url)


# -- writes ---------------------------------------------------------------------------------


def test_write_to_url_round_trips(array: np.ndarray) -> None:
    url = _url("out")
    files = _write(url, array)
    assert files[-1] == f"{url}/out-mixer.json"
    assert len(files) > 3
    assert _names(url) == sorted(f.rsplit("/", 1)[-1] for f in files)
    with tfrecord_io.open(url) as ds:
        np.testing.assert_array_equal(ds.read(), array)


def test_export_streams_a_geotiff_to_a_url(tif: Any) -> None:
    path = tif()
    url = _url("fromtif")
    files = tfrecord_io.export(path, url, {"patchDimensions": [8, 8]})
    assert files[-1] == f"{url}/fromtif-mixer.json"
    import rasterio

    with rasterio.open(path) as src, tfrecord_io.open(url) as ds:
        np.testing.assert_array_equal(ds.read(), src.read())


def test_write_never_overwrites_an_export_at_the_url(array: np.ndarray) -> None:
    url = _url("out")
    _write(url, array)
    with pytest.raises(ExportExistsError, match="overwrite"):
        _write(url, array)


def test_overwrite_replaces_the_export_and_drops_its_extra_shards(array: np.ndarray) -> None:
    url = _url("out")
    first = _write(url, array)
    second = _write(url, array[:, :16, :32], overwrite=True)
    assert len(second) < len(first)
    assert _names(url) == sorted(f.rsplit("/", 1)[-1] for f in second)
    with tfrecord_io.open(url) as ds:
        np.testing.assert_array_equal(ds.read(), array[:, :16, :32])


class RefusingFileSystem(MemoryFileSystem):
    """The memory store, refusing the upload of names containing ``refuse`` (as a denied PUT)."""

    protocol = "refusing"
    refuse: ClassVar[str | None] = None
    puts: ClassVar[list[str]] = []

    def put_file(self, lpath: Any, rpath: Any, *args: Any, **kwargs: Any) -> Any:
        if self.refuse is not None and self.refuse in str(rpath):
            raise PermissionError(f"403 Forbidden: {rpath}")
        RefusingFileSystem.puts.append(str(rpath))
        return super().put_file(lpath, rpath, *args, **kwargs)


@pytest.fixture
def refusing() -> Iterator[type[RefusingFileSystem]]:
    fsspec.register_implementation("refusing", RefusingFileSystem, clobber=True)
    RefusingFileSystem.puts = []
    RefusingFileSystem.refuse = None
    yield RefusingFileSystem
    RefusingFileSystem.refuse = None


def test_failed_upload_halfway_leaves_nothing_and_no_mixer(
    refusing: type[RefusingFileSystem], array: np.ndarray
) -> None:
    url = "refusing://" + uuid.uuid4().hex[:10] + "/out"
    refusing.refuse = "-00002."
    with pytest.raises(StorageAccessError, match=r"out-00002\.tfrecord\.gz"):
        _write(url, array)
    assert len(refusing.puts) == 2  # two shards were uploaded, then removed again
    fs = fsspec.filesystem("refusing")
    assert not fs.exists(url.split("://", 1)[1]) or fs.ls(url.split("://", 1)[1]) == []


def test_mixer_is_uploaded_after_every_shard(
    refusing: type[RefusingFileSystem], array: np.ndarray
) -> None:
    url = "refusing://" + uuid.uuid4().hex[:10] + "/out"
    _write(url, array)
    assert refusing.puts[-1].endswith("out-mixer.json")
    assert all(p.endswith(".tfrecord.gz") for p in refusing.puts[:-1])


def test_write_predictions_to_url_copies_the_mixer(array: np.ndarray) -> None:
    source = _url("exp")
    _write(source, array)
    patches = [a[:1] * 2 for _, _, a in tfrecord_io.iter_patches(source, trim=True)]
    dst = _url("pred")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        files = tfrecord_io.write_predictions(source, dst, patches, ["p"])
    assert files[-1].endswith("pred-mixer.json")
    text = storage.read_text(files[-1])
    assert text == storage.read_text(f"{source}/exp-mixer.json")
    with tfrecord_io.open(dst) as ds:
        np.testing.assert_array_equal(ds.read(1), array[0] * 2)


# -- a shard that changes -------------------------------------------------------------------


def test_shard_replaced_while_read_raises_shard_changed_error(array: np.ndarray) -> None:
    url = _url("exp")
    files = _write(url, array)
    fs = fsspec.filesystem("memory")
    with tfrecord_io.open(url, cache_size=0) as ds:
        assert len(ds.export_files.shards) == 6  # two patches per shard: 10 and 11 in the last
        ds.read(window=Window(48, 32, 16, 16))  # patch 11
        last = files[-2].split("://", 1)[1]
        fs.pipe_file(last, fs.cat_file(files[0].split("://", 1)[1]))
        with pytest.raises(ShardChangedError, match=files[-2]):
            ds.read(window=Window(32, 32, 16, 16))  # patch 10: the shard is read again


def test_read_bytes_of_an_absent_sidecar_is_none_when_missing_ok() -> None:
    url = _url("exp", "exp-index.bin")
    assert storage.read_bytes(url, missing_ok=True) is None
    with pytest.raises(MissingShardError, match=url):
        storage.read_bytes(url)


def test_storage_errors_are_tfrecord_io_errors_and_builtins() -> None:
    assert issubclass(StorageAccessError, PermissionError)
    assert issubclass(StorageAccessError, TFRecordIOError)
    assert issubclass(ShardChangedError, TFRecordIOError)
    assert issubclass(MissingShardError, FileNotFoundError)


# -- https:// ---------------------------------------------------------------------------------


class RangeHandler(http.server.SimpleHTTPRequestHandler):
    """A static web server as object stores serve files: ranges answered, folders not listed."""

    def list_directory(self, path: Any) -> None:
        self.send_error(404, "no listing")

    def send_head(self) -> Any:
        path = self.translate_path(self.path)
        if os.path.isdir(path):
            self.send_error(404, "no listing")
            return None
        match = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        if not os.path.isfile(path) or match is None:
            return super().send_head()
        data = Path(path).read_bytes()
        start = int(match[1])
        end = min(int(match[2]) if match[2] else len(data) - 1, len(data) - 1)
        self.send_response(206)
        self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        return io.BytesIO(data[start : end + 1])

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def web_root(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    handler = functools.partial(RangeHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield tmp_path, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_https_mixer_url_finds_the_shards_without_a_listing(
    web_root: tuple[Path, str], array: np.ndarray
) -> None:
    folder, base = web_root
    files = _write(str(folder / "exp"), array)
    assert len(files) > 3
    with tfrecord_io.open(f"{base}/exp/exp-mixer.json") as ds:
        assert ds.files == [f"{base}/exp/{Path(f).name}" for f in files]
        np.testing.assert_array_equal(
            ds.read(window=Window(20, 10, 30, 25)), array[:, 10:35, 20:50]
        )


def test_cli_translates_an_export_url_to_another_url(array: np.ndarray) -> None:
    from click.testing import CliRunner

    from tfrecord_io.cli import main

    source, dst = _url("exp"), _url("copy")
    _write(source, array)
    result = CliRunner().invoke(main, ["translate", source, dst, "-of", "EETFRecord", "-q"])
    assert result.exit_code == 0, result.output
    with tfrecord_io.open(dst) as ds:
        np.testing.assert_array_equal(ds.read(), array)
