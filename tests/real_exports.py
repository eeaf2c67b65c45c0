"""Where the real Earth Engine files are, and a fixture that needs them.

They live in ``../shared/real-exports/`` beside the repository (a sibling of the clone in CI).
Outside CI a missing folder skips the tests that need it, with the reason; under ``CI=true`` it
fails them, since CI always has it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REAL_EXPORTS = Path(__file__).resolve().parents[1].parent / "shared" / "real-exports"


def require_real_exports() -> Path:
    """Return the folder of real exports; skip (fail under CI) when it is absent."""
    if not REAL_EXPORTS.is_dir():
        reason = f"the real Earth Engine files are not at {REAL_EXPORTS}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return REAL_EXPORTS
