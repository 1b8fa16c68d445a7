"""Helpers for the export tests: espeak-ng clips and a tiny DeepSpeech-geometry model trained here.

The trainer is deliberately local (plain TF, BlockLSTM so the weights are already in the
DeepSpeech layout): the export tests must not depend on the training area's code.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.model.geometry import LSTM_BIAS, LSTM_KERNEL, N_FEATURES
from pipeline.text.alphabet import Alphabet

REPO = Path(__file__).resolve().parents[2]
SENTENCES = ["bonjour", "merci beaucoup", "le chat dort", "il fait beau", "la maison bleue",
             "un deux trois", "la pomme rouge", "bonne nuit"]


def synth(texts: list[str], out_dir: Path, voice: str = "fr", wpm: int = 150) -> list[Path]:
    """16 kHz mono PCM16 wavs of `texts` spoken by espeak-ng (espeakng-loader wheel, ctypes)."""
    import soundfile as sf
    import soxr

    from tests.espeak import speak

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, text in enumerate(texts):
        audio, rate = speak(text, voice, wpm)
        audio = soxr.resample(audio, rate, 16000)
        p = out_dir / f"clip_{i:03d}.wav"
        sf.write(str(p), audio, 16000, subtype="PCM_16")
        paths.append(p)
    return paths


@dataclass
class TinyModel:
    weights: dict[str, np.ndarray]
    alphabet: Alphabet
    n_hidden: int
    clips: list[Path]
    texts: list[str]
    test_clips: list[Path]   # the clips plus copies with silence and noise around them
    test_texts: list[str]


def train_tiny(clips: list[Path], texts: list[str], alphabet: Alphabet, n_hidden: int = 64,
               max_steps: int = 2000, target_loss: float = 0.25, seed: int = 1,
               log_steps: bool = False) -> dict[str, np.ndarray]:
    """Overfit a DeepSpeech-geometry model on a few clips (until the loss is below `target_loss`,
    checked every 20 steps, or `max_steps`); return DeepSpeech-layout weights. Counted in steps, not
    seconds, so the model is the same on an idle and on a loaded machine."""
    import soundfile as sf
    import tensorflow as tf

    from pipeline.model.reference import context_windows, mfcc_frames

    tf.random.set_seed(seed)
    rng = np.random.default_rng(seed)
    feats = []
    for p in clips:
        x, _ = sf.read(str(p), dtype="float32")
        feats.append(context_windows(mfcc_frames(x, pad_last=False)).reshape(-1, N_FEATURES))
    # The same clips with silence and faint noise around them, as VAD segments come padded.
    for p in clips:
        x, _ = sf.read(str(p), dtype="float32")
        pads = [np.zeros(int(16000 * rng.uniform(0.1, 0.5)), np.float32) for _ in range(2)]
        x = np.concatenate([pads[0], x, pads[1]])
        x = x + rng.standard_normal(len(x)).astype(np.float32) * 1e-3
        feats.append(context_windows(mfcc_frames(x, pad_last=False)).reshape(-1, N_FEATURES))
    texts = [*texts, *texts]
    t_max = max(len(f) for f in feats)
    batch = np.zeros((len(feats), t_max, N_FEATURES), np.float32)
    for i, f in enumerate(feats):
        batch[i, :len(f)] = f
    lengths = np.array([len(f) for f in feats], np.int32)
    labels = tf.ragged.constant([alphabet.encode(t) for t in texts]).to_sparse()
    h, c_out = n_hidden, alphabet.num_classes
    glorot = tf.keras.initializers.GlorotUniform(seed=seed)
    shapes = {"layer_1/weights": (N_FEATURES, h), "layer_2/weights": (h, h), "layer_3/weights": (h, h),
              LSTM_KERNEL: (2 * h, 4 * h), "layer_5/weights": (h, h), "layer_6/weights": (h, c_out)}
    v = {k: tf.Variable(glorot(s)) for k, s in shapes.items()}
    for k, n in (("layer_1/bias", h), ("layer_2/bias", h), ("layer_3/bias", h),
                 (LSTM_BIAS, 4 * h), ("layer_5/bias", h), ("layer_6/bias", c_out)):
        v[k] = tf.Variable(tf.zeros([n]))
    opt = tf.keras.optimizers.Adam(3e-3)
    x_tm = tf.constant(np.transpose(batch, (1, 0, 2)))  # [T, B, N_FEATURES]
    zeros = tf.zeros([h])

    def dense(x, name, relu=True):
        y = tf.matmul(x, v[f"{name}/weights"]) + v[f"{name}/bias"]
        return tf.minimum(tf.nn.relu(y), 20.0) if relu else y

    @tf.function
    def train_step():
        with tf.GradientTape() as tape:
            b = tf.shape(x_tm)[1]
            x = tf.reshape(x_tm, [-1, N_FEATURES])
            for name in ("layer_1", "layer_2", "layer_3"):
                x = dense(x, name)
            state = tf.zeros([b, h])
            res = tf.raw_ops.BlockLSTM(
                seq_len_max=tf.cast(t_max, tf.int64), x=tf.reshape(x, [t_max, b, h]),
                cs_prev=state, h_prev=state, w=v[LSTM_KERNEL], wci=zeros, wcf=zeros, wco=zeros,
                b=v[LSTM_BIAS], forget_bias=0.0, cell_clip=-1.0, use_peephole=False)
            y = dense(tf.reshape(res.h, [-1, h]), "layer_5")
            logits = tf.reshape(dense(y, "layer_6", relu=False), [t_max, b, c_out])
            loss = tf.reduce_mean(tf.nn.ctc_loss(labels, logits, None, lengths,
                                                 logits_time_major=True, blank_index=-1))
        grads = tape.gradient(loss, list(v.values()))
        opt.apply_gradients(zip(grads, list(v.values()), strict=False))
        return loss

    loss, step = float("nan"), 0
    while step < max_steps:
        for _ in range(20):
            loss = float(train_step())
        step += 20
        if loss < target_loss:
            break
    if log_steps:
        print(f"train_tiny: {step} steps, loss {loss:.3f}")
    return {k: var.numpy() for k, var in v.items()}


def random_weights(n_hidden: int, n_classes: int, seed: int = 3) -> dict[str, np.ndarray]:
    """Seeded random weights, each variable from its own stream (the converter dedups equal ones)."""
    h = n_hidden
    shapes = {"layer_1/weights": (N_FEATURES, h), "layer_1/bias": (h,), "layer_2/weights": (h, h),
              "layer_2/bias": (h,), "layer_3/weights": (h, h), "layer_3/bias": (h,),
              LSTM_KERNEL: (2 * h, 4 * h), LSTM_BIAS: (4 * h,), "layer_5/weights": (h, h),
              "layer_5/bias": (h,), "layer_6/weights": (h, n_classes), "layer_6/bias": (n_classes,)}
    return {k: (np.random.default_rng([seed, i]).standard_normal(s) * 0.15).astype(np.float32)
            for i, (k, s) in enumerate(shapes.items())}
