"""Transfer learning: DeepSpeech 0.9 release-layout checkpoints (TF1 names, i-c-f-o, written with
tf.compat.v1), DROP_SOURCE_LAYERS, shared-character output rows, idempotence on resume, AMP."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline.model.network import DS_NAMES, Geometry, initial_values
from tests.train.helpers import copy_corpus, train_config

H = 32


def write_tf1_release_checkpoint(directory: Path, n_classes: int, alphabet_text: str | None = None,
                                 seed: int = 7) -> dict[str, np.ndarray]:
    """A checkpoint laid out like deepspeech-0.9.3-checkpoint: TF1 variable names, Adam slots,
    global_step, and the `best_dev_checkpoint` state file."""
    import tensorflow as tf

    values = {DS_NAMES[k]: v + np.float32(0.01) * (i + 1)
              for i, (k, v) in enumerate(initial_values(Geometry(H, n_classes), seed).items())}
    directory.mkdir(parents=True, exist_ok=True)
    graph = tf.Graph()
    with graph.as_default():
        tf1 = tf.compat.v1
        variables = []
        for name, value in values.items():
            variables.append(tf1.get_variable(name, initializer=tf.constant(value)))
            tf1.get_variable(name + "/Adam", initializer=tf.zeros_like(value))
            tf1.get_variable(name + "/Adam_1", initializer=tf.zeros_like(value))
        tf1.train.get_or_create_global_step()
        tf1.get_variable("learning_rate", initializer=tf.constant(0.0001))
        saver = tf1.train.Saver()
        with tf1.Session(graph=graph) as sess:
            sess.run(tf1.global_variables_initializer())
            saver.save(sess, str(directory / "best_dev"), global_step=1234,
                       latest_filename="best_dev_checkpoint")
    if alphabet_text is not None:
        (directory / "alphabet.txt").write_text(alphabet_text, encoding="utf-8")
    return values


def test_release_layout_checkpoint_loads(tmp_path: Path) -> None:
    from pipeline.model.network import load_export_weights

    values = write_tf1_release_checkpoint(tmp_path / "ckpt", 29)
    assert not (tmp_path / "ckpt" / "checkpoint").exists()
    loaded = load_export_weights(tmp_path / "ckpt")
    assert set(loaded) == set(values)
    for k, v in values.items():
        np.testing.assert_array_equal(loaded[k], v)


def test_transfer_drop_one_layer_and_resume_is_idempotent(tiny_corpus, tmp_path: Path) -> None:
    from pipeline.model.network import read_checkpoint_weights
    from pipeline.model.train import Trainer
    from pipeline.paths import Paths

    source = write_tf1_release_checkpoint(tmp_path / "src", 29)  # an English-sized output layer
    paths = Paths.at(copy_corpus(tiny_corpus, tmp_path / "data"))
    csvs = ([tiny_corpus.csvs["train"]], [tiny_corpus.csvs["dev"]])
    cfg = train_config(TRANSFER_LEARNING=1, TRANSFER_CHECKPOINT=str(tmp_path / "src"),
                       DROP_SOURCE_LAYERS=1, N_HIDDEN=H, EPOCHS=1, LEARNING_RATE=0.0, AMP=1)
    t = Trainer(cfg, paths, *csvs)
    st = t.run()
    assert st["transfer_from"] == str(tmp_path / "src")
    got = read_checkpoint_weights(paths.train_checkpoint_dir)
    for attr, ds_name in DS_NAMES.items():
        if attr.startswith("layer_6"):
            assert got[attr].shape[-1] == 45  # French alphabet + blank, re-initialized
        else:
            np.testing.assert_allclose(got[attr], source[ds_name], atol=0, rtol=0)

    # Resume with more epochs: the transfer is not applied again (weights keep training).
    cfg2 = train_config(TRANSFER_LEARNING=1, TRANSFER_CHECKPOINT=str(tmp_path / "src"),
                        DROP_SOURCE_LAYERS=1, N_HIDDEN=H, EPOCHS=2, LEARNING_RATE=0.01)
    st2 = Trainer(cfg2, paths, *csvs).run()
    assert st2["epoch"] == 2
    after = read_checkpoint_weights(paths.train_checkpoint_dir)
    assert not np.allclose(after["layer_1_weights"], source["layer_1/weights"])


def test_keep_shared_characters(tmp_path: Path) -> None:
    from pipeline.model.network import transfer_weights
    from pipeline.text.alphabet import Alphabet

    src_alpha = Alphabet(tuple(" abc'"))
    tgt_alpha = Alphabet(tuple(" abéc"))
    src = initial_values(Geometry(H, src_alpha.num_classes), 1)
    tgt = initial_values(Geometry(H, tgt_alpha.num_classes), 2)
    out, notes = transfer_weights(src, tgt, 0, src_alpha, tgt_alpha, keep_shared_chars=True)
    w_src, w = src["layer_6_weights"], out["layer_6_weights"]
    for j, ch in enumerate(tgt_alpha.labels):
        if ch in src_alpha:
            np.testing.assert_array_equal(w[:, j], w_src[:, src_alpha.labels.index(ch)])
        else:
            np.testing.assert_array_equal(w[:, j], tgt["layer_6_weights"][:, j])
    np.testing.assert_array_equal(w[:, -1], w_src[:, -1])
    assert "kept 4 shared characters" in " ".join(notes)
    from pipeline.errors import ConfigError

    with pytest.raises(ConfigError, match="DROP_SOURCE_LAYERS"):
        transfer_weights(src, tgt, 0, src_alpha, tgt_alpha, keep_shared_chars=False)
