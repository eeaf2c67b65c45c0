"""A short seeded run of the export and mixer fuzz targets (the long run is the harness's)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fuzz.targets_export import TARGETS, run

SEEDS = range(200)


@pytest.mark.timeout(20)
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", sorted(TARGETS))
def test_export_target_raises_only_tfrecordio_errors(name: str, seed: int, tmp_path: Path) -> None:
    run(name, seed, tmp_path)
