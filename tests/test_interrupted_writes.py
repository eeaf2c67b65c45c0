"""Writes killed at every step of their commit (issue 9: D18, D19, stale temporary folders).

A child process writes an export and is killed with ``os._exit`` just before its k-th call that
changes a folder (``os.rename``, ``os.replace``, ``os.remove``, ``os.unlink``, ``os.rmdir``)
while it closes, for every k until the write finishes. Afterwards,
once :func:`recover_writes` has run, the folder must hold either the complete old export or the
complete new one, read back exactly, and no temporary file.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import tfrecord_io
from tests.child import python_env
from tfrecord_io.cli import main
from tfrecord_io.format.destination import Destination, recover_writes

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "data" / "sample"

# Writes a 3-band export of 3 shards ("maxFileSize" is small) into FOLDER, killed at call K.
_CHILD = """
import os, sys
import numpy as np
from click.testing import CliRunner

import tfrecord_io
from tfrecord_io.cli import main

folder, prefix, overwrite, crash_at = sys.argv[1], sys.argv[2], sys.argv[3] == "1", int(sys.argv[4])
calls = []

def killed_at(name, call):
    def wrapper(*args, **kwargs):
        calls.append(name)
        if len(calls) == crash_at:
            os._exit(17)
        return call(*args, **kwargs)
    return wrapper

data = np.random.default_rng(7).normal(size=(3, 48, 64)).astype("float32")
with tfrecord_io.open(folder, "w", width=64, height=48, count=3, dtype="float32",
                      crs="EPSG:32610", transform=(30, 0, 630000, 0, -30, 4272000),
                      patch_dimensions=[32, 16], file_name_prefix=prefix, overwrite=overwrite,
                      format_options={"maxFileSize": 14000}) as dst:
    dst.write(data)
    for name in ("rename", "replace", "remove", "unlink", "rmdir"):
        setattr(os, name, killed_at(name, getattr(os, name)))
print(len(calls))
"""


def _new_data() -> np.ndarray:
    return np.random.default_rng(7).normal(size=(3, 48, 64)).astype("float32")


def _write(folder: Path, prefix: str, overwrite: bool, crash_at: int) -> int:
    """Run the child; return its exit status (17: killed at step ``crash_at``)."""
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            _CHILD,
            str(folder),
            prefix,
            "1" if overwrite else "0",
            str(crash_at),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env=python_env(),
    )
    assert done.returncode in (0, 17), done.stderr
    return done.returncode


def _read(path: Path) -> np.ndarray:
    with tfrecord_io.open(path) as dataset:
        return dataset.read()


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.parent.iterdir() if ".tmp-" in p.name) + sorted(
        p.name for p in folder.iterdir() if ".tmp-" in p.name
    )


def _kill_at_every_step(
    tmp_path: Path, prefix: str, overwrite: bool, check: Callable[[Path], str]
) -> list[str]:
    """Kill the write at call 1, 2, ... until it completes; return what ``check`` saw each time."""
    seen = []
    for crash_at in range(1, 60):
        folder = tmp_path / f"k{crash_at}" / "out"
        folder.parent.mkdir()
        shutil.copytree(SAMPLE, folder)
        status = _write(folder, prefix, overwrite, crash_at)
        recover_writes(folder.parent)
        recover_writes(folder)
        assert _leftovers(folder) == []
        seen.append(check(folder))
        if status == 0:
            return seen
    raise AssertionError("the write never finished")


def test_d19_overwrite_killed_at_any_commit_step_leaves_old_or_new_export(tmp_path: Path) -> None:
    old, new = _read(SAMPLE), _new_data()

    def check(folder: Path) -> str:
        data = _read(folder)
        if data.shape == old.shape and np.array_equal(data, old):
            return "old"
        np.testing.assert_array_equal(data, new)
        assert len(list(folder.glob("sample-*.tfrecord.gz"))) == 3  # no old shard left over
        return "new"

    seen = _kill_at_every_step(tmp_path, "sample", True, check)
    # Killed before the commit is recorded: the old export; after it: the new one, never neither.
    assert seen == sorted(seen, key=("old", "new").index), seen
    assert seen[0] == "old", seen
    assert seen.count("new") > 8  # every old and new file move was a kill point


def test_d18_write_beside_another_export_killed_at_any_step_leaves_none_or_all(
    tmp_path: Path,
) -> None:
    old, new = _read(SAMPLE), _new_data()

    def check(folder: Path) -> str:
        np.testing.assert_array_equal(_read(folder / "sample-mixer.json"), old)
        files = sorted(p.name for p in folder.glob("other-*"))
        if not files:
            return "none"
        np.testing.assert_array_equal(_read(folder / "other-mixer.json"), new)
        assert len(files) == 4
        return "new"

    seen = _kill_at_every_step(tmp_path, "other", False, check)
    assert seen == sorted(seen, key=("none", "new").index), seen
    assert seen[0] == "none", seen


def test_stale_temp_folder_of_a_killed_write_is_removed_by_the_next_write(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "out"
    shutil.copytree(SAMPLE, folder)
    assert _write(folder, "sample", True, 1) == 17  # before anything is committed
    assert len(_leftovers(folder)) == 2  # the temporary folder and its marker
    Destination(folder, "other").abort()
    assert len(_leftovers(folder)) == 2  # another prefix's write leaves it
    Destination(folder, "sample", overwrite=True).abort()
    assert _leftovers(folder) == []
    np.testing.assert_array_equal(_read(folder), _read(SAMPLE))


def test_killed_commit_is_finished_by_the_next_write(tmp_path: Path) -> None:
    folder = tmp_path / "out"
    shutil.copytree(SAMPLE, folder)
    assert _write(folder, "sample", True, 6) == 17  # some old files moved out
    with pytest.raises(tfrecord_io.errors.TFRecordIOError):
        _read(folder)  # the folder is mid-commit until it is recovered
    with pytest.raises(tfrecord_io.errors.ExportExistsError):
        Destination(folder, "sample")  # recovered first: the new export is there
    np.testing.assert_array_equal(_read(folder), _new_data())
    assert _leftovers(folder) == []


def test_doctor_finishes_a_killed_commit(tmp_path: Path) -> None:
    folder = tmp_path / "out"
    shutil.copytree(SAMPLE, folder)
    assert _write(folder, "sample", True, 6) == 17
    result = CliRunner().invoke(main, ["doctor", str(folder)])
    assert f"[fixed] finished the interrupted write of '{folder}'" in result.output
    np.testing.assert_array_equal(_read(folder), _new_data())
    assert _leftovers(folder) == []


def test_temp_folder_of_a_live_writer_or_without_marker_is_left_alone(tmp_path: Path) -> None:
    live = Destination(tmp_path / "out", "x")
    foreign = tmp_path / ".out.tmp-0123456789abcdef"
    foreign.mkdir()
    assert recover_writes(tmp_path) == []
    assert os.path.isdir(live.temp)
    assert foreign.is_dir()
    live.abort()
    assert sorted(p.name for p in tmp_path.iterdir()) == [foreign.name]


def test_error_during_commit_finishes_it_instead_of_losing_both_exports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "out"
    shutil.copytree(SAMPLE, folder)

    replace, calls = os.replace, []

    def interrupted(*args: object) -> None:
        calls.append(args)
        if len(calls) == 4:  # once, as a Ctrl-C would, after the first old files moved out
            raise KeyboardInterrupt
        replace(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "replace", interrupted)
    data = _new_data()
    with (
        pytest.raises(KeyboardInterrupt),
        tfrecord_io.open(
            folder,
            "w",
            width=64,
            height=48,
            count=3,
            dtype="float32",
            crs="EPSG:32610",
            transform=(30, 0, 630000, 0, -30, 4272000),
            patch_dimensions=[32, 16],
            file_name_prefix="sample",
            overwrite=True,
        ) as dst,
    ):
        dst.write(data)
    monkeypatch.undo()
    np.testing.assert_array_equal(_read(folder), data)
    assert _leftovers(folder) == []
