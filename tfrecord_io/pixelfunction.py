"""The module GDAL imports to fill the bands of tfrecord_io's VRTs; its name never changes.

VRTs name ``tfrecord_io.pixelfunction.read_band`` as their pixel function, and
``GDAL_VRT_PYTHON_TRUSTED_MODULES`` trusts exactly this module, so VRTs that users already
wrote keep working whatever the package's layout. The function lives in
:mod:`tfrecord_io.gdal.pixel`.
"""

from tfrecord_io.gdal.pixel import read_band

__all__ = ["read_band"]
