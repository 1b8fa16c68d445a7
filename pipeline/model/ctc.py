"""The CTC loss of training: TensorFlow's C++ CTC kernel on CPU (DeepSpeech 0.9's loss), cuDNN's
CTC on a GPU when it can."""

from __future__ import annotations

from typing import Any

# cuDNN's CTC takes labels shorter than this (NVIDIA cudnnCTCLoss docs); longer batches go dense.
CUDNN_CTC_MAX_LABELS = 256


def sparse_labels(labels: Any, llen: Any) -> Any:
    """Padded labels [B, U] + lengths -> SparseTensor (label 0 is a real character, so the lengths,
    not the values, say what is padding)."""
    import tensorflow as tf

    idx = tf.where(tf.sequence_mask(llen, tf.shape(labels)[1]))
    return tf.SparseTensor(idx, tf.gather_nd(labels, idx), tf.cast(tf.shape(labels), tf.int64))


def kernel_loss(labels: Any, logits: Any, llen: Any, flen: Any) -> Any:
    """Per-example CTC loss from TensorFlow's C++ CTC kernel (`tf.compat.v1.nn.ctc_loss`, the one
    DeepSpeech 0.9 trained with), with the dense-label loss's answers where the kernel has none:
    a clip too short for its labels (each label a frame, plus a blank between repeated labels) is
    +inf, not skipped; an empty transcript costs its all-blank path, not an error. On CPU ≈ 25×
    faster, loss and gradient included, than `tf.nn.ctc_loss` with dense labels (log-space loops
    of many small ops; benchmarks/train_speed.py), for the same losses and gradients."""
    import tensorflow as tf

    empty = tf.equal(llen, 0)
    # the kernel refuses a row without labels: it gets a one-label stand-in, its loss comes below
    stand_in = tf.pad(labels, [[0, 0], [0, 1]])
    per_ex = tf.compat.v1.nn.ctc_loss(sparse_labels(stand_in, tf.maximum(llen, 1)), logits, flen,
                                      ignore_longer_outputs_than_inputs=True, time_major=True)
    frames = tf.transpose(tf.sequence_mask(flen, tf.shape(logits)[0], logits.dtype))  # [T, B]
    all_blank = -tf.reduce_sum(tf.nn.log_softmax(logits)[:, :, -1] * frames, 0)
    # features.ctc_min_frames's rule (one frame a label, one more between equal neighbours) on tensors
    valid = tf.sequence_mask(llen, tf.shape(labels)[1])
    repeats = tf.reduce_sum(tf.cast(tf.equal(labels[:, 1:], labels[:, :-1]) & valid[:, 1:], tf.int32), 1)
    feasible = flen >= llen + repeats
    return tf.where(empty, all_blank, tf.where(feasible, per_ex, float("inf")))


def ctc_loss(labels: Any, logits: Any, llen: Any, flen: Any, cudnn: bool, cudnn_fn: Any = None) -> Any:
    """Per-example CTC loss (blank last) of time-major float32 logits; +inf where no alignment exists.

    `cudnn` False (CPU): `kernel_loss`. `cudnn` True (GPU): sparse labels, which TensorFlow routes
    to cuDNN's CTC (≈ 50× faster than the dense-label loop, TF#55290), when the batch's labels are
    shorter than cuDNN's limit; a batch whose cuDNN loss is not finite, or whose labels are too long
    for cuDNN, gets the dense-label loss (cuDNN's CTC is less forgiving, TF#55405; on a GPU the dense
    loops run there too, where the C++ kernel would copy the logits to the CPU). `cudnn_fn` replaces
    the cuDNN loss in tests.
    """
    import tensorflow as tf

    if not cudnn:
        return kernel_loss(labels, logits, llen, flen)

    def dense() -> Any:
        return tf.nn.ctc_loss(labels, logits, llen, flen, logits_time_major=True, blank_index=-1)

    def sparse_or_dense() -> Any:
        if cudnn_fn is not None:
            per_ex = cudnn_fn(labels, logits, llen, flen)
        else:
            per_ex = tf.nn.ctc_loss(sparse_labels(labels, llen), logits, None, flen,
                                    logits_time_major=True, blank_index=-1)
        return tf.cond(tf.reduce_all(tf.math.is_finite(per_ex)), lambda: per_ex, dense)

    short = tf.reduce_max(tf.concat([llen, [0]], 0)) < CUDNN_CTC_MAX_LABELS
    return tf.cond(short, sparse_or_dense, dense)


def eval_sums(labels: Any, logits: Any, llen: Any, flen: Any, cudnn: bool) -> tuple[Any, Any, Any, Any]:
    """One dev batch's sums from its time-major logits: (finite per-utterance CTC losses, their
    count, the best path's label edit distance to the labels, the labels' count) — mean dev loss
    and greedy CER (over labels) are ratios of these sums across batches."""
    import tensorflow as tf

    per_ex = ctc_loss(labels, logits, llen, flen, cudnn)
    ok = tf.math.is_finite(per_ex)
    (best,), _ = tf.nn.ctc_greedy_decoder(tf.cast(logits, tf.float32), flen)  # blank last
    errors = tf.edit_distance(tf.cast(best, tf.int32), sparse_labels(labels, llen), normalize=False)
    return (tf.reduce_sum(tf.where(ok, per_ex, 0.0)), tf.reduce_sum(tf.cast(ok, tf.float32)),
            tf.reduce_sum(errors), tf.cast(tf.reduce_sum(llen), tf.float32))
