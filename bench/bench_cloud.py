"""CLOUD benchmark: reading an export from gs:// on a loopback GCS emulator.

Run from the repository root (the library is imported from PYTHONPATH)::

    PYTHONPATH=. .venv/bin/python bench/bench_cloud.py            # ~100 MB export
    PYTHONPATH=. .venv/bin/python bench/bench_cloud.py --quick    # smoke run

One run: a multi-shard gzip export is written locally by our writer and uploaded to
gcp-storage-emulator (in this process, on 127.0.0.1). gcsfs reaches the emulator through a
counting TCP proxy, so every figure is what crossed the wire: HTTP requests, and bytes received
(headers included). Measured:

1. one 256 x 256 window in the middle of the mosaic (unaligned: it touches four patches), on a
   freshly opened dataset, **without** a persisted index: the open (listing, mixer, first
   record) and the window (the record index is learnt by scanning every shard before the
   window's, with ranged reads), then a second window in the same session (index learnt);
2. the same **with** the persisted index (``PREFIX-index.tfrindex``, written into the bucket
   by :func:`tfrecord_io.build_index`, whose cost is printed too): a fresh dataset loads the
   sidecar with ranged reads and fetches only the compressed bytes from the nearest saved seek
   point to the window's records;
3. whole-export read throughput (``ds.read()``, the reader's 2 threads) from the emulator against
   the same export on local disk, in MB/s of uncompressed records. It runs after 2, so the
   bucket holds the sidecar (the read is split at its saved points) and the local copy does not.

Every read is checked against the array written.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

os.environ["GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT"] = "false"  # before gcsfs is imported

import numpy as np
from affine import Affine
from rasterio.windows import Window

import tfrecord_io

MB = 1e6
MiB = 1 << 20
BUCKET = "bench"
_REQUEST = re.compile(rb"(GET|POST|PUT|DELETE|HEAD|PATCH) /[^ ]* HTTP/1\.[01]\r\n")


class CountingProxy:
    """A TCP forwarder on loopback counting requests and the bytes the client receives."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream = upstream_port
        self.requests = 0
        self.received = 0
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def reset(self) -> tuple[int, int]:
        with self._lock:
            counts = (self.requests, self.received)
            self.requests = self.received = 0
        return counts

    def _accept(self) -> None:
        while True:
            client, _ = self._listener.accept()
            server = socket.create_connection(("127.0.0.1", self.upstream))
            threading.Thread(target=self._pipe, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client, False), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, upstream: bool) -> None:
        try:
            while data := src.recv(1 << 16):
                with self._lock:
                    if upstream:
                        self.requests += len(_REQUEST.findall(data))
                    else:
                        self.received += len(data)
                dst.sendall(data)
        except OSError:
            pass  # the other side closed: nothing left to count
        finally:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


def make_array(size: int, count: int) -> np.ndarray:
    """Smooth fields plus noise: compresses about as real reflectances do (2-3x)."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    bands = [np.sin(6 * x + b) * np.cos(4 * y - b) for b in range(count)]
    noise = rng.normal(scale=0.01, size=(count, size, size)).astype(np.float32)
    return (np.stack(bands) + noise).round(3).astype(np.float32)


def write_local(folder: str, array: np.ndarray, max_file_size: int) -> list[str]:
    count, height, width = array.shape
    with tfrecord_io.open(
        folder,
        "w",
        width=width,
        height=height,
        count=count,
        dtype="float32",
        crs="EPSG:32610",
        transform=Affine(10.0, 0.0, 500000.0, 0.0, -10.0, 4200000.0),
        format_options={
            "patchDimensions": [256, 256],
            "maxFileSize": max_file_size,
            "compressed": True,
        },
    ) as dst:
        dst.write(array)
    return dst.files


def measure(proxy: CountingProxy, action: Callable[[], Any]) -> tuple[Any, float, int, int]:
    proxy.reset()
    start = time.perf_counter()
    result = action()
    seconds = time.perf_counter() - start
    requests, received = proxy.reset()
    return result, seconds, requests, received


def fresh_window(
    proxy: CountingProxy, url: str, options: dict[str, Any], window: Window, expected: np.ndarray
) -> tuple[Any, list[tuple[float, int, int]]]:
    """Open the export afresh and read ``window``; return the dataset and both measurements."""
    ds, t_open, r_open, b_open = measure(
        proxy, lambda: tfrecord_io.open(url, storage_options=options, cache_size=0)
    )
    got, t_win, r_win, b_win = measure(proxy, lambda: ds.read(window=window))
    assert np.array_equal(got, expected)
    return ds, [(t_open, r_open, b_open), (t_win, r_win, b_win)]


def row(label: str, figures: tuple[float, int, int]) -> str:
    seconds, requests, received = figures
    return f"  {label:<17}{requests:4d} requests {received / MB:8.2f} MB  {seconds:6.2f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small export (smoke run)")
    args = parser.parse_args()
    size, count, max_file_size = (1024, 2, 2 * MiB) if args.quick else (2560, 4, 16 * MiB)

    from gcp_storage_emulator.server import create_server

    server = create_server("127.0.0.1", 0, in_memory=True, default_bucket=BUCKET)
    server.start()
    tmp = tempfile.mkdtemp(prefix="bench-cloud-")
    try:
        proxy = CountingProxy(server._api._httpd.server_address[1])
        options = {"endpoint_url": f"http://127.0.0.1:{proxy.port}", "token": "anon"}
        array = make_array(size, count)
        local = os.path.join(tmp, "exp")
        files = write_local(local, array, max_file_size)
        shards = files[:-1]
        compressed = sum(os.path.getsize(f) for f in shards)
        import gcsfs

        fs = gcsfs.GCSFileSystem(**options)
        url = f"gs://{BUCKET}/exp"
        fs.put([*files], f"{BUCKET}/exp/")
        print(
            f"export: {count} bands x {size} x {size} float32 ({array.nbytes / MB:.0f} MB), "
            f"{len(shards)} gzip shards, {compressed / MB:.1f} MB compressed, 256 x 256 patches"
        )

        middle = size // 2 - 128 + 64  # unaligned: four patches
        window = Window(middle, middle, 256, 256)
        expected = array[:, middle : middle + 256, middle : middle + 256]
        second = Window(middle + 512, middle + 256, 256, 256)

        ds, (opened, first) = fresh_window(proxy, url, options, window, expected)
        got2, t_win2, r_win2, b_win2 = measure(proxy, lambda: ds.read(window=second))
        assert np.array_equal(
            got2, array[:, middle + 256 : middle + 512, middle + 512 : middle + 768]
        )
        ds.close()
        print("\none 256 x 256 window in the middle, fresh dataset, WITHOUT persisted index:")
        print(row("open:", opened))
        print(row("window:", first))
        print(row("another window:", (t_win2, r_win2, b_win2)))
        print(f"  (the export's compressed shards: {compressed / MB:.2f} MB)")

        sidecar, *built = measure(
            proxy, lambda: tfrecord_io.build_index(url, storage_options=options)
        )
        print("\nbuild_index (every shard read once, the sidecar put):")
        print(row("build_index:", tuple(built)))
        print(f"  sidecar: {fs.size(sidecar.split('://', 1)[1]) / MB:.2f} MB")
        ds, (opened, first) = fresh_window(proxy, url, options, window, expected)
        assert ds._reader._indexes[0].saved, "the sidecar was not loaded"
        ds.close()
        print("one 256 x 256 window in the middle, fresh dataset, WITH persisted index:")
        print(row("open:", opened))
        print(row("window (+sidecar):", first))

        def whole(path: str, storage_options: dict[str, Any] | None) -> float:
            with tfrecord_io.open(path, storage_options=storage_options, cache_size=0) as d:
                start = time.perf_counter()
                mosaic = d.read()
                seconds = time.perf_counter() - start
            assert np.array_equal(mosaic, array[:, : mosaic.shape[1], : mosaic.shape[2]])
            return seconds

        uncompressed = sum((tfrecord_io.format.records.size_hint(f) or 0) for f in shards)
        t_local = whole(local, None)
        (t_remote, _, r_all, b_all) = measure(proxy, lambda: whole(url, options))
        print("\nwhole-export read (ds.read(), 2 threads), uncompressed records:")
        print(f"  local disk: {uncompressed / MB / t_local:7.1f} MB/s ({t_local:.2f} s)")
        print(
            f"  emulator:   {uncompressed / MB / t_remote:7.1f} MB/s ({t_remote:.2f} s, "
            f"{r_all} requests, {b_all / MB:.1f} MB received)"
        )
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
