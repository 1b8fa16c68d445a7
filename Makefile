# ds-pipeline developer entry points. `make demo` and `make test` work on a fresh machine with
# Python >= 3.11 and the apt packages listed in scripts/apt-packages.txt (.ci/run installs them).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_DIR ?= data
DEMO_LANG ?= fr
DEMO_CLIPS ?= 3000
PYTEST_ARGS ?=

.PHONY: venv kenlm mpg123 legacy-runtimes test test-all smoke lint reliability demo demo-digits clean-demo readme-vars bench container-test

venv: $(VENV)/.installed

$(VENV)/.installed: setup.py requirements.txt requirements-cpu.txt requirements-dev.txt requirements-nodeps.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-cpu.txt -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps -r requirements-nodeps.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

# KenLM lmplz/filter/build_binary from the PyPI source distribution, cached in ~/.cache/ds-pipeline.
kenlm: venv
	PYTHON=$(PY) bash scripts/build_kenlm.sh

# The import's MP3 decoder: Debian 12's libmpg123 plus pipeline/data/mpg123-band-limit.patch, cached in
# ~/.cache/ds-pipeline (without it the system libmpg123 decodes, ≈ 10 % slower imports).
mpg123:
	bash scripts/build_mpg123.sh

# The DeepSpeech 0.9.3 / Coqui STT 1.4.0 wheels (cp39) whose native libraries judge our exports.
legacy-runtimes: venv
	PYTHON=$(PY) bash scripts/fetch_legacy_runtimes.sh

lint: venv
	$(PY) -m ruff check pipeline importers tests benchmarks
	$(PY) -m mypy pipeline importers

# The default suite (what CI runs): everything but tests marked `slow`.
test: venv kenlm mpg123 legacy-runtimes
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS) tests

test-all: venv kenlm mpg123 legacy-runtimes
	$(PY) -m pytest $(PYTEST_ARGS) tests

# DeepSpeech 0.9's CI smoke test, ours: overfit LDC93S1 (train = dev = test), export everything, every
# artifact in our transcribe and in libdeepspeech 0.9.3 / libstt 1.4.0, with and without
# DeepSpeech's pruned_lm.scorer (env_files/deepspeech_smoke.env, tests/smoke; also in `make test`);
# the same in bytes output mode with its pruned_lm.bytes.scorer (env_files/deepspeech_smoke_bytes.env).
smoke: venv kenlm legacy-runtimes
	$(PY) -m pytest $(PYTEST_ARGS) tests/smoke

# Issue #8's matrices in full: every crash-resume kill point (most are `slow`), bad inputs, disk full.
reliability: venv kenlm legacy-runtimes
	$(PY) -m pytest -m "slow or not slow" $(PYTEST_ARGS) tests/reliability

# The whole pipeline on a synthesized French sample corpus, on CPU, into ./data.
demo: venv kenlm mpg123
	mkdir -p $(DEMO_DIR)/sources
	test -f $(DEMO_DIR)/sources/cv-corpus-sample-$(DEMO_LANG).tar.gz || \
	  $(VENV)/bin/ds-pipeline sample-corpus --lang $(DEMO_LANG) --clips $(DEMO_CLIPS) \
	    --out $(DEMO_DIR)/sources/cv-corpus-sample-$(DEMO_LANG).tar.gz
	$(VENV)/bin/ds-pipeline run --data-dir $(DEMO_DIR) --lang $(DEMO_LANG) --env-file env_files/sample.env \
	  --env-file env_files/demo.env

# Real speech, unseen speakers: the Free Spoken Digit Dataset (DIGITS=<its recordings/ folder>) as a
# clip list with a speaker column, trained with sample.env; the split falls back to whole speakers
# held out for dev and test (docs/real-speech.md). Into ./data-digits.
DIGITS ?=
DIGITS_DIR ?= data-digits
demo-digits: venv kenlm
	@test -n "$(DIGITS)" || { echo "set DIGITS=<folder of the Free Spoken Digit Dataset recordings>"; exit 2; }
	$(PY) scripts/fsdd_clip_list.py "$(DIGITS)" $(DIGITS_DIR)/sources/digits.csv
	$(VENV)/bin/ds-pipeline run --data-dir $(DIGITS_DIR) --lang en --env-file env_files/sample.env \
	  --set CORPORA=csv --set CSV_LIST=digits.csv --set MIN_DURATION=0.1

clean-demo:
	rm -rf $(DEMO_DIR)

# Build both Dockerfiles without a Docker daemon (buildah) and run the pipeline in the image.
# CONTAINER_TEST_STAGES=preflight for a quick check, all (default in CI) for the full run.
container-test:
	bash scripts/container_test.sh

# Benchmarks: each prints ratios against a baseline measured in the same run.
bench: venv kenlm legacy-runtimes
	$(PY) benchmarks/import_speed.py
	$(PY) benchmarks/decode_speed.py
	$(PY) benchmarks/train_speed.py
	$(PY) benchmarks/inference_speed.py

# Regenerate README.md's variable table from pipeline/config.py.
readme-vars:
	$(PYTHON) scripts/update_readme.py
