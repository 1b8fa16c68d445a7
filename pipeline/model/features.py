"""Acoustic features with DeepSpeech 0.9 semantics, computed in the TF graph.

`tf.raw_ops.AudioSpectrogram(512, 320, magnitude_squared)` + `tf.raw_ops.Mfcc(16000, 26)` are the
very kernels the exported graphs (and libdeepspeech) use, so training and inference see identical
features. No normalization (reference §1.4). Audio is scaled int16/32768 like the native client and
`decode_wav` (DeepSpeech's trainer used /32767; the 3e-5 relative difference is irrelevant and this
way training matches the runtime exactly).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pipeline.model.geometry import (
    N_CONTEXT,
    N_FEATURES,
    N_INPUT,
    N_WINDOW,
    SAMPLE_RATE,
    step_samples,
    window_samples,
)


def num_frames(n_samples: int, sample_rate: int = SAMPLE_RATE) -> int:
    """Feature frames of a clip of `n_samples` samples (trailing partial window dropped)."""
    win, step = window_samples(sample_rate), step_samples(sample_rate)
    return 0 if n_samples < win else (n_samples - win) // step + 1


def ctc_min_frames(labels: Sequence[Any]) -> int:
    """Frames CTC needs for `labels` (ids or characters): one per label plus a blank between equal
    neighbours."""
    return len(labels) + sum(1 for a, b in zip(labels, labels[1:], strict=False) if a == b)


def audio_to_mfcc(audio: Any, sample_rate: int = SAMPLE_RATE) -> Any:
    """float32 mono samples [N] in [-1, 1] at `sample_rate` -> MFCC [T, 26] (T may be 0). The
    32 ms window and 20 ms step scale with the rate (AUDIO_SAMPLE_RATE), as in DeepSpeech."""
    import tensorflow as tf

    win, step = window_samples(sample_rate), step_samples(sample_rate)

    audio = tf.reshape(tf.cast(audio, tf.float32), [-1, 1])
    # AudioSpectrogram needs at least one window; pad very short clips so the op never fails and
    # then drop the fake frame.
    n = tf.shape(audio)[0]
    padded = tf.pad(audio, [[0, tf.maximum(0, win - n)], [0, 0]])
    spec = tf.raw_ops.AudioSpectrogram(input=padded, window_size=win, stride=step,
                                       magnitude_squared=True)
    mfcc = tf.raw_ops.Mfcc(spectrogram=spec, sample_rate=sample_rate, dct_coefficient_count=N_INPUT,
                           upper_frequency_limit=sample_rate / 2)
    mfcc = tf.reshape(mfcc, [-1, N_INPUT])
    frames = tf.where(n >= win, tf.shape(mfcc)[0], 0)
    return mfcc[:frames]


def wav_file_to_mfcc(path: Any, sample_rate: int = SAMPLE_RATE) -> Any:
    """Path tensor of a mono PCM16 wav at `sample_rate` (16 kHz unless AUDIO_SAMPLE_RATE) -> MFCC."""
    import tensorflow as tf

    audio, _rate = tf.audio.decode_wav(tf.io.read_file(path), desired_channels=1)
    return audio_to_mfcc(audio[:, 0], sample_rate)


def add_context(features: Any) -> Any:
    """[B, T, 26] -> [B, T, 494]: ±9 zero-padded frames, flattened frame-major (index k·26 + c is
    coefficient c of frame t−9+k), exactly DeepSpeech's identity-filter conv1d."""
    import tensorflow as tf

    padded = tf.pad(features, [[0, 0], [N_CONTEXT, N_CONTEXT], [0, 0]])
    windows = tf.signal.frame(padded, N_WINDOW, 1, axis=1)  # [B, T, 19, 26]
    shape = tf.shape(features)
    return tf.reshape(windows, [shape[0], shape[1], N_FEATURES])
