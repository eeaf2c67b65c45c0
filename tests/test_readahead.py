"""The pixel function's read-ahead: in-order reads answered from one pass over the export."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import rasterio
from rasterio.windows import Window

import tfrecord_io
from tfrecord_io.gdal.readahead import DecimatedReads, RowStream
from tfrecord_io.gdal.vrt import gdal_pythonpath

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "sample"


def _strips(ds, height: int):
    for row in range(0, ds.height, height):
        yield Window(0, row, ds.width, min(height, ds.height - row))


def test_in_order_strips_of_every_band_equal_windowed_reads():
    with tfrecord_io.open(SAMPLE) as ds:
        stream = RowStream(ds)
        expected = ds.read()
        for window in _strips(ds, 37):  # strips that straddle rows of patches
            for band in ds.indexes:
                out = np.empty((int(window.height), int(window.width)), ds.dtypes[0])
                assert stream.read(band, window, out)
                np.testing.assert_array_equal(out, expected[band - 1][window.toslices()])
        stream.close()


def test_in_order_blocks_are_served_without_building_the_record_index():
    with tfrecord_io.open(SAMPLE) as ds:
        stream = RowStream(ds)
        for _, window in ds.block_windows(1):
            out = np.empty((int(window.height), int(window.width)), ds.dtypes[0])
            assert stream.read(1, window, out)
        assert ds._reader._indexed_records() == 0
        stream.close()


def test_a_read_that_does_not_start_at_the_top_left_is_left_to_the_index():
    with tfrecord_io.open(SAMPLE) as ds:
        stream = RowStream(ds)
        out = np.empty((10, 10), ds.dtypes[0])
        assert not stream.read(1, Window(5, 0, 10, 10), out)


def test_a_decimated_read_is_left_to_the_index():
    with tfrecord_io.open(SAMPLE) as ds:
        stream = RowStream(ds)
        out = np.empty((10, 10), ds.dtypes[0])
        assert not stream.read(1, Window(0, 0, 20, 20), out)


def test_a_read_behind_the_rows_held_is_left_to_the_index():
    with tfrecord_io.open(SAMPLE) as ds:
        stream = RowStream(ds)
        height = ds.block_shapes[0][0]
        out = np.empty((height, ds.width), ds.dtypes[0])
        for window in _strips(ds, height):
            assert stream.read(1, window, out[: int(window.height)])
        assert not stream.read(1, Window(0, height, ds.width, height), out)
        stream.close()


def test_a_read_far_below_the_rows_held_is_left_to_the_index():
    with tfrecord_io.open(SAMPLE) as ds:
        stream = RowStream(ds)
        height = ds.block_shapes[0][0]
        out = np.empty((height, 16), ds.dtypes[0])
        assert stream.read(1, Window(0, 0, 16, height), out)
        assert not stream.read(1, Window(0, ds.height - height, 16, height), out)
        stream.close()


def test_gdal_translate_of_the_vrt_equals_the_export(tmp_path: Path):
    vrt = tfrecord_io.build_vrt(SAMPLE, tmp_path / "sample.vrt")
    dst = tmp_path / "out.tif"
    env = {
        **tfrecord_io.gdal_env(),
        "PYTHONPATH": gdal_pythonpath(tmp_path / "gdal-python"),
        "PATH": "/usr/bin:/bin",
    }
    subprocess.run(
        ["gdal_translate", "-q", "-co", "TILED=YES", vrt, str(dst)],
        env=env,
        check=True,
        capture_output=True,
    )
    with rasterio.open(dst) as out, tfrecord_io.open(SAMPLE) as ds:
        np.testing.assert_array_equal(out.read(), ds.read())


def test_decimated_reads_of_each_band_equal_the_library_read():
    with tfrecord_io.open(SAMPLE) as ds:
        reads = DecimatedReads(ds)
        window = Window(0, 0, ds.width, ds.height)
        expected = ds.read(out_shape=(ds.count, 20, 30))
        for band in ds.indexes:
            out = np.empty((20, 30), ds.dtypes[0])
            reads.read(band, window, out)
            np.testing.assert_array_equal(out, expected[band - 1])


def test_decimated_reads_of_another_window_are_read_again():
    with tfrecord_io.open(SAMPLE) as ds:
        reads = DecimatedReads(ds)
        out = np.empty((10, 10), ds.dtypes[0])
        reads.read(1, Window(0, 0, 40, 40), out)
        reads.read(1, Window(40, 20, 40, 40), out)
        expected = ds.read(1, window=Window(40, 20, 40, 40), out_shape=(10, 10))
        np.testing.assert_array_equal(out, expected)


def test_streaming_with_shards_read_ahead_gives_every_patch_in_order():
    with tfrecord_io.open(SAMPLE) as ds:
        expected = ds.read()
        reader = ds._reader
        indexes = [index for index, _ in reader.iter_tiles(prefetch=True)]
        assert indexes == list(range(reader.grid.total_patches))
        strips = np.concatenate([strip for _, strip in ds.iter_patch_rows()], axis=1)
        np.testing.assert_array_equal(strips, expected)


def test_a_mispredicted_shard_start_falls_back_to_reading_in_order():
    with tfrecord_io.open(SAMPLE) as ds:
        expected = ds.read()
        reader = ds._reader
        starts = reader.stream.predict_starts()
        assert starts is not None
        wrong = [starts[0], starts[1] + 1, *starts[2:]]
        reader.stream.predict_starts = lambda: wrong  # as if the gzip trailer had misled it
        strips = np.concatenate([strip for _, strip in ds.iter_patch_rows()], axis=1)
        np.testing.assert_array_equal(strips, expected)
