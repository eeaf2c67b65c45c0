"""export(): any rasterio-readable raster streamed into an export, checked differentially."""

from __future__ import annotations

import os

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.windows import Window

import tfrecord_io
from tfrecord_io.errors import ExportExistsError, PatchesDroppedWarning

UTM = Affine(30.0, 0.0, 500000.0, 0.0, -30.0, 4200000.0)


def test_geotiff_export_reads_back_equal(tmp_path, tif) -> None:
    source = tif()
    tfrecord_io.export(source, tmp_path / "out", {"patchDimensions": [8, 8], "kernelSize": [4, 4]})
    with rasterio.open(source) as src, tfrecord_io.open(tmp_path / "out") as ours:
        np.testing.assert_array_equal(ours.read(), src.read())


def test_export_keeps_georeferencing(tmp_path, tif) -> None:
    source = tif()
    tfrecord_io.export(source, tmp_path / "out", patch_dimensions=[8, 8])
    with rasterio.open(source) as src, tfrecord_io.open(tmp_path / "out") as ours:
        assert (ours.crs, ours.transform, ours.bounds) == (src.crs, src.transform, src.bounds)


def test_window_reads_agree_with_geotiff(tmp_path, tif) -> None:
    source = tif()
    tfrecord_io.export(source, tmp_path / "out", patch_dimensions=[8, 8], kernel_size=[3, 3])
    window = Window(5, 3, 17, 11)
    with rasterio.open(source) as src, tfrecord_io.open(tmp_path / "out") as ours:
        np.testing.assert_array_equal(ours.read(window=window), src.read(window=window))


def test_band_descriptions_become_feature_names(tmp_path, tif) -> None:
    source = tif()
    tfrecord_io.export(source, tmp_path / "out")
    with tfrecord_io.open(tmp_path / "out") as ours:
        assert ours.descriptions == ("B2", "B3", "B4")


def test_prefix_defaults_to_folder_name(tmp_path, tif) -> None:
    source = tif()
    files = tfrecord_io.export(source, tmp_path / "landsat")
    assert [os.path.basename(f) for f in files] == ["landsat-00000.tfrecord.gz",
                                                      "landsat-mixer.json"]


def test_tiled_compressed_geotiff_exports(tmp_path, rng, tif) -> None:
    arr = rng.integers(0, 1000, (2, 40, 48)).astype(np.uint16)
    path = tif(arr, tiled=True, blockxsize=16, blockysize=16, compress="deflate")
    tfrecord_io.export(path, tmp_path / "out", patch_dimensions=[16, 8], kinds="int64")
    with tfrecord_io.open(tmp_path / "out") as ours:
        np.testing.assert_array_equal(ours.read(), arr)


def test_vrt_exports(tmp_path, tif) -> None:
    source = tif()
    from rasterio.vrt import WarpedVRT

    with rasterio.open(source) as src, WarpedVRT(src) as vrt:
        tfrecord_io.export(vrt, tmp_path / "out", patch_dimensions=[8, 8])
        want = vrt.read()
    with tfrecord_io.open(tmp_path / "out") as ours:
        np.testing.assert_array_equal(ours.read(), want)


def test_source_nodata_becomes_default_value(tmp_path, rng, tif) -> None:
    arr = rng.random((1, 8, 8), dtype=np.float32)
    arr[0, 1, 2] = -9999
    path = tif(arr, nodata=-9999)
    tfrecord_io.export(path, tmp_path / "out", default_value=-1)
    with tfrecord_io.open(tmp_path / "out") as ours:
        assert ours.read(1)[1, 2] == -1


def test_source_internal_mask_becomes_default_value(tmp_path, rng) -> None:
    arr = rng.random((1, 8, 8), dtype=np.float32)
    mask = np.full((8, 8), 255, np.uint8)
    mask[3, 4] = 0
    with (
        rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True),
        rasterio.open(tmp_path / "m.tif", "w", driver="GTiff", width=8, height=8, count=1,
                      dtype="float32", crs="EPSG:32610", transform=UTM) as dst,
    ):  # fmt: skip
        dst.write(arr)
        dst.write_mask(mask)
    tfrecord_io.export(tmp_path / "m.tif", tmp_path / "out", default_value=7)
    with tfrecord_io.open(tmp_path / "out") as ours:
        assert ours.read(1)[3, 4] == 7


def test_progress_reports_every_patch_row(tmp_path, tif) -> None:
    source = tif()
    calls = []
    tfrecord_io.export(source, tmp_path / "out", patch_dimensions=[8, 8],
                       progress=lambda done, total: calls.append((done, total)))
    assert calls == [(4, 12), (8, 12), (12, 12)]


class RowCounting:
    """A rasterio dataset wrapper that records the rows of every read."""

    def __init__(self, src) -> None:
        self.src, self.reads = src, []

    def __getattr__(self, name):
        return getattr(self.src, name)

    def read(self, *args, window=None, **kwargs):
        self.reads.append(int(window.height))
        return self.src.read(*args, window=window, **kwargs)


def test_export_reads_a_bounded_strip_at_a_time(tmp_path, tif) -> None:
    source = tif()
    with rasterio.open(source) as src:
        counting = RowCounting(src)
        tfrecord_io.export(counting, tmp_path / "out", patch_dimensions=[8, 4],
                           kernel_size=[4, 4])
    assert max(counting.reads) <= 4 + 4
    assert sum(counting.reads) == 24


def test_existing_destination_is_refused(tmp_path, tif) -> None:
    source = tif()
    tfrecord_io.export(source, tmp_path / "out")
    with pytest.raises(ExportExistsError):
        tfrecord_io.export(source, tmp_path / "out")


def test_overwrite_is_allowed_when_asked(tmp_path, tif) -> None:
    source = tif()
    tfrecord_io.export(source, tmp_path / "out")
    tfrecord_io.export(source, tmp_path / "out", overwrite=True, patch_dimensions=[8, 8])
    with tfrecord_io.open(tmp_path / "out") as ours:
        assert ours.mixer.total_patches == 12


def test_dropped_edges_warn(tmp_path, tif) -> None:
    source = tif()
    with pytest.warns(PatchesDroppedWarning, match="256 pixels"):
        tfrecord_io.export(source, tmp_path / "out", patch_dimensions=[8, 16])


def test_failed_export_leaves_nothing(tmp_path, tif) -> None:
    source = tif()
    def boom(done: int, total: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        tfrecord_io.export(source, tmp_path / "out", patch_dimensions=[8, 8], progress=boom)
    assert os.listdir(tmp_path) == []
