"""Regression tests of the audit's defects in the mixer, the reader and validate (issue 9).

Each reproduction starts from a writable copy of ``data/sample`` (the ``export`` fixture) and
changes it as the audit described; each test is named for what must hold now.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tfrecord_io
from tests.conftest import SAMPLE
from tfrecord_io.errors import (
    MissingMixerError,
    MixerError,
    RecordCountError,
    TFRecordIOError,
)
from tfrecord_io.format.records import frame_record, iter_records
from tfrecord_io.image.grid import PatchGrid, sample
from tfrecord_io.image.layout import BandLayout
from tfrecord_io.image.mixer import Mixer


def _mixer(folder: Path) -> Path:
    return folder / "sample-mixer.json"


def _edit_mixer(folder: Path, change: Any) -> None:
    path = _mixer(folder)
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def _set_total(folder: Path, total: int, per_row: int | None = None) -> None:
    def change(data: dict[str, Any]) -> None:
        data["totalPatches"] = total
        if per_row is not None:
            data["patchesPerRow"] = per_row

    _edit_mixer(folder, change)


# -- D2, D3, D4, D5: foreign exceptions from the mixer ---------------------------------------


def test_d2_mixer_not_utf8_raises_mixer_error(export: Any) -> None:
    folder = export()
    _mixer(folder).write_bytes(b'{"projection": "\xff\xfe"}')
    with pytest.raises(MixerError, match="not UTF-8"):
        tfrecord_io.open(folder)


def test_d2_validate_reports_a_mixer_not_utf8(export: Any) -> None:
    folder = export()
    _mixer(folder).write_bytes(b"\xff" * 10)
    assert [p.error for p in tfrecord_io.validate(folder)] == ["MixerError"]


def test_d3_deeply_nested_mixer_raises_mixer_error(export: Any) -> None:
    folder = export()
    _mixer(folder).write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(MixerError, match="nested too deeply"):
        tfrecord_io.open(folder)


def test_d4_huge_integer_in_double_matrix_raises_mixer_error(export: Any) -> None:
    folder = export()
    _mixer(folder).write_text(_mixer(folder).read_text().replace("630000.0", "1" + "0" * 400))
    with pytest.raises(MixerError, match="too large for a double"):
        tfrecord_io.open(folder)


def test_d5_mixer_that_is_a_directory_raises_mixer_error(export: Any, tmp_path: Path) -> None:
    folder = export()
    (tmp_path / "dir.json").mkdir()
    with pytest.raises(MixerError, match="not a regular file"):
        tfrecord_io.open(folder, mixer=tmp_path / "dir.json")


def test_d5_mixer_that_is_a_dangling_symlink_raises_missing_mixer_error(
    export: Any, tmp_path: Path
) -> None:
    folder = export()
    link = tmp_path / "gone.json"
    link.symlink_to(tmp_path / "nowhere.json")
    with pytest.raises(MissingMixerError, match="broken link"):
        tfrecord_io.open(folder, mixer=link)


def test_d5_mixer_that_is_a_looping_symlink_raises_mixer_error(tmp_path: Path) -> None:
    (tmp_path / "a.json").symlink_to(tmp_path / "b.json")
    (tmp_path / "b.json").symlink_to(tmp_path / "a.json")
    with pytest.raises(MixerError, match="cannot be read"):
        Mixer.from_file(tmp_path / "a.json")


# -- D8, D9, D10: allocations and hangs --------------------------------------------------------


@pytest.mark.parametrize("total", [10**6, 10**30, 10**60])
def test_d8_read_of_a_huge_claimed_grid_raises_record_count_error(export: Any, total: int) -> None:
    folder = export()
    _set_total(folder, total, per_row=10)
    with tfrecord_io.open(folder) as ds, pytest.raises(RecordCountError, match="24 records"):
        ds.read(1)


def test_d9_read_of_a_claimed_grid_of_50000_patches_fails_before_any_patch_work(
    export: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = export()
    _set_total(folder, 50_004)
    samples = _count_samples(monkeypatch)
    with tfrecord_io.open(folder) as ds, pytest.raises(RecordCountError):
        ds.read(1)
    assert samples == [0]  # the claim was checked before the grid was walked


def _count_samples(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the patch samples PatchGrid.iter_samples yields from now on."""
    count = [0]
    real = PatchGrid.iter_samples

    def counted(self: PatchGrid, rows: np.ndarray, cols: np.ndarray) -> Any:
        for found in real(self, rows, cols):
            count[0] += 1
            yield found

    monkeypatch.setattr(PatchGrid, "iter_samples", counted)
    return count


class _Touched(np.ndarray):
    """Samples that count the elements every numpy ufunc over them (or arrays made from them)
    reads: the work of a pass over them, whatever the pass is."""

    elements = 0

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        _Touched.elements += sum(x.size for x in inputs if isinstance(x, np.ndarray))
        plain = [x.view(np.ndarray) if isinstance(x, _Touched) else x for x in inputs]
        out = getattr(ufunc, method)(*plain, **kwargs)
        return out.view(_Touched) if isinstance(out, np.ndarray) else out


def _samples_work(patch_rows: int) -> int:
    grid = PatchGrid(patch_width=2, patch_height=64, patches_per_row=2, patch_rows=patch_rows)
    rows = sample(0, grid.height, grid.height).view(_Touched)
    cols = sample(0, 4, 4).view(_Touched)
    _Touched.elements = 0
    parts = list(grid.iter_samples(rows, cols))
    assert len(parts) == grid.total_patches
    return _Touched.elements


def test_d9_patch_samples_are_linear_in_the_grid() -> None:
    small, large = _samples_work(1_000), _samples_work(8_000)
    assert small > 0
    assert large <= 8 * small * 1.5  # linear: about 8 times; quadratic: about 64 times


def test_d10_read_of_7680_bands_builds_the_band_tuples_once(
    export: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = export()
    _edit_mixer(folder, lambda data: data.update(patchDimensions=[1, 2]))
    built = {"dtypes": 0, "names": 0}
    for name in built:
        getter = getattr(BandLayout, name).fget

        def counted(self: BandLayout, name: str = name, getter: Any = getter) -> Any:
            built[name] += 1
            return getter(self)

        monkeypatch.setattr(BandLayout, name, property(counted))
    with tfrecord_io.open(folder, kernel_size=1) as ds:
        assert ds.count == 7680
        assert ds.read().shape == (7680, 8, 6)
        assert len(ds.dtypes) == len(ds.descriptions) == 7680
    # Once per dataset, not once per band (a per-band lookup was quadratic in bands).
    assert built["dtypes"] <= 2
    assert built["names"] <= 2


# -- D13, D14, D15: invalid input accepted -----------------------------------------------------


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "1e308"])
def test_d13_non_finite_or_overflowing_double_matrix_raises_mixer_error(
    export: Any, value: str
) -> None:
    folder = export()
    text = _mixer(folder).read_text()
    _mixer(folder).write_text(text.replace("[30.0,", f"[{value},"))
    with pytest.raises(MixerError, match="not finite"):
        tfrecord_io.open(folder)


def _replace_first_record(folder: Path, payload: bytes) -> None:
    """Give record 0 a payload with valid CRCs, keeping the rest of shard 0."""
    shard = folder / "sample-00000.tfrecord.gz"
    records = [p for _, p in iter_records(shard)]
    import gzip

    with gzip.open(shard, "wb") as f:
        for data in [payload, *records[1:]]:
            f.write(frame_record(data))


def test_d14_validate_reports_a_first_record_that_does_not_decode(export: Any) -> None:
    folder = export()
    _replace_first_record(folder, b"\x0a\x05hello")  # valid CRCs, not an Example
    with pytest.raises(TFRecordIOError):
        tfrecord_io.open(folder)
    problems = tfrecord_io.validate(folder)
    assert [(p.error, p.record) for p in problems] == [("DecodeError", 0)]


def test_d15_unknown_crs_is_a_mixer_error_from_open(export: Any) -> None:
    folder = export()
    _edit_mixer(folder, lambda data: data["projection"].update(crs="EPSG:999999"))
    with pytest.raises(MixerError, match="EPSG:999999"):
        tfrecord_io.open(folder)


def test_d15_validate_reports_an_unknown_crs(export: Any) -> None:
    folder = export()
    _edit_mixer(folder, lambda data: data["projection"].update(crs="EPSG:999999"))
    assert [p.error for p in tfrecord_io.validate(folder)] == ["MixerError"]


# -- section 1: validate's options, the mixer text ---------------------------------------------


def test_validate_takes_every_option_open_takes() -> None:
    sample_folder = Path(__file__).resolve().parent.parent / "data" / "sample"
    assert (
        tfrecord_io.validate(
            sample_folder,
            nodata=-9999,
            cache_size=0,
            kernel_size=16,
            band_order=None,
            array_layout="depth_major",
            sequence_data=False,
            allow_missing=False,
            mixer=sample_folder / "sample-mixer.json",
        )
        == []
    )


def test_validate_refuses_an_option_open_does_not_take() -> None:
    with pytest.raises(TFRecordIOError, match="unknown argument"):
        tfrecord_io.validate(SAMPLE, colour="red")


def test_mixer_text_ends_at_the_closing_brace_as_earth_engine_writes_it() -> None:
    text = Mixer.from_file(SAMPLE / "sample-mixer.json").to_json()
    assert text.endswith("}")
    assert text == (SAMPLE / "sample-mixer.json").read_text()


def test_writer_mixer_has_no_trailing_newline(export: Any) -> None:
    folder = export(np.ones((1, 16, 16), np.float32), format_options={"patchDimensions": [8, 8]})
    (mixer,) = folder.glob("*-mixer.json")
    assert re.search(rb"\}\Z", mixer.read_bytes())
