"""The mixer: the JSON sidecar that georeferences an export's patch grid.

``Mixer.from_json`` reads it; ``Mixer.to_json`` writes Earth Engine's own text layout, which is
protobuf-java's JsonFormat printer: two-space indent, ``": "`` between key and value, arrays
inline, doubles as Java's ``Double.toString`` prints them. That layout is [inferred] from real
files (see the format notes, section 2); ``_java_double`` is the one place it is encoded.
"""

from __future__ import annotations

import json
import math
import os
import stat
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from affine import Affine

from tfrecord_io.errors import (
    MissingMixerError,
    MixerError,
    OptionError,
    TFRecordIOError,
    UnreadableMixerError,
)
from tfrecord_io.format.storage import StorageOptions, file_kind, is_url, read_text

__all__ = ["Mixer", "read_mixer_text"]


@dataclass(frozen=True)
class Mixer:
    """The georeferencing of an export's patch grid.

    Attributes
    ----------
    crs : str
        The CRS as Earth Engine wrote it: an EPSG code string, or WKT.
    transform : Affine
        Places the top-left corner of the unpadded patch grid (``doubleMatrix``).
    patch_width, patch_height : int
        Size of an unpadded patch (``patchDimensions`` is ``[width, height]``).
    patches_per_row : int
        Patches in one row of the grid.
    total_patches : int
        Patches in the whole grid; a multiple of ``patches_per_row``.
    """

    crs: str
    transform: Affine
    patch_width: int
    patch_height: int
    patches_per_row: int
    total_patches: int

    def __post_init__(self) -> None:
        for name in ("patch_width", "patch_height", "patches_per_row", "total_patches"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise MixerError(f"{name} must be a positive integer, not {value!r}")
        if self.total_patches % self.patches_per_row:
            raise MixerError(
                f"totalPatches ({self.total_patches}) is not a multiple of patchesPerRow "
                f"({self.patches_per_row}): the grid has no whole number of rows"
            )
        if not isinstance(self.transform, Affine) or self.transform.determinant == 0:
            raise MixerError(f"the affine transform is degenerate: {self.transform!r}")
        # NaN, infinities, or a scale so large that the grid's corners overflow would make a
        # raster with a meaningless georeferencing.
        try:
            width = float(self.patch_width * self.patches_per_row)
            height = float(self.patch_height * self.patch_rows)
        except OverflowError:
            raise MixerError(
                f"the grid ({self.patches_per_row} patches per row, {self.total_patches} in "
                "all) is too large to place in any coordinate system"
            ) from None
        a, b, c, d, e, f = self.transform[:6]
        corner = (a * width + b * height + c, d * width + e * height + f)
        if not all(math.isfinite(v) for v in (*self.transform[:6], *corner)) or not math.isfinite(
            self.transform.determinant
        ):
            raise MixerError(
                f"the affine transform {list(self.transform)[:6]} is not finite over the grid "
                "(NaN, Infinity, or a scale whose corners overflow)"
            )

    @property
    def patch_rows(self) -> int:
        """Rows of patches in the grid (``totalPatches / patchesPerRow``)."""
        return self.total_patches // self.patches_per_row

    @classmethod
    def from_dict(cls, data: Any, source: str = "mixer") -> Mixer:
        """Build a Mixer from the parsed JSON object.

        Parameters
        ----------
        data : dict
            The parsed mixer.
        source : str
            Where it came from, for error messages.

        Raises
        ------
        MixerError
            A key is missing or has the wrong type; the message names it.
        """

        def get(obj: Any, key: str, path: str) -> Any:
            if not isinstance(obj, dict) or key not in obj:
                raise MixerError(f"{source}: the key '{path}' is missing")
            return obj[key]

        def integer(value: Any, path: str) -> int:
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise MixerError(f"{source}: '{path}' must be a positive integer, not {value!r}")
            return value

        projection = get(data, "projection", "projection")
        crs = get(projection, "crs", "projection.crs")
        if not isinstance(crs, str) or not crs:
            raise MixerError(f"{source}: 'projection.crs' must be a non-empty string")
        matrix = get(
            get(projection, "affine", "projection.affine"),
            "doubleMatrix",
            "projection.affine.doubleMatrix",
        )
        if (
            not isinstance(matrix, list)
            or len(matrix) != 6
            or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in matrix)
        ):
            raise MixerError(
                f"{source}: 'projection.affine.doubleMatrix' must be a list of six numbers "
                "[scaleX, shearX, translateX, shearY, scaleY, translateY]"
            )
        try:
            coefficients = [float(v) for v in matrix]
        except OverflowError:
            raise MixerError(
                f"{source}: 'projection.affine.doubleMatrix' holds a number too large for a double"
            ) from None
        dims = get(data, "patchDimensions", "patchDimensions")
        if not isinstance(dims, list) or len(dims) != 2:
            raise MixerError(f"{source}: 'patchDimensions' must be [width, height]")
        try:
            return cls(
                crs=crs,
                transform=Affine(*coefficients),
                patch_width=integer(dims[0], "patchDimensions[0]"),
                patch_height=integer(dims[1], "patchDimensions[1]"),
                patches_per_row=integer(
                    get(data, "patchesPerRow", "patchesPerRow"), "patchesPerRow"
                ),
                total_patches=integer(get(data, "totalPatches", "totalPatches"), "totalPatches"),
            )
        except MixerError as exc:
            if str(exc).startswith(source):
                raise
            raise MixerError(f"{source}: {exc}") from None

    @classmethod
    def from_json(cls, text: str, source: str = "mixer") -> Mixer:
        """Parse a mixer's JSON text.

        Parameters
        ----------
        text : str
            The JSON.
        source : str
            Where it came from (a path), for error messages.

        Raises
        ------
        MixerError
            The text is not JSON, or a key is missing or malformed.
        """
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise MixerError(f"{source}: not valid JSON ({exc})") from None
        except RecursionError:
            raise MixerError(f"{source}: the JSON is nested too deeply to be a mixer") from None
        return cls.from_dict(data, source)

    @classmethod
    def from_file(
        cls, path: str | os.PathLike[str], storage_options: StorageOptions = None
    ) -> Mixer:
        """Read a mixer file from a path, or from a URL with fsspec's ``storage_options``.

        Raises
        ------
        MissingMixerError
            The file does not exist (or is a dangling symbolic link).
        MixerError
            The file is not a readable regular file, not UTF-8, or malformed; the message names
            the file and the key.
        """
        text = read_mixer_text(path, storage_options)
        return cls.from_json(text, source=f"'{os.fspath(path)}'")

    @classmethod
    def from_grid(cls, grid: dict[str, Any], total_patches: int | None = None) -> Mixer:
        """Build a mixer from a grid given by hand (exports written without a mixer).

        Parameters
        ----------
        grid : dict
            ``patch_size`` (width, height), ``patches_per_row``, ``crs``, ``transform`` (an
            Affine or its six coefficients), and optionally ``total_patches``.
        total_patches : int, optional
            Records counted in the export, used when ``grid`` does not say.

        Raises
        ------
        OptionError
            A key is unknown or missing, or the grid is invalid.
        """
        unknown = set(grid) - {"patch_size", "patches_per_row", "crs", "transform", "total_patches"}
        if unknown:
            raise OptionError(f"unknown grid key(s): {', '.join(sorted(unknown))}")
        try:
            width, height = grid["patch_size"]
            transform = grid["transform"]
            if not isinstance(transform, Affine):
                transform = Affine(*transform[:6])
            return cls(
                crs=str(grid["crs"]),
                transform=transform,
                patch_width=int(width),
                patch_height=int(height),
                patches_per_row=int(grid["patches_per_row"]),
                total_patches=int(grid.get("total_patches") or total_patches or 0),
            )
        except KeyError as exc:
            raise OptionError(
                f"the grid given by hand needs the key {exc}: patch_size, patches_per_row, crs "
                "and transform"
            ) from None
        except TFRecordIOError as exc:
            raise OptionError(f"the grid given by hand is invalid: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        """Return the mixer as a JSON-ready dict, keys in Earth Engine's order."""
        return {
            "projection": {"crs": self.crs, "affine": {"doubleMatrix": list(self.transform)[:6]}},
            "patchDimensions": [self.patch_width, self.patch_height],
            "patchesPerRow": self.patches_per_row,
            "totalPatches": self.total_patches,
        }

    def to_json(self) -> str:
        """Return the mixer in Earth Engine's exact text layout (no newline after the ``}``)."""
        matrix = ", ".join(_java_double(v) for v in list(self.transform)[:6])
        return (
            "{\n"
            '  "projection": {\n'
            f'    "crs": {json.dumps(self.crs)},\n'
            '    "affine": {\n'
            f'      "doubleMatrix": [{matrix}]\n'
            "    }\n"
            "  },\n"
            f'  "patchDimensions": [{self.patch_width}, {self.patch_height}],\n'
            f'  "patchesPerRow": {self.patches_per_row},\n'
            f'  "totalPatches": {self.total_patches}\n'
            "}"
        )


def _java_double(value: float) -> str:
    """Format a float as Java's ``Double.toString`` does (shortest round-trip digits).

    Plain notation with at least one fractional digit when 1e-3 <= |x| < 1e7, otherwise
    ``d.dddE<n>`` with a capital ``E`` and no ``+``. Digits as JDK 19+ chooses them: the shortest
    that round-trip, but at least two, and then the closest (which differs from Python's shortest
    repr only for a few subnormals).
    """
    value = float(value)
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "Infinity" if value > 0 else "-Infinity"
    sign = "-" if str(value).startswith("-") else ""
    if value == 0:
        return sign + "0.0"
    _, digit_tuple, exponent = Decimal(repr(abs(value))).as_tuple()
    digits = "".join(map(str, digit_tuple)).rstrip("0") or "0"
    # value = 0.d1d2d3... * 10**point
    point = len(digit_tuple) + int(exponent)
    if len(digits) == 1:
        # Java (JDK 19+) picks, among decimals of at least two digits that round to the value,
        # the closest: 4.9E-324 for Double.MIN_VALUE where the shortest is 5e-324.
        _, two, exp2 = (
            Decimal(abs(value))
            .quantize(Decimal(1).scaleb(point - 2), rounding="ROUND_HALF_EVEN")
            .as_tuple()
        )
        digits = "".join(map(str, two)).rstrip("0") or "0"
        point = len(two) + int(exp2)
    if 1e-3 <= abs(value) < 1e7:
        if point <= 0:
            return f"{sign}0.{'0' * -point}{digits}"
        whole, frac = digits[:point].ljust(point, "0"), digits[point:]
        return f"{sign}{whole}.{frac or '0'}"
    return f"{sign}{digits[0]}.{digits[1:] or '0'}E{point - 1}"


def read_mixer_text(path: str | os.PathLike[str], storage_options: StorageOptions = None) -> str:
    """Read a mixer file's text, exactly, from a path or a URL; :meth:`Mixer.from_file` parses it.

    Raises
    ------
    MissingMixerError
        The file does not exist (or is a dangling symbolic link).
    MixerError
        The file is not a readable regular file, or not UTF-8.
    """
    source = f"'{os.fspath(path)}'"
    if is_url(path):
        return read_text(path, storage_options)
    try:
        mode = os.stat(path).st_mode
        if not stat.S_ISREG(mode):
            # Checked before opening: a FIFO would block open() forever.
            raise UnreadableMixerError(
                f"{source}: the mixer is {file_kind(mode)}, not a regular file: name the "
                "mixer JSON file"
            )
        with open(path, "rb") as f:
            raw = f.read()
    except UnreadableMixerError:
        raise
    except FileNotFoundError:
        raise MissingMixerError(
            f"{source} does not exist (or is a broken link): name the mixer JSON file"
        ) from None
    except OSError as exc:
        raise UnreadableMixerError(
            f"{source} cannot be read ({exc.strerror or exc}): check its permissions"
        ) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MixerError(
            f"{source} is not UTF-8 text (byte {exc.start}): it is not a mixer"
        ) from None
    return text
