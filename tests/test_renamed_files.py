"""Exports as users hold them: renamed files, lists of shards, hyphenless names, partial exports."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

import tfrecord_io
from tests.real_exports import require_real_exports
from tfrecord_io.errors import MissingShardError, OptionError
from tfrecord_io.image.partial import place_shards

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "sample"
SHARDS = [SAMPLE / f"sample-0000{n}.tfrecord.gz" for n in range(3)]


@pytest.fixture
def real_exports() -> Path:
    return require_real_exports()


def _read(path: object, **options: object) -> np.ndarray:
    with tfrecord_io.open(path, **options) as ds:  # type: ignore[call-overload]
        return ds.read()


@pytest.fixture(scope="module")
def sample_pixels() -> np.ndarray:
    return _read(SAMPLE)


def _renamed(tmp_path: Path, names: list[str], mixer: str = "grid.json") -> Path:
    folder = tmp_path / "renamed"
    folder.mkdir()
    for shard, name in zip(SHARDS, names, strict=True):
        shutil.copy(shard, folder / name)
    shutil.copy(SAMPLE / "sample-mixer.json", folder / mixer)
    return folder


def test_renamed_real_shard_opens_with_its_mixer_named(real_exports: Path, tmp_path: Path) -> None:
    folder = real_exports / "servir-aces-image"
    pixels = _read(folder / "image_2021.tfrecord.gz", mixer=folder / "image_2021.json")
    ee = tmp_path / "ee"
    ee.mkdir()
    shutil.copy(folder / "image_2021.tfrecord.gz", ee / "image_2021-00000.tfrecord.gz")
    shutil.copy(folder / "image_2021.json", ee / "image_2021-mixer.json")
    np.testing.assert_array_equal(pixels, _read(ee))
    assert pixels.shape == (8, 256, 256)


def test_real_folder_of_renamed_pair_finds_the_json_mixer(real_exports: Path) -> None:
    with tfrecord_io.open(real_exports / "servir-aces-image") as ds:
        assert ds.export_files.mixer == str(real_exports / "servir-aces-image" / "image_2021.json")
        assert ds.tags(ns="EETFRecord")["SHARD_ORDER"] == "trailing-number"
        assert ds.crs.to_epsg() == 4326


def test_folder_of_renamed_shards_is_ordered_by_trailing_number(
    tmp_path: Path, sample_pixels: np.ndarray
) -> None:
    folder = _renamed(tmp_path, ["b_part9.tfr", "a_part10.tfr", "c_part11.tfr"])
    with tfrecord_io.open(folder) as ds:
        assert ds.tags(ns="EETFRecord")["SHARD_ORDER"] == "trailing-number"
        assert [Path(f).name for f in ds.files] == [
            "b_part9.tfr",
            "a_part10.tfr",
            "c_part11.tfr",
            "grid.json",
        ]
        np.testing.assert_array_equal(ds.read(), sample_pixels)


def test_folder_of_renamed_shards_without_numbers_is_ordered_by_name(
    tmp_path: Path, sample_pixels: np.ndarray
) -> None:
    folder = _renamed(tmp_path, ["a.tfrecord.gz", "b.tfrecord.gz", "c.tfrecord.gz"])
    with tfrecord_io.open(folder) as ds:
        assert ds.export_files.order == "name"
        np.testing.assert_array_equal(ds.read(), sample_pixels)


def test_list_of_shards_is_read_in_the_order_given(
    tmp_path: Path, sample_pixels: np.ndarray
) -> None:
    folder = _renamed(tmp_path, ["z.tfrecord.gz", "y.tfrecord.gz", "x.tfrecord.gz"])
    shards = [folder / "z.tfrecord.gz", folder / "y.tfrecord.gz", folder / "x.tfrecord.gz"]
    with tfrecord_io.open(shards, mixer=folder / "grid.json") as ds:
        assert ds.export_files.order == "given"
        np.testing.assert_array_equal(ds.read(), sample_pixels)


def test_shards_named_without_the_hyphen_open(tmp_path: Path, sample_pixels: np.ndarray) -> None:
    folder = _renamed(
        tmp_path,
        [f"sample0000{n}.tfrecord.gz" for n in range(3)],
        mixer="sample-mixer.json",
    )
    np.testing.assert_array_equal(_read(folder / "sample00001.tfrecord.gz"), sample_pixels)
    with tfrecord_io.open(folder) as ds:
        assert ds.export_files.order == "shard-number"


def test_validate_takes_a_list_of_renamed_shards(tmp_path: Path) -> None:
    folder = _renamed(tmp_path, ["z.tfrecord.gz", "y.tfrecord.gz", "x.tfrecord.gz"])
    shards = [folder / "z.tfrecord.gz", folder / "y.tfrecord.gz", folder / "x.tfrecord.gz"]
    assert tfrecord_io.validate(shards, mixer=folder / "grid.json") == []


def test_partial_real_export_places_shard_5_and_masks_the_rest(real_exports: Path) -> None:
    folder = real_exports / "phen-asynch-shard5"
    with tfrecord_io.open(folder, allow_missing=True) as ds:
        assert sorted(ds.missing_patches) == [*range(10), 12, 13, 14]
        data = ds.read(1, masked=True)
        rows, cols = ds.grid.patch_height, ds.grid.patch_width
        # Records 10 and 11 of the export are patches (3, 1) and (3, 2) of a 3-wide grid.
        assert not data.mask[3 * rows : 4 * rows, cols:].any()
        assert data.mask[: 3 * rows].all()
        assert data.mask[3 * rows : 4 * rows, :cols].all()
        assert data.mask[4 * rows :].all()
        with tfrecord_io.open(ds.files[0], allow_missing=True) as same:
            window = ((768, 800), (256, 300))
            np.testing.assert_array_equal(same.read(1, window=window), data[768:800, 256:300].data)


def test_partial_export_without_allow_missing_names_the_option(real_exports: Path) -> None:
    with pytest.raises(MissingShardError, match="allow_missing=True"):
        tfrecord_io.open(real_exports / "phen-asynch-shard5")


def test_partial_export_validate_lists_the_missing_patches(real_exports: Path) -> None:
    problems = tfrecord_io.validate(real_exports / "phen-asynch-shard5", allow_missing=True)
    missing = [p for p in problems if p.error == "MissingPatches"]
    assert len(missing) == 1
    assert "0-9, 12-14" in missing[0].message


def _partial_sample(tmp_path: Path, present: list[int]) -> Path:
    folder = tmp_path / "partial"
    folder.mkdir()
    for n in present:
        shutil.copy(SHARDS[n], folder / SHARDS[n].name)
    shutil.copy(SAMPLE / "sample-mixer.json", folder)
    return folder


def test_partial_export_of_the_sample_reads_the_present_shards(
    tmp_path: Path, sample_pixels: np.ndarray
) -> None:
    with tfrecord_io.open(_partial_sample(tmp_path, [0, 2]), allow_missing=True) as ds:
        assert ds.missing_patches == frozenset(range(9, 18))
        data = ds.read(masked=True)
        # Patches 0-8 fill the first row and half the second (6 per row, 48 rows each).
        np.testing.assert_array_equal(data.data[:, :48], sample_pixels[:, :48])
        np.testing.assert_array_equal(data.data[:, 144:], sample_pixels[:, 144:])
        assert data.mask[:, 48:96, 192:].all()
        assert not data.mask[:, 48:96, :192].any()


def test_partial_export_whose_lone_shard_may_be_the_last_says_why(tmp_path: Path) -> None:
    with pytest.raises(MissingShardError, match="may be the last one"):
        tfrecord_io.open(_partial_sample(tmp_path, [1]), allow_missing=True)


def test_positions_of_a_lone_shard_that_may_be_the_last_are_refused() -> None:
    # Shard 2 with 4 records of 12: complete (M = 4) or the last after two shards of 4: both fit.
    with pytest.raises(MissingShardError, match="may be the last"):
        place_shards([2], [4], {100}, 14, "x")


def test_positions_of_records_of_several_sizes_are_refused() -> None:
    with pytest.raises(MissingShardError, match="different sizes"):
        place_shards([0, 2], [4, 4], {100, 101}, 12, "x")


def test_positions_of_a_complete_shard_before_another_are_placed() -> None:
    assert place_shards([1, 3], [4, 2], {100}, 14, "x") == [4, 12]


def _margin_mismatches(path: Path) -> list[tuple[int | None, str]]:
    return [(p.record, p.error) for p in tfrecord_io.validate(path) if p.error == "MarginMismatch"]


def test_validate_reports_swapped_shards_by_their_margins(tmp_path: Path) -> None:
    folder = _renamed(
        tmp_path,
        ["sample-00001.tfrecord.gz", "sample-00000.tfrecord.gz", "sample-00002.tfrecord.gz"],
        mixer="sample-mixer.json",
    )
    with tfrecord_io.open(folder) as ds:
        ds.read()  # reads without error: only the margins tell
    mismatches = _margin_mismatches(folder)
    assert mismatches
    assert mismatches[0] == (3, "MarginMismatch")  # record 2 (was 11) then 3 (was 12)


def test_validate_reports_a_dropped_record_next_to_a_duplicated_one(tmp_path: Path) -> None:
    import gzip

    from tfrecord_io.format.records import frame_record, iter_records

    folder = Path(shutil.copytree(SAMPLE, tmp_path / "sample"))
    shard = folder / "sample-00000.tfrecord.gz"
    payloads = [p for _, p in iter_records(shard)]
    changed = [*payloads[:4], payloads[3], *payloads[5:]]  # record 4 dropped, 3 duplicated
    with gzip.open(shard, "wb") as f:
        for data in changed:
            f.write(frame_record(data))
    assert tfrecord_io.validate(folder)[0].record == 4
    assert {error for _, error in _margin_mismatches(folder)} == {"MarginMismatch"}


def test_neighbouring_records_of_the_real_partial_export_agree_in_their_margins() -> None:
    folder = require_real_exports() / "phen-asynch-shard5"
    errors = [p.error for p in tfrecord_io.validate(folder, allow_missing=True)]
    assert errors == ["MissingPatches"]  # records 10 and 11 overlap by 60 columns, and agree


def test_predictions_of_a_renamed_real_export_carry_its_mixer_text(
    real_exports: Path, tmp_path: Path
) -> None:
    folder = real_exports / "servir-aces-image"
    shard = folder / "image_2021.tfrecord.gz"
    patches = [
        (i, w, a[:1])
        for i, w, a in tfrecord_io.iter_patches([shard], mixer=folder / "image_2021.json")
    ]
    files = tfrecord_io.write_predictions(shard, tmp_path / "pred", patches, ["red_before"])
    assert Path(files[-1]).read_bytes() == (folder / "image_2021.json").read_bytes()
    with tfrecord_io.open(tmp_path / "pred") as pred, tfrecord_io.open(shard) as ds:
        np.testing.assert_array_equal(pred.read(1), ds.read(1))


def test_folder_of_renamed_shards_with_two_mixer_jsons_asks_which(tmp_path: Path) -> None:
    folder = _renamed(tmp_path, ["a.tfrecord.gz", "b.tfrecord.gz", "c.tfrecord.gz"])
    shutil.copy(folder / "grid.json", folder / "other.json")
    with pytest.raises(OptionError, match=r"grid\.json, other\.json"):
        tfrecord_io.open(folder)
    with tfrecord_io.open(folder, mixer=folder / "other.json") as ds:
        assert ds.export_files.mixer == str(folder / "other.json")
