"""The core runs in QGIS's Python: Debian 12's python3 with numpy 1.24, rasterio 1.3.5 and
protobuf 3.21 (apt packages, installed by ``make test``), not only in the project's venv."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
from rasterio.windows import Window

import tfrecord_io

DEBIAN_PYTHON = "/usr/bin/python3"
SAMPLE = Path(__file__).resolve().parent.parent / "data" / "sample"

SCRIPT = r"""
import hashlib, json, sys
import numpy as np, rasterio, google.protobuf
from rasterio.windows import Window
import tfrecord_io
import _protobuf  # the test reference, copied beside the package
from tfrecord_io.format import example

def digest(a):
    return a.dtype.name + ":" + hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()

with tfrecord_io.open(sys.argv[1]) as ds:
    result = {
        "numpy": np.__version__,
        "rasterio": rasterio.__version__,
        "protobuf": google.protobuf.__version__,
        "package": tfrecord_io.__file__,
        "full": digest(ds.read()),
        "window": digest(ds.read(2, window=Window(50, 30, 100, 70))),
        "decimated": digest(ds.read(out_shape=(3, 48, 96))),
    }
features = {
    "f": example.float_feature(np.linspace(-1, 1, 7, dtype=np.float32)),
    "i": example.int64_feature(np.array([-2**63, -1, 0, 300, 2**63 - 1])),
    "b": example.bytes_feature(b"\x00\x01\xff"),
}
message = _protobuf.example_class().FromString(example.encode_example(features))
ours = example.decode_example(message.SerializeToString())
result["codec"] = (
    list(ours) == ["f", "i", "b"]
    and list(message.features.feature["i"].int64_list.value) == [-2**63, -1, 0, 300, 2**63 - 1]
    and all(ours[k] == features[k] for k in features)
)
print(json.dumps(result))
"""


def _digest(array: np.ndarray) -> str:
    return (
        array.dtype.name + ":" + hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()
    )


def _run_in_debian_python(tmp_path: Path, script: str = SCRIPT, export: Path = SAMPLE) -> dict:
    # Only the package (and the test's protobuf reference) go on the path: everything else
    # must come from Debian.
    shutil.copytree(Path(tfrecord_io.__file__).parent, tmp_path / "tfrecord_io")
    shutil.copy(Path(__file__).resolve().parent / "_protobuf.py", tmp_path / "_protobuf.py")
    env = {
        k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")
    }
    env["PYTHONPATH"] = str(tmp_path)
    done = subprocess.run(
        [DEBIAN_PYTHON, "-c", script, str(export)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_debian_python_reads_the_sample_pixel_for_pixel_as_the_venv(tmp_path: Path) -> None:
    result = _run_in_debian_python(tmp_path)
    assert result["numpy"].startswith("1.24")
    assert result["rasterio"].startswith("1.3")
    assert result["package"].startswith(str(tmp_path))
    with tfrecord_io.open(SAMPLE) as ds:
        assert result["full"] == _digest(ds.read())
        assert result["window"] == _digest(ds.read(2, window=Window(50, 30, 100, 70)))
        assert result["decimated"] == _digest(ds.read(out_shape=(3, 48, 96)))


def test_codec_agrees_with_debian_protobuf_321_runtime(tmp_path: Path) -> None:
    result = _run_in_debian_python(tmp_path)
    assert result["protobuf"].split(".")[1] == "21"
    assert result["codec"] is True


SIDECAR_SCRIPT = r"""
import hashlib, json, sys, warnings
import numpy as np
from rasterio.windows import Window
import tfrecord_io

warnings.simplefilter("error")  # a sidecar ignored as stale would fail here
with tfrecord_io.open(sys.argv[1]) as ds:
    window = ds.read(window=Window(ds.width - 150, ds.height - 90, 120, 70))
    indexes = ds._reader._indexes
    points = [p for index in indexes for p in index._points]
    result = {
        "window": window.dtype.name + ":" + hashlib.sha256(window.tobytes()).hexdigest(),
        "complete": [index.complete for index in indexes],
        "restored": sum(1 for p in points if getattr(p, "window", None) is not None),
        "unaligned": sum(1 for p in points if getattr(p, "bits", 0)),
    }
print(json.dumps(result))
"""


def test_debian_python_uses_a_sidecar_built_in_the_venv(tmp_path: Path) -> None:
    sample = Path(shutil.copytree(SAMPLE, tmp_path / "sample"))
    tfrecord_io.build_index(sample, spacing=64 << 10)
    result = _run_in_debian_python(tmp_path / "run", SIDECAR_SCRIPT, sample)
    assert result["complete"] == [True, True, True]  # loaded, not scanned
    assert result["restored"] > 0  # seek points restored from saved windows...
    assert result["unaligned"] > 0  # ...some of them inside a byte, by shifting in Python
    with tfrecord_io.open(sample) as ds:
        window = ds.read(window=Window(ds.width - 150, ds.height - 90, 120, 70))
    assert result["window"] == _digest(window)
