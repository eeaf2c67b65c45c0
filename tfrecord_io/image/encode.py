"""Turning raster rows into Earth Engine's records: band plan, patch strips, payloads.

No file is opened here: rows come from a :class:`RowSource` (the writer's spill file, or a
rasterio dataset) and payloads go to the caller. Each patch row is built once as a *strip*, the
tile rows of that patch row across the whole width padded with ``defaultValue`` beyond the image,
one array per feature kind; every tile of the row is then a view into it. Rows are read once
each: the margin rows shared by two patch rows are kept from one strip to the next.

Layout rules, matching the reader (:mod:`.reader`): features in band order; an array
band ``NAME`` (``tensorDepths``) is made of the bands ``NAME_0 .. NAME_{k-1}`` and stored
depth-major ``[D, H, W]`` [inferred], padded with ``defaultValue`` planes or truncated to ``D``;
``collapseBands`` puts every plane in one feature named after the first band, kinds promoted
bytes -> int64 -> float [doc]; ``sequenceData`` writes one ``SequenceExample`` per tile pixel,
row-major, scalar bands in the context and array bands as feature lists of one-value steps.
A patch's masked fraction, for ``maskedThreshold``, counts the pixels of the unpadded patch where
any band is masked, and pixels beyond the image [inferred].
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from tfrecord_io.errors import OptionError
from tfrecord_io.format import columns
from tfrecord_io.format import example as wire
from tfrecord_io.format.example import FeatureKind
from tfrecord_io.format.sequence import encode_sequence_example
from tfrecord_io.image.grid import PatchGrid
from tfrecord_io.image.options import FormatOptions

__all__ = [
    "KIND_DTYPES",
    "ExportPlan",
    "FeaturePlan",
    "RowSource",
    "check_kind",
    "iter_payloads",
    "kind_default",
    "plan_export",
    "record_size",
]

KIND_DTYPES: dict[str, np.dtype] = {
    "float": np.dtype(np.float32),
    "int64": np.dtype(np.int64),
    "bytes": np.dtype(np.uint8),
}
_PROMOTION = ("bytes", "int64", "float")


class RowSource(Protocol):
    """Rows of a raster: ``read_rows(row_start, row_stop)`` -> ``(values, masked)``.

    ``values`` is ``(count, rows, width)``; ``masked`` is a boolean array of the same shape
    (True where masked) or None when nothing is masked.
    """

    def read_rows(self, row_start: int, row_stop: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Return the values and mask of rows ``row_start`` to ``row_stop`` (exclusive)."""
        ...


def kind_default(kind: str, default_value: float) -> np.generic:
    """Return ``defaultValue`` as a kind stores it: fraction dropped, clamped for integers."""
    dtype = KIND_DTYPES[kind]
    if kind == "float":
        return dtype.type(default_value)
    if not math.isfinite(default_value):
        raise OptionError(
            f"defaultValue {default_value} cannot be stored in an integer ({kind}) band: "
            "give a finite defaultValue"
        )
    info = np.iinfo(dtype)
    return dtype.type(min(max(math.trunc(default_value), int(info.min)), int(info.max)))


def check_kind(kind: str, dtype: np.dtype, band: str) -> None:
    """Refuse a kind that cannot hold a band's dtype.

    ``float`` holds any real dtype (Earth Engine coerces to float32); ``int64`` holds bool and
    integers up to int64; ``bytes`` holds uint8 and bool.

    Raises
    ------
    OptionError
        The kind is unknown or cannot hold the dtype.
    """
    if kind not in KIND_DTYPES:
        raise OptionError(f"band '{band}': kind must be 'float', 'int64' or 'bytes', not {kind!r}")
    ok = {
        "float": dtype.kind in "biuf",
        "int64": dtype.kind in "bi" or (dtype.kind == "u" and dtype.itemsize < 8),
        "bytes": dtype in (np.dtype(np.uint8), np.dtype(bool)),
    }[kind]
    if not ok:
        hint = {"int64": "an integer dtype", "bytes": "dtype uint8", "float": "a real dtype"}[kind]
        raise OptionError(
            f"band '{band}' has dtype {dtype.name}, which a {kind} feature cannot hold: "
            f"use {hint}, or another kind"
        )


@dataclass(frozen=True)
class FeaturePlan:
    """One feature of each record and the raster bands it is made of.

    Attributes
    ----------
    name : str
        Feature key.
    kind : {"float", "int64", "bytes"}
        Which list holds its values.
    planes : tuple of (int or None)
        0-based band index of each depth plane; None for a plane of ``defaultValue``.
    array : bool
        An array band (a feature list in a sequence export), even when of depth 1.
    """

    name: str
    kind: FeatureKind
    planes: tuple[int | None, ...]
    array: bool = False

    @property
    def depth(self) -> int:
        """Number of planes."""
        return len(self.planes)


@dataclass(frozen=True)
class ExportPlan:
    """Everything needed to turn raster rows into an export's records.

    Made by :func:`plan_export`; :func:`iter_payloads` and the write pipelines (serial or on a
    dask cluster) read it, and it pickles.

    Attributes
    ----------
    features : tuple of FeaturePlan
        In wire order.
    grid : PatchGrid
        The patch grid; its transform is the raster's.
    width, height : int
        Raster size.
    options : FormatOptions
        The format options.
    dropped_pixels : int
        Raster pixels no patch covers (edge patches that do not fit).
    """

    features: tuple[FeaturePlan, ...]
    grid: PatchGrid
    width: int
    height: int
    options: FormatOptions
    dropped_pixels: int

    @property
    def records_per_patch(self) -> int:
        """1, or one record per tile pixel for sequence exports."""
        return self.grid.tile_pixels if self.options.sequence_data else 1

    def min_record_size(self) -> int:
        """Return a lower bound of one record's payload size in bytes (for ``maxFileSize``)."""
        if self.options.sequence_data:
            return 0
        per_value = {"float": 4, "int64": 1, "bytes": 1}
        return sum(f.depth * self.grid.tile_pixels * per_value[f.kind] for f in self.features)


def plan_features(
    names: Sequence[str], kinds: Sequence[str], options: FormatOptions
) -> tuple[FeaturePlan, ...]:
    """Group raster bands into features following ``tensorDepths`` and ``collapseBands``.

    Parameters
    ----------
    names : sequence of str
        Band names (descriptions), in band order.
    kinds : sequence of str
        Feature kind of each band.
    options : FormatOptions
        ``tensorDepths`` names array bands ``NAME`` made of the bands ``NAME_0 .. NAME_{k-1}``.

    Raises
    ------
    OptionError
        Names are empty or repeated, a ``tensorDepths`` entry names no band, or the bands of
        one array band differ in kind.
    """
    for i, name in enumerate(names):
        if not name:
            raise OptionError(f"band {i + 1} has no name: set its description")
    members: dict[int, str] = {}
    for array, depth in options.tensor_depths.items():
        k = 0
        while f"{array}_{k}" in names:
            members[names.index(f"{array}_{k}")] = array
            k += 1
        if k == 0:
            raise OptionError(
                f"tensorDepths names the array band '{array}', but no band is named "
                f"'{array}_0': name the bands of an array band {array}_0 .. {array}_{depth - 1}"
            )
    features: list[FeaturePlan] = []
    seen: set[str] = set()
    for i, name in enumerate(names):
        member_of = members.get(i)
        if member_of is not None:
            array = member_of
            if array in seen:
                continue
            indexes = [
                names.index(f"{array}_{k}")
                for k in range(options.tensor_depths[array])
                if f"{array}_{k}" in names
            ]
            band_kinds = {kinds[j] for j in indexes}
            if len(band_kinds) > 1:
                raise OptionError(
                    f"the bands of the array band '{array}' have different kinds "
                    f"({', '.join(sorted(band_kinds))}): give them one kind"
                )
            depth = options.tensor_depths[array]
            planes: list[int | None] = [*indexes[:depth], *[None] * (depth - len(indexes))]
            features.append(FeaturePlan(array, kinds[i], tuple(planes), True))  # type: ignore[arg-type]
            seen.add(array)
        else:
            if name in seen:
                raise OptionError(
                    f"the band name '{name}' is used twice: each feature needs its own name"
                )
            features.append(FeaturePlan(name, kinds[i], (i,)))  # type: ignore[arg-type]
            seen.add(name)
    if options.collapse_bands and features:
        kind = max((f.kind for f in features), key=_PROMOTION.index)
        planes = [p for f in features for p in f.planes]
        is_array = len(planes) > 1 or features[0].array
        features = [FeaturePlan(features[0].name, kind, tuple(planes), is_array)]
    return tuple(features)


def plan_export(
    names: Sequence[str],
    kinds: Sequence[str],
    options: FormatOptions,
    *,
    width: int,
    height: int,
    transform: object,
    pad_edges: bool = False,
) -> ExportPlan:
    """Plan an export of a ``width`` x ``height`` raster.

    Raises
    ------
    OptionError
        No whole patch fits the raster (and ``pad_edges`` is False), or the bands cannot be
        grouped into features.
    """
    features = plan_features(names, kinds, options)
    pw = options.patch_width or width
    ph = options.patch_height or height
    if pad_edges:
        per_row, rows = -(-width // pw), -(-height // ph)
    else:
        per_row, rows = width // pw, height // ph
        if per_row == 0 or rows == 0:
            raise OptionError(
                f"patchDimensions [{pw}, {ph}] is larger than the {width} x {height} raster, so "
                "no whole patch fits: use smaller patchDimensions, or pad_edges=True"
            )
    grid = PatchGrid(
        patch_width=pw,
        patch_height=ph,
        patches_per_row=per_row,
        patch_rows=rows,
        transform=transform,  # type: ignore[arg-type]
        margin_x=options.margin_x,
        margin_y=options.margin_y,
    )
    covered = min(width, per_row * pw) * min(height, rows * ph)
    return ExportPlan(tuple(features), grid, width, height, options, width * height - covered)


def _kind_rows(plan: ExportPlan) -> dict[str, list[int | None]]:
    """Planes of each kind's strip, features' planes contiguous in wire order."""
    rows: dict[str, list[int | None]] = {}
    for feature in plan.features:
        rows.setdefault(feature.kind, []).extend(feature.planes)
    return rows


def iter_payloads(
    plan: ExportPlan,
    source: RowSource,
    progress: Callable[[int, int], None] | None = None,
    patches: range | None = None,
) -> Iterator[tuple[int, list[bytes]]]:
    """Yield ``(patch_index, payloads)`` for every patch kept, in export order.

    A patch whose masked fraction exceeds ``maskedThreshold`` is skipped (its index is not
    yielded). ``progress(done, total)`` is called after each patch row. ``patches`` (a range of
    patch indices, step 1) limits the work to those patches: only the source rows of their
    patch rows, margins included, are read.
    """
    grid, options = plan.grid, plan.options
    if patches is None:
        patches = range(grid.total_patches)
    patch_rows = range(0, 0)
    if len(patches):
        patch_rows = range(
            patches.start // grid.patches_per_row, (patches.stop - 1) // grid.patches_per_row + 1
        )
    pw, ph, mx, my = grid.patch_width, grid.patch_height, grid.margin_x, grid.margin_y
    tw, th = grid.tile_width, grid.tile_height
    strip_width = grid.patches_per_row * pw + 2 * mx
    visible = min(plan.width, strip_width - mx)  # image columns that fall in the strip
    kind_rows = _kind_rows(plan)
    defaults = {k: kind_default(k, options.default_value) for k in kind_rows}
    starts: dict[str, int] = {}
    slots: list[tuple[str, int]] = []  # (kind, first plane) of each feature
    for feature in plan.features:
        slots.append((feature.kind, starts.get(feature.kind, 0)))
        starts[feature.kind] = slots[-1][1] + feature.depth
    threshold = options.masked_threshold
    check_mask = threshold < 1
    cache: tuple[int, np.ndarray, np.ndarray | None] | None = None  # rows kept for the next strip
    for prow in patch_rows:
        top = prow * ph - my
        r0, r1 = max(top, 0), min(top + th, plan.height)
        values, masked, cache = _read(source, r0, r1, cache)
        strips = {
            k: np.full((len(planes), th, strip_width), defaults[k], dtype=KIND_DTYPES[k])
            for k, planes in kind_rows.items()
        }
        any_masked = np.zeros((th, strip_width), dtype=bool) if check_mask else None
        if any_masked is not None:
            any_masked[...] = True
        if r1 > r0:
            rows = slice(r0 - top, r1 - top)
            cols = slice(mx, mx + visible)
            for kind, planes in kind_rows.items():
                strip = strips[kind]
                for i, band in enumerate(planes):
                    if band is None:
                        continue
                    strip[i, rows, cols] = values[band, :, :visible]
                    if masked is not None:
                        np.copyto(
                            strip[i, rows, cols], defaults[kind], where=masked[band, :, :visible]
                        )
            if any_masked is not None:
                any_masked[rows, cols] = (
                    masked[:, :, :visible].any(axis=0) if masked is not None else False
                )
        for pcol in range(grid.patches_per_row):
            index = prow * grid.patches_per_row + pcol
            if index not in patches:
                continue
            c0 = pcol * pw
            if any_masked is not None:
                fraction = any_masked[my : my + ph, mx + c0 : mx + c0 + pw].mean()
                if fraction > threshold:
                    continue
            tiles = [
                strips[kind][start : start + f.depth, :, c0 : c0 + tw]
                for f, (kind, start) in zip(plan.features, slots, strict=True)
            ]
            if options.sequence_data:
                yield index, _sequence_payloads(plan.features, tiles)
            else:
                yield index, [_example_payload(plan.features, tiles)]
        if progress is not None:
            progress((prow + 1) * grid.patches_per_row, grid.total_patches)


def record_size(plan: ExportPlan) -> int | None:
    """Return the payload size of every record, or None when sizes depend on the values.

    Float and bytes lists have one encoded size whatever their values, so one record of
    ``defaultValue`` pixels has the size of them all; ``int64_list`` varints do not (None).
    """
    if any(f.kind == "int64" for f in plan.features):
        return None
    # A sequence export's records are one per tile pixel, all alike: one pixel stands for all.
    th, tw = (1, 1) if plan.options.sequence_data else (plan.grid.tile_height, plan.grid.tile_width)
    tiles = [np.zeros((f.depth, th, tw), dtype=KIND_DTYPES[f.kind]) for f in plan.features]
    if plan.options.sequence_data:
        return len(_sequence_payloads(plan.features, tiles)[0])
    return len(_example_payload(plan.features, tiles))


def _read(
    source: RowSource, r0: int, r1: int, cache: tuple[int, np.ndarray, np.ndarray | None] | None
) -> tuple[np.ndarray, np.ndarray | None, tuple[int, np.ndarray, np.ndarray | None] | None]:
    """Read rows ``r0:r1``, reusing the rows of the previous strip that overlap."""
    if r1 <= r0:
        return np.empty((0, 0, 0)), None, cache
    if cache is not None and cache[0] <= r0 < cache[0] + cache[1].shape[1]:
        start, old_values, old_masked = cache
        keep = start + old_values.shape[1] - r0
        new_values, new_masked = source.read_rows(r0 + keep, r1) if r0 + keep < r1 else (None, None)
        parts = [old_values[:, r0 - start :]]
        if new_values is not None:
            parts.append(new_values)
        values = np.concatenate(parts, axis=1) if len(parts) > 1 else parts[0]
        if old_masked is None and new_masked is None:
            masked = None
        else:
            mparts = [
                old_masked[:, r0 - start :]
                if old_masked is not None
                else np.zeros(parts[0].shape, bool)
            ]
            if new_values is not None:
                mparts.append(
                    new_masked if new_masked is not None else np.zeros(new_values.shape, bool)
                )
            masked = np.concatenate(mparts, axis=1) if len(mparts) > 1 else mparts[0]
    else:
        values, masked = source.read_rows(r0, r1)
    return values, masked, (r0, values, masked)


def _as_feature(kind: str, values: np.ndarray) -> wire.Feature:
    if kind == "bytes":
        return wire.bytes_feature(values)
    return wire.Feature(kind, np.ascontiguousarray(values))  # type: ignore[arg-type]


def _example_payload(features: Sequence[FeaturePlan], tiles: Sequence[np.ndarray]) -> bytes:
    return wire.encode_example(
        {f.name: _as_feature(f.kind, t) for f, t in zip(features, tiles, strict=True)}
    )


def _sequence_payloads(features: Sequence[FeaturePlan], tiles: Sequence[np.ndarray]) -> list[bytes]:
    """One SequenceExample per tile pixel, row-major: scalars in the context, arrays as lists.

    Pixels whose records have the same structure (all of them, unless int64 values need varints
    of different widths) are written at once from one template record (:mod:`.columns`).
    """
    th, tw = tiles[0].shape[1:]
    flat = [t.reshape(t.shape[0], th * tw) for t in tiles]
    scalars = [(f, v) for f, v in zip(features, flat, strict=True) if not f.array]
    arrays = [(f, v) for f, v in zip(features, flat, strict=True) if f.array]

    def one(pixel: int) -> bytes:
        context: Mapping[str, wire.Feature] = {
            f.name: _as_feature(f.kind, v[:, pixel]) for f, v in scalars
        }
        lists = {
            f.name: [_as_feature(f.kind, v[d, pixel : pixel + 1]) for d in range(f.depth)]
            for f, v in arrays
        }
        return encode_sequence_example(context, lists)

    ordered = scalars + arrays  # the order the template holds them in
    specs = [(f.name, f.kind, f.depth) for f, _ in ordered]
    return columns.encode_sequences(one, specs, [v for _, v in ordered])
