"""EMA_DECAY: the averaged weights follow TensorFlow's ExponentialMovingAverage equation step by step,
are swapped in for evaluation and back out exactly, travel in the training checkpoint, and are what
best_dev/ (so every export) holds."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from tests.train.helpers import copy_corpus, train_config

DECAY = 0.9


def _values(variables) -> list[np.ndarray]:
    return [v.numpy().copy() for v in variables]


def test_average_equation_swap_checkpoint_and_best_dev(tiny_corpus, tmp_path: Path, caplog) -> None:
    from pipeline.model.network import read_checkpoint_weights
    from pipeline.model.train import Trainer
    from pipeline.paths import Paths

    paths = Paths.at(copy_corpus(tiny_corpus, tmp_path / "data"))
    csvs = ([tiny_corpus.csvs["train"]], [tiny_corpus.csvs["dev"]])
    t = Trainer(train_config(EMA_DECAY=DECAY, EPOCHS=1, LIVE_TRANSCRIPTS=0), paths, *csvs)
    state = t.setup()
    weights = t.model.weight_list()
    assert all(np.array_equal(e, w) for e, w in zip(_values(t.ema), _values(weights), strict=True))

    # the update, step by step, against the equation in numpy
    ds, steps = t._dataset(t.train_set, t.epoch_plan(0), 0, None, None)
    ref = _values(weights)
    for step, batch in enumerate(ds):
        t.train_step(batch, ds.element_spec, step)
        d = min(DECAY, (1 + step) / (10 + step))
        ref = [d * r + (1 - d) * w for r, w in zip(ref, _values(weights), strict=True)]
        state["global_step"] += 1
    assert steps == 3
    for e, r in zip(_values(t.ema), ref, strict=True):
        np.testing.assert_allclose(e, r, rtol=1e-5, atol=1e-7)
    trained = _values(weights)
    assert max(float(np.abs(e - w).max()) for e, w in zip(_values(t.ema), trained, strict=True)) > 1e-4

    # evaluation sees the average; afterwards the trained weights are back bit for bit
    loss_trained, _ = t.dev_pass()
    with t.averaged_weights():
        for w, e in zip(_values(weights), ref, strict=True):
            np.testing.assert_allclose(w, e, rtol=1e-5, atol=1e-7)
        assert all(np.array_equal(e, x) for e, x in zip(_values(t.ema), trained, strict=True))
        loss_avg, _ = t.dev_pass()
    assert all(np.array_equal(w, x) for w, x in zip(_values(weights), trained, strict=True))
    assert loss_avg != loss_trained

    # the epoch end: best_dev/ holds the average, the training checkpoint both
    state = t._end_epoch(state, 0.0, 0.0)
    assert state["history"][0]["dev_loss"] == pytest.approx(loss_avg, rel=1e-6)
    best = read_checkpoint_weights(paths.best_checkpoint_dir, fold_norm=False)
    for w, e in zip(best.values(), ref, strict=True):
        np.testing.assert_allclose(w, e, rtol=1e-5, atol=1e-7)
    ema_saved = _values(t.ema)

    resumed = Trainer(train_config(EMA_DECAY=DECAY, EPOCHS=2, LIVE_TRANSCRIPTS=0), paths, *csvs)
    resumed.setup()
    assert all(np.array_equal(a, b) for a, b in zip(_values(resumed.ema), ema_saved, strict=True))
    assert all(np.array_equal(a, b)
               for a, b in zip(_values(resumed.model.weight_list()), trained, strict=True))

    # a checkpoint made without EMA_DECAY resumes with it: the average starts at its weights
    plain = Paths.at(copy_corpus(tiny_corpus, tmp_path / "plain"))
    Trainer(train_config(EPOCHS=1, LIVE_TRANSCRIPTS=0), plain, *csvs).run()
    caplog.set_level(logging.INFO)
    late = Trainer(train_config(EMA_DECAY=DECAY, EPOCHS=2, LIVE_TRANSCRIPTS=0), plain, *csvs)
    late.setup()
    assert "holds no averaged weights" in caplog.text
    assert all(np.array_equal(a, b)
               for a, b in zip(_values(late.ema), _values(late.model.weight_list()), strict=True))
