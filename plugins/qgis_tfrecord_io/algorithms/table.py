"""``tfrecordio:load_table`` and ``tfrecordio:export_table``: table exports and vector layers.

Both run in QGIS's Python, which has numpy but not pandas or pyarrow: loading streams the
table's batches (:class:`tfrecord_io.gdal.ogr.TableLayerSource`, the same fields the GDAL
vector driver gives), exporting hands ``tfrecord_io.write_table`` a dict of numpy arrays.
"""

from __future__ import annotations

import re

import numpy as np
from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsFeature,
    QgsFeatureSink,
    QgsField,
    QgsFields,
    QgsGeometry,
    QgsPointXY,
    QgsProcessing,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterCrs,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterField,
    QgsProcessingParameterFile,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterString,
    QgsProject,
    QgsWkbTypes,
)
from qgis.PyQt.QtCore import QByteArray, QVariant

from .common import Cancelled, TFRecordAlgorithm, progress_callback, reported

TABLE_FILTER = "Earth Engine table exports (*.tfrecord *.tfrecord.gz *.gz);;All files (*)"
_VARIANTS = {
    "Real": QVariant.Double,
    "Integer64": QVariant.LongLong,
    "String": QVariant.String,
    "Binary": QVariant.ByteArray,
}
_ARRAY_FIELD = re.compile(r"^(?P<name>.+)_(?P<index>\d+)$")


class LoadTableAlgorithm(TFRecordAlgorithm):
    """Stream a table export into a vector layer (points when X and Y are given or found)."""

    INPUT = "INPUT"
    X = "X"
    Y = "Y"
    CRS = "CRS"
    OUTPUT = "OUTPUT"

    algorithm_name = "load_table"
    display_name = "Load table export as vector layer"
    help_text = (
        "Reads an Earth Engine table export (Export.table with fileFormat 'TFRecord': one "
        "Example per feature) into a vector layer. Numbers become Real or Integer64 fields, "
        "text String fields, raw bytes Binary fields; an array property (e.g. a 33x33 patch "
        "from neighborhoodToArray) becomes one field per value, NAME_0 ... NAME_{n-1}, in "
        "row-major order. Points are made from the X and Y fields, by default longitude and "
        "latitude when the table has them, in the CRS given (EPSG:4326 by default); without "
        "them the layer has no geometry. The table is read batch by batch."
    )

    def initAlgorithm(self, config=None):
        """Declare the parameters and outputs."""
        self.addParameter(
            QgsProcessingParameterFile(
                self.INPUT,
                "Table export (.tfrecord.gz)",
                behavior=QgsProcessingParameterFile.File,
                fileFilter=TABLE_FILTER,
            )
        )
        self.add_optional_text(self.X, "X field (longitude when empty and present)")
        self.add_optional_text(self.Y, "Y field (latitude when empty and present)")
        self.addParameter(
            QgsProcessingParameterCrs(
                self.CRS, "CRS of the points (EPSG:4326 when empty)", optional=True
            )
        )
        self.addParameter(QgsProcessingParameterFeatureSink(self.OUTPUT, "Table layer"))

    def processAlgorithm(self, parameters, context, feedback):
        """Run the algorithm: parse the parameters, stream the table into the sink, report."""
        path = self.parameterAsFile(parameters, self.INPUT, context)
        x = self.parameterAsString(parameters, self.X, context).strip() or None
        y = self.parameterAsString(parameters, self.Y, context).strip() or None
        if (x is None) != (y is None):
            raise QgsProcessingException("Give both X and Y fields, or neither")
        crs = self.parameterAsCrs(parameters, self.CRS, context)
        if not crs.isValid():
            crs = QgsCoordinateReferenceSystem("EPSG:4326")
        with reported():
            from tfrecord_io.gdal.ogr import TableLayerSource

            source = TableLayerSource(path, x=x, y=y)
            fields = QgsFields()
            for field in source.fields:
                fields.append(QgsField(field["name"], _VARIANTS[field["type"]]))
            geometry = QgsWkbTypes.Point if source.points else QgsWkbTypes.NoGeometry
            sink, dest = self.parameterAsSink(
                parameters, self.OUTPUT, context, fields, geometry, crs
            )
            if sink is None:
                raise QgsProcessingException(self.invalidSinkError(parameters, self.OUTPUT))
            rows = source.feature_count()
            progress = progress_callback(feedback)
            names = [field["name"] for field in source.fields]
            try:
                for n, item in enumerate(source.iter_features()):
                    feature = QgsFeature(fields)
                    values = item["fields"]
                    feature.setAttributes([_attribute(values[name]) for name in names])
                    if source.points:
                        point = QgsPointXY(values[source.points[0]], values[source.points[1]])
                        feature.setGeometry(QgsGeometry.fromPointXY(point))
                    sink.addFeature(feature, QgsFeatureSink.FastInsert)
                    if n % 1024 == 0:
                        progress(n / max(1, rows))
            except Cancelled:
                raise QgsProcessingException("Loading cancelled") from None
        feedback.pushInfo(f"Read {rows} rows and {len(names)} fields from {path}")
        if not context.willLoadLayerOnCompletion(dest):  # a load algorithm: always add it
            details = QgsProcessingContext.LayerDetails(source.name, context.project(), self.OUTPUT)
            context.addLayerToLoadOnCompletion(dest, details)
        return {self.OUTPUT: dest}


def _attribute(value):
    return QByteArray(value) if isinstance(value, bytes) else value


class ExportTableAlgorithm(TFRecordAlgorithm):
    """Write a vector layer's features as a table TFRecord with tfrecord_io.write_table."""

    INPUT = "INPUT"
    FIELDS = "FIELDS"
    X = "X"
    Y = "Y"
    GROUP_ARRAYS = "GROUP_ARRAYS"
    OUTPUT = "OUTPUT"

    algorithm_name = "export_table"
    display_name = "Export vector layer as Earth Engine table TFRecord"
    help_text = (
        "Writes a vector layer as Earth Engine writes a table export, ready for "
        "'earthengine upload table': one gzip TFRecord file, one Example per feature, one "
        "feature per field. Decimal fields are stored as float_list (float32, as Earth "
        "Engine stores numbers), integer fields as int64_list, text as bytes_list. Points "
        "become X and Y fields (longitude and latitude by default) in EPSG:4326; a layer "
        "without geometry is written as its fields only; other geometries are refused. With "
        "'group arrays', fields NAME_0 ... NAME_{n-1} (as the table loader makes them) are "
        "written back as one array property NAME. Empty (NULL) values cannot be written: "
        "Earth Engine tables have none."
    )

    def initAlgorithm(self, config=None):
        """Declare the parameters and outputs."""
        self.addParameter(QgsProcessingParameterFeatureSource(self.INPUT, "Vector layer"))
        self.addParameter(
            QgsProcessingParameterField(
                self.FIELDS,
                "Fields to write (all when none chosen)",
                parentLayerParameterName=self.INPUT,
                allowMultiple=True,
                optional=True,
            )
        )
        self.addParameter(
            QgsProcessingParameterString(self.X, "Name of the point X field", "longitude")
        )
        self.addParameter(
            QgsProcessingParameterString(self.Y, "Name of the point Y field", "latitude")
        )
        self.addParameter(
            QgsProcessingParameterBoolean(
                self.GROUP_ARRAYS, "Group fields NAME_0 ... NAME_{n-1} into arrays", True
            )
        )
        self.addParameter(
            QgsProcessingParameterFileDestination(
                self.OUTPUT,
                "Table TFRecord",
                fileFilter="Earth Engine table (*.tfrecord.gz *.tfrecord)",
            )
        )

    def processAlgorithm(self, parameters, context, feedback):
        """Run the algorithm: collect the features as numpy columns, write them, report."""
        layer = self.parameterAsSource(parameters, self.INPUT, context)
        if layer is None:
            raise QgsProcessingException(self.invalidSourceError(parameters, self.INPUT))
        chosen = self.parameterAsFields(parameters, self.FIELDS, context)
        x = self.parameterAsString(parameters, self.X, context).strip() or "longitude"
        y = self.parameterAsString(parameters, self.Y, context).strip() or "latitude"
        group = self.parameterAsBoolean(parameters, self.GROUP_ARRAYS, context)
        output = self.parameterAsFileOutput(parameters, self.OUTPUT, context)
        if output in ("", QgsProcessing.TEMPORARY_OUTPUT):
            raise QgsProcessingException("Name the table file to write (OUTPUT)")
        fields = layer.fields()
        names = list(chosen) or _data_fields(
            self.parameterAsVectorLayer(parameters, self.INPUT, context), fields
        )
        points = _has_points(layer)
        if points and x in names and y in names:
            points = False  # the coordinates are fields already (as load_table makes them)
        elif points and (x in names or y in names):
            raise QgsProcessingException(
                f"The layer has a field named '{x}' or '{y}' but not both: name the point "
                "fields otherwise (X, Y)"
            )
        values, kinds = _collect(layer, fields, names, points, feedback)
        columns = {name: _column(name, values[name], kinds[name]) for name in names}
        if points:
            columns[x] = np.asarray(values["__x"], dtype=np.float64)
            columns[y] = np.asarray(values["__y"], dtype=np.float64)
        if group:
            columns = _group_arrays(columns)
        with reported():
            import tfrecord_io

            try:
                written = tfrecord_io.write_table(
                    columns, output, overwrite=True, progress=progress_callback(feedback, 50)
                )
            except Cancelled:
                raise QgsProcessingException("Export cancelled: nothing was written") from None
        feedback.pushInfo(f"Wrote {len(values[names[0]] if names else [])} rows to {written}")
        return {self.OUTPUT: written}


def _data_fields(vector_layer, fields):
    """Return the field names to write: all but the provider's key (a GeoPackage's fid)."""
    keys = set(vector_layer.dataProvider().pkAttributeIndexes()) if vector_layer else set()
    return [field.name() for i, field in enumerate(fields) if i not in keys]


def _has_points(layer):
    kind = QgsWkbTypes.geometryType(layer.wkbType())
    if kind == QgsWkbTypes.NullGeometry:
        return False
    if kind != QgsWkbTypes.PointGeometry:
        raise QgsProcessingException(
            "Only points (or no geometry) can be written to an Earth Engine table: make "
            "centroids first (Vector geometry > Centroids)"
        )
    return True


def _collect(layer, fields, names, points, feedback):
    """Read every feature's values (and point coordinates in EPSG:4326) into lists."""
    values = {name: [] for name in names}
    kinds = {name: fields.field(fields.indexOf(name)).type() for name in names}
    if points:
        values["__x"], values["__y"] = [], []
        transform = QgsCoordinateTransform(
            layer.sourceCrs(), QgsCoordinateReferenceSystem("EPSG:4326"), QgsProject.instance()
        )
    total = max(1, layer.featureCount())
    indexes = [fields.indexOf(name) for name in names]
    for n, feature in enumerate(layer.getFeatures()):
        if feedback.isCanceled():
            raise QgsProcessingException("Export cancelled: nothing was written")
        attributes = feature.attributes()
        for name, index in zip(names, indexes, strict=True):
            value = attributes[index]
            if value is None or (hasattr(value, "isNull") and value.isNull()):
                raise QgsProcessingException(
                    f"Feature {feature.id()}: field '{name}' is empty (NULL). Earth Engine "
                    "tables have no nulls: fill or drop them first."
                )
            values[name].append(value)
        if points:
            geometry = feature.geometry()
            if geometry.isNull() or geometry.isEmpty() or geometry.isMultipart():
                raise QgsProcessingException(
                    f"Feature {feature.id()} has no single point: only points can be written"
                )
            point = transform.transform(geometry.asPoint())
            values["__x"].append(point.x())
            values["__y"].append(point.y())
        if n % 1024 == 0:
            feedback.setProgress(50.0 * n / total)
    return values, kinds


def _column(name, items, kind):
    if kind in (QVariant.Int, QVariant.LongLong, QVariant.UInt, QVariant.ULongLong):
        return np.asarray(items, dtype=np.int64)
    if kind == QVariant.Double:
        return np.asarray(items, dtype=np.float64)
    if kind == QVariant.Bool:
        return np.asarray(items, dtype=np.int64)
    if kind == QVariant.ByteArray:
        cells = np.empty(len(items), dtype=object)
        cells[:] = [bytes(item) for item in items]
        return cells
    cells = np.empty(len(items), dtype=object)
    cells[:] = [item if isinstance(item, str) else str(item) for item in items]
    return cells


def _group_arrays(columns):
    """Gather ``NAME_0 ... NAME_{n-1}`` columns (n > 1, numbers) into one ``(rows, n)`` column."""
    groups = {}
    for name in columns:
        match = _ARRAY_FIELD.match(name)
        if match:
            groups.setdefault(match["name"], []).append(int(match["index"]))
    out = {}
    done = set()
    for name, values in columns.items():
        match = _ARRAY_FIELD.match(name)
        base = match["name"] if match else None
        indexes = groups.get(base, [])
        whole = sorted(indexes) == list(range(len(indexes))) and len(indexes) > 1
        if base is None or not whole or values.dtype == object or base in columns:
            out[name] = values
        elif base not in done:
            done.add(base)
            out[base] = np.stack([columns[f"{base}_{i}"] for i in range(len(indexes))], axis=1)
    return out
