# make run   : set up .venv, fetch MNIST, train the default preset, print the test accuracy
# make test  : set up .venv with the dev extras, fetch the test data, run the whole test suite
# make bench : the side-by-side speed benchmark (writes bench/results.json and bench/RESULTS.md)

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
CLI    := $(BIN)/mnist-logreg

.PHONY: run test bench venv clean

# One stamp per set of extras, remade when pyproject.toml changes.
$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed-%: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[$*]'
	touch $@

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

venv: $(VENV)/.installed

run: $(VENV)/.installed
	$(CLI) fetch --dataset mnist
	$(CLI) train --dataset mnist --preset default

test: $(VENV)/.installed-dev
	$(CLI) fetch --dataset mnist
	$(CLI) fetch --dataset fashion-mnist
	$(BIN)/python -m pytest

bench: $(VENV)/.installed-bench
	$(CLI) fetch --dataset mnist
	$(BIN)/python bench/benchmark.py

clean:
	rm -rf $(VENV) runs
