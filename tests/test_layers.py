"""The package's layers import only the layers below them (README, "Design").

Each part of ``tfrecord_io`` is named by its first component under the package (a subpackage
such as ``format`` or a top-level module such as ``opener``); ``LAYERS`` lists, bottom to top,
which parts each may import. A new part must be placed here, and in the README's Design section.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import tfrecord_io

PACKAGE = Path(tfrecord_io.__file__).resolve().parent

# part -> the parts it may import (besides itself)
LAYERS: dict[str, set[str]] = {
    "errors": set(),
    "format": {"errors"},
    "image": {"errors", "format"},
    "table": {"errors", "format", "image"},
    "gdal": {"errors", "format", "image", "table"},
    "pixelfunction": {"errors", "format", "image", "gdal"},
    "ml": {"errors", "format", "image", "table"},
    "xarray": {"errors", "format", "image"},
    "dask": {"errors", "format", "image"},
    "exporting": {"errors", "format", "image", "xarray", "dask"},
    "cli": {"errors", "format", "image", "pixelfunction", "gdal", "table"},
    "__init__": {"errors", "format", "image", "pixelfunction", "gdal", "ml", "table", "exporting"},
}


def _part(path: Path) -> str:
    relative = path.relative_to(PACKAGE)
    return relative.parts[0].removesuffix(".py")


def _imported_parts(path: Path) -> set[str]:
    """Parts of tfrecord_io that the module at ``path`` imports, anywhere in the module."""
    parts = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
            if node.module == "tfrecord_io":
                names = [f"tfrecord_io.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level:
            continue  # relative imports stay inside their own part
        for name in names:
            pieces = name.split(".")
            if pieces[0] == "tfrecord_io" and len(pieces) > 1:
                parts.add(pieces[1])
    return parts


MODULES = sorted(PACKAGE.rglob("*.py"))


def test_every_part_of_the_package_has_a_layer() -> None:
    assert {_part(path) for path in MODULES} <= set(LAYERS)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_module_imports_only_the_layers_below_it(path: Path) -> None:
    part = _part(path)
    allowed = LAYERS[part] | {part}
    names = set(dir(tfrecord_io))  # `from tfrecord_io import open` names a public object
    imported = {p for p in _imported_parts(path) if p in LAYERS or p not in names}
    assert imported <= allowed, f"{part} imports {sorted(imported - allowed)}"


OPTIONAL = (
    "pandas", "pyarrow", "geopandas", "xarray", "dask", "distributed", "fsspec", "gcsfs",
    "s3fs", "tensorflow", "google.protobuf", "rapidgzip", "indexed_gzip",
)  # fmt: skip


def test_importing_the_package_imports_no_optional_dependency() -> None:
    code = (
        "import sys, tfrecord_io\n"
        f"print(sorted(m for m in {OPTIONAL!r} if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == "[]", done.stdout
