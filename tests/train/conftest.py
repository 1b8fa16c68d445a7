"""Fixtures for training tests: synthesized espeak-ng corpora (see synth.py; helpers in helpers.py)."""

from __future__ import annotations

import os

import pytest

from tests.train.synth import Corpus, make_corpus

# Keep TF quiet and small; tests share the machine with others.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    """24 train clips of one word each from 8 voices; dev/test with other voices and words."""
    root = tmp_path_factory.mktemp("tiny")
    return make_corpus(root, n_train=24, n_dev=6, n_test=6, seed=3, words=(1, 1))
