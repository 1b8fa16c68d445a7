"""FEATURE_NORM: a global per-coefficient MFCC mean and scale measured on the training set.

The 26 MFCC coefficients differ in scale by ~30× (c0, the log energy, has a standard deviation
near 11; the high coefficients below 0.5), so with raw features the first layer sees mostly the
loudness of a clip and little of its spectral shape. A run that starts from random weights
measures the mean and standard deviation of every coefficient over the training clips (streamed,
O(1) memory, at most MAX_CLIPS clips spread over the set) and the model normalizes its input with
them. They are stored with the checkpoint and folded into layer_1 when weights are read for export,
transcribe or test (`network.fold_feature_norm`), so the exported graphs are DeepSpeech's, unchanged.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from pipeline.model.geometry import N_INPUT

log = logging.getLogger(__name__)

MAX_CLIPS = 4000
MIN_STD = 0.1  # a (near-)constant coefficient is not blown up into noise


def feature_stats(paths: list[str], sample_rate: int, max_clips: int = MAX_CLIPS) -> np.ndarray:
    """[2, 26] (mean, 1 / std) of the MFCC frames of `paths` (every k-th clip if there are more
    than `max_clips`), accumulated in float64."""
    import tensorflow as tf

    from pipeline.model.features import wav_file_to_mfcc

    step = max(1, -(-len(paths) // max_clips))
    chosen = paths[::step]
    n = 0
    total = np.zeros(N_INPUT, np.float64)
    squares = np.zeros(N_INPUT, np.float64)
    ds = tf.data.Dataset.from_tensor_slices(chosen).map(
        lambda p: wav_file_to_mfcc(p, sample_rate), num_parallel_calls=tf.data.AUTOTUNE)
    for feats in ds.prefetch(8):
        f = feats.numpy().astype(np.float64)
        n += len(f)
        total += f.sum(axis=0)
        squares += np.square(f).sum(axis=0)
    if n == 0:
        from pipeline.model.network import identity_norm

        return identity_norm()
    mean = total / n
    std = np.sqrt(np.maximum(squares / n - np.square(mean), 0.0))
    log.info("FEATURE_NORM: MFCC mean and scale from %d frames of %d training clips (c0 mean %.2f, "
             "std %.2f)", n, len(chosen), mean[0], std[0])
    return np.stack([mean, 1.0 / np.maximum(std, MIN_STD)]).astype(np.float32)


def norm_to_state(norm: np.ndarray) -> list[list[float]]:
    """JSON form of the (mean, scale) rows, for the training state."""
    return [[float(v) for v in row] for row in np.asarray(norm, np.float64)]


def set_model_norm(model: Any, norm: Any) -> None:
    model.feature_norm.assign(np.asarray(norm, np.float32))
