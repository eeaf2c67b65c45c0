"""Read-only probes for bench_translate.py: how the library's translate reads an export.

``python translate_probe.py MODE EXPORT`` reads the whole mosaic and prints ``{"call": s}``:

- ``whole``    ``ds.read()`` of the whole mosaic (the reader's streaming path, 2 threads);
- ``strips``   one row of patches at a time, as ``translate()`` reads (window reads, default
  256 MiB patch cache);
- ``strips0``  the same with ``cache_size=0``.
"""

from __future__ import annotations

import json
import sys
import time

from rasterio.windows import Window

import tfrecord_io


def main() -> None:
    mode, src = sys.argv[1], sys.argv[2]
    t0 = time.perf_counter()
    if mode == "whole":
        with tfrecord_io.open(src) as ds:
            ds.read()
    elif mode in ("strips", "strips0"):
        cache = 0 if mode == "strips0" else 256 << 20
        with tfrecord_io.open(src, cache_size=cache) as ds:
            height = ds.block_shapes[0][0]
            for row in range(0, ds.height, height):
                ds.read(window=Window(0, row, ds.width, min(height, ds.height - row)))
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    print(json.dumps({"call": time.perf_counter() - t0}))


if __name__ == "__main__":
    main()
