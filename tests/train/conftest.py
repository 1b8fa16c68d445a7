"""Fixtures for training tests: synthesized espeak-ng corpora (see synth.py) and configs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.train.synth import Corpus, make_corpus

REPO = Path(__file__).resolve().parents[2]
# Keep TF quiet and small; tests share the machine with others.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    """24 train clips of one word each from 8 voices; dev/test with other voices and words."""
    root = tmp_path_factory.mktemp("tiny")
    return make_corpus(root, n_train=24, n_dev=6, n_test=6, seed=3, words=(1, 1))


def train_config(**overrides: object):
    from pipeline.config import load_config

    base = {"N_HIDDEN": 48, "BATCH_SIZE": 8, "EPOCHS": 2, "LEARNING_RATE": 0.003, "DROPOUT": 0.0,
            "EARLY_STOP": 0, "CHECKPOINT_SECS": 600, "LIVE_TRANSCRIPTS": 1, "CORPORA": "synth"}
    base.update(overrides)
    return load_config(environ={}, overrides=[f"{k}={v}" for k, v in base.items()])


def copy_corpus(corpus: Corpus, dest: Path) -> Path:
    """A fresh data dir sharing the corpus' wavs (symlinked extracted/, copied alphabet)."""
    (dest / "models").mkdir(parents=True, exist_ok=True)
    (dest / "extracted").symlink_to(corpus.root / "extracted")
    (dest / "models" / "alphabet.txt").write_bytes(corpus.alphabet.read_bytes())
    return dest
