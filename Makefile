# ds-pipeline developer entry points. `make demo` and `make test` work on a fresh machine with
# Python >= 3.11 and the apt packages listed in scripts/apt-packages.txt (.ci/run installs them).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_DIR ?= data
DEMO_LANG ?= fr
DEMO_CLIPS ?= 1000
PYTEST_ARGS ?=

.PHONY: venv kenlm test test-all lint demo clean-demo readme-vars

venv: $(VENV)/.installed

$(VENV)/.installed: setup.py requirements.txt requirements-cpu.txt requirements-dev.txt requirements-nodeps.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-cpu.txt -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps -r requirements-nodeps.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

# KenLM lmplz/filter/build_binary from the PyPI source distribution, cached in ~/.cache/ds-pipeline.
kenlm:
	scripts/build_kenlm.sh

lint: venv
	$(PY) -m ruff check pipeline importers tests benchmarks
	$(PY) -m mypy pipeline importers

# The default suite (what CI runs): everything but tests marked `slow`.
test: venv kenlm
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS) tests

test-all: venv kenlm
	$(PY) -m pytest $(PYTEST_ARGS) tests

# The whole pipeline on a synthesized French sample corpus, on CPU, into ./data.
demo: venv kenlm
	mkdir -p $(DEMO_DIR)/sources
	test -f $(DEMO_DIR)/sources/cv-corpus-sample-$(DEMO_LANG).tar.gz || \
	  $(VENV)/bin/ds-pipeline sample-corpus --lang $(DEMO_LANG) --clips $(DEMO_CLIPS) \
	    --out $(DEMO_DIR)/sources/cv-corpus-sample-$(DEMO_LANG).tar.gz
	$(VENV)/bin/ds-pipeline run --data-dir $(DEMO_DIR) --lang $(DEMO_LANG) --env-file env_files/sample.env

clean-demo:
	rm -rf $(DEMO_DIR)

# Regenerate README.md's variable table from pipeline/config.py.
readme-vars:
	$(PYTHON) scripts/update_readme.py
