# recforge: the two README commands (`make demo`, `make test`) plus `make dev` and `make lint`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.recforge-installed
DATA_ROOT := $(abspath $(or $(RECFORGE_HOME),warehouse/data))
export RECFORGE_HOME := $(DATA_ROOT)
export DAGSTER_HOME := $(DATA_ROOT)/.dagster
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
PYTEST_ARGS ?=

.PHONY: demo test test-slow test-gpu dev lint install bench clean

install: $(STAMP)

# torch is installed on its own first, pinned, so pip takes the local CPU wheel instead of CUDA builds.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	mkdir -p $(DAGSTER_HOME)
	$(BIN)/recforge demo

# The default suite; heavier suites have their own targets (markers registered in pyproject.toml).
test: $(STAMP)
	$(BIN)/pytest -m "not slow and not gpu" $(PYTEST_ARGS)

test-slow: $(STAMP)
	$(BIN)/pytest -m "slow and not gpu" $(PYTEST_ARGS)

# Needs a CUDA device: the RQ-VAE on GPU must give the same IDs as on CPU.
test-gpu: $(STAMP)
	$(BIN)/pytest -m gpu $(PYTEST_ARGS)

dev: $(STAMP)
	mkdir -p $(DAGSTER_HOME)
	test -f $(DAGSTER_HOME)/dagster.yaml || printf 'telemetry:\n  enabled: false\n' > $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/dagster dev -m recforge.definitions

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy assets pipelines transforms training warehouse

bench: $(STAMP)
	for b in benchmarks/*.py; do $(BIN)/python $$b --quick || exit 1; done

clean:
	rm -rf $(VENV) $(DATA_ROOT)
