"""``tfrecordio:validate``: report every problem of an export or a predictions folder."""

from __future__ import annotations

from qgis.core import (
    QgsProcessing,
    QgsProcessingOutputBoolean,
    QgsProcessingOutputNumber,
    QgsProcessingOutputString,
)

from .common import ReadExportAlgorithm, reported


class ValidateAlgorithm(ReadExportAlgorithm):
    """Check a whole export with tfrecord_io.validate; problems are results, not errors."""

    OUTPUT_JSON = "OUTPUT_JSON"
    VALID = "VALID"
    PROBLEM_COUNT = "PROBLEM_COUNT"
    REPORT = "REPORT"

    band_order = False

    algorithm_name = "validate"
    display_name = "Validate export"
    help_text = (
        "Reads every record of an Earth Engine TFRecord image export (or of a predictions "
        "folder, with the export's mixer) and reports every problem found: gaps in the "
        "shard numbers, a missing or malformed mixer, CRC-32C mismatches, truncated shards "
        "or gzip streams, records that do not fit the grid, and a record count that "
        "differs from the mixer's. VALID is false when there is any problem; each problem "
        "is listed in the log, in REPORT (JSON text) and in the optional JSON file."
    )

    def initAlgorithm(self, config=None):
        """Declare the parameters and outputs."""
        self.add_export_parameters()
        self.add_optional_file_output(self.OUTPUT_JSON, "Report (JSON)", "JSON (*.json)")
        self.addOutput(QgsProcessingOutputBoolean(self.VALID, "Export is valid"))
        self.addOutput(QgsProcessingOutputNumber(self.PROBLEM_COUNT, "Number of problems"))
        self.addOutput(QgsProcessingOutputString(self.REPORT, "Problems (JSON)"))

    def processAlgorithm(self, parameters, context, feedback):
        """Run the algorithm: parse the parameters, call the library, report."""
        path = self.export_path(parameters, context)
        options = self.open_options(parameters, context)
        destination = self.parameterAsFileOutput(parameters, self.OUTPUT_JSON, context)
        with reported():
            from tfrecord_io.image.tools import ValidationReport

            report = ValidationReport.from_path(path, **options)
        for problem in report.problems:
            feedback.reportError(problem.describe(), False)
        feedback.pushInfo(report.summary())
        results = {
            self.VALID: report.valid,
            self.PROBLEM_COUNT: len(report.problems),
            self.REPORT: report.to_json(),
        }
        if destination and destination != QgsProcessing.TEMPORARY_OUTPUT:
            with open(destination, "w", encoding="utf-8") as f:
                f.write(report.to_json() + "\n")
            results[self.OUTPUT_JSON] = destination
        return results
