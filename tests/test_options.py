"""Earth Engine's formatOptions: keys, defaults and refusals, as the writer parses them."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tfrecord_io.errors import OptionError
from tfrecord_io.image.options import (
    DEFAULT_MAX_FILE_SIZE,
    EE_KEYS,
    FormatOptions,
    parse_kernel_size,
)


def test_defaults_are_earth_engines() -> None:
    o = FormatOptions.from_ee()
    assert (o.kernel_x, o.kernel_y, o.compressed, o.max_file_size, o.default_value,
            o.sequence_data, o.collapse_bands, o.masked_threshold) == (
        1, 1, True, DEFAULT_MAX_FILE_SIZE, 0.0, False, False, 1.0)


def test_max_file_size_defaults_to_one_gib() -> None:
    assert DEFAULT_MAX_FILE_SIZE == 1 << 30


def test_patch_dimensions_are_width_then_height() -> None:
    o = FormatOptions.from_ee({"patchDimensions": [256, 128]})
    assert (o.patch_width, o.patch_height) == (256, 128)


def test_odd_kernel_margin_is_floor_half() -> None:
    o = FormatOptions.from_ee({"kernelSize": [5, 4]})
    assert (o.margin_x, o.margin_y) == (2, 2)


def test_snake_case_keywords_mean_the_same_as_camel_case_keys() -> None:
    camel = FormatOptions.from_ee({"patchDimensions": [8, 8], "maxFileSize": 100,
                                   "tensorDepths": {"A": 2}, "collapseBands": True})
    snake = FormatOptions.from_ee(patch_dimensions=[8, 8], max_file_size=100,
                                  tensor_depths={"A": 2}, collapse_bands=True)
    assert camel == snake


def test_unknown_key_is_an_error() -> None:
    with pytest.raises(OptionError, match="not a formatOptions"):
        FormatOptions.from_ee({"fileDimensions": [8, 8]})


def test_unknown_key_error_suggests_the_close_key() -> None:
    with pytest.raises(OptionError, match="kernelSize"):
        FormatOptions.from_ee({"kernelsize": [3, 3]})


def test_snake_case_key_in_format_options_names_the_camel_case_spelling() -> None:
    with pytest.raises(OptionError, match="'patchDimensions'"):
        FormatOptions.from_ee({"patch_dimensions": [8, 8]})


def test_camel_case_keyword_is_an_error() -> None:
    with pytest.raises(OptionError, match="patch_dimensions="):
        FormatOptions.from_ee(patchDimensions=[8, 8])


def test_option_given_twice_is_an_error() -> None:
    with pytest.raises(OptionError, match="twice"):
        FormatOptions.from_ee({"kernelSize": [3, 3]}, kernel_size=[3, 3])


@pytest.mark.parametrize(
    ("key", "value"),
    [("patchDimensions", [0, 8]), ("patchDimensions", [8]), ("kernelSize", [1.5, 2]),
     ("compressed", "yes"), ("maxFileSize", 0), ("defaultValue", "0"),
     ("tensorDepths", [3]), ("tensorDepths", {"A": 0}), ("maskedThreshold", 1.5),
     ("sequenceData", 1), ("collapseBands", None)],
)
def test_invalid_values_are_refused(key: str, value: object) -> None:
    with pytest.raises(OptionError, match=key):
        FormatOptions.from_ee({key: value})


def test_masked_threshold_below_one_writes_no_mixer() -> None:
    assert not FormatOptions.from_ee({"maskedThreshold": 0.99}).writes_mixer


def test_every_ee_key_has_a_snake_case_spelling() -> None:
    assert sorted(EE_KEYS) == sorted([
        "patchDimensions", "kernelSize", "compressed", "maxFileSize", "defaultValue",
        "tensorDepths", "sequenceData", "collapseBands", "maskedThreshold"])


@settings(max_examples=30, deadline=None)
@given(
    patch=st.one_of(st.none(), st.tuples(st.integers(1, 512), st.integers(1, 512))),
    kernel=st.tuples(st.integers(1, 64), st.integers(1, 64)),
    compressed=st.booleans(),
    size=st.integers(1, 2**40),
    default=st.floats(allow_nan=False),
    threshold=st.floats(0, 1),
)
def test_to_ee_round_trips(patch, kernel, compressed, size, default, threshold) -> None:
    options = FormatOptions.from_ee(
        {"kernelSize": list(kernel), "compressed": compressed, "maxFileSize": size,
         "defaultValue": default, "maskedThreshold": threshold,
         **({"patchDimensions": list(patch)} if patch else {})}
    )
    assert FormatOptions.from_ee(options.to_ee()) == options


# -- sizes typed by users (the CLI's --kernel-size, the QGIS plugin's fields) ----------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [("3", (3, 3)), ("4,2", (4, 2)), ("4x2", (4, 2)), (" 5X7 ", (5, 7)), ("", None), (None, None)],
)
def test_parse_kernel_size_reads_k_or_x_y(
    text: str | None, expected: tuple[int, int] | None
) -> None:
    assert parse_kernel_size(text) == expected


@pytest.mark.parametrize("text", ["a", "1,2,3", "0", "3,-1", "2.5"])
def test_parse_kernel_size_refuses_anything_but_one_or_two_positive_integers(text: str) -> None:
    with pytest.raises(OptionError, match="patchDimensions"):
        parse_kernel_size(text, "patchDimensions")
