# Quick start: `make demo` and `make test` do all the set-up on a fresh Debian machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUNTIME := $(VENV)/.runtime-installed
DEPS := $(VENV)/.deps-installed
# System packages the tests use: Debian's GDAL tools, and the Python QGIS runs on (numpy 1.24,
# rasterio 1.3.5, crcmod; protobuf 3.21 as the tests' codec reference) to check that the core
# runs there too, and QGIS itself
# (qgis_process and PyQGIS, headless) for the QGIS plugin's tests.
APT_PACKAGES := gdal-bin python3-rasterio python3-protobuf python3-crcmod python3-crc32c qgis python3-qgis qgis-providers
# The QGIS plugin zip: the plugin plus the library as its top-level package `tfrecord_io`.
QGIS_PLUGIN_BUILD ?= build/qgis-plugin
QGIS_PLUGIN_ZIP ?= dist/qgis_tfrecord_io.zip

.PHONY: all demo test lint typecheck pytest install system-deps bench clean qgis-plugin

all: test

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip setuptools wheel

# Third-party dependencies, reinstalled when pyproject.toml changes: the runtime with fast gzip
# for the demo, plus every optional integration (the `all` extra) and what the tests use
# (TensorFlow, emulators, pytest, ruff, mypy) for the tests. constraints.txt pins the versions
# the suite was last run with (`pip freeze` of a working venv): without it pip's resolver can
# spend many minutes backtracking through the cloud packages (s3fs, aiobotocore, moto, gcsfs).
$(RUNTIME): pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/python -m pip install -q -c constraints.txt ".[fast]"
	touch $@

$(DEPS): $(RUNTIME)
	$(BIN)/python -m pip install -q -c constraints.txt ".[all,test]"
	touch $@

# The package itself, as a wheel would install it (not editable): a file missing from the
# package makes the tests fail.
install: $(RUNTIME)
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation --force-reinstall .

system-deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing$$missing (apt)"; \
	    apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing >/dev/null; \
	  else echo "missing system packages:$$missing -- run: sudo apt-get install$$missing"; exit 1; fi; \
	fi

demo: install
	@mkdir -p demo-out
	$(BIN)/tfrecord-io info data/sample
	$(BIN)/tfrecord-io translate data/sample demo-out/sample.tif --overwrite -q
	@echo "wrote demo-out/sample.tif"

lint: $(DEPS)
	$(BIN)/ruff check tfrecord_io tests bench data plugins
	$(BIN)/ruff format --check tfrecord_io

typecheck: $(DEPS)
	$(BIN)/mypy tfrecord_io

pytest: $(DEPS) install system-deps
	cd /tmp && $(CURDIR)/$(BIN)/python -c "import tfrecord_io, sys; \
	  sys.exit(0 if '$(CURDIR)/tfrecord_io' not in tfrecord_io.__file__ else 'tests would import the source tree')"
	TFRECORD_IO_TEST_INSTALLED=1 $(BIN)/python -m pytest -q -p no:cacheprovider

test: lint typecheck pytest

# QGIS's plugin manager installs this zip ("Install from ZIP"): qgis_tfrecord_io/ holding the
# plugin and ext/tfrecord_io (no numpy, rasterio or click: QGIS's Python has them or needs none).
qgis-plugin:
	rm -rf $(QGIS_PLUGIN_BUILD) && mkdir -p $(QGIS_PLUGIN_BUILD) $(dir $(QGIS_PLUGIN_ZIP))
	cp -r plugins/qgis_tfrecord_io $(QGIS_PLUGIN_BUILD)/
	rm -rf $(QGIS_PLUGIN_BUILD)/qgis_tfrecord_io/ext $(QGIS_PLUGIN_BUILD)/qgis_tfrecord_io/.gitignore
	mkdir -p $(QGIS_PLUGIN_BUILD)/qgis_tfrecord_io/ext
	cp -r tfrecord_io $(QGIS_PLUGIN_BUILD)/qgis_tfrecord_io/ext/
	find $(QGIS_PLUGIN_BUILD) -name __pycache__ -prune -exec rm -rf {} + -o -name '*.pyc' -exec rm -f {} +
	rm -f $(QGIS_PLUGIN_ZIP)
	cd $(QGIS_PLUGIN_BUILD) && $(PYTHON) -m zipfile -c $(abspath $(QGIS_PLUGIN_ZIP)) qgis_tfrecord_io
	@echo "wrote $(QGIS_PLUGIN_ZIP)"

# Every benchmark, one after the other (about an hour on two cores; each can also be run alone).
BENCHES := read write translate index full sequence table xarray distributed cloud qgis
bench: $(DEPS) install system-deps
	for b in $(BENCHES); do $(BIN)/python bench/bench_$$b.py || exit 1; done

clean:
	rm -rf $(VENV) build *.egg-info demo-out bench/out $(QGIS_PLUGIN_ZIP)
