"""The short seeded fuzz run of the test suite, and checks that the harness sees what it must.

The long run is ``python -m tests.fuzz --inputs 1000000 --seed N`` (docs/fuzzing.md).
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

import tests.fuzz.writes  # noqa: F401 - registers the "write" target
from tests.fuzz import TARGETS, Target, run
from tests.fuzz.targets import FuzzInput


def test_short_seeded_fuzz_run_finds_no_foreign_exception_hang_or_wrong_read() -> None:
    report = run(2000, seed=20261129, timeout=10.0, trace_every=25)
    assert report.findings == [], report.summary()
    assert set(report.per_target) == {
        "example",
        "framing",
        "gzip",
        "write",
        "mixer_mutation",
        "reshard",
        "records_mutation",
    }
    for name in ("example", "framing", "gzip", "write"):  # saw inputs accepted and refused
        assert 0 < report.refused[name] < report.per_target[name], report.summary()
    # The whole-export targets judge refusals themselves (a mutated mixer must be refused or
    # read, a permuted export must not validate): every input they get is checked to the end.
    assert report.traced >= 70
    assert report.max_alloc_ratio < 1.0


def _broken(kind: str) -> Target:
    def make(rng: random.Random) -> FuzzInput:
        return FuzzInput(b"x", 1, kind)

    def check(item: FuzzInput, workdir: Path, rng: random.Random) -> bool:
        if kind == "foreign":
            raise ValueError("not a TFRecordIOError")
        if kind == "hang":
            time.sleep(5)
        if kind == "memory":
            bytearray(64 << 20)
        return True

    return Target(f"broken-{kind}", make, check)


@pytest.mark.parametrize("kind", ["foreign", "hang", "memory"])
def test_harness_reports_what_breaks_its_oracles(
    kind: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    target = _broken(kind)
    monkeypatch.setitem(TARGETS, target.name, target)
    report = run(
        2, seed=1, targets=[target.name], timeout=0.5, trace_every=1, save_dir=str(tmp_path)
    )
    assert [f.kind for f in report.findings] == [kind, kind]
    assert (tmp_path / f"{target.name}-1-0.bin").read_bytes() == b"x"
