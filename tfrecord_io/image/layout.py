"""How a record's features become bands: names, kinds, depths and the kernel margins.

Rules, [inferred] where the format notes say so, each overridable through ``open``: features
keep the wire order of the first record unless ``band_order`` names another; float lists become
float32, int64 lists int64, and a bytes value of tile-height x tile-width bytes uint8; a feature
of ``D x tile`` values becomes bands ``NAME_0 .. NAME_{D-1}``, depth-major by default
(``array_layout``); a sequence export (one ``SequenceExample`` per pixel) gives the context's
scalar bands, then one band per step of each feature list.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from tfrecord_io.errors import DecodeError, GridError, OptionError
from tfrecord_io.format import columns
from tfrecord_io.format import example as wire
from tfrecord_io.format.sequence import decode_sequence_example
from tfrecord_io.image.grid import PatchGrid, infer_margins, margin_for_kernel
from tfrecord_io.image.mixer import Mixer

__all__ = ["ArrayLayout", "BandLayout", "FeatureLayout", "layout_from_record", "values_array"]

ArrayLayout = Literal["depth_major", "pixel_major"]
_DTYPES: dict[str, np.dtype] = {
    "float": np.dtype("float32"),
    "int64": np.dtype("int64"),
    "bytes": np.dtype("uint8"),
}


@dataclass(frozen=True)
class FeatureLayout:
    """One feature of a record and the bands it becomes."""

    name: str
    kind: str
    depth: int

    @property
    def dtype(self) -> np.dtype:
        """The numpy dtype of its bands."""
        return _DTYPES[self.kind]

    @property
    def band_names(self) -> tuple[str, ...]:
        """``NAME`` for a plain band, ``NAME_0 .. NAME_{D-1}`` for an array band."""
        if self.depth == 1:
            return (self.name,)
        return tuple(f"{self.name}_{i}" for i in range(self.depth))


@dataclass(frozen=True)
class BandLayout:
    """How a record's features become ``(band, row, col)`` tiles.

    Attributes
    ----------
    features : tuple of FeatureLayout
        In band order.
    tile_height, tile_width : int
        Stored tile size.
    array_layout : {"depth_major", "pixel_major"}
        ``[D, H, W]`` (the documented assumption) or ``[H, W, D]``.
    sequence : bool
        One SequenceExample per pixel.
    """

    features: tuple[FeatureLayout, ...]
    tile_height: int
    tile_width: int
    array_layout: ArrayLayout = "depth_major"
    sequence: bool = False

    @property
    def names(self) -> tuple[str, ...]:
        """Band names in band order."""
        return tuple(n for f in self.features for n in f.band_names)

    @property
    def dtypes(self) -> tuple[str, ...]:
        """Band dtypes in band order."""
        return tuple(f.dtype.name for f in self.features for _ in range(f.depth))

    def decode(self, payload: bytes, where: str) -> tuple[np.ndarray, ...]:
        """Decode one Example into one ``(depth, tile_height, tile_width)`` array per feature."""
        features = wire.decode_example(payload, where)
        return tuple(self._feature_array(f, features.get(f.name), where) for f in self.features)

    def decode_sequence(self, records: Iterable[tuple[bytes, str]]) -> tuple[np.ndarray, ...]:
        """Decode a patch's per-pixel SequenceExamples into one tile per feature.

        Parameters
        ----------
        records : iterable of (bytes, str)
            The patch's records in pixel order (row-major over the tile), each with where it
            was read for error messages.

        Returns
        -------
        tuple of numpy.ndarray
            One ``(depth, tile_height, tile_width)`` array per feature.

        Raises
        ------
        DecodeError
            A record lacks a band of the first record.
        GridError
            A record's steps or values do not fit the layout, or the patch has too few or too
            many records.
        """
        pixels = self.tile_height * self.tile_width
        arrays = tuple(np.empty((f.depth, pixels), f.dtype) for f in self.features)
        payloads: list[bytes] = []
        wheres: list[str] = []
        for payload, where in records:
            if len(payloads) >= pixels:
                raise GridError(f"{where}: a patch of {pixels} pixels is given more records")
            payloads.append(payload)
            wheres.append(where)
        if len(payloads) != pixels:
            raise GridError(
                f"{wheres[-1] if wheres else 'a sequence patch'}: a patch of {pixels} pixels "
                f"ends after {len(payloads)} per-pixel records. Check kernel_size."
            )
        # Every pixel's record has the same structure: read them as columns, and leave only
        # records that do not match (or are malformed) to the general decoder.
        specs = [(f.name, f.kind, f.depth) for f in self.features]
        done = columns.decode_sequences(payloads, specs, list(arrays))
        for pixel in np.flatnonzero(~done).tolist():
            self._fill_pixel(arrays, pixel, payloads[pixel], wheres[pixel])
        return tuple(a.reshape(-1, self.tile_height, self.tile_width) for a in arrays)

    def _fill_pixel(
        self, arrays: tuple[np.ndarray, ...], pixel: int, payload: bytes, where: str
    ) -> None:
        context, lists = decode_sequence_example(payload, where)
        for layout, out in zip(self.features, arrays, strict=True):
            if layout.name in context:
                steps = [context[layout.name]]
            elif layout.name in lists:
                steps = lists[layout.name]
            else:
                raise DecodeError(f"{where}: the band '{layout.name}' is missing")
            if len(steps) != layout.depth:
                raise GridError(
                    f"{where}: the band '{layout.name}' has {len(steps)} steps where the first "
                    f"record has {layout.depth}"
                )
            for depth, step in enumerate(steps):
                values = values_array(step)
                if values.size != 1:
                    raise GridError(
                        f"{where}: the band '{layout.name}' holds {values.size} values in one "
                        "pixel; a sequence export holds one per step"
                    )
                out[depth, pixel] = values[0]

    def _feature_array(
        self, layout: FeatureLayout, feature: wire.Feature | None, where: str
    ) -> np.ndarray:
        if feature is None:
            raise DecodeError(
                f"{where}: the band '{layout.name}' is missing, although the first record has "
                "it. The export mixes records of different images."
            )
        if feature.kind != layout.kind:
            raise DecodeError(
                f"{where}: the band '{layout.name}' is a {feature.kind} list, although it is a "
                f"{layout.kind} list in the first record"
            )
        values = values_array(feature)
        expected = layout.depth * self.tile_height * self.tile_width
        if values.size != expected:
            raise GridError(
                f"{where}: the band '{layout.name}' holds {values.size} values where the grid "
                f"needs {expected} ({layout.depth} x {self.tile_height} x {self.tile_width}). "
                "The record does not fit the export's grid."
            )
        if self.array_layout == "pixel_major" and layout.depth > 1:
            return values.reshape(self.tile_height, self.tile_width, layout.depth).transpose(
                2, 0, 1
            )
        return values.reshape(layout.depth, self.tile_height, self.tile_width)


def values_array(feature: wire.Feature) -> np.ndarray:
    """Return a feature's values as a flat array (a bytes feature as uint8)."""
    if feature.kind == "bytes":
        values = feature.values
        joined = values[0] if len(values) == 1 else b"".join(values)  # type: ignore[arg-type]
        return np.frombuffer(joined, dtype=np.uint8)
    return np.asarray(feature.values)


def layout_from_record(
    payload: bytes,
    mixer: Mixer,
    *,
    kernel_size: tuple[int, int] | None,
    band_order: Sequence[str] | None,
    array_layout: ArrayLayout,
    sequence: bool,
    records_per_patch: int | None,
    where: str,
) -> tuple[BandLayout, tuple[int, int]]:
    """Read the band layout and the kernel margins off the first record."""
    if sequence:
        context, lists = decode_sequence_example(payload, where)
        kinds = [(n, f.kind, 1) for n, f in context.items()]
        kinds += [
            (n, steps[0].kind if steps else "float", len(steps)) for n, steps in lists.items()
        ]
        if kernel_size is not None:
            margins = (margin_for_kernel(kernel_size[0]), margin_for_kernel(kernel_size[1]))
        elif records_per_patch is None:
            raise OptionError(f"{where}: a sequence export needs its record count or kernel_size")
        else:
            margins = infer_margins(
                [records_per_patch], mixer.patch_width, mixer.patch_height, where
            )
    else:
        features = wire.decode_example(payload, where)
        counts = [values_array(f).size for f in features.values()]
        if kernel_size is not None:
            margins = (margin_for_kernel(kernel_size[0]), margin_for_kernel(kernel_size[1]))
        else:
            margins = infer_margins(counts, mixer.patch_width, mixer.patch_height, where)
        tile = PatchGrid.from_mixer(mixer, *margins).tile_pixels
        kinds = []
        for (name, feature), count in zip(features.items(), counts, strict=True):
            if count % tile:
                raise GridError(
                    f"{where}: the band '{name}' holds {count} values, not a multiple of the "
                    f"{tile}-pixel tile implied by kernel margins {margins}. Check kernel_size."
                )
            kinds.append((name, feature.kind, count // tile))
    by_name = {name: FeatureLayout(name, kind, depth) for name, kind, depth in kinds}
    if band_order is not None:
        unknown = [n for n in band_order if n not in by_name]
        if unknown:
            raise OptionError(
                f"{where}: band_order names {unknown}, but the records hold {list(by_name)}"
            )
        ordered = tuple(by_name[n] for n in band_order)
    else:
        ordered = tuple(by_name.values())
    if not ordered:
        raise DecodeError(f"{where}: the first record holds no band")
    grid = PatchGrid.from_mixer(mixer, *margins)
    layout = BandLayout(
        features=ordered,
        tile_height=grid.tile_height,
        tile_width=grid.tile_width,
        array_layout=array_layout,
        sequence=sequence,
    )
    return layout, margins
