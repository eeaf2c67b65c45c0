"""The provider's algorithms: each parses its parameters, calls one tfrecord_io tool, reports."""
