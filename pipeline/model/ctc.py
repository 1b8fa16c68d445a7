"""The CTC loss of training: dense labels on CPU, cuDNN's sparse-label CTC on a GPU when it can."""

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


def ctc_loss(labels: Any, logits: Any, llen: Any, flen: Any, sparse: bool, sparse_fn: Any = None) -> Any:
    """Per-example CTC loss (blank last) of time-major float32 logits.

    `sparse` (GPU): sparse labels, which TensorFlow routes to cuDNN's CTC on a GPU (≈ 50× faster
    than the dense-label loop, TF#55290), when the batch's labels are shorter than cuDNN's limit;
    a batch whose sparse loss is not finite is recomputed dense (cuDNN's CTC is less forgiving,
    TF#55405). Otherwise (CPU, long labels) the dense-label loss. `sparse_fn` replaces the sparse
    loss in tests.
    """
    import tensorflow as tf

    def dense() -> Any:
        return tf.nn.ctc_loss(labels, logits, llen, flen, logits_time_major=True, blank_index=-1)

    if not sparse:
        return dense()

    def sparse_or_dense() -> Any:
        if sparse_fn is not None:
            per_ex = sparse_fn(labels, logits, llen, flen)
        else:
            per_ex = tf.nn.ctc_loss(sparse_labels(labels, llen), logits, None, flen,
                                    logits_time_major=True, blank_index=-1)
        return tf.cond(tf.reduce_all(tf.math.is_finite(per_ex)), lambda: per_ex, dense)

    short = tf.reduce_max(tf.concat([llen, [0]], 0)) < CUDNN_CTC_MAX_LABELS
    return tf.cond(short, sparse_or_dense, dense)


def eval_sums(labels: Any, logits: Any, llen: Any, flen: Any, sparse: bool) -> tuple[Any, Any, Any, Any]:
    """One dev batch's sums from its time-major logits: (finite per-utterance CTC losses, their
    count, the best path's label edit distance to the labels, the labels' count) — mean dev loss
    and greedy CER (over labels) are ratios of these sums across batches."""
    import tensorflow as tf

    per_ex = ctc_loss(labels, logits, llen, flen, sparse)
    ok = tf.math.is_finite(per_ex)
    (best,), _ = tf.nn.ctc_greedy_decoder(tf.cast(logits, tf.float32), flen)  # blank last
    errors = tf.edit_distance(tf.cast(best, tf.int32), sparse_labels(labels, llen), normalize=False)
    return (tf.reduce_sum(tf.where(ok, per_ex, 0.0)), tf.reduce_sum(tf.cast(ok, tf.float32)),
            tf.reduce_sum(errors), tf.cast(tf.reduce_sum(llen), tf.float32))
