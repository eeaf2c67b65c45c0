"""xarray engine ``"eetfrecord"``: ``xr.open_dataset(export, engine="eetfrecord", chunks={})``.

Needs the ``tfrecord_io[xarray]`` extra (xarray, dask, distributed); ``import tfrecord_io`` alone
never imports xarray.
"""

from __future__ import annotations

try:
    import xarray as _xarray  # noqa: F401  (checked here, used by the modules below)
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError("tfrecord_io.xarray needs xarray: pip install 'tfrecord_io[xarray]'") from exc

from tfrecord_io.xarray.array import EETFRecordBackendArray
from tfrecord_io.xarray.backend import EETFRecordBackendEntrypoint, open_export

__all__ = ["EETFRecordBackendArray", "EETFRecordBackendEntrypoint", "open_export"]
