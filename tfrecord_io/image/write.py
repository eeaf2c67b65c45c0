"""The one write pipeline of image exports: band plan, patch payloads, shards, atomic commit.

Every writer of the package ends here. :func:`write_export` turns raster rows (a
:class:`~tfrecord_io.image.encode.RowSource`: the writer's spill file, or a rasterio dataset read
a patch row at a time) into record payloads following an
:class:`~tfrecord_io.image.encode.ExportPlan`, and hands them with the plan's mixer to
:func:`write_records`. :func:`write_records` is the layer below, for callers whose payloads are
already encoded (model predictions, one Example per patch): it frames the payloads into
``PREFIX-NNNNN.tfrecord[.gz]`` shards through a
:class:`~tfrecord_io.format.shards.ShardSink` in the destination's temporary folder, then
commits the shards and the mixer (last) into the
:class:`~tfrecord_io.format.shards.Destination`. On any error, the warnings of an export
included when they are raised as errors, the destination is left untouched.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from rasterio.crs import CRS

from tfrecord_io.errors import NoMixerWarning, PatchesDroppedWarning
from tfrecord_io.format.shards import ShardSink
from tfrecord_io.format.upload import AnyDestination
from tfrecord_io.image.encode import ExportPlan, RowSource, iter_payloads
from tfrecord_io.image.mixer import Mixer

__all__ = ["crs_text", "export_mixer", "warn_dropped", "write_export", "write_records"]

# Frames between a warning and the caller of close() or export(): warn_dropped, the payload
# generator, write_records, write_export, close_from.
_STACKLEVEL = 6


def crs_text(crs: Any) -> str:
    """Return the mixer's ``crs``: ``EPSG:n`` when the CRS has a code, WKT otherwise."""
    crs = CRS.from_user_input(crs)
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg is not None else crs.to_wkt()


def export_mixer(plan: ExportPlan, crs: Any) -> Mixer:
    """Return the mixer of an export planned by ``plan`` in ``crs`` (a CRS or its text)."""
    grid = plan.grid
    return Mixer(
        crs=crs_text(crs),
        transform=grid.transform,
        patch_width=grid.patch_width,
        patch_height=grid.patch_height,
        patches_per_row=grid.patches_per_row,
        total_patches=grid.total_patches,
    )


def write_records(
    payloads: Iterable[bytes],
    destination: AnyDestination,
    *,
    compressed: bool,
    max_file_size: int,
    level: int = 6,
    workers: int = 2,
    mixer_text: str | None = None,
) -> list[str]:
    """Write record payloads as shards and commit them, with the mixer, into ``destination``.

    The destination is committed on success and aborted on any error (an exception raised by
    ``payloads`` included), so nothing is left behind either way.

    Parameters
    ----------
    payloads : iterable of bytes
        Record payloads (serialized Examples) in export order.
    destination : Destination or RemoteDestination
        Where the files go; shards are made in its temporary folder, named after its prefix.
    compressed : bool
        Write gzip shards (``.tfrecord.gz``).
    max_file_size : int
        Uncompressed bytes per shard, framing included; a record is never split.
    level : int
        zlib compression level (0-9) of gzip shards.
    workers : int
        Threads compressing beside the encoding.
    mixer_text : str, optional
        The mixer's JSON, written last; None writes no mixer.

    Returns
    -------
    list of str
        Final paths: the shards in order, and the mixer last when there is one.

    Raises
    ------
    OptionError
        One record is larger than ``max_file_size``, or ``level`` is not 0 to 9.
    """
    sink: ShardSink | None = None
    try:
        sink = ShardSink(
            destination.temp_path,
            destination.prefix,
            compressed=compressed,
            max_file_size=max_file_size,
            level=level,
            workers=workers,
        )
        for payload in payloads:
            sink.write(payload)
        return destination.commit(sink.close(), mixer_text)
    except BaseException:
        if sink is not None:
            sink.abort()
        destination.abort()
        raise


def write_export(
    plan: ExportPlan,
    rows: RowSource,
    destination: AnyDestination,
    *,
    crs: Any,
    level: int = 6,
    workers: int = 2,
    progress: Callable[[int, int], None] | None = None,
    name: str | None = None,
) -> list[str]:
    """Encode raster rows as an Earth Engine export and commit it into ``destination``.

    Parameters
    ----------
    plan : ExportPlan
        Features, patch grid and format options (:func:`~tfrecord_io.image.encode.plan_export`).
    rows : RowSource
        ``read_rows(row_start, row_stop)`` -> ``(values, masked)``; each row is read once.
    destination : Destination or RemoteDestination
        Where the files go; committed on success, aborted on any error.
    crs : CRS or str
        Written to the mixer.
    level : int
        zlib compression level (0-9) of gzip shards.
    workers : int
        Threads compressing beside the encoding.
    progress : callable, optional
        ``progress(done_patches, total_patches)``, called after each patch row.
    name : str, optional
        The export as the warnings name it; the destination's path by default.

    Returns
    -------
    list of str
        The files written: shards in order, then the mixer (none when ``maskedThreshold`` is
        below 1, as Earth Engine does).

    Warns
    -----
    PatchesDroppedWarning
        Edge pixels or masked patches were dropped.
    NoMixerWarning
        No mixer was written.
    """
    options = plan.options
    mixer = export_mixer(plan, crs).to_json() if options.writes_mixer else None
    return write_records(
        _iter_export_payloads(plan, rows, progress, name or destination.path),
        destination,
        compressed=options.compressed,
        max_file_size=options.max_file_size,
        level=level,
        workers=workers,
        mixer_text=mixer,
    )


def _iter_export_payloads(
    plan: ExportPlan, rows: RowSource, progress: Callable[[int, int], None] | None, name: str
) -> Iterator[bytes]:
    kept = 0
    for _, payloads in iter_payloads(plan, rows, progress):
        yield from payloads
        kept += 1
    # Warned here, before the commit: a warning raised as an error leaves nothing written.
    warn_dropped(plan, kept, name)


def warn_dropped(plan: ExportPlan, kept: int, name: str, stacklevel: int = _STACKLEVEL) -> None:
    """Warn of the pixels and patches an export dropped, and of a missing mixer.

    Call it before the commit, so that a warning raised as an error leaves nothing written.

    Parameters
    ----------
    plan : ExportPlan
        The export's plan.
    kept : int
        Patches written (the others had too many masked pixels).
    name : str
        The export as the warnings name it.
    stacklevel : int
        Frames between this function and the caller the warnings point at.
    """
    if plan.dropped_pixels:
        warnings.warn(
            f"'{name}': {plan.dropped_pixels} pixels along the right and bottom edges do "
            f"not fill a whole {plan.grid.patch_width} x {plan.grid.patch_height} patch and "
            "were dropped, as Earth Engine drops them. Pass pad_edges=True to pad the last "
            "patch row and column with defaultValue instead.",
            PatchesDroppedWarning,
            stacklevel=stacklevel,
        )
    dropped = plan.grid.total_patches - kept
    if dropped:
        warnings.warn(
            f"'{name}': {dropped} of {plan.grid.total_patches} patches have more than "
            f"maskedThreshold ({plan.options.masked_threshold}) masked pixels and were "
            "dropped.",
            PatchesDroppedWarning,
            stacklevel=stacklevel,
        )
    if not plan.options.writes_mixer:
        warnings.warn(
            f"'{name}': no mixer was written because maskedThreshold is "
            f"{plan.options.masked_threshold}, not 1, as Earth Engine does; the export cannot "
            "be georeferenced from its files alone. To read it, pass the grid to "
            "tfrecord_io.open(..., mixer={...}); set maskedThreshold to 1 to get a mixer.",
            NoMixerWarning,
            stacklevel=stacklevel,
        )
