"""en sample -> fr sample with DROP_SOURCE_LAYERS=1 reaches the scratch model's held-out CER in
fewer updates than training from scratch (slow: trains three small models)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

SCRATCH_EPOCHS = 24
SIZE = {"N_HIDDEN": 128, "BATCH_SIZE": 8, "LEARNING_RATE": 0.002, "DROPOUT": 0.05, "FEATURE_CACHE": 1,
        "LIVE_TRANSCRIPTS": 0}


def _cer(cfg, paths, csv) -> float:
    from pipeline.lm.decode import greedy_decode
    from pipeline.model.inference import acoustic_outputs
    from pipeline.report.metrics import wer_cer
    from pipeline.text.alphabet import Alphabet

    alphabet = Alphabet.from_file(paths.alphabet)
    utts = acoustic_outputs(cfg, paths, [csv])
    return wer_cer([u.transcript for u in utts], [greedy_decode(u.probs, alphabet) for u in utts])[1]


@pytest.mark.slow
def test_transfer_en_to_fr_needs_fewer_steps(tmp_path: Path) -> None:
    from pipeline.model.train import Trainer
    from pipeline.paths import Paths
    from tests.train.helpers import train_config
    from tests.train.synth import make_corpus

    en = make_corpus(tmp_path / "en", lang="en", n_train=200, n_dev=20, n_test=30, seed=5, words=(2, 4))
    fr = make_corpus(tmp_path / "fr", lang="fr", n_train=200, n_dev=20, n_test=30, seed=6, words=(2, 4))
    en_paths = Paths.at(en.root)
    Trainer(train_config(EPOCHS=SCRATCH_EPOCHS, **SIZE), en_paths, [en.csvs["train"]], [en.csvs["dev"]]).run()

    scratch_dir = tmp_path / "fr_scratch"
    scratch_dir.mkdir()
    (scratch_dir / "extracted").symlink_to(fr.root / "extracted")
    (scratch_dir / "models").symlink_to(fr.root / "models")
    scratch_paths = Paths.at(scratch_dir)
    cfg = train_config(EPOCHS=SCRATCH_EPOCHS, **SIZE)
    st = Trainer(cfg, scratch_paths, [fr.csvs["train"]], [fr.csvs["dev"]]).run()
    scratch_cer = _cer(cfg, scratch_paths, fr.csvs["test"])
    scratch_steps = st["global_step"]

    tl_dir = tmp_path / "fr_transfer"
    tl_dir.mkdir()
    (tl_dir / "extracted").symlink_to(fr.root / "extracted")
    (tl_dir / "models").symlink_to(fr.root / "models")
    tl_paths = Paths.at(tl_dir)
    reached = None
    curve = []
    for epochs in range(2, SCRATCH_EPOCHS + 1, 2):
        cfg = train_config(EPOCHS=epochs, TRANSFER_LEARNING=1, DROP_SOURCE_LAYERS=1,
                           TRANSFER_CHECKPOINT=str(en_paths.best_checkpoint_dir), **SIZE)
        st = Trainer(cfg, tl_paths, [fr.csvs["train"]], [fr.csvs["dev"]]).run()
        cer = _cer(cfg, tl_paths, fr.csvs["test"])
        curve.append((st["global_step"], round(cer, 4)))
        if cer <= scratch_cer:
            reached = st["global_step"]
            break
    report = {"scratch_steps": scratch_steps, "scratch_cer": scratch_cer, "transfer_curve": curve,
              "transfer_steps_to_scratch_cer": reached}
    print(json.dumps(report))
    (tmp_path / "transfer_report.json").write_text(json.dumps(report))
    assert reached is not None and reached < scratch_steps
