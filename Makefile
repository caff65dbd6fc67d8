# make run   : set up .venv (with the web demo and ONNX export), fetch the data, train the default preset
# make deps  : the system packages the whole suite needs (Chromium, ApacheBench, handwriting fonts), once
# make test  : make deps, set up .venv with the dev extras, fetch the test data, run the whole test suite
# make test-fast : the offline tests alone (under a minute): before every commit
# make lint  : ruff's check and format check, with the rules pinned in pyproject.toml
# make bench : the side-by-side speed benchmark, reading a folder dataset, digits in other pens, and tuning on writers (bench/*.json, bench/RESULTS.md)
# make bench-serve : the server under ApacheBench (writes bench/serve-results.json and bench/RESULTS.md)
# make bench-predict : a folder of photos predicted with 1 and 2 workers (bench/RESULTS.md)
# make bench-parallel : training in 1 process against 2 under torchrun (bench/RESULTS.md)
# make bench-shares : the default run's per-epoch shares of pen copies and outliers, on validation (docs/presets.md)
# make bench-suite : make test-fast three times and make test once, with their slowest tests (docs/development.md)
# make serve : the drawing demo on http://127.0.0.1:8000/ for a freshly trained default run

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
CLI    := $(BIN)/mnist-logreg

# Root installs system packages directly; anyone else through sudo.
SUDO   := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)

.PHONY: run deps test-data test test-fast lint bench bench-serve bench-predict bench-parallel bench-shares bench-suite serve venv clean chromium apache-bench demo-screenshot fonts

# One stamp per set of extras, remade when pyproject.toml changes.
$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# An editable install compiles nothing: compile the package once, so that every command (and
# --help above all) starts from bytecode even where PYTHONDONTWRITEBYTECODE is set.
$(VENV)/.installed-%: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[$*]'
	$(BIN)/python -m compileall -q src
	touch $@

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	$(BIN)/python -m compileall -q src
	touch $@

venv: $(VENV)/.installed

# The default run learns "not a digit" from Fashion-MNIST's garments too. Where they cannot be
# fetched (Debian's package lists missing, no root to refresh them), it trains on drawn outliers
# alone, and says so in one line. The extras make every example of the README work: the web
# demo (serve) and the ONNX export.
run: $(VENV)/.installed-web,export
	$(CLI) fetch --dataset mnist
	-@$(CLI) fetch --dataset fashion-mnist 2>/dev/null
	$(CLI) train --dataset mnist --preset default

# The browser tests drive Debian's Chromium through Playwright (no browser download).
chromium:
	@command -v chromium >/dev/null 2>&1 || { $(SUDO) apt-get update && $(SUDO) apt-get install -y chromium; }

# The memory test and bench-serve load the server with ApacheBench, a compiled client.
apache-bench:
	@command -v ab >/dev/null 2>&1 || { $(SUDO) apt-get update && $(SUDO) apt-get install -y apache2-utils; }

# Letters no outlier came from, for the tests of "not a digit": Debian's handwriting fonts,
# downloaded and unpacked into data/fonts without root (apt checks each package's hash).
HANDWRITING_FONTS := fonts-dkg-handwriting fonts-breip fonts-humor-sans fonts-femkeklaver fonts-bwht
FONT_DIR := data/fonts

$(FONT_DIR)/.unpacked:
	rm -rf $(FONT_DIR).partial && mkdir -p $(FONT_DIR).partial/debs
	cd $(FONT_DIR).partial/debs && { apt-get download $(HANDWRITING_FONTS) || { $(SUDO) apt-get update && apt-get download $(HANDWRITING_FONTS); }; }
	for deb in $(FONT_DIR).partial/debs/*.deb; do dpkg-deb -x "$$deb" $(FONT_DIR).partial/root; done
	mkdir -p $(FONT_DIR).partial/fonts
	find $(FONT_DIR).partial/root \( -name '*.ttf' -o -name '*.otf' \) -exec cp {} $(FONT_DIR).partial/fonts/ \;
	rm -rf $(FONT_DIR) && mv $(FONT_DIR).partial/fonts $(FONT_DIR) && rm -rf $(FONT_DIR).partial
	touch $@

fonts: $(FONT_DIR)/.unpacked

# What the whole suite needs from the system, installed once where missing: Chromium (the browser
# tests), ApacheBench (the memory test) and Debian's handwriting fonts (the letters).
deps: chromium apache-bench fonts

# The real datasets the suite trains on. Debian's Fashion-MNIST package needs apt's package lists,
# which a fresh machine may lack.
test-data: $(VENV)/.installed-dev
	$(CLI) fetch --dataset mnist
	$(CLI) fetch --dataset fashion-mnist || { $(SUDO) apt-get update && $(CLI) fetch --dataset fashion-mnist; }

test: $(VENV)/.installed-dev deps test-data
	$(BIN)/python -m pytest

# The offline tests: no real dataset, no generated-request fuzzing; spread over the cores
# (pytest-xdist), since most of them wait on a server or a subprocess. Work-stealing: a worker that
# runs out takes half of what another has left, so that neither waits at the end (and a module's
# tests mostly stay on one worker, which sets its fixtures up once).
test-fast: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -q -n auto --dist worksteal -m "not real_data and not fuzz"

# pytest rewrites the asserts of the test modules and of its plugins' packages (Hypothesis's, anyio's,
# xdist's: some 150 modules) in every process it starts, and keeps what it rewrote as bytecode,
# unless PYTHONDONTWRITEBYTECODE is set; kept, the fast tests take some 3 s less.
test test-fast: export PYTHONDONTWRITEBYTECODE :=

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

# Refresh the README's picture of the page (the tests themselves never write into the tree).
demo-screenshot: $(VENV)/.installed-dev chromium
	MNIST_LOGREG_SCREENSHOT=$(CURDIR)/docs/demo.png $(BIN)/python -m pytest -q tests/test_browser.py -k "drawn_with_the_mouse and 7"

bench: $(VENV)/.installed-bench fonts
	$(CLI) fetch --dataset mnist
	$(CLI) fetch --dataset fashion-mnist
	$(BIN)/python -m bench.benchmark
	$(BIN)/python -m bench.folder
	$(BIN)/python -m bench.pens
	$(BIN)/python -m bench.writers

# The server under ApacheBench (Debian's apache2-utils), beside the framework's floor.
bench-serve: $(VENV)/.installed-web apache-bench
	$(CLI) fetch --dataset mnist
	$(BIN)/python -m bench.serve

# Predicting a folder of photos with 1 and 2 worker processes.
bench-predict: $(VENV)/.installed
	$(CLI) fetch --dataset mnist
	$(BIN)/python -m bench.predict_folder

# The default run's per-epoch shares of pen copies and outliers: candidates on the validation split.
bench-shares: $(VENV)/.installed
	$(CLI) fetch --dataset mnist
	$(CLI) fetch --dataset fashion-mnist
	$(BIN)/python -m bench.shares

# How long the tests take, through make as a developer runs them (about 13 minutes on two cores).
bench-suite: $(VENV)/.installed-dev deps test-data
	$(BIN)/python -m bench.suite

# Training in one process against two under torchrun.
bench-parallel: $(VENV)/.installed
	$(CLI) fetch --dataset mnist
	$(BIN)/python -m bench.data_parallel

serve: $(VENV)/.installed-web
	$(CLI) train --dataset mnist --preset default --out runs/demo --overwrite --no-report
	$(CLI) serve runs/demo

clean:
	rm -rf $(VENV) runs
