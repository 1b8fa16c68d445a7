"""FEATURE_NORM (pipeline/model/normalize.py): the training set's per-coefficient MFCC mean and scale,
applied by the model and folded into layer_1 when a checkpoint is read, so the numpy reference, the
exported graphs and the legacy runtimes compute the normalized model with DeepSpeech's graph as is.
Checkpoints without the statistics (release checkpoints, older runs) read as they are (identity)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.model.geometry import N_INPUT
from pipeline.model.network import DS_NAMES, NORM_KEY, Geometry, initial_values
from tests.helpers import REPO

FSDD = REPO / "tests" / "data" / "fsdd"
H, C = 24, 12


def _model_with(norm: np.ndarray, seed: int = 5) -> object:
    from pipeline.model.network import build_model

    model = build_model(Geometry(H, C), seed)
    rng = np.random.default_rng(seed)
    # non-zero biases so the folded bias is really exercised
    model.assign_numpy({k: v + rng.normal(0, 0.05, v.shape).astype(np.float32)
                        for k, v in initial_values(Geometry(H, C), seed).items()})
    model.feature_norm.assign(norm)
    return model


def _random_norm(seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.stack([rng.normal(0, 5, N_INPUT), rng.uniform(0.2, 3.0, N_INPUT)]).astype(np.float32)


def test_folded_weights_in_the_numpy_reference_equal_the_normalizing_tf_model() -> None:
    import tensorflow as tf

    from pipeline.model.network import fold_feature_norm
    from pipeline.model.reference import context_windows, mfcc_frames, reference_probs

    norm = _random_norm()
    model = _model_with(norm)
    audio = np.random.default_rng(3).standard_normal(16000).astype(np.float32) * 0.1
    feats = mfcc_frames(audio, pad_last=False)
    tf_probs = tf.nn.softmax(model(tf.constant(feats[None]))[:, 0]).numpy()
    raw = {n: getattr(model, n).numpy() for n in DS_NAMES}
    folded = {DS_NAMES[k]: v for k, v in fold_feature_norm(raw, norm).items()}
    ref = reference_probs(folded, context_windows(feats))
    np.testing.assert_allclose(ref, tf_probs, atol=2e-5)
    # and the normalization is not a no-op: the raw weights on raw features differ
    unfolded = reference_probs({DS_NAMES[k]: v for k, v in raw.items()}, context_windows(feats))
    assert np.abs(unfolded - tf_probs).max() > 1e-2


def test_checkpoint_with_stats_reads_folded_and_without_reads_as_is(tmp_path: Path) -> None:
    import tensorflow as tf

    from pipeline.model.network import fold_feature_norm, read_checkpoint_weights

    norm = _random_norm(2)
    model = _model_with(norm)
    raw = {n: getattr(model, n).numpy() for n in DS_NAMES}
    tf.train.Checkpoint(model=model, feature_norm=model.feature_norm).write(str(tmp_path / "with/best"))
    tf.train.Checkpoint(model=model).write(str(tmp_path / "without/best"))
    assert NORM_KEY in tf.train.load_checkpoint(str(tmp_path / "with/best")).get_variable_to_shape_map()

    with_stats = read_checkpoint_weights(tmp_path / "with/best")
    expected = fold_feature_norm(raw, norm)
    for k in DS_NAMES:
        np.testing.assert_array_equal(with_stats[k], expected[k])
    assert not np.allclose(with_stats["layer_1_weights"], raw["layer_1_weights"])
    as_trained = read_checkpoint_weights(tmp_path / "with/best", fold_norm=False)
    without = read_checkpoint_weights(tmp_path / "without/best")  # e.g. a run before FEATURE_NORM
    for k in DS_NAMES:
        np.testing.assert_array_equal(as_trained[k], raw[k])
        np.testing.assert_array_equal(without[k], raw[k])


def test_a_fresh_model_is_identity_and_release_checkpoints_read_unchanged(tmp_path: Path) -> None:
    from pipeline.model.network import build_model, identity_norm, load_export_weights
    from tests.train.test_transfer import write_tf1_release_checkpoint

    np.testing.assert_array_equal(build_model(Geometry(H, C)).feature_norm.numpy(), identity_norm())
    values = write_tf1_release_checkpoint(tmp_path / "release", 29)
    loaded = load_export_weights(tmp_path / "release")
    for k, v in values.items():
        np.testing.assert_array_equal(loaded[k], v)


def test_feature_stats_normalize_the_training_clips() -> None:
    import tensorflow as tf

    from pipeline.model.features import wav_file_to_mfcc
    from pipeline.model.normalize import feature_stats

    paths = [str(p) for p in sorted(FSDD.glob("*.wav"))[:12]]
    # FSDD is 8 kHz: read at its own rate, features as AUDIO_SAMPLE_RATE=8000 computes them
    norm = feature_stats(paths, 8000, max_clips=6)
    assert norm.shape == (2, N_INPUT) and np.all(norm[1] > 0)
    frames = np.concatenate([wav_file_to_mfcc(tf.constant(p), 8000).numpy() for p in paths[::2]])
    z = (frames - norm[0]) * norm[1]
    np.testing.assert_allclose(z.mean(axis=0), 0.0, atol=1e-3)
    np.testing.assert_allclose(z.std(axis=0), 1.0, atol=1e-3)
    assert frames[:, 0].std() > 5 * frames[:, 20].std()  # why it matters: c0 dwarfs the rest
