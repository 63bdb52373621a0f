# Two commands a newcomer needs: `make train` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: train test lint bench bench-quick clean

# The stamp files re-run pip only when pyproject.toml changes.
$(BIN)/.xnet-installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[plot]"  # a first run should show its curves.png
	touch $@

$(BIN)/.xnet-dev-installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(BIN)/.xnet-installed $@

train: $(BIN)/.xnet-installed
	$(BIN)/xnet train

test: $(BIN)/.xnet-dev-installed
	$(BIN)/ruff check .
	$(BIN)/lint-imports  # the layering of ARCHITECTURE.md (contracts in pyproject.toml)
	$(BIN)/python -m pytest -q

# Benchmarks against PyTorch (CPU build) in their own environment, never part of the tests.
# `make bench ARGS="--only 1,3"` passes options through; see benchmarks/run.py.
BENCH_VENV := .bench-venv
$(BENCH_VENV)/bin/.bench-installed: pyproject.toml
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install --quiet --upgrade pip
	$(BENCH_VENV)/bin/pip install --quiet torch==2.13.0 -e ".[dev]"
	touch $@

bench: $(BENCH_VENV)/bin/.bench-installed
	$(BENCH_VENV)/bin/python -m benchmarks.run $(ARGS)

bench-quick: $(BENCH_VENV)/bin/.bench-installed
	$(BENCH_VENV)/bin/python -m benchmarks.run --quick $(ARGS)

lint: $(BIN)/.xnet-dev-installed
	$(BIN)/ruff check .
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
