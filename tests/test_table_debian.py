"""The table reader and writer run in QGIS's Python (Debian's python3, numpy 1.24, no pandas),
and the pandas-only methods there say which extra to install."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np

import tfrecord_io

DEBIAN_PYTHON = "/usr/bin/python3"

SCRIPT = r"""
import importlib.util, json, sys
import numpy as np
import tfrecord_io

path = tfrecord_io.write_table(
    {"x": np.arange(5.0), "p": np.arange(45.0).reshape(5, 3, 3), "s": list("abcde")}, sys.argv[1]
)
table = tfrecord_io.open_table(path)
data = table.to_numpy()
try:
    table.to_pandas()
    missing = None
except tfrecord_io.MissingExtraError as exc:
    missing = str(exc)
print(json.dumps({
    "numpy": np.__version__,
    "pandas_imported": "pandas" in sys.modules,
    "rows": len(table),
    "p": data["p"].tolist(),
    "s": list(data["s"]),
    "missing": missing,
    "pandas_installed": importlib.util.find_spec("pandas") is not None,
}))
"""


def _debian_json(tmp_path: Path, script: str, *args: str) -> dict:
    """Run ``script`` in Debian's python3 with only a copy of the package added to its path."""
    shutil.copytree(Path(tfrecord_io.__file__).parent, tmp_path / "tfrecord_io")
    hidden = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")
    env = {**{k: v for k, v in os.environ.items() if k not in hidden}, "PYTHONPATH": str(tmp_path)}
    command = [DEBIAN_PYTHON, "-c", script, *args]
    done = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_table_core_runs_in_debian_python_and_names_the_extra(tmp_path: Path) -> None:
    out = tmp_path / "t.tfrecord.gz"
    result = _debian_json(tmp_path, SCRIPT, str(out))
    assert result["numpy"].startswith("1.24")
    assert result["pandas_imported"] is False
    assert result["rows"] == 5
    assert result["s"] == list("abcde")
    np.testing.assert_array_equal(result["p"], np.arange(45.0).reshape(5, 3, 3))
    if result["pandas_installed"]:  # QGIS's Python may have pandas one day
        assert result["missing"] is None
    else:
        assert "tfrecord_io[table]" in result["missing"]
    # What Debian's Python wrote, the venv reads the same.
    np.testing.assert_array_equal(tfrecord_io.open_table(out).to_numpy()["x"], np.arange(5.0))


STREAM_SCRIPT = r"""
import json, sys
import numpy as np
import tfrecord_io
from tfrecord_io.gdal.ogr import TableLayerSource

path = tfrecord_io.write_table(
    {"longitude": np.arange(300.0), "latitude": np.arange(300.0) / 2, "p": np.ones((300, 2, 2))},
    sys.argv[1],
)
table = tfrecord_io.open_table(path)
sizes = [len(batch["p"]) for batch in table.iter_batches(128)]
dataset = tfrecord_io.TableDataset(path, index_spacing=1024)
features = list(TableLayerSource(path).iter_features(batch_size=100))
print(json.dumps({
    "schema": [c.to_dict() for c in table.schema.columns],
    "sizes": sizes,
    "row_250": float(dataset[250]["longitude"]),
    "features": len(features),
    "last": features[-1]["geometry_fields"]["geometry"],
    "fields": sorted(features[0]["fields"]),
    "pandas_imported": "pandas" in sys.modules or "pyarrow" in sys.modules,
}))
"""


def test_streaming_loader_and_ogr_layer_run_in_debian_python(tmp_path: Path) -> None:
    result = _debian_json(tmp_path, STREAM_SCRIPT, str(tmp_path / "s.tfrecord.gz"))
    assert result["sizes"] == [128, 128, 44]
    assert [c["name"] for c in result["schema"]] == ["longitude", "latitude", "p"]
    assert result["row_250"] == 250.0
    assert result["features"] == 300
    assert result["last"] == "POINT (299.0 149.5)"
    assert result["fields"] == ["latitude", "longitude", "p_0", "p_1", "p_2", "p_3"]
    assert result["pandas_imported"] is False
