"""AMP path on CPU (mixed_bfloat16): float32 variables, finite losses, and the checkpoint resumes
in an fp32 run (and vice versa the structure is the same)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.train.helpers import copy_corpus, train_config


def test_amp_checkpoint_resumes_in_fp32(tiny_corpus, tmp_path: Path) -> None:
    import tensorflow as tf

    from pipeline.model.network import load_export_weights
    from pipeline.model.train import Trainer, compute_dtype
    from pipeline.paths import Paths

    paths = Paths.at(copy_corpus(tiny_corpus, tmp_path / "data"))
    csvs = ([tiny_corpus.csvs["train"]], [tiny_corpus.csvs["dev"]])
    amp_cfg = train_config(AMP=1, EPOCHS=1)
    assert compute_dtype(amp_cfg) == "mixed_bfloat16"
    t = Trainer(amp_cfg, paths, *csvs)
    st = t.run()
    assert all(v.dtype == tf.float32 for v in t.model.weight_list())
    assert np.isfinite(st["history"][0]["train_loss"])
    w_amp = load_export_weights(paths.best_checkpoint_dir)
    assert all(v.dtype == np.float32 for v in w_amp.values())

    fp32 = Trainer(train_config(AMP=0, EPOCHS=2), paths, *csvs)
    st2 = fp32.run()
    assert [h["epoch"] for h in st2["history"]] == [1, 2]  # resumed epoch 1 from the AMP run
    assert st2["global_step"] == 2 * st["global_step"]
    # and back: an fp32 checkpoint continues under AMP
    st3 = Trainer(train_config(AMP=1, EPOCHS=3), paths, *csvs).run()
    assert st3["epoch"] == 3 and np.isfinite(st3["history"][-1]["train_loss"])
