"""Acoustic outputs of a trained checkpoint: softmax probabilities per utterance, for the test
stage, the LM optimizer and the export checks."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.config import Config
from pipeline.errors import MissingInputError
from pipeline.model.geometry import N_INPUT
from pipeline.paths import Paths
from pipeline.text.alphabet import Alphabet

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Utterance:
    wav_filename: str
    transcript: str
    probs: np.ndarray  # [T, C] softmax, float32, blank last


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)


def load_checkpoint_model(checkpoint: Path, alphabet: Alphabet) -> Any:
    from pipeline.model.network import build_model, geometry_of, read_checkpoint_weights

    weights = read_checkpoint_weights(checkpoint)
    geometry = geometry_of(weights)
    if geometry.n_classes != alphabet.num_classes:
        raise MissingInputError(f"checkpoint {checkpoint} has {geometry.n_classes} outputs but the alphabet "
                                f"needs {alphabet.num_classes}; it was trained with another alphabet.txt")
    model = build_model(geometry)
    model.assign_numpy(weights)
    return model


def acoustic_outputs(cfg: Config, paths: Paths, csv_files: list[Path], checkpoint: Path | None = None,
                     limit: int | None = None) -> list[Utterance]:
    """Softmax outputs [T, C] of every usable row of `csv_files` (CSV order, rejected rows left
    out with a logged reason), from the best-dev checkpoint unless `checkpoint` is given."""
    import tensorflow as tf

    from pipeline.model.dataset import load_samples, make_dataset, plan_batches

    checkpoint = Path(checkpoint) if checkpoint else paths.best_checkpoint_dir
    if not checkpoint.exists():
        raise MissingInputError(f"checkpoint {checkpoint} does not exist; run the train stage first")
    alphabet = Alphabet.from_file(paths.alphabet)
    model = load_checkpoint_model(checkpoint, alphabet)
    samples = load_samples([Path(c) for c in csv_files], alphabet, "eval", limit,
                           cfg.data.audio_sample_rate)
    plan = plan_batches(samples.frames, cfg.train.batch_size)
    ds = make_dataset(samples, list(range(len(plan))), plan)
    infer = tf.function(lambda f: model(f),
                        input_signature=[tf.TensorSpec([None, None, N_INPUT], tf.float32)])
    probs: list[np.ndarray | None] = [None] * len(samples)
    for b, (feats, flen, _labels, _llen) in enumerate(ds):
        logits = infer(feats).numpy()          # [T, B, C]
        for j, i in enumerate(plan[b]):
            probs[i] = _softmax(logits[: int(flen[j]), j, :])
    return [Utterance(samples.paths[i], samples.transcripts[i], p) for i, p in enumerate(probs)
            if p is not None]
