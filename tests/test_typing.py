"""Tests that a type checker sees what ``tfrecord_io.open`` returns: mypy run on a typed usage."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

USAGE = """
import numpy as np
import tfrecord_io

mode: str = "r"

reveal_type(tfrecord_io.open("export"))
reveal_type(tfrecord_io.open("export", "r", kernel_size=3))
reveal_type(tfrecord_io.open("export", mode="w", width=8, height=8, count=1, dtype="float32"))
reveal_type(tfrecord_io.open("export", mode))

with tfrecord_io.open("export") as src:
    data: np.ndarray = src.read(1)
with tfrecord_io.open("out", "w", width=8, height=8, count=1, dtype="float32") as dst:
    dst.write(data, 1)
"""


def _mypy(tmp_path: Path, source: str) -> str:
    """Run mypy on ``source`` against the package the tests import; return its report."""
    snippet = tmp_path / "usage.py"
    snippet.write_text(source)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--no-error-summary",
            "--cache-dir",
            str(tmp_path / "cache"),
            "--ignore-missing-imports",
            "--python-executable",
            sys.executable,
            str(snippet),
        ],
        # Not the package's parent: installed, that is site-packages, whose other top-level
        # modules (mypy_extensions.py) mypy would take for the user's own. mypy finds the
        # installed package (it has py.typed) through --python-executable.
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode in (0, 1), result.stderr
    return result.stdout


def test_open_is_typed_by_mode_for_mypy(tmp_path: Path) -> None:
    report = _mypy(tmp_path, USAGE)
    revealed = re.findall(r'Revealed type is "([^"]+)"', report)
    assert revealed == [
        "tfrecord_io.image.dataset.EETFRecordDataset",
        "tfrecord_io.image.dataset.EETFRecordDataset",
        "tfrecord_io.image.writer.EETFRecordWriter",
        "tfrecord_io.image.dataset.EETFRecordDataset | tfrecord_io.image.writer.EETFRecordWriter",
    ], report
    assert "error:" not in report, report
