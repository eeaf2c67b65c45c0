"""Tests of the mixer sidecar (tfrecord_io.image.mixer): parsing, Earth Engine's text, errors.

The independent oracle for the text layout is ``tests.tfexport.mixer_text`` (written without
tfrecord_io) and the verbatim mixer quoted in the format notes.
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import pytest
from affine import Affine
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.tfexport import mixer_text
from tfrecord_io import Mixer, MixerError, OptionError

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

DOC_MIXER = """{
  "projection": {
    "crs": "EPSG:4326",
    "affine": {
      "doubleMatrix": [8.983152841195215E-4, 0.0, 13.599595086285436, 0.0, -8.983152841195215E-4, 45.40175277468474]
    }
  },
  "patchDimensions": [256, 256],
  "patchesPerRow": 5,
  "totalPatches": 10
}"""  # noqa: E501 - verbatim from ee-tfrecord-format.md, section 2

DOC_DICT: dict[str, Any] = json.loads(DOC_MIXER)

# Subnormals are left to test_to_json_prints_doubles_as_java_does (Double.MIN_VALUE case).
finite = st.floats(allow_nan=False, allow_infinity=False, allow_subnormal=False, width=64)
scale = st.floats(1e-12, 1e12).flatmap(lambda v: st.sampled_from([v, -v]))
positive = st.integers(1, 100_000)


@st.composite
def mixers(draw: st.DrawFn) -> Mixer:
    a, e = draw(scale), draw(scale)
    b, d = draw(st.sampled_from([0.0, -0.0])), draw(st.sampled_from([0.0, -0.0]))
    if draw(st.booleans()):
        b, d = draw(scale), draw(scale)
    transform = Affine(a, b, draw(finite), d, e, draw(finite))
    if not (transform.determinant and math.isfinite(transform.determinant)):
        transform = Affine(a, 0.0, transform.c, 0.0, e, transform.f)
    per_row = draw(st.integers(1, 1000))
    return Mixer(
        crs=draw(st.sampled_from(["EPSG:4326", "EPSG:32610", "EPSG:3857"])),
        transform=transform,
        patch_width=draw(positive),
        patch_height=draw(positive),
        patches_per_row=per_row,
        total_patches=per_row * draw(st.integers(1, 1000)),
    )


def test_doc_mixer_parses() -> None:
    m = Mixer.from_json(DOC_MIXER)
    assert m.crs == "EPSG:4326"
    assert m.transform == Affine(
        8.983152841195215e-4, 0.0, 13.599595086285436, 0.0, -8.983152841195215e-4, 45.40175277468474
    )
    assert (m.patch_width, m.patch_height) == (256, 256)
    assert m.patches_per_row == 5
    assert m.total_patches == 10
    assert m.patch_rows == 2


def test_to_json_reproduces_doc_mixer_byte_for_byte() -> None:
    assert Mixer.from_json(DOC_MIXER).to_json().rstrip("\n") == DOC_MIXER


def test_to_dict_equals_doc_mixer_parsed() -> None:
    assert Mixer.from_json(DOC_MIXER).to_dict() == DOC_DICT


def test_to_dict_keys_are_in_earth_engine_order() -> None:
    d = Mixer.from_json(DOC_MIXER).to_dict()
    assert list(d) == ["projection", "patchDimensions", "patchesPerRow", "totalPatches"]
    assert list(d["projection"]) == ["crs", "affine"]


@SETTINGS
@given(m=mixers())
def test_from_json_of_to_json_round_trips(m: Mixer) -> None:
    assert Mixer.from_json(m.to_json()) == m


@SETTINGS
@given(m=mixers())
def test_to_json_matches_independent_mixer_text(m: Mixer) -> None:
    want = mixer_text(
        m.transform, m.crs, (m.patch_width, m.patch_height), m.patches_per_row, m.total_patches
    )
    assert m.to_json().rstrip("\n") == want


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.0, "0.0"),
        (10.0, "10.0"),
        (1.2e7, "1.2E7"),
        (8.983152841195215e-4, "8.983152841195215E-4"),
        (0.001, "0.001"),
        (9999999.0, "9999999.0"),
        (-30.0, "-30.0"),
        (1e-5, "1.0E-5"),
        (123456789.0, "1.23456789E8"),
        (5e-324, "4.9E-324"),  # Double.MIN_VALUE, as Java's own docs spell it
    ],
)
def test_to_json_prints_doubles_as_java_does(value: float, text: str) -> None:
    m = Mixer("EPSG:4326", Affine(value or 1.0, 0.0, value, 0.0, -1.0, 0.0), 8, 8, 1, 1)
    matrix = m.to_json().split('"doubleMatrix": [', 1)[1].split("]", 1)[0]
    assert matrix.split(", ")[2] == text


def test_from_file_reads_a_mixer_file(tmp_path: Path) -> None:
    path = tmp_path / "x-mixer.json"
    path.write_text(DOC_MIXER)
    assert Mixer.from_file(path) == Mixer.from_json(DOC_MIXER)


def _without(path: tuple[str, ...]) -> dict[str, Any]:
    data = copy.deepcopy(DOC_DICT)
    obj = data
    for key in path[:-1]:
        obj = obj[key]
    del obj[path[-1]]
    return data


def _with(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    data = copy.deepcopy(DOC_DICT)
    obj = data
    for key in path[:-1]:
        obj = obj[key]
    obj[path[-1]] = value
    return data


KEY_PATHS = [
    ("projection",),
    ("projection", "crs"),
    ("projection", "affine"),
    ("projection", "affine", "doubleMatrix"),
    ("patchDimensions",),
    ("patchesPerRow",),
    ("totalPatches",),
]


@pytest.mark.parametrize("path", KEY_PATHS, ids=".".join)
def test_missing_key_raises_mixer_error_naming_it(path: tuple[str, ...]) -> None:
    with pytest.raises(MixerError, match=f"'{'.'.join(path)}'"):
        Mixer.from_json(json.dumps(_without(path)))


MALFORMED = [
    (("projection",), "EPSG:4326", "projection.crs"),
    (("projection", "crs"), 4326, "projection.crs"),
    (("projection", "crs"), "", "projection.crs"),
    (("projection", "affine"), [1, 0, 0, 0, -1, 0], "projection.affine.doubleMatrix"),
    (("projection", "affine", "doubleMatrix"), [1.0, 0.0, 0.0], "doubleMatrix"),
    (("projection", "affine", "doubleMatrix"), [1, 0, 0, 0, "-1", 0], "doubleMatrix"),
    (("projection", "affine", "doubleMatrix"), [1, 0, 0, 0, True, 0], "doubleMatrix"),
    (("patchDimensions",), [256], "patchDimensions"),
    (("patchDimensions",), 256, "patchDimensions"),
    (("patchDimensions",), [256, 0], "patchDimensions[1]"),
    (("patchDimensions",), [25.6, 256], "patchDimensions[0]"),
    (("patchesPerRow",), 0, "patchesPerRow"),
    (("patchesPerRow",), "5", "patchesPerRow"),
    (("patchesPerRow",), 5.0, "patchesPerRow"),
    (("totalPatches",), -10, "totalPatches"),
    (("totalPatches",), None, "totalPatches"),
]


@pytest.mark.parametrize(
    ("path", "value", "named"), MALFORMED, ids=[f"{'.'.join(p)}={v!r}" for p, v, _ in MALFORMED]
)
def test_malformed_key_raises_mixer_error_naming_it(
    path: tuple[str, ...], value: Any, named: str
) -> None:
    with pytest.raises(MixerError) as excinfo:
        Mixer.from_json(json.dumps(_with(path, value)))
    assert named in str(excinfo.value)


def test_degenerate_affine_raises_mixer_error() -> None:
    with pytest.raises(MixerError, match="degenerate"):
        Mixer.from_json(json.dumps(_with(("projection", "affine", "doubleMatrix"), [0] * 6)))


def test_total_patches_not_a_multiple_of_patches_per_row_raises_mixer_error() -> None:
    with pytest.raises(MixerError, match="totalPatches"):
        Mixer.from_json(json.dumps(_with(("totalPatches",), 11)))


def test_not_json_raises_mixer_error() -> None:
    with pytest.raises(MixerError, match="not valid JSON"):
        Mixer.from_json(DOC_MIXER[:-3])


def test_top_level_not_an_object_raises_mixer_error() -> None:
    with pytest.raises(MixerError, match="'projection'"):
        Mixer.from_json("[1, 2]")


def test_mixer_error_from_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad-mixer.json"
    path.write_text(json.dumps(_without(("totalPatches",))))
    with pytest.raises(MixerError) as excinfo:
        Mixer.from_file(path)
    assert str(path) in str(excinfo.value)
    assert "totalPatches" in str(excinfo.value)


def test_mixer_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="projection"):
        Mixer.from_json("{}")


# -- a grid given by hand -------------------------------------------------------------------


def test_from_grid_builds_the_mixer_the_grid_describes() -> None:
    transform = Affine(30.0, 0.0, 500000.0, 0.0, -30.0, 4200000.0)
    grid = {"patch_size": (64, 32), "patches_per_row": 3, "crs": "EPSG:32633"}
    expected = Mixer("EPSG:32633", transform, 64, 32, 3, 6)
    assert Mixer.from_grid({**grid, "transform": transform}, total_patches=6) == expected
    assert Mixer.from_grid({**grid, "transform": tuple(transform)[:6], "total_patches": 6}) == (
        expected
    )


_GRID = {"patch_size": (4, 4), "patches_per_row": 1, "crs": "EPSG:4326", "transform": [1] * 6}


@pytest.mark.parametrize(
    ("grid", "match"),
    [
        ({k: v for k, v in _GRID.items() if k != "transform"}, "transform"),
        ({**_GRID, "z": 1}, "z"),
        ({**_GRID, "patch_size": (0, 4)}, "invalid"),
    ],
)
def test_from_grid_refuses_a_grid_missing_a_key_with_an_unknown_key_or_invalid(
    grid: dict[str, Any], match: str
) -> None:
    with pytest.raises(OptionError, match=match):
        Mixer.from_grid(grid, total_patches=1)
