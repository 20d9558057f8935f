# Every target installs what it needs into .venv first, so each works on a fresh clone.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST := $(PY) -m pytest

.PHONY: demo test test-unit test-runner test-cluster test-fast lint bench bench-runner bench-tabular venv clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev,operator,examples]'
	touch $@

venv: $(VENV)/.installed

## demo: train the digits model, write the images, score them with prs run (2 nodes x 2 processes)
demo: venv
	$(PY) examples/digits/prepare.py
	$(VENV)/bin/prs run examples/digits/step.yaml
	$(PY) examples/digits/accuracy.py

## test: every tier (lint, unit, runner, cluster); a tier whose prerequisites are missing fails
test: lint test-unit test-runner test-cluster

## test-fast: an explicit opt-out of the cluster tier, for quick iterations
test-fast: lint test-unit test-runner

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

test-unit: venv
	$(PYTEST) -q tests/unit

test-runner: venv
	$(PYTEST) -q tests/runner

test-cluster: venv
	$(PYTEST) -q tests/cluster

## bench: the runner's dispatch rate and efficiency against multiprocessing.Pool, and tabular
## reading throughput against plain pyarrow in a 2-process pool
bench: bench-runner bench-tabular

bench-runner: venv
	$(PY) benchmarks/dispatch.py
	$(PY) benchmarks/efficiency.py

bench-tabular: venv
	$(PY) benchmarks/tabular_read.py

clean:
	rm -rf $(VENV) examples/digits/data examples/digits/models examples/digits/out \
		examples/sales/data examples/sales/out
