"""The environment of a child Python that imports the same tfrecord_io as the tests do.

Under ``make test`` the tests import the installed package (the repository root is taken off
``sys.path`` before it is imported, though pytest puts it back for the ``tests`` package); run
with ``PYTHONPATH=.`` they import the source tree. A child given ``PYTHONPATH`` = the source tree
would import other code than its parent, so it is given the parent's own ``sys.path`` without
the folders that would shadow the parent's tfrecord_io, and ``PYTHONSAFEPATH`` keeps its working
folder off it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

import tfrecord_io


def python_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """Return ``base`` (``os.environ`` by default) with the test process's import path.

    Parameters
    ----------
    base : mapping of str to str, optional
        The rest of the child's environment.
    """
    home = Path(tfrecord_io.__file__).resolve().parent.parent
    path = []
    for entry in sys.path:
        folder = Path(entry or os.getcwd()).resolve()
        if folder == home or not (folder / "tfrecord_io").is_dir():
            path.append(str(folder))
    if str(home) not in path:
        path.insert(0, str(home))
    env = dict(os.environ if base is None else base)
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(path))
    env["PYTHONSAFEPATH"] = "1"
    return env
