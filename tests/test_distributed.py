"""Exports on a dask.distributed cluster, and exports of xarray objects.

One real ``LocalCluster`` (two worker processes, one thread each) serves the module. The
reference for every distributed export is the serial export of the same source, compared file
by file, byte for byte; the reference for an xarray source is the export of the same pixels as
a GeoTIFF.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import pytest
import rasterio
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

import tfrecord_io
from tests.conftest import UTM
from tfrecord_io.dask.shardplan import fixed_shards, sized_shards
from tfrecord_io.errors import OptionError, RecordCountError
from tfrecord_io.format.shards import ShardSink

ENGINE = "eetfrecord"
CRS = "EPSG:32610"
PATCH = [16, 16]


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    """A two-process LocalCluster, started once for the module and closed at its end."""
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


def files_of(folder: Path) -> dict[str, bytes]:
    """Every file of an export folder, by name."""
    return {name: (folder / name).read_bytes() for name in sorted(os.listdir(folder))}


def assert_same_export(a: Path, b: Path) -> None:
    """The two folders hold the same files with the same bytes."""
    left, right = files_of(a), files_of(b)
    assert list(left) == list(right)
    for name in left:
        assert left[name] == right[name], f"{name} differs"


def int_raster(count: int, height: int, width: int) -> np.ndarray:
    """Integers of every magnitude up to 2**40, so that their varints differ in length."""
    rng = np.random.default_rng(1)
    bits = rng.integers(0, 41, size=(count, height, width))
    return (rng.random((count, height, width)) * 2.0**bits).astype(np.int64)


def serial_and_distributed(
    tmp_path: Path, client: Any, src: Any, **options: Any
) -> tuple[Path, Path]:
    """Export ``src`` serially and on the cluster, with the same prefix; return both folders."""
    serial, distributed = tmp_path / "serial" / "exp", tmp_path / "distributed" / "exp"
    serial.parent.mkdir()
    distributed.parent.mkdir()
    tfrecord_io.export(src, serial, **options)
    tfrecord_io.export(src, distributed, client=client, **options)
    return serial, distributed


CASES = {
    # 20 patches of 20 x 20 tiles (kernel 4), four records a shard: five shards.
    "float-gzip": ("float", {"compressed": True, "max_file_size": 4 * 3 * 20 * 20 * 4 + 400}),
    "float-raw": ("float", {"compressed": False, "max_file_size": 4 * 3 * 20 * 20 * 4 + 400}),
    # Records of differing sizes: shard boundaries from the sizing pass.
    "int64-gzip": ("int64", {"compressed": True, "max_file_size": 12_000}),
    "int64-raw": ("int64", {"compressed": False, "max_file_size": 12_000}),
    # One record per pixel: shard boundaries fall inside patches.
    # One raw uint8 value per band: one size, as floats have.
    "bytes-gzip": ("bytes", {"compressed": True, "max_file_size": 4 * 3 * (20 * 20 + 30)}),
    "float-sequence": ("float", {"sequence_data": True, "max_file_size": 30_000}),
    "int64-sequence": ("int64", {"sequence_data": True, "max_file_size": 30_000}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_distributed_export_is_the_serial_export_byte_for_byte(
    tmp_path: Path,
    client: Any,
    raster: Callable[..., np.ndarray],
    tif: Callable[..., Path],
    case: str,
) -> None:
    kind, options = CASES[case]
    array = {
        "float": lambda: raster(3, 64, 80),
        "int64": lambda: int_raster(3, 64, 80),
        "bytes": lambda: (raster(3, 64, 80) * 255).astype(np.uint8),
    }[kind]()
    path = tif(array)
    serial, distributed = serial_and_distributed(
        tmp_path, client, path, kinds=kind, patch_dimensions=PATCH, kernel_size=[4, 4], **options
    )
    assert len(os.listdir(serial)) >= 4  # several shards and the mixer
    assert_same_export(serial, distributed)


def test_distributed_shards_of_several_deflate_chunks_are_the_serial_bytes(
    tmp_path: Path, client: Any, raster: Callable[..., np.ndarray], tif: Callable[..., Path]
) -> None:
    # 48 records of 3 x 128 x 128 floats (197 kB) in 6 MiB shards: each crosses a 4 MiB chunk.
    path = tif(raster(3, 768, 1024))
    serial, distributed = serial_and_distributed(
        tmp_path, client, path, patch_dimensions=[128, 128], max_file_size=6 << 20
    )
    assert len(os.listdir(serial)) == 3
    assert_same_export(serial, distributed)


def test_distributed_export_drops_the_same_masked_patches(
    tmp_path: Path, client: Any, raster: Callable[..., np.ndarray], tif: Callable[..., Path]
) -> None:
    array = raster(2, 64, 80)
    array[:, :28, :40] = -1.0  # over half of four patches masked
    path = tif(array, nodata=-1.0)
    with (
        pytest.warns(tfrecord_io.PatchesDroppedWarning, match="4 of 20 patches"),
        pytest.warns(tfrecord_io.NoMixerWarning),
    ):
        serial, distributed = serial_and_distributed(
            tmp_path, client, path, patch_dimensions=PATCH, masked_threshold=0.5, max_file_size=9000
        )
    assert_same_export(serial, distributed)


def test_tensorflow_reads_every_record_of_a_distributed_gzip_export(
    tmp_path: Path, client: Any, raster: Callable[..., np.ndarray], tif: Callable[..., Path]
) -> None:
    import tensorflow as tf

    path = tif(raster(3, 64, 80))
    files = tfrecord_io.export(
        path, tmp_path / "exp", client=client, patch_dimensions=PATCH, max_file_size=20_000
    )
    shards = [f for f in files if f.endswith(".tfrecord.gz")]
    records = tf.data.TFRecordDataset(shards, compression_type="GZIP")
    assert len(shards) > 1
    assert sum(1 for _ in records) == 20


def failing_rows(array: np.ndarray) -> xr.DataArray:
    """A dask-backed DataArray whose third block of rows raises when computed."""

    def compute(block: np.ndarray, block_info: Any = None) -> np.ndarray:
        if block_info[0]["chunk-location"][1] == 2:
            raise OSError("the disk holding rows 32-47 went away")
        return block

    data = da.from_array(array, chunks=(array.shape[0], 16, array.shape[2]))
    return georeferenced(data.map_blocks(compute, dtype=array.dtype))


def georeferenced(data: Any, names: tuple[str, ...] = ("B2", "B3", "B4")) -> xr.DataArray:
    """A ``(band, y, x)`` DataArray on the tests' UTM grid, with a rioxarray-style spatial_ref."""
    crs = rasterio.crs.CRS.from_user_input(CRS)
    spatial_ref = xr.Variable(
        (), 0, attrs={"crs_wkt": crs.to_wkt(), "GeoTransform": " ".join(map(str, UTM.to_gdal()))}
    )
    return xr.DataArray(
        data,
        dims=("band", "y", "x"),
        coords={"band": list(names[: data.shape[0]]), "spatial_ref": spatial_ref},
        attrs={"grid_mapping": "spatial_ref"},
    )


@pytest.mark.parametrize("kind", ["float", "int64"])  # int64 fails in the sizing pass
def test_a_failing_worker_leaves_nothing_in_the_destination(
    tmp_path: Path, client: Any, raster: Callable[..., np.ndarray], kind: str
) -> None:
    array = raster(3, 64, 80) if kind == "float" else int_raster(3, 64, 80)
    with pytest.raises(OSError, match="went away"):
        tfrecord_io.export(
            failing_rows(array),
            tmp_path / "exp",
            client=client,
            kinds=kind,
            patch_dimensions=PATCH,
            max_file_size=5000,
        )
    assert os.listdir(tmp_path) == []


def test_a_failing_worker_leaves_an_existing_folder_as_it_was(
    tmp_path: Path, client: Any, raster: Callable[..., np.ndarray]
) -> None:
    folder = tmp_path / "exports"
    folder.mkdir()
    (folder / "other-mixer.json").write_text("{}")
    source = failing_rows(raster(3, 64, 80))
    with pytest.raises(OSError, match="went away"):
        tfrecord_io.export(
            source,
            folder,
            client=client,
            file_name_prefix="exp",
            patch_dimensions=PATCH,
            max_file_size=5000,
        )
    assert os.listdir(folder) == ["other-mixer.json"]


@pytest.mark.parametrize("backing", ["numpy", "dask"])
def test_dataarray_export_is_the_geotiff_export(
    tmp_path: Path, raster: Callable[..., np.ndarray], tif: Callable[..., Path], backing: str
) -> None:
    array = raster(3, 64, 80)
    path = tif(array)
    data = array if backing == "numpy" else da.from_array(array, chunks=(3, 24, 40))
    options = {"patch_dimensions": PATCH, "kernel_size": [4, 4], "max_file_size": 20_000}
    tfrecord_io.export(path, tmp_path / "tif", file_name_prefix="exp", **options)
    tfrecord_io.export(georeferenced(data), tmp_path / "xr", file_name_prefix="exp", **options)
    assert_same_export(tmp_path / "tif", tmp_path / "xr")


def test_rioxarray_open_rasterio_exports_as_the_geotiff(
    tmp_path: Path, raster: Callable[..., np.ndarray], tif: Callable[..., Path]
) -> None:
    import rioxarray

    path = tif(raster(3, 64, 80))
    tfrecord_io.export(path, tmp_path / "tif", file_name_prefix="exp", patch_dimensions=PATCH)
    with rioxarray.open_rasterio(path, chunks={"y": 16}) as data:  # band names from long_name
        tfrecord_io.export(data, tmp_path / "xr", file_name_prefix="exp", patch_dimensions=PATCH)
    assert_same_export(tmp_path / "tif", tmp_path / "xr")


def test_dataset_exports_its_variables_as_bands(
    tmp_path: Path, raster: Callable[..., np.ndarray], tif: Callable[..., Path]
) -> None:
    array = raster(3, 64, 80)
    path = tif(array)
    dataset = georeferenced(array).to_dataset("band")
    tfrecord_io.export(path, tmp_path / "tif", file_name_prefix="exp", patch_dimensions=PATCH)
    tfrecord_io.export(dataset, tmp_path / "xr", file_name_prefix="exp", patch_dimensions=PATCH)
    assert_same_export(tmp_path / "tif", tmp_path / "xr")


def test_distributed_dask_dataarray_export_is_the_serial_export(
    tmp_path: Path, client: Any
) -> None:
    data = georeferenced(da.from_array(int_raster(3, 64, 80), chunks=(3, 20, 80)))
    serial, distributed = serial_and_distributed(
        tmp_path, client, data, kinds="int64", patch_dimensions=PATCH, kernel_size=[3, 3],
        max_file_size=30_000,
    )  # fmt: skip
    assert_same_export(serial, distributed)


@pytest.mark.parametrize("chunks", [None, {}], ids=["lazy", "dask"])
def test_engine_output_exports_again_byte_for_byte(
    tmp_path: Path, client: Any, export: Callable[..., Path], raster: Callable[..., np.ndarray],
    chunks: dict[str, int] | None,
) -> None:  # fmt: skip
    options = {"patch_dimensions": PATCH, "kernel_size": [4, 4], "max_file_size": 20_000}
    original = export(raster(3, 64, 80), descriptions=("B2", "B3", "B4"), **options)
    with xr.open_dataset(original, engine=ENGINE, kernel_size=[4, 4], chunks=chunks) as ds:
        tfrecord_io.export(ds, tmp_path / "exp", client=client, **options)
    assert_same_export(original, tmp_path / "exp")


def test_dataarray_without_crs_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    data = xr.DataArray(np.zeros((1, 32, 32), np.float32), dims=("band", "y", "x"))
    with pytest.raises(OptionError, match="spatial_ref"):
        tfrecord_io.export(data, tmp_path / "exp", patch_dimensions=PATCH)
    assert os.listdir(tmp_path) == []


def test_open_dataset_given_to_a_distributed_export_needs_a_path(
    tmp_path: Path, client: Any
) -> None:
    with rasterio.MemoryFile() as memory, memory.open(
        driver="GTiff", width=32, height=32, count=1, dtype="float32", crs=CRS, transform=UTM
    ) as dataset, pytest.raises(OptionError, match="path"):  # fmt: skip
        tfrecord_io.export(dataset, tmp_path / "exp", client=client, patch_dimensions=PATCH)


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 400), min_size=0, max_size=60),
    max_file_size=st.integers(420, 2000),
)
def test_sized_shards_split_records_where_the_shard_sink_does(
    tmp_path_factory: pytest.TempPathFactory, sizes: list[int], max_file_size: int
) -> None:
    folder = tmp_path_factory.mktemp("sink")
    sink = ShardSink(
        lambda name: str(folder / name), "s", compressed=False, max_file_size=max_file_size
    )
    for size in sizes:
        sink.write(b"x" * size)
    sink.close()
    framed = np.array([size + 16 for size in sizes], dtype=np.int64)  # 16 bytes of framing
    shards = sized_shards(framed, max_file_size)
    assert [len(r) for r in shards] == (sink.counts if sizes else [0])


def test_fixed_shards_cover_every_record_once_in_order() -> None:
    tasks = fixed_shards(total_patches=7, records_per_patch=16, framed_size=100, max_file_size=1000)
    records = [r for t in tasks for r in t.records]
    assert records == list(range(7 * 16))
    assert all(t.patches.start * 16 == t.first_record for t in tasks)


def plan_of_32_by_32(tmp_path: Path) -> Any:
    """The plan of a one-band float32 32 x 32 export in 16 x 16 patches (nothing written)."""
    with tfrecord_io.open(
        tmp_path / "plan", "w", width=32, height=32, count=1, crs=CRS, transform=UTM,
        patch_dimensions=PATCH,
    ) as writer:  # fmt: skip
        plan = writer.plan()
        writer.abort()
    return plan


def test_a_shard_refuses_records_its_plan_did_not_count(
    tmp_path: Path, raster: Callable[..., np.ndarray]
) -> None:
    from tfrecord_io.dask.shardplan import ShardTask
    from tfrecord_io.dask.tasks import write_shard
    from tfrecord_io.xarray.source import xarray_source

    rows, _ = xarray_source(georeferenced(raster(1, 32, 32)))
    plan = plan_of_32_by_32(tmp_path)
    task = ShardTask(0, range(0, 2), 0, range(0, 3))  # two patches give two records, not three
    with pytest.raises(RecordCountError, match="must not change"):
        write_shard(rows, plan, task, str(tmp_path / "shard.tfrecord"))
    assert not (tmp_path / "shard.tfrecord").exists()


def test_a_computed_band_exports_under_its_name_on_the_engines_grid(
    tmp_path: Path, export: Callable[..., Path], raster: Callable[..., np.ndarray]
) -> None:
    original = export(raster(2, 64, 80), descriptions=("B4", "B5"), patch_dimensions=PATCH)
    with xr.open_dataset(original, engine=ENGINE, chunks={}) as ds:
        ndvi = ((ds.B5 - ds.B4) / (ds.B5 + ds.B4)).rename("ndvi")
        tfrecord_io.export(ndvi, tmp_path / "ndvi", patch_dimensions=PATCH)
        expected = ndvi.values
    with tfrecord_io.open(tmp_path / "ndvi") as written, tfrecord_io.open(original) as source:
        assert written.descriptions == ("ndvi",)
        assert written.transform == source.transform
        np.testing.assert_array_equal(written.read(1), expected)


def test_distributed_progress_reaches_every_patch(
    tmp_path: Path, client: Any, raster: Callable[..., np.ndarray], tif: Callable[..., Path]
) -> None:
    calls: list[tuple[int, int]] = []
    tfrecord_io.export(
        tif(raster(3, 64, 80)),
        tmp_path / "exp",
        client=client,
        progress=lambda done, total: calls.append((done, total)),
        patch_dimensions=PATCH,
        max_file_size=20_000,
    )
    assert len(calls) > 1
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)
    assert calls[-1] == (20, 20)


def test_crs_found_only_by_rioxarray_is_used(
    tmp_path: Path, raster: Callable[..., np.ndarray], tif: Callable[..., Path]
) -> None:
    import rioxarray  # noqa: F401  (registers .rio)

    array = raster(3, 64, 80)
    x = UTM.c + UTM.a * (np.arange(80) + 0.5)
    y = UTM.f + UTM.e * (np.arange(64) + 0.5)
    data = xr.DataArray(
        array,
        dims=("band", "y", "x"),
        coords={"band": ["B2", "B3", "B4"], "x": x, "y": y},
        attrs={"crs": CRS},  # no grid mapping coordinate: only rioxarray reads this
    )
    tfrecord_io.export(tif(array), tmp_path / "tif", file_name_prefix="exp", patch_dimensions=PATCH)
    tfrecord_io.export(data, tmp_path / "xr", file_name_prefix="exp", patch_dimensions=PATCH)
    assert_same_export(tmp_path / "tif", tmp_path / "xr")


def test_a_shard_copied_from_a_short_piece_is_refused(tmp_path: Path) -> None:
    from tfrecord_io.dask.tasks import copy_shard

    piece = tmp_path / "piece"
    piece.write_bytes(b"x" * 250)  # two payloads of 100 bytes, and half of a third
    plan = plan_of_32_by_32(tmp_path)
    spans = [(0, 0, np.array([100, 100, 100], dtype=np.int64))]
    with pytest.raises(RecordCountError, match="counted 3"):
        copy_shard([str(piece)], spans, plan, str(tmp_path / "shard.tfrecord.gz"))
    assert not (tmp_path / "shard.tfrecord.gz").exists()


def test_shards_are_written_on_both_workers(
    tmp_path: Path, client: Any, raster: Callable[..., np.ndarray], tif: Callable[..., Path]
) -> None:
    from distributed import get_task_stream

    path = tif(raster(3, 64, 80))
    with get_task_stream(client) as stream:
        tfrecord_io.export(
            path, tmp_path / "exp", client=client, patch_dimensions=PATCH, max_file_size=5000
        )
    shard_tasks = [t for t in stream.data if t["key"].startswith("write_shard")]
    assert len(shard_tasks) == 20  # one record (patch) per shard
    assert len({t["worker"] for t in shard_tasks}) == 2
