"""The table loaders: TableDataset (random access through a record index) and
IterableTableDataset, over TensorFlow-written tables, in spawn worker pools."""

from __future__ import annotations

import multiprocessing
import pickle
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import tfrecord_io
from tfrecord_io import IterableTableDataset, OptionError, TableDataset


@pytest.fixture
def table(tf_table: Callable[..., Any]) -> Any:
    """Every kind of column, 300 rows over three gzip files, written by TensorFlow."""
    return tf_table(rows=300, files=3)


def _row_key(row: dict[str, Any]) -> bytes:
    """A digest of a row's values (ints, floats, arrays, text and bytes)."""
    return pickle.dumps({k: np.asarray(v).tolist() for k, v in row.items()})


def _expected(table: Any) -> list[bytes]:
    data = tfrecord_io.open_table(list(map(str, table.paths))).to_numpy()
    return [_row_key({k: v[i] for k, v in data.items()}) for i in range(table.rows)]


# -- run in the spawned workers ----------------------------------------------------------


def _read_share(args: tuple[TableDataset, int, int]) -> list[tuple[int, bytes]]:
    dataset, worker, workers = args
    return [(i, _row_key(dataset[i])) for i in range(worker, len(dataset), workers)]


def _stream_share(args: tuple[list[str], int, int]) -> list[bytes]:
    paths, worker, workers = args
    loader = IterableTableDataset(paths, batch_size=16, worker_id=worker, num_workers=workers)
    return [_row_key(row) for row in loader]


# -- TableDataset --------------------------------------------------------------------------


def test_table_dataset_rows_equal_open_table_rows(table: Any) -> None:
    dataset = TableDataset(list(map(str, table.paths)))
    assert len(dataset) == table.rows == 300
    assert [_row_key(dataset[i]) for i in range(len(dataset))] == _expected(table)


def test_table_dataset_row_values_have_their_column_types(table: Any) -> None:
    row = TableDataset(list(map(str, table.paths)))[7]
    assert row["patch"].shape == (5, 5)
    assert row["patch"].dtype == np.float32
    assert row["profile"].shape == (3,)
    assert row["profile"].dtype == np.int64
    assert row["count"] == table.columns["count"][7]
    assert isinstance(row["count"], np.int64)
    assert row["landcover"] == table.columns["landcover"][7]
    assert row["blob"] == table.columns["blob"][7]
    np.testing.assert_array_equal(row["patch"], table.columns["patch"][7])


def test_table_dataset_random_order_and_negative_indexes(table: Any) -> None:
    dataset = TableDataset(list(map(str, table.paths)))
    expected = _expected(table)
    order = np.random.default_rng(3).permutation(len(dataset))
    assert [_row_key(dataset[int(i)]) for i in order] == [expected[i] for i in order]
    assert _row_key(dataset[-1]) == expected[-1]


def test_table_dataset_out_of_range_raises_index_error(table: Any) -> None:
    dataset = TableDataset(list(map(str, table.paths)))
    with pytest.raises(IndexError, match="300"):
        dataset[300]
    with pytest.raises(TypeError):
        dataset["0"]  # type: ignore[index]


def test_table_dataset_columns_option_selects_columns(table: Any) -> None:
    row = TableDataset(list(map(str, table.paths)), columns=["B4", "landcover"])[0]
    assert list(row) == ["B4", "landcover"]


def test_table_dataset_gives_every_row_once_across_spawned_workers(table: Any) -> None:
    dataset = TableDataset(list(map(str, table.paths)))
    dataset[250]  # an index built here is not pickled to the workers
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        shares = pool.map(_read_share, [(dataset, w, 2) for w in range(2)])
    seen = [item for share in shares for item in share]
    assert Counter(i for i, _ in seen) == Counter(range(300))
    expected = _expected(table)
    assert all(key == expected[i] for i, key in seen)


def test_table_dataset_pickles_without_open_indexes(table: Any) -> None:
    dataset = TableDataset(list(map(str, table.paths)))
    dataset[120]
    copy = pickle.loads(pickle.dumps(dataset))
    assert copy._indexes == {}
    assert _row_key(copy[120]) == _row_key(dataset[120])


# -- IterableTableDataset --------------------------------------------------------------------


def test_iterable_table_dataset_gives_every_row_once_across_spawned_workers(table: Any) -> None:
    paths = list(map(str, table.paths))
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        shares = pool.map(_stream_share, [(paths, w, 3) for w in range(3)])
    assert all(shares)
    assert Counter(key for share in shares for key in share) == Counter(_expected(table))


def test_iterable_table_dataset_one_worker_gives_rows_in_order(table: Any) -> None:
    loader = IterableTableDataset(list(map(str, table.paths)), batch_size=7)
    assert len(loader) == 300
    assert [_row_key(row) for row in loader] == _expected(table)


def test_iterable_table_dataset_refuses_a_bad_worker_number(table: Any) -> None:
    with pytest.raises(OptionError, match="worker_id"):
        IterableTableDataset(list(map(str, table.paths)), worker_id=2, num_workers=2)


def test_table_dataset_random_reads_start_from_close_seek_points(tf_table: Any) -> None:
    info = tf_table(rows=400)
    dataset = TableDataset(str(info.paths[0]), index_spacing=4096)
    expected = _expected(info)
    order = np.random.default_rng(5).permutation(400)
    assert [_row_key(dataset[int(i)]) for i in order] == [expected[i] for i in order]
    index = dataset._indexes[0]
    assert len(index._points) > 10  # a seek point every 4 KiB of the inflated stream
    gaps = np.diff([p.uncompressed for p in index._points])
    assert gaps.max() <= 4096 + 1024  # pieces are cut at the spacing, give or take a record


def test_table_dataset_refuses_a_zero_index_spacing(table: Any) -> None:
    with pytest.raises(OptionError, match="index_spacing"):
        TableDataset(list(map(str, table.paths)), index_spacing=0)
