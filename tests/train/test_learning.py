"""The model learns: greedy CER on a tiny synthesized corpus falls far below the untrained value."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.train.helpers import copy_corpus, train_config


def _greedy_cer(cfg, paths, csv, checkpoint=None) -> float:
    from pipeline.lm.decode import greedy_decode
    from pipeline.model.inference import acoustic_outputs
    from pipeline.report.metrics import wer_cer
    from pipeline.text.alphabet import Alphabet

    alphabet = Alphabet.from_file(paths.alphabet)
    utts = acoustic_outputs(cfg, paths, [csv], checkpoint=checkpoint)
    return wer_cer([u.transcript for u in utts], [greedy_decode(u.probs, alphabet) for u in utts])[1]


def test_tiny_corpus_is_learned(tiny_corpus, tmp_path: Path) -> None:
    """Learn 24 one-word clips (360 updates, ~30 s on an idle 2-core machine): training-set greedy
    CER must drop far below the untrained model's (~100 %)."""
    from pipeline.model.train import Trainer
    from pipeline.paths import Paths

    paths = Paths.at(copy_corpus(tiny_corpus, tmp_path / "data"))
    cfg = train_config(EPOCHS=1, N_HIDDEN=128, LEARNING_RATE=0.0, FEATURE_CACHE=1, BATCH_SIZE=4)
    train_csv = tiny_corpus.csvs["train"]
    Trainer(cfg, paths, [train_csv], [tiny_corpus.csvs["dev"]]).run()
    untrained = _greedy_cer(cfg, paths, train_csv)

    cfg = train_config(EPOCHS=60, N_HIDDEN=128, LEARNING_RATE=0.002, FEATURE_CACHE=1, BATCH_SIZE=4,
                       LIVE_TRANSCRIPTS=0)
    paths2 = Paths.at(copy_corpus(tiny_corpus, tmp_path / "data2"))
    state = Trainer(cfg, paths2, [train_csv], [train_csv]).run()
    trained = _greedy_cer(cfg, paths2, train_csv)
    print(f"untrained CER {untrained:.3f}, trained CER {trained:.3f} after {state['epoch']} epochs")
    assert untrained > 0.8
    assert trained < 0.3 * untrained
    assert paths2.train_done.exists()
    losses = [h["train_loss"] for h in state["history"]]
    assert losses[-1] < 0.2 * losses[0]
    # The dev pass's in-graph greedy CER (logged each epoch; dev = train here) is the CER of the
    # best checkpoint's outputs decoded by greedy_decode.
    best = next(h for h in state["history"] if h["epoch"] == state["best_epoch"])
    assert best["dev_greedy_cer"] == pytest.approx(trained, abs=0.01)
    assert state["history"][0]["dev_greedy_cer"] > best["dev_greedy_cer"]


@pytest.mark.slow
def test_demo_like_run_reaches_target_cer(tmp_path: Path) -> None:
    """The demo settings (env_files/sample.env) on ~1000 synthesized clips: held-out greedy CER."""
    import time

    from pipeline.config import load_config
    from pipeline.model.train import Trainer
    from pipeline.paths import Paths
    from tests.train.synth import make_corpus

    corpus = make_corpus(tmp_path, n_train=1000, n_dev=60, n_test=100, seed=1, words=(3, 7))
    env = Path(__file__).resolve().parents[2] / "env_files" / "sample.env"
    cfg = load_config([env], environ={}, overrides=["CORPORA=synth"])
    paths = Paths.at(tmp_path)
    t0 = time.monotonic()
    Trainer(cfg, paths, [corpus.csvs["train"]], [corpus.csvs["dev"]]).run()
    cer = _greedy_cer(cfg, paths, corpus.csvs["test"])
    print(f"demo-like: {time.monotonic() - t0:.0f} s, held-out greedy CER {cer:.3f}")
    assert cer <= 0.25
