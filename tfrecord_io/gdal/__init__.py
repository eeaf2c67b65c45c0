"""The GDAL bridge: a VRT whose bands call :mod:`tfrecord_io.pixelfunction`, translate, checks."""
