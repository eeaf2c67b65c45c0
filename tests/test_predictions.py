"""Predictions: patches out in export order, back in with the mixer, read back as a mosaic."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from affine import Affine

import tfrecord_io
from tfrecord_io.errors import MissingMixerError, NoMixerWarning, OptionError, RecordCountError
from tfrecord_io.image.mixer import Mixer

UTM = Affine(30.0, 0.0, 500000.0, 0.0, -30.0, 4200000.0)
# The export each test predicts from: 2 x 12 x 16 pixels in 4 x 4 patches with 1-pixel margins.
EXPORT = {
    "descriptions": ("B2", "B3"),
    "patch_dimensions": [4, 4],
    "kernel_size": [2, 2],
    "max_file_size": 500,
}


def test_iter_patches_yields_export_order(export, raster) -> None:
    pixels = raster(2, 12, 16)
    exp = export(pixels, **EXPORT)
    assert [i for i, _, _ in tfrecord_io.iter_patches(exp)] == list(range(12))


def test_iter_patches_yields_stored_tiles_with_margins(export, raster) -> None:
    pixels = raster(2, 12, 16)
    exp = export(pixels, **EXPORT)
    _, window, tile = list(tfrecord_io.iter_patches(exp))[5]  # row 1, col 1
    assert (window.col_off, window.row_off) == (4, 4)
    np.testing.assert_array_equal(tile, pixels[:, 3:9, 3:9])


def test_iter_patches_trim_gives_unpadded_patch(export, raster) -> None:
    pixels = raster(2, 12, 16)
    exp = export(pixels, **EXPORT)
    _, _, patch = list(tfrecord_io.iter_patches(exp, trim=True))[5]
    np.testing.assert_array_equal(patch, pixels[:, 4:8, 4:8])


def test_predictions_read_back_as_georeferenced_mosaic(tmp_path, export, raster) -> None:
    pixels = raster(2, 12, 16)
    exp = export(pixels, **EXPORT)
    preds = ((i, w, t[:1] * 2) for i, w, t in tfrecord_io.iter_patches(exp))
    tfrecord_io.write_predictions(exp, tmp_path / "pred", preds, ["score"])
    with tfrecord_io.open(tmp_path / "pred") as src:
        assert src.transform == UTM
        assert src.descriptions == ("score",)
        np.testing.assert_array_equal(src.read(1), pixels[0] * 2)


def test_predictions_read_back_with_the_export_mixer(tmp_path, export, raster) -> None:
    pixels = raster(2, 12, 16)
    exp = export(pixels, **EXPORT)
    preds = (t[:, 1:-1, 1:-1] for _, _, t in tfrecord_io.iter_patches(exp))
    tfrecord_io.write_predictions(exp / "exp-mixer.json", tmp_path / "pred", preds, ["a", "b"])
    with tfrecord_io.open(tmp_path / "pred", mixer=exp / "exp-mixer.json") as src:
        np.testing.assert_array_equal(src.read(), pixels)


def test_mixer_is_copied_verbatim_under_an_uploadable_name(tmp_path, export, raster) -> None:
    pixels = raster(2, 12, 16)
    exp = export(pixels, **EXPORT)
    preds = (t for _, _, t in tfrecord_io.iter_patches(exp))
    files = tfrecord_io.write_predictions(exp, tmp_path / "pred", preds, ["a", "b"])
    assert files[-1].endswith("pred-mixer.json")
    assert Path(files[-1]).read_bytes() == (exp / "exp-mixer.json").read_bytes()


def test_prediction_files_end_in_tfrecord(tmp_path, export, raster) -> None:
    pixels = raster(2, 12, 16)
    exp = export(pixels, **EXPORT)
    preds = (t for _, _, t in tfrecord_io.iter_patches(exp))
    files = tfrecord_io.write_predictions(exp, tmp_path / "pred", preds, ["a", "b"])
    assert all(f.endswith(".tfrecord") for f in files[:-1])


def test_tensorflow_parses_predictions_at_unpadded_size(tmp_path, export, raster) -> None:
    pixels = raster(2, 12, 16)
    exp = export(pixels, **EXPORT)
    preds = (t for _, _, t in tfrecord_io.iter_patches(exp))
    files = tfrecord_io.write_predictions(exp, tmp_path / "pred", preds, ["a", "b"])
    record = next(iter(tf.data.TFRecordDataset(files[:-1])))
    parsed = tf.io.parse_single_example(record, {"a": tf.io.FixedLenFeature([4, 4], tf.float32)})
    assert parsed["a"].shape == (4, 4)


def test_integer_predictions_are_int64_lists(tmp_path, export, raster) -> None:
    pixels = raster(2, 12, 16)
    exp = export(pixels, **EXPORT)
    preds = (np.full((1, 4, 4), i, np.int8) for i in range(12))
    files = tfrecord_io.write_predictions(exp, tmp_path / "pred", preds, ["cls"])
    record = list(tf.data.TFRecordDataset(files[:-1]))[7]
    parsed = tf.io.parse_single_example(record, {"cls": tf.io.FixedLenFeature([4, 4], tf.int64)})
    assert (parsed["cls"].numpy() == 7).all()


def test_two_dimensional_patches_are_one_band(tmp_path, export, raster) -> None:
    pixels = raster(2, 12, 16)
    exp = export(pixels, **EXPORT)
    preds = (np.zeros((4, 4), np.float64) for _ in range(12))
    tfrecord_io.write_predictions(exp, tmp_path / "pred", preds, ["p"])
    with tfrecord_io.open(tmp_path / "pred") as src:
        assert src.count == 1
        assert src.dtypes == ("float32",)


def test_too_few_patches_are_refused_and_nothing_written(tmp_path, export, raster) -> None:
    pixels = raster(2, 12, 16)
    exp = export(pixels, **EXPORT)
    with pytest.raises(RecordCountError, match="11 patches"):
        tfrecord_io.write_predictions(exp, tmp_path / "pred",
                                      (np.zeros((4, 4)) for _ in range(11)), ["p"])
    assert not (tmp_path / "pred").exists()


def test_too_many_patches_are_refused(tmp_path, export, raster) -> None:
    pixels = raster(2, 12, 16)
    exp = export(pixels, **EXPORT)
    with pytest.raises(RecordCountError, match="more patches"):
        tfrecord_io.write_predictions(exp, tmp_path / "pred",
                                      (np.zeros((4, 4)) for _ in range(13)), ["p"])


def test_patches_out_of_order_are_refused(tmp_path, export, raster) -> None:
    pixels = raster(2, 12, 16)
    exp = export(pixels, **EXPORT)
    items = [(i, np.zeros((4, 4))) for i in range(12)]
    items[3], items[4] = items[4], items[3]
    with pytest.raises(OptionError, match="export order"):
        tfrecord_io.write_predictions(exp, tmp_path / "pred", items, ["p"])


def test_wrong_patch_size_is_refused(tmp_path, export, raster) -> None:
    pixels = raster(2, 12, 16)
    exp = export(pixels, **EXPORT)
    with pytest.raises(OptionError, match="neither the unpadded"):
        tfrecord_io.write_predictions(exp, tmp_path / "pred",
                                      (np.zeros((5, 5)) for _ in range(12)), ["p"])


def test_band_count_must_match_band_names(tmp_path, export, raster) -> None:
    pixels = raster(2, 12, 16)
    exp = export(pixels, **EXPORT)
    with pytest.raises(OptionError, match="band_names"):
        tfrecord_io.write_predictions(exp, tmp_path / "pred",
                                      (np.zeros((2, 4, 4)) for _ in range(12)), ["p"])


def test_mixer_object_is_accepted(tmp_path, export, raster) -> None:
    pixels = raster(2, 12, 16)
    exp = export(pixels, **EXPORT)
    mixer = Mixer.from_file(exp / "exp-mixer.json")
    tfrecord_io.write_predictions(mixer, tmp_path / "pred",
                                  (np.zeros((6, 6)) for _ in range(12)), ["p"])
    assert sorted(os.listdir(tmp_path / "pred"))[-1] == "pred-mixer.json"


def test_export_without_mixer_is_refused(tmp_path, raster) -> None:
    pixels = raster(2, 12, 16)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NoMixerWarning)
        with tfrecord_io.open(tmp_path / "nm", "w", width=16, height=12, count=2,
                              crs="EPSG:32610", transform=UTM, patch_dimensions=[4, 4],
                              masked_threshold=0.5) as dst:
            dst.write(pixels)
    with pytest.raises(MissingMixerError):
        tfrecord_io.write_predictions(tmp_path / "nm", tmp_path / "pred", [], ["p"])


def test_predictions_from_an_open_dataset_close_the_mixer_file(tmp_path, export, raster) -> None:
    exp = export(raster(2, 12, 16), **EXPORT)
    with tfrecord_io.open(exp) as ds:
        preds = [t for _, _, t in tfrecord_io.iter_patches(ds, trim=True)]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ResourceWarning)
            files = tfrecord_io.write_predictions(ds, tmp_path / "pred", preds, ["a", "b"])
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)]
    assert Path(files[-1]).read_bytes() == (exp / "exp-mixer.json").read_bytes()


def test_predictions_find_the_export_and_read_its_mixer_once(
    tmp_path, export, raster, monkeypatch: pytest.MonkeyPatch
) -> None:
    exp = export(raster(2, 12, 16), **EXPORT)
    predictions = [t[:1] for _, _, t in tfrecord_io.iter_patches(exp)]
    found, opened = _count_finds_and_mixer_reads(monkeypatch, exp)
    tfrecord_io.write_predictions(exp, tmp_path / "pred", predictions, ["score"])
    assert len(found) == 1
    assert len(opened) == 1


def test_validate_finds_the_export_and_reads_its_mixer_once(
    export, raster, monkeypatch: pytest.MonkeyPatch
) -> None:
    exp = export(raster(2, 12, 16), **EXPORT)
    found, opened = _count_finds_and_mixer_reads(monkeypatch, exp)
    assert tfrecord_io.validate(exp) == []
    assert len(found) == 1
    assert len(opened) == 1


def _count_finds_and_mixer_reads(
    monkeypatch: pytest.MonkeyPatch, exp: Path
) -> tuple[list[object], list[object]]:
    """Count the calls of find_export and the opens of the export's mixer from now on."""
    import builtins

    import tfrecord_io.image.files
    import tfrecord_io.image.predictions
    import tfrecord_io.image.reader
    import tfrecord_io.image.tools

    found: list[object] = []
    opened: list[object] = []
    find, real_open = tfrecord_io.image.files.find_export, builtins.open
    (mixer,) = Path(exp).glob("*-mixer.json")

    def counted_find(*args: object, **kwargs: object) -> object:
        found.append(args)
        return find(*args, **kwargs)  # type: ignore[arg-type]

    def counted_open(file: object, *args: object, **kwargs: object) -> object:
        if str(file) == str(mixer):
            opened.append(file)
        return real_open(file, *args, **kwargs)  # type: ignore[call-overload]

    image = tfrecord_io.image
    for module in (image.predictions, image.reader, image.tools):
        monkeypatch.setattr(module, "find_export", counted_find)
    monkeypatch.setattr(builtins, "open", counted_open)
    return found, opened
