"""Earth Engine's TFRecord ``formatOptions``: parsing, validation and defaults.

:meth:`FormatOptions.from_ee` takes the same dict a user passes to ``ee.batch.Export.image.*``
(camelCase keys, Earth Engine's meanings and defaults) and the same options as snake_case keyword
arguments. An unknown key is an error, as it is in Earth Engine. This module does no I/O.

Defaults, from Earth Engine's export guide: ``kernelSize`` ``[1, 1]``, ``compressed`` true (the
guide's default; both official clients only send it when asked), ``maxFileSize`` 1 GiB,
``defaultValue`` 0, ``sequenceData`` and ``collapseBands`` false, ``maskedThreshold`` 1. When
``patchDimensions`` is not given the whole image is one patch [inferred].
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tfrecord_io.errors import OptionError

__all__ = ["DEFAULT_MAX_FILE_SIZE", "EE_KEYS", "FormatOptions", "parse_kernel_size"]

DEFAULT_MAX_FILE_SIZE = 1 << 30

EE_KEYS = {
    "patchDimensions": "patch_dimensions",
    "kernelSize": "kernel_size",
    "compressed": "compressed",
    "maxFileSize": "max_file_size",
    "defaultValue": "default_value",
    "tensorDepths": "tensor_depths",
    "sequenceData": "sequence_data",
    "collapseBands": "collapse_bands",
    "maskedThreshold": "masked_threshold",
}
"""Earth Engine's ``formatOptions`` keys for TFRecord images and their snake_case spelling."""

_SNAKE_KEYS = {snake: camel for camel, snake in EE_KEYS.items()}


@dataclass(frozen=True)
class FormatOptions:
    """The ``formatOptions`` of a TFRecord image export, validated, with defaults filled in.

    Attributes
    ----------
    patch_width, patch_height : int or None
        ``patchDimensions``; None means the whole image is one patch.
    kernel_x, kernel_y : int
        ``kernelSize``; each stored tile has ``floor(k / 2)`` pixels of margin on each side.
    compressed : bool
        Gzip the shards (``.tfrecord.gz``).
    max_file_size : int
        Bytes per shard before compression; a record is never split.
    default_value : float
        Written for masked pixels and beyond the image.
    tensor_depths : dict of str to int
        Array band name -> depth of the feature it becomes.
    sequence_data : bool
        One ``SequenceExample`` per pixel.
    collapse_bands : bool
        All bands in one feature named after the first band.
    masked_threshold : float
        Largest fraction of masked pixels a written patch may have; below 1, no mixer is written.
    """

    patch_width: int | None = None
    patch_height: int | None = None
    kernel_x: int = 1
    kernel_y: int = 1
    compressed: bool = True
    max_file_size: int = DEFAULT_MAX_FILE_SIZE
    default_value: float = 0.0
    tensor_depths: dict[str, int] = field(default_factory=dict)
    sequence_data: bool = False
    collapse_bands: bool = False
    masked_threshold: float = 1.0

    @property
    def margin_x(self) -> int:
        """Margin stored left and right of each patch: ``floor(kernel_x / 2)``."""
        return self.kernel_x // 2

    @property
    def margin_y(self) -> int:
        """Margin stored above and below each patch: ``floor(kernel_y / 2)``."""
        return self.kernel_y // 2

    @property
    def writes_mixer(self) -> bool:
        """Earth Engine writes no mixer when ``maskedThreshold`` is not 1."""
        return self.masked_threshold == 1

    @classmethod
    def from_ee(
        cls, format_options: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> FormatOptions:
        """Parse Earth Engine's ``formatOptions`` dict and/or the same options in snake_case.

        Parameters
        ----------
        format_options : mapping, optional
            Earth Engine's keys: ``patchDimensions``, ``kernelSize``, ``compressed``,
            ``maxFileSize``, ``defaultValue``, ``tensorDepths``, ``sequenceData``,
            ``collapseBands``, ``maskedThreshold``.
        **kwargs
            The same options in snake_case (``patch_dimensions=[256, 256]``, ...).

        Returns
        -------
        FormatOptions

        Raises
        ------
        OptionError
            A key is unknown, given twice, or has a value Earth Engine would refuse.
        """
        values: dict[str, Any] = {}
        for key, value in (format_options or {}).items():
            if key not in EE_KEYS:
                raise OptionError(_unknown(key, EE_KEYS, "formatOptions"))
            values[EE_KEYS[key]] = value
        for key, value in kwargs.items():
            if key not in _SNAKE_KEYS:
                raise OptionError(_unknown(key, _SNAKE_KEYS, "format option keyword"))
            if key in values:
                raise OptionError(
                    f"the format option {_SNAKE_KEYS[key]!r} is given twice, in format_options "
                    f"and as {key}=: give it once"
                )
            values[key] = value
        patch = values.get("patch_dimensions")
        patch_width: int | None = None
        patch_height: int | None = None
        if patch is not None:
            patch_width, patch_height = _pair(patch, "patchDimensions")
        kernel_x, kernel_y = _pair(values.get("kernel_size", (1, 1)), "kernelSize")
        max_file_size = values.get("max_file_size", DEFAULT_MAX_FILE_SIZE)
        if not _positive_int(max_file_size):
            raise OptionError(
                f"maxFileSize must be a positive number of bytes, not {max_file_size!r}"
            )
        default_value = values.get("default_value", 0.0)
        if isinstance(default_value, bool) or not isinstance(default_value, int | float):
            raise OptionError(f"defaultValue must be a number, not {default_value!r}")
        depths = values.get("tensor_depths") or {}
        if not isinstance(depths, Mapping):
            raise OptionError(
                f"tensorDepths must map array band names to depths, e.g. {{'A': 3}}, not {depths!r}"
            )
        tensor_depths: dict[str, int] = {}
        for name, depth in depths.items():
            if not isinstance(name, str) or not name:
                raise OptionError(f"tensorDepths keys must be band names, not {name!r}")
            if not _positive_int(depth):
                raise OptionError(
                    f"tensorDepths[{name!r}] must be a positive integer, not {depth!r}"
                )
            tensor_depths[name] = depth
        threshold = values.get("masked_threshold", 1.0)
        if (
            isinstance(threshold, bool)
            or not isinstance(threshold, int | float)
            or not 0 <= threshold <= 1
        ):
            raise OptionError(f"maskedThreshold must be a number from 0 to 1, not {threshold!r}")
        return cls(
            patch_width=patch_width,
            patch_height=patch_height,
            kernel_x=kernel_x,
            kernel_y=kernel_y,
            compressed=_bool(values.get("compressed", True), "compressed"),
            max_file_size=max_file_size,
            default_value=float(default_value),
            tensor_depths=tensor_depths,
            sequence_data=_bool(values.get("sequence_data", False), "sequenceData"),
            collapse_bands=_bool(values.get("collapse_bands", False), "collapseBands"),
            masked_threshold=float(threshold),
        )

    def to_ee(self) -> dict[str, Any]:
        """Return the options as Earth Engine's ``formatOptions`` dict (camelCase keys)."""
        out: dict[str, Any] = {}
        if self.patch_width is not None:
            out["patchDimensions"] = [self.patch_width, self.patch_height]
        out.update(
            kernelSize=[self.kernel_x, self.kernel_y],
            compressed=self.compressed,
            maxFileSize=self.max_file_size,
            defaultValue=self.default_value,
            sequenceData=self.sequence_data,
            collapseBands=self.collapse_bands,
            maskedThreshold=self.masked_threshold,
        )
        if self.tensor_depths:
            out["tensorDepths"] = dict(self.tensor_depths)
        return out


def parse_kernel_size(text: str | None, name: str = "kernelSize") -> tuple[int, int] | None:
    """Parse a size typed by a user, ``K`` or ``X,Y`` (also ``XxY``), into ``(x, y)``.

    The command line and the QGIS plugin read ``kernelSize`` (and ``patchDimensions``) this way.

    Parameters
    ----------
    text : str or None
        What the user typed; None or blank means not given.
    name : str
        The option's name, for the error message.

    Returns
    -------
    (int, int) or None
        ``(x, y)``, or None when nothing was given.

    Raises
    ------
    OptionError
        The text is not one or two positive integers.
    """
    text = (text or "").strip()
    if not text:
        return None
    try:
        numbers = [int(part) for part in text.lower().replace("x", ",").split(",")]
    except ValueError:
        numbers = []
    if len(numbers) not in (1, 2):
        raise OptionError(f"{name}: expected K or X,Y, not {text!r}")
    return _pair(numbers[0] if len(numbers) == 1 else tuple(numbers), name)


def _unknown(key: object, known: Mapping[str, str], what: str) -> str:
    text = f"{key!r} is not a {what} of Earth Engine TFRecord image exports"
    other = EE_KEYS if known is _SNAKE_KEYS else _SNAKE_KEYS
    if isinstance(key, str) and key in other:
        spelled = other[key]
        return (
            f"{text}; spell it {spelled!r} there"
            if what == "formatOptions"
            else (f"{text}; spell it {spelled}= as a keyword")
        )
    close = difflib.get_close_matches(str(key), list(known), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"{text}{hint} Known: {', '.join(known)}."


def _pair(value: Any, name: str) -> tuple[int, int]:
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value, value)
    try:
        x, y = value
    except (TypeError, ValueError):
        raise OptionError(f"{name} must be [x, y], not {value!r}") from None
    for v in (x, y):
        if not _positive_int(v):
            raise OptionError(f"{name} must be two positive integers [x, y], not {value!r}")
    return x, y


def _bool(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise OptionError(f"{name} must be true or false, not {value!r}")
    return value


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1
