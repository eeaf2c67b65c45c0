"""Read Earth Engine table exports: :func:`open_table` and :class:`TableExport`.

Opening reads the first records only (up to ``sample``) to infer the schema; :func:`len` counts
the records once, without decoding them. :meth:`TableExport.iter_batches` and
:meth:`TableExport.to_numpy` stream every file once, decoding the records into columns as they
are inflated (:mod:`~tfrecord_io.table.sink`: one batch of columns at a time, or all of them
allocated once); every other ``to_*`` method and the GDAL vector driver build on them. numpy is
the only dependency here; pandas, pyarrow and geopandas are imported by the ``to_*`` methods
that need them (the ``tfrecord_io[table]`` extra).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from tfrecord_io.errors import ExportKindError, OptionError, SchemaError, TableError
from tfrecord_io.format import example as wire
from tfrecord_io.format.kinds import PathsLike, file_records, first_record, resolve_table_files
from tfrecord_io.format.storage import StorageOptions, Store, as_store
from tfrecord_io.table import arrow
from tfrecord_io.table.decode import BatchDecoder
from tfrecord_io.table.files import image_export_reason
from tfrecord_io.table.frames import iter_payload_runs
from tfrecord_io.table.schema import Schema, infer_schema
from tfrecord_io.table.sink import ColumnSink, rows_hint

__all__ = ["TableExport", "open_table", "read_table"]

DEFAULT_BATCH = 65536


class TableExport:
    """An Earth Engine table export (one or more files) opened for reading.

    Made by :func:`open_table`, which finds the files and infers the schema.

    Attributes
    ----------
    files : tuple of str
        The files, in reading order.
    schema : Schema
        The columns read: name, kind, dtype and shape of each.
    verify : bool
        Check every record's CRC-32C.
    store : Store
        Where the files are read from: fsspec's storage options for URLs.
    """

    def __init__(
        self, files: Sequence[str], schema: Schema, verify: bool = True, store: Store | None = None
    ) -> None:
        self.files = tuple(files)
        self.schema = schema
        self.verify = verify
        self.store = store if store is not None else as_store(None)
        self._count: int | None = None
        self._decoder = BatchDecoder(schema)

    def __repr__(self) -> str:
        names = ", ".join(self.schema.names[:6]) + (", ..." if len(self.schema) > 6 else "")
        return f"<TableExport {len(self.files)} file(s), columns: {names}>"

    def __enter__(self) -> TableExport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Nothing stays open between calls; kept for ``with`` blocks."""

    def __len__(self) -> int:
        """Count the rows (the records of every file), once; the count is kept."""
        if self._count is None:
            self._count = sum(self.count_rows(path) for path in self.files)
        return self._count

    def count_rows(self, path: str) -> int:
        """Count the records of one of the files without decoding them."""
        return sum(len(run) for run in iter_payload_runs(path, False, self.store))

    def iter_batches(
        self, size: int = DEFAULT_BATCH, *, part: tuple[int, int] = (0, 1)
    ) -> Iterator[dict[str, np.ndarray]]:
        """Yield the rows in batches of ``size`` (the last may be shorter), in bounded memory.

        Parameters
        ----------
        size : int
            Rows per batch. A batch may span two files.
        part : tuple of int
            ``(worker, workers)``: yield only batches ``worker, worker + workers, ...``, the
            others being framed but not decoded (a loader's share of the table).

        Yields
        ------
        dict of str to numpy.ndarray
            One array per column, in schema order, shaped ``(rows, *shape)``: float32, int64,
            or object arrays of ``str`` / ``bytes``; a ragged column is a 1-D object array of
            1-D arrays.

        Raises
        ------
        SchemaError
            A row lacks a column or holds it with another kind or length; the message names
            the file, the row and the column.
        RecordError
            A record is corrupt or truncated.
        """
        if size < 1:
            raise OptionError(f"the batch size must be at least 1, not {size}")
        worker, workers = part
        if workers < 1 or not 0 <= worker < workers:
            raise OptionError(f"part must be (worker, workers) with 0 <= worker < workers: {part}")
        return self._decoded(size, None, part)

    def _decoded(
        self,
        size: int | None,
        rows: int | None,
        part: tuple[int, int] = (0, 1),
        block: int = DEFAULT_BATCH,
    ) -> Iterator[dict[str, np.ndarray]]:
        """Decode the rows straight into arrays: batches of ``size`` rows, or all in one.

        With ``size`` None every row goes into one set of columns: ``rows``, when given, is the
        expected count, allocated at once; beyond it rows fill blocks of ``block`` rows, joined
        at the end. Batches outside ``part`` are framed, not decoded.
        Once every file has been framed, the row count is kept for :func:`len`.
        """
        worker, workers = part
        number = held = count = 0
        sink: ColumnSink | None = None
        for path in self.files:
            row = 0
            for run in iter_payload_runs(path, self.verify, self.store):
                while len(run):
                    ours = number % workers == worker
                    room = size - held if size else len(run)
                    if ours:
                        if sink is None:
                            sink = ColumnSink(self.schema, size or rows, size or block)
                        room = min(room, sink.space())
                    take = run[:room]
                    run = run[len(take) :]
                    if sink is not None:
                        self._decoder.decode([take], _rows_of(path, row), sink.take(len(take)))
                    held += len(take)
                    row += len(take)
                    if held == size:
                        if sink is not None:
                            yield sink.finish()
                        sink, held, number = None, 0, number + 1
            count += row
        self._count = count
        if sink is not None:
            yield sink.finish()

    def to_numpy(self, batch_size: int = DEFAULT_BATCH) -> dict[str, np.ndarray]:
        """Return every column as one array shaped ``(rows, *shape)``, ready for training.

        Rows are decoded straight into the arrays returned, allocated once when the row count
        is known or can be told from the files' sizes (a table whose records all have one
        length, as Earth Engine writes numbers and patches); otherwise they are filled in
        blocks of ``batch_size`` rows, joined once at the end.

        Parameters
        ----------
        batch_size : int
            Rows per block when the row count cannot be told beforehand.

        Returns
        -------
        dict of str to numpy.ndarray
            In schema order; strings and bytes as object arrays.
        """
        if batch_size < 1:
            raise OptionError(f"the batch size must be at least 1, not {batch_size}")
        rows = self._count
        if rows is None:
            hints = [rows_hint(path) for path in self.files]
            rows = None if None in hints else sum(h or 0 for h in hints)
        for columns in self._decoded(None, rows, block=batch_size):
            return columns
        return ColumnSink(self.schema, 0, 1).finish()  # no row: empty columns

    def to_arrow(self) -> Any:
        """Return a ``pyarrow.Table``; array columns are ``fixed_shape_tensor`` columns.

        Strings are ``string``, bytes ``binary``; array columns of strings are fixed-size lists,
        ragged columns lists.

        Raises
        ------
        MissingExtraError
            pyarrow is not installed.
        """
        return arrow.to_arrow(self.schema, self.to_numpy())

    def to_pandas(self) -> Any:
        """Return a ``pandas.DataFrame``; each array cell is a numpy array of the column's shape.

        Raises
        ------
        MissingExtraError
            pandas is not installed.
        """
        return arrow.to_pandas(self.schema, self.to_numpy())

    def to_geopandas(
        self, x: str = "longitude", y: str = "latitude", crs: Any = "EPSG:4326"
    ) -> Any:
        """Return a ``geopandas.GeoDataFrame`` with points made from the columns ``x`` and ``y``.

        Parameters
        ----------
        x, y : str
            The coordinate columns (the names ``earthengine upload table`` uses by default).
        crs : str or pyproj.CRS
            The coordinates' reference system.

        Raises
        ------
        SchemaError
            A coordinate column is missing or not a scalar number column.
        MissingExtraError
            geopandas is not installed.
        """
        self.check_point_columns(x, y)
        return arrow.to_geopandas(self.schema, self.to_numpy(), x, y, crs)

    def check_point_columns(self, x: str, y: str) -> None:
        """Check that ``x`` and ``y`` are scalar number columns that can make points.

        Raises
        ------
        SchemaError
            A coordinate column is missing or not a scalar number column.
        """
        for name in (x, y):
            if name not in self.schema:
                raise SchemaError(
                    f"'{self.files[0]}': no column '{name}' to make points from. Columns: "
                    f"{', '.join(self.schema.names)}. Pass x= and y=."
                )
            column = self.schema[name]
            if column.shape != () or column.kind == "bytes":
                raise SchemaError(
                    f"'{self.files[0]}': column '{name}' is not a scalar number column "
                    f"({column.dtype}, shape {column.shape}): it cannot hold coordinates"
                )


def _rows_of(path: str, first: int) -> Callable[[int], str]:
    """Name row ``i`` of a batch that starts at row ``first`` of ``path``, for errors."""
    return lambda i: f"'{path}', row {first + i}"


def open_table(
    paths: PathsLike,
    shapes: Mapping[str, Sequence[int]] | None = None,
    columns: Sequence[str] | None = None,
    *,
    ragged: bool | Sequence[str] = False,
    binary: Sequence[str] = (),
    verify: bool = True,
    sample: int = 64,
    storage_options: StorageOptions = None,
) -> TableExport:
    """Open an Earth Engine table export (``Export.table`` with ``fileFormat: 'TFRecord'``).

    Only the first records are read here, to infer the schema.

    Parameters
    ----------
    paths : path-like or sequence of path-like
        One file, a list of files, a glob or a folder of table files; several files are read
        one after the other as one table (users split large tables over several exports).
        Local paths or URLs (``gs://bucket/tables/``, ``s3://bucket/t-*.tfrecord.gz``).
    shapes : mapping of str to tuple of int, optional
        Cell shape of array columns, e.g. ``{"B4": (33, 33)}``; one dimension may be -1. When
        not given, ``k*k`` values become ``(k, k)`` and other lengths stay 1-D.
    columns : sequence of str, optional
        The columns to read, in this order; all of them otherwise.
    ragged : bool or sequence of str
        Read array columns (those longer than one value in the first row and not named in
        ``shapes``), or the columns named, as 1-D arrays of varying length, instead of raising
        :class:`SchemaError` when their length varies between rows.
    binary : sequence of str
        ``bytes_list`` columns to keep as ``bytes`` (others become ``str`` when valid UTF-8).
    verify : bool
        Check every record's CRC-32C.
    sample : int
        How many first records the schema is inferred from.
    storage_options : dict, optional
        fsspec options of URLs.

    Returns
    -------
    TableExport

    Raises
    ------
    MissingShardError
        A path does not exist, or a folder or glob holds no TFRecord file.
    ExportKindError
        The path is an image export (open it with :func:`tfrecord_io.open`).
    SchemaError
        A column or shape given does not fit the table.
    TableError
        The table holds no record.
    """
    if sample < 1:
        raise OptionError(f"sample must be at least 1, not {sample}")
    store = as_store(storage_options)
    files = resolve_table_files(paths, store)
    payload = first_record(files[0], store)
    if payload is not None:
        reason = image_export_reason(files[0], payload, store)
        if reason is not None:
            raise ExportKindError(
                f"'{files[0]}' is an image export, not a table: {reason}. Open it with "
                "tfrecord_io.open(path)."
            )
    records = _sample(files, sample, verify, store)
    if not records:
        raise TableError(
            f"'{files[0]}'{' and the other files' if len(files) > 1 else ''} hold "
            "no record: the table is empty, so no schema can be read from it"
        )
    path, _ = records[0]
    schema = infer_schema(
        [r for _, r in records],
        shapes=shapes,
        columns=columns,
        ragged=ragged,
        binary=binary,
        where=f"'{path}'",
    )
    return TableExport(files, schema, verify, store)


def _sample(
    files: Sequence[str], count: int, verify: bool, store: Store
) -> list[tuple[str, dict[str, wire.Feature]]]:
    """Decode up to ``count`` first records of the first file that has any."""
    for path in files:
        out = []
        records = file_records(path, verify, store)
        try:
            for row, (_, payload) in enumerate(records):
                out.append((path, wire.decode_example(payload, f"'{path}', row {row}")))
                if len(out) >= count:
                    break
        finally:
            records.close()
        if out:
            return out
    return []


def read_table(paths: PathsLike, **kwargs: Any) -> Any:
    """Read a table export into a ``pandas.DataFrame``: ``open_table(paths, **kw).to_pandas()``.

    Parameters
    ----------
    paths : path-like or sequence of path-like
        As :func:`open_table`.
    **kwargs
        :func:`open_table`'s keyword arguments.

    Returns
    -------
    pandas.DataFrame
    """
    return open_table(paths, **kwargs).to_pandas()
