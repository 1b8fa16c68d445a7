"""Helpers for the training tests: a small training config and a fresh data dir over a shared corpus."""

from __future__ import annotations

from pathlib import Path

from tests.train.synth import Corpus

REPO = Path(__file__).resolve().parents[2]


def train_config(**overrides: object):
    from pipeline.config import load_config

    # CHECKPOINT_SECS=0: no wall-clock checkpoints, so a run saves the same checkpoints on any machine.
    base = {"N_HIDDEN": 48, "BATCH_SIZE": 8, "EPOCHS": 2, "LEARNING_RATE": 0.003, "DROPOUT": 0.0,
            "EARLY_STOP": 0, "CHECKPOINT_SECS": 0, "LIVE_TRANSCRIPTS": 1, "CORPORA": "synth"}
    base.update(overrides)
    return load_config(environ={}, overrides=[f"{k}={v}" for k, v in base.items()])


def copy_corpus(corpus: Corpus, dest: Path) -> Path:
    """A fresh data dir sharing the corpus' wavs (symlinked extracted/, copied alphabet)."""
    (dest / "models").mkdir(parents=True, exist_ok=True)
    (dest / "extracted").symlink_to(corpus.root / "extracted")
    (dest / "models" / "alphabet.txt").write_bytes(corpus.alphabet.read_bytes())
    return dest
