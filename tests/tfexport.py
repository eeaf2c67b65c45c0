"""TensorFlow-made Earth Engine TFRecord image exports: the tests' independent producer.

Everything here is written with TensorFlow's own ``tf.io.TFRecordWriter`` and ``tf.train``
protos, and nothing is taken from ``tfrecord_io``, so that the library is tested against files
it did not make. The layout follows ``ee-tfrecord-format.md``; the facts tagged [inferred] there
are named in the docstrings below.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
from affine import Affine

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import tensorflow as tf

__all__ = [
    "KINDS",
    "RECORD_OVERHEAD",
    "ExportInfo",
    "feature_keys",
    "java_double",
    "mixer_text",
    "write_tf_export",
]

KINDS = ("float", "int64", "bytes")
"""Feature kinds EE writes: ``float_list`` (float32), ``int64_list``, one raw-uint8 ``bytes``."""

RECORD_OVERHEAD = 16
"""Framing bytes per TFRecord record: length (8), its CRC (4), payload CRC (4)."""

_DTYPES: dict[str, np.dtype[Any]] = {
    "float": np.dtype(np.float32),
    "int64": np.dtype(np.int64),
    "bytes": np.dtype(np.uint8),
}


@dataclass(frozen=True, eq=False)
class ExportInfo:
    """What :func:`write_tf_export` wrote and what a correct reader must return.

    ``expected`` is the unpadded mosaic, ``(count, height, width)``, with the bands in
    ``band_names`` order: the wire order of the first record, array band ``NAME`` of depth ``D``
    expanded to ``NAME_0 .. NAME_{D-1}``. Its dtype is the common type of the band kinds
    (float32, int64, uint8; mixing float32 and int64 gives float64). Sizes are ``(width, height)``
    pairs, as in the mixer.
    """

    folder: Path
    prefix: str
    shards: tuple[Path, ...]
    mixer: Path | None
    expected: np.ndarray
    band_names: tuple[str, ...]
    band_kinds: tuple[str, ...]
    wire_order: tuple[str, ...]
    transform: Affine
    crs: str
    patch_size: tuple[int, int]
    kernel_size: tuple[int, int]
    patches_per_row: int
    total_patches: int
    records_per_shard: tuple[int, ...]
    compressed: bool
    default_value: float
    sequence_data: bool

    @property
    def rows(self) -> int:
        """Number of patch rows."""
        return self.total_patches // self.patches_per_row

    @property
    def margin(self) -> tuple[int, int]:
        """Margin ``(x, y)`` added on each side of a patch: ``floor(k / 2)``."""
        return self.kernel_size[0] // 2, self.kernel_size[1] // 2

    @property
    def tile_size(self) -> tuple[int, int]:
        """Stored tile ``(width, height)``: patch plus a margin on each side."""
        mx, my = self.margin
        return self.patch_size[0] + 2 * mx, self.patch_size[1] + 2 * my

    @property
    def compression_type(self) -> str:
        """``"GZIP"`` or ``""``, as ``tf.data.TFRecordDataset`` takes it."""
        return "GZIP" if self.compressed else ""


def java_double(value: float) -> str:
    """Format a double as Java's ``Double.toString`` (JDK 19+) does.

    Shortest round-trip digits, always a ``.``; scientific notation with a capital ``E`` and no
    ``+`` when ``|x| < 1e-3`` or ``|x| >= 1e7``. When one digit would do, Java picks the
    two-digit decimal closest to the value (``4.9E-324``, not ``5E-324``).

    Raises
    ------
    ValueError
        If ``value`` is not finite (JSON has no spelling for it that EE is known to use).
    """
    x = float(value)
    if not math.isfinite(x):
        raise ValueError(f"cannot format non-finite double {x!r}")
    if x == 0.0:
        return "-0.0" if math.copysign(1.0, x) < 0 else "0.0"
    sign = "-" if x < 0 else ""
    digits, exponent = _shortest_digits(abs(x))
    # exponent is the power of ten of the first digit: value = 0.d1d2... * 10 ** (exponent + 1)
    if 1e-3 <= abs(x) < 1e7:
        if exponent >= 0:
            whole = digits[: exponent + 1].ljust(exponent + 1, "0")
            frac = digits[exponent + 1 :] or "0"
        else:
            whole = "0"
            frac = "0" * (-exponent - 1) + digits
        return f"{sign}{whole}.{frac}"
    return f"{sign}{digits[0]}.{digits[1:] or '0'}E{exponent}"


def _shortest_digits(x: float) -> tuple[str, int]:
    """Return the significant digits Java prints for positive ``x`` and the first digit's power."""
    _, digit_tuple, exp = Decimal(repr(x)).normalize().as_tuple()
    assert isinstance(exp, int)
    digits = "".join(map(str, digit_tuple))
    exponent = exp + len(digits) - 1
    if len(digits) == 1:
        # Java's rule for a one-digit shortest: take the closest two-digit decimal that still
        # rounds to x (differs from the one-digit form only near the subnormal minimum).
        exact = Decimal(x)
        two = exact.scaleb(-exponent + 1).quantize(Decimal(1), rounding="ROUND_HALF_EVEN")
        candidate = two.scaleb(exponent - 1)
        if float(candidate) == x and len(str(int(two))) == 2:
            d = str(int(two)).rstrip("0") or "0"
            return d, exponent
    return digits, exponent


def mixer_text(
    transform: Affine,
    crs: str,
    patch_size: tuple[int, int],
    patches_per_row: int,
    total_patches: int,
) -> str:
    """Return the mixer JSON exactly as EE lays it out (protobuf-java's JsonFormat printer).

    No newline follows the final ``}``: whether EE writes one is unknown [inferred].

    Parameters
    ----------
    transform
        Affine of the top-left corner of the unpadded patch grid; written as ``[a .. f]``.
    crs
        The CRS string, written as given.
    patch_size
        Unpadded patch ``(width, height)``.
    patches_per_row, total_patches
        Patch counts.
    """
    matrix = ", ".join(java_double(v) for v in tuple(transform)[:6])
    crs_json = crs.replace("\\", "\\\\").replace('"', '\\"')
    return (
        "{\n"
        '  "projection": {\n'
        f'    "crs": "{crs_json}",\n'
        '    "affine": {\n'
        f'      "doubleMatrix": [{matrix}]\n'
        "    }\n"
        "  },\n"
        f'  "patchDimensions": [{patch_size[0]}, {patch_size[1]}],\n'
        f'  "patchesPerRow": {patches_per_row},\n'
        f'  "totalPatches": {total_patches}\n'
        "}"
    )


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    """Decode one protobuf varint at ``pos``; return the value and the next position."""
    value = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def _iter_fields(buf: bytes) -> Iterator[tuple[int, bytes]]:
    """Yield ``(field_number, payload)`` for each length-delimited field of a message."""
    pos = 0
    while pos < len(buf):
        tag, pos = _read_varint(buf, pos)
        wire_type = tag & 7
        if wire_type == 2:
            length, pos = _read_varint(buf, pos)
            yield tag >> 3, buf[pos : pos + length]
            pos += length
        elif wire_type == 0:
            _, pos = _read_varint(buf, pos)
        elif wire_type == 5:
            pos += 4
        elif wire_type == 1:
            pos += 8
        else:
            raise ValueError(f"unsupported wire type {wire_type} at byte {pos}")


def _map_keys(buf: bytes) -> list[str]:
    """Keys, in wire order, of a message whose field 1 is a ``map<string, ...>``."""
    keys = []
    for number, entry in _iter_fields(buf):
        if number == 1:
            keys += [v.decode() for n, v in _iter_fields(entry) if n == 1]
    return keys


def feature_keys(payload: bytes) -> tuple[str, ...]:
    """Feature names of a serialized Example in wire order.

    For a SequenceExample (recognised by a field 2) the context keys come first, then the
    feature-list keys: both messages keep their map in field 1 of field 1 / field 2.
    """
    keys: list[str] = []
    for number, sub in _iter_fields(payload):
        if number in (1, 2):
            keys += _map_keys(sub)
    return tuple(keys)


def _default_for(kind: str, default_value: float) -> np.generic:
    """``default_value`` as the band kind stores it: fraction dropped, clamped for integers."""
    dtype = _DTYPES[kind]
    if kind == "float":
        return dtype.type(default_value)
    info = np.iinfo(dtype)
    value = math.trunc(default_value)
    return dtype.type(min(max(value, info.min), info.max))


def _feature(kind: str, values: np.ndarray) -> tf.train.Feature:
    """One band's values, flattened, as the proto Feature of its kind."""
    flat = values.ravel()
    if kind == "float":
        return tf.train.Feature(float_list=tf.train.FloatList(value=flat.tolist()))
    if kind == "int64":
        return tf.train.Feature(int64_list=tf.train.Int64List(value=flat.tolist()))
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[flat.astype(np.uint8).tobytes()]))


def _check_args(
    bands: dict[str, np.ndarray],
    kinds: dict[str, str],
    tensor_depths: dict[str, int],
) -> tuple[int, int]:
    """Validate the band arrays; return the mosaic ``(height, width)``."""
    if not bands:
        raise ValueError("bands is empty: give at least one band")
    shapes = set()
    for name, array in bands.items():
        depth = tensor_depths.get(name)
        want_ndim = 2 if depth is None else 3
        if array.ndim != want_ndim:
            raise ValueError(f"band {name!r} has shape {array.shape}, wanted {want_ndim} dims")
        if depth is not None and array.shape[0] != depth:
            raise ValueError(
                f"band {name!r} has depth {array.shape[0]}, tensor_depths says {depth}"
            )
        kind = kinds.get(name, "float")
        if kind not in KINDS:
            raise ValueError(f"band {name!r} has kind {kind!r}, wanted one of {KINDS}")
        if kind == "bytes" and array.size and (array.min() < 0 or array.max() > 255):
            raise ValueError(f"bytes band {name!r} has values outside 0..255")
        shapes.add(array.shape[-2:])
    for name in list(kinds) + list(tensor_depths):
        if name not in bands:
            raise ValueError(f"{name!r} names no band")
    if len(shapes) != 1:
        raise ValueError(f"bands differ in (height, width): {sorted(shapes)}")
    height, width = shapes.pop()
    return height, width


def write_tf_export(
    folder: Path,
    bands: dict[str, np.ndarray],
    *,
    transform: Affine,
    crs: str = "EPSG:4326",
    patch_size: tuple[int, int] | None = None,
    kernel_size: tuple[int, int] = (1, 1),
    prefix: str = "export",
    compressed: bool = True,
    max_file_size: int | None = None,
    kinds: dict[str, str] | None = None,
    default_value: float = 0.0,
    write_mixer: bool = True,
    tensor_depths: dict[str, int] | None = None,
    sequence_data: bool = False,
    feature_order: tuple[str, ...] | None = None,
) -> ExportInfo:
    """Write ``bands`` as an EE image export, using TensorFlow only.

    Patches run row-major across the shards; patches that do not fit along the right and
    bottom edges are dropped. Each stored tile is the patch plus ``floor(k / 2)`` pixels of
    margin per side [inferred for odd k]; margins hold the real neighbouring pixels of
    ``bands`` (including pixels of dropped edge patches) and ``default_value`` beyond the
    arrays [inferred]. A new shard starts when the next record would make the current one's
    uncompressed size exceed ``max_file_size`` [inferred]; a record is never split.

    Parameters
    ----------
    folder
        Existing or new folder to write into.
    bands
        Band name -> full unpadded image, ``(height, width)``, or ``(depth, height, width)``
        for the bands named in ``tensor_depths``. All share ``(height, width)``.
    transform
        Affine of the top-left corner of ``bands`` (and so of the unpadded patch grid).
    crs
        CRS string for the mixer.
    patch_size
        Unpadded patch ``(width, height)``; default: the whole image in one patch.
    kernel_size
        ``(x, y)`` kernel; the margin is ``floor(k / 2)`` on each side.
    prefix
        File name prefix: ``PREFIX-00000.tfrecord[.gz]``, ``PREFIX-mixer.json``.
    compressed
        Gzip the shards (``.tfrecord.gz``) or not (``.tfrecord``).
    max_file_size
        Uncompressed bytes per shard, framing included; ``None`` writes one shard.
    kinds
        Band -> ``"float"`` (default, ``float_list``), ``"int64"`` (``int64_list``) or
        ``"bytes"`` (one ``bytes_list`` value of raw uint8 pixels).
    default_value
        Value of margin pixels beyond the image; truncated and clamped for integer kinds.
    write_mixer
        Write ``PREFIX-mixer.json`` (EE omits it when ``maskedThreshold`` is not 1).
    tensor_depths
        Array band -> depth ``D``; stored as one feature of ``D * tile`` values, depth-major
        ``[D, H, W]`` [inferred].
    sequence_data
        Write one ``tf.train.SequenceExample`` per tile pixel (row-major in the tile, tiles
        row-major): scalar bands as one-value context features, array bands as feature lists
        of ``D`` one-value steps.
    feature_order
        ``None`` (default): TensorFlow serializes each Example and so picks the feature order
        itself (upb's hash order, which changes from process to process; the order it chose is
        returned as ``wire_order``). A permutation of the band names: each record is the
        concatenation of TensorFlow-serialized one-feature ``Features`` messages in that order
        inside a one-field Example header, which is the canonical encoding of the same map
        with its entries in that order; use it for reproducible bytes. Examples only.

    Returns
    -------
    ExportInfo
        The files written and the mosaic a reader must return.

    Raises
    ------
    ValueError
        If the bands disagree in shape, a kind or depth is wrong, or no whole patch fits.
    """
    kinds = dict(kinds or {})
    tensor_depths = dict(tensor_depths or {})
    height, width = _check_args(bands, kinds, tensor_depths)
    patch_width, patch_height = patch_size if patch_size is not None else (width, height)
    kx, ky = kernel_size
    if min(patch_width, patch_height, kx, ky) < 1:
        raise ValueError(f"patch_size {patch_size} and kernel_size {kernel_size} must be >= 1")
    if max_file_size is not None and max_file_size < 1:
        raise ValueError(f"max_file_size must be positive, got {max_file_size}")
    if feature_order is not None:
        if sequence_data:
            raise ValueError("feature_order applies to Examples only, not to sequence_data")
        if sorted(feature_order) != sorted(bands):
            raise ValueError(f"feature_order {feature_order} is not a permutation of the bands")
    patches_per_row, rows = width // patch_width, height // patch_height
    cols = patches_per_row
    if patches_per_row == 0 or rows == 0:
        raise ValueError(
            f"no whole {patch_width}x{patch_height} patch fits in a {width}x{height} image"
        )
    mx, my = kx // 2, ky // 2
    tile_width, tile_height = patch_width + 2 * mx, patch_height + 2 * my

    padded: dict[str, np.ndarray] = {}
    for name, array in bands.items():
        kind = kinds.get(name, "float")
        pad = [(0, 0)] * (array.ndim - 2) + [(my, my), (mx, mx)]
        fill = _default_for(kind, default_value)
        padded[name] = np.pad(np.asarray(array).astype(_DTYPES[kind]), pad, constant_values=fill)

    def tile(name: str, row: int, col: int) -> np.ndarray:
        y, x = row * patch_height, col * patch_width
        return padded[name][..., y : y + tile_height, x : x + tile_width]

    def iter_payloads() -> Iterator[bytes]:
        for row in range(rows):
            for col in range(patches_per_row):
                tiles = {name: tile(name, row, col) for name in bands}
                if sequence_data:
                    yield from _sequence_payloads(tiles, kinds, tensor_depths)
                else:
                    features = {n: _feature(kinds.get(n, "float"), t) for n, t in tiles.items()}
                    yield _example_payload(features, feature_order)

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    suffix = ".tfrecord.gz" if compressed else ".tfrecord"
    options = tf.io.TFRecordOptions(compression_type="GZIP" if compressed else "")
    shards: list[Path] = []
    records_per_shard: list[int] = []
    first_payload: bytes | None = None
    writer: tf.io.TFRecordWriter | None = None
    shard_bytes = 0
    try:
        for index, payload in enumerate(iter_payloads()):
            if first_payload is None:
                first_payload = payload
            elif feature_keys(payload) != feature_keys(first_payload):
                # expected's band order rests on every record sharing the first one's order
                raise RuntimeError(f"record {index} has a different feature order than record 0")
            size = RECORD_OVERHEAD + len(payload)
            full = max_file_size is not None and shard_bytes + size > max_file_size
            if writer is None or (full and records_per_shard[-1] > 0):
                if writer is not None:
                    writer.close()
                shards.append(folder / f"{prefix}-{len(shards):05d}{suffix}")
                writer = tf.io.TFRecordWriter(str(shards[-1]), options)
                records_per_shard.append(0)
                shard_bytes = 0
            writer.write(payload)
            records_per_shard[-1] += 1
            shard_bytes += size
    finally:
        if writer is not None:
            writer.close()
    assert first_payload is not None

    transform = Affine(*tuple(transform)[:6])
    mixer = None
    if write_mixer:
        mixer = folder / f"{prefix}-mixer.json"
        text = mixer_text(
            transform, crs, (patch_width, patch_height), patches_per_row, rows * patches_per_row
        )
        mixer.write_text(text, encoding="utf-8")

    wire_order = feature_keys(first_payload)
    names: list[str] = []
    band_kinds: list[str] = []
    planes: list[np.ndarray] = []
    for name in wire_order:
        core = padded[name][..., my : my + rows * patch_height, mx : mx + cols * patch_width]
        kind = kinds.get(name, "float")
        if name in tensor_depths:
            names += [f"{name}_{i}" for i in range(tensor_depths[name])]
            band_kinds += [kind] * tensor_depths[name]
            planes += list(core)
        else:
            names.append(name)
            band_kinds.append(kind)
            planes.append(core)
    dtype = np.result_type(*(_DTYPES[k] for k in band_kinds))
    expected = np.stack([p.astype(dtype) for p in planes])
    expected.setflags(write=False)

    return ExportInfo(
        folder=folder,
        prefix=prefix,
        shards=tuple(shards),
        mixer=mixer,
        expected=expected,
        band_names=tuple(names),
        band_kinds=tuple(band_kinds),
        wire_order=wire_order,
        transform=transform,
        crs=crs,
        patch_size=(patch_width, patch_height),
        kernel_size=(kx, ky),
        patches_per_row=patches_per_row,
        total_patches=rows * patches_per_row,
        records_per_shard=tuple(records_per_shard),
        compressed=compressed,
        default_value=default_value,
        sequence_data=sequence_data,
    )


def _example_payload(features: dict[str, tf.train.Feature], order: tuple[str, ...] | None) -> bytes:
    """Serialize one Example, in TensorFlow's own order or with its features in ``order``."""
    example = tf.train.Example(features=tf.train.Features(feature=features))
    if order is None:
        return example.SerializeToString()
    # Map entries are repeated field-1 items of Features, so one-entry messages concatenate
    # into the whole map with the entries in the order given.
    entries = b"".join(
        tf.train.Features(feature={name: features[name]}).SerializeToString() for name in order
    )
    payload = b"\x0a" + encode_varint(len(entries)) + entries
    if tf.train.Example.FromString(payload) != example:
        raise RuntimeError("reordered Example does not parse back to the same message")
    return payload


def encode_varint(value: int) -> bytes:
    """Encode a non-negative int as a protobuf varint."""
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _sequence_payloads(
    tiles: dict[str, np.ndarray], kinds: dict[str, str], tensor_depths: dict[str, int]
) -> Iterator[bytes]:
    """Serialized SequenceExamples, one per pixel of one tile, row-major."""
    tile_height, tile_width = next(iter(tiles.values())).shape[-2:]
    for y in range(tile_height):
        for x in range(tile_width):
            context = {}
            lists = {}
            for name, values in tiles.items():
                kind = kinds.get(name, "float")
                if name in tensor_depths:
                    steps = [_feature(kind, values[d, y, x : x + 1]) for d in range(len(values))]
                    lists[name] = tf.train.FeatureList(feature=steps)
                else:
                    context[name] = _feature(kind, values[y, x : x + 1])
            example = tf.train.SequenceExample(
                context=tf.train.Features(feature=context),
                feature_lists=tf.train.FeatureLists(feature_list=lists),
            )
            yield example.SerializeToString()
