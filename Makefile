# Every target installs what it needs into .venv first, so each works on a fresh clone.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST := $(PY) -m pytest

.PHONY: demo test test-unit test-runner test-chart chart-readme test-cluster test-images test-fast lint bench \
	test-mutation test-faults test-storage \
	bench-runner bench-tabular bench-scale bench-operator bench-storage test-kind kind-e2e venv images locks clean \
	docs docs-reference

$(VENV)/.installed: pyproject.toml setup.py runner-image/src/prs_runner/planning/record_scan.c
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev,operator,examples]'
	$(PY) -m compileall -q runner-image/src operator/src  # bytecode, as an installed copy has
	touch $@

venv: $(VENV)/.installed

## demo: train the digits model, write the images, score them with prs run (2 nodes x 2 processes)
demo: venv
	$(PY) examples/digits/prepare.py
	$(VENV)/bin/prs run examples/digits/step.yaml
	$(PY) examples/digits/accuracy.py

## test: every tier (lint, unit, runner, chart, cluster, images); a tier whose prerequisites are
## missing fails
test: lint test-unit test-runner test-storage test-chart test-cluster test-images

## test-fast: an explicit opt-out of the cluster tier, for quick iterations
test-fast: lint test-unit test-runner

## lint: ruff (style, and the file-I/O rule: only prs_runner.storage touches user data),
## mypy strict, the architecture contracts of pyproject.toml (import-linter), and the docs
## site built strictly (mkdocs)
lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-logo
	$(MKDOCS_BUILD)

## docs: the documentation site (MkDocs Material) into build/site/ (ignored by git); strict,
## so a broken link, a missing page or an unknown anchor fails. Also part of `make lint`.
# (no --quiet: it hides the warnings that --strict turns into failures)
MKDOCS_BUILD = NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir build/site
docs: venv
	$(MKDOCS_BUILD)

## docs-reference: regenerate docs/reference/step.md from crds/parallelrunsteps.yaml (a unit
## test fails when the committed page differs)
docs-reference: venv
	$(PY) tools/step_reference.py

test-unit: venv
	$(PYTEST) -q tests/unit

test-runner: venv
	$(PYTEST) -q tests/runner

## test-storage: prs run on real object-storage servers (SeaweedFS for S3, Azurite for Azure
## Blob, fake-gcs-server for GCS; built from Go modules and npm on first use, then cached)
test-storage: venv
	$(PYTEST) -q tests/storage

# The Helm chart linted and rendered by a helm binary built from its Go module (needs Go).
test-chart: venv
	$(PYTEST) -q tests/chart

## chart-readme: regenerate helm/parallelrun-operator/README.md with helm-docs (built from its
## Go module, then cached) from README.md.gotmpl, Chart.yaml and values.yaml's `# --` comments
chart-readme:
	tools/chart-readme.sh helm/parallelrun-operator

test-cluster: venv
	$(PYTEST) -q tests/cluster

## test-images: Docker engine (started if needed), local base image, runner image, containers
test-images: venv
	$(PYTEST) -q tests/images

## test-mutation: mutmut over the pure core (the modules in pyproject's [tool.mutmut]) against
## the unit tier; prints each module's score and fails under 90 %. Not part of `make test`.
test-mutation: venv
	$(PY) tools/mutation.py

## test-faults: SIGKILLs of workers, supervisors and prs run (also mid-merge), a full disk and a
## concurrent second run, each followed by a rerun and the exactly-once, in-order check (root)
FAULT_TRIALS ?= 24
test-faults: venv
	$(PY) tests/faults/trials.py --trials $(FAULT_TRIALS)

## images: the runner and (once operator/src exists) operator images, tagged IMAGE_TAG, on
## BASE_IMAGE (default: the local Debian + python3 image of tools/build-base-image.sh)
DOCKER ?= /usr/bin/docker
IMAGE_TAG ?= 0.1.0
PIP_CA ?= /etc/ssl/certs/ca-certificates.crt
images:
	tools/start-docker.sh
	base=$${BASE_IMAGE:-$$(tools/build-base-image.sh)}; \
	secret=$$([ -f "$(PIP_CA)" ] && echo "--secret id=pip-ca,src=$(PIP_CA)"); \
	for image in runner-image operator; do \
	  [ $$image = runner-image ] || [ -d operator/src ] || continue; \
	  DOCKER_BUILDKIT=1 $(DOCKER) build --build-arg BASE_IMAGE=$$base $$secret \
	    -f $$image/Dockerfile -t parallelrunstep/$${image%-image}:$(IMAGE_TAG) . || exit 1; \
	done
	$(DOCKER) image ls 'parallelrunstep/*'

## locks: re-pin the images' dependencies from pyproject.toml (hashes included); the operator's
## from operator/requirements.in: pyproject's dependencies without the data stack
PIP_COMPILE = CUSTOM_COMPILE_COMMAND="make locks" $(VENV)/bin/pip-compile -q --generate-hashes \
	--allow-unsafe --strip-extras --no-emit-find-links --build-deps-for wheel --upgrade
locks: venv
	$(PY) -m pip install -q pip-tools
	$(PIP_COMPILE) -o runner-image/requirements.lock pyproject.toml
	$(subst --build-deps-for wheel,,$(PIP_COMPILE)) -o operator/requirements.lock operator/requirements.in

## bench: the runner's dispatch rate and efficiency against multiprocessing.Pool, tabular
## reading throughput against plain pyarrow, and the operator at 50 steps
bench: bench-runner bench-tabular bench-operator bench-storage

bench-runner: venv
	$(PY) benchmarks/dispatch.py
	$(PY) benchmarks/efficiency.py
	cd benchmarks && ../$(PY) skew.py

bench-tabular: venv
	$(PY) benchmarks/tabular_read.py

## bench-scale: 10,000 and 100,000 files (SCALE_ARGS=--million adds 1,000,000): plan, run,
## merge and rerun times, peak memory per process kind, exponents between sizes
bench-scale: venv
	cd benchmarks && ../$(PY) scale.py $(SCALE_ARGS)

## bench-storage: prs run on a real S3 server (tabular 500 MB, 10,000 small files) beside
## plain pyarrow and a plain download loop in the same run, and the requests each made
bench-storage: venv
	$(PY) benchmarks/storage_throughput.py

bench-operator: venv
	$(PY) benchmarks/operator_pass.py
	$(PY) benchmarks/operator_scale.py --steps 50
	$(PY) benchmarks/operator_large_step.py --nodes 500

## test-kind: the operator and the digits example on a kind cluster (tools/kind-e2e.sh), all
## built here: kind, the node image, kubectl, helm, the images on the local base; no registry.
## Needs root, Docker (started if needed), Go and PyPI. Not part of `make test`.
test-kind: venv
	tools/kind-e2e.sh

kind-e2e: test-kind

clean:
	rm -rf $(VENV) examples/digits/data examples/digits/models examples/digits/out \
		examples/sales/data examples/sales/out
