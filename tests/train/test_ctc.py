"""The CTC losses against TensorFlow's dense-label loss (`tf.nn.ctc_loss` with dense labels, an
independent log-space implementation): the CPU's C++ kernel (`kernel_loss`) and the GPU's sparse
labels (what TensorFlow sends to cuDNN's CTC) give the same losses and gradients; the kernel's
answers for rows it cannot take (no labels; too few frames); the GPU routing (label limit,
non-finite fallback)."""

from __future__ import annotations

import numpy as np

T, B, C = 40, 4, 6  # C - 1 is the blank


def _batch(u_max: int = 7, t: int = T) -> tuple:
    import tensorflow as tf

    rng = np.random.default_rng(5)
    llen = np.array([u_max, 3, 1, u_max - 2])
    labels = np.zeros((B, u_max), np.int32)
    for b, n in enumerate(llen):
        labels[b, :n] = rng.integers(0, C - 1, n)  # label 0 is a real character
    labels[1, :3] = [0, 0, 2]
    flen = np.array([t, t - 5, 10, t - 1])
    logits = tf.Variable(rng.normal(size=(t, B, C)).astype(np.float32))
    return logits, tf.constant(labels), tf.constant(llen, tf.int32), tf.constant(flen, tf.int32)


def _loss_and_grad(cudnn: bool | None, batch: tuple, cudnn_fn=None) -> tuple[np.ndarray, np.ndarray]:
    """Losses and the gradient of their finite sum; `cudnn` None: the dense-label reference."""
    import tensorflow as tf

    from pipeline.model.ctc import ctc_loss

    logits, labels, llen, flen = batch

    @tf.function  # as in the train step (eager tf.cond drops this gradient)
    def run() -> tuple:
        with tf.GradientTape() as tape:
            if cudnn is None:
                per_ex = tf.nn.ctc_loss(labels, logits, llen, flen, logits_time_major=True, blank_index=-1)
            else:
                per_ex = ctc_loss(labels, logits, llen, flen, cudnn, cudnn_fn)
            total = tf.reduce_sum(tf.where(tf.math.is_finite(per_ex), per_ex, 0.0))
        return per_ex, tape.gradient(total, logits)

    per_ex, grad = run()
    return per_ex.numpy(), grad.numpy()


def test_cpu_kernel_and_cudnn_sparse_labels_equal_dense_losses_and_gradients() -> None:
    batch = _batch()
    l_dense, g_dense = _loss_and_grad(None, batch)
    assert np.all(np.isfinite(l_dense))
    for cudnn in (False, True):
        loss, grad = _loss_and_grad(cudnn, batch)
        np.testing.assert_allclose(loss, l_dense, rtol=1e-5)
        # two float32 algorithms (TF's C++ CTC kernel vs the dense log-space loops): ~1.5e-5 measured
        assert np.abs(grad - g_dense).max() <= 1e-4 * np.abs(g_dense).max()


def test_cpu_kernel_takes_empty_transcripts_and_marks_impossible_alignments() -> None:
    """The C++ kernel refuses a row without labels (an error for the whole batch) and skips one too
    short for its labels (loss 0): ours gives the empty row its all-blank loss, like the dense loss,
    and the short row +inf (the dense loss gives a meaningless ~700), so the step is skipped and
    logged like any non-finite batch."""
    import tensorflow as tf

    logits, labels, llen, flen = _batch()
    llen = tf.constant([7, 3, 0, 5], tf.int32)  # row 2: no labels
    flen = tf.constant([T, T - 5, 10, 5], tf.int32)  # row 3: 5 labels, one repeat, in 5 frames
    labels = tf.tensor_scatter_nd_update(labels, [[3, k] for k in range(5)], [2, 2, 0, 1, 3])
    batch = (logits, labels, llen, flen)
    l_dense, g_dense = _loss_and_grad(None, batch)
    loss, grad = _loss_and_grad(False, batch)
    assert np.isinf(loss[3]) and np.isfinite(l_dense[3])
    np.testing.assert_allclose(loss[:3], l_dense[:3], rtol=1e-5)
    # the gradients of the three finite rows (row 3's is left out of both sums by its loss)
    g_ref = _loss_and_grad(None, (logits, labels, llen, tf.constant([T, T - 5, 10, 0], tf.int32)))[1]
    assert np.abs(grad - g_ref).max() <= 1e-4 * np.abs(g_ref).max()
    # one more frame and the repeat fits: finite, equal to the dense loss
    feasible = (logits, labels, llen, tf.constant([T, T - 5, 10, 6], tf.int32))
    np.testing.assert_allclose(_loss_and_grad(False, feasible)[0], _loss_and_grad(None, feasible)[0],
                               rtol=1e-5)


def test_cudnn_ctc_sparse_labels_keep_label_zero() -> None:
    import tensorflow as tf

    from pipeline.model.ctc import sparse_labels

    sp = sparse_labels(tf.constant([[0, 3, 0], [0, 0, 0]]), tf.constant([3, 1]))
    assert sp.values.numpy().tolist() == [0, 3, 0, 0]
    assert sp.indices.numpy().tolist() == [[0, 0], [0, 1], [0, 2], [1, 0]]


def test_cudnn_ctc_routing_long_labels_and_nonfinite_fallback() -> None:
    import tensorflow as tf

    from pipeline.model.ctc import CUDNN_CTC_MAX_LABELS

    def broken(labels, logits, llen, flen):
        return tf.concat([[float("inf")], tf.zeros([B - 1])], 0)

    def zero(labels, logits, llen, flen):
        return tf.zeros([B])

    batch = _batch()
    dense = _loss_and_grad(None, batch)
    # a non-finite sparse loss: the batch is recomputed dense, gradients included
    fallback = _loss_and_grad(True, batch, broken)
    np.testing.assert_array_equal(fallback[0], dense[0])
    np.testing.assert_array_equal(fallback[1], dense[1])
    # a finite sparse loss is used as it is
    assert np.all(_loss_and_grad(True, batch, zero)[0] == 0)
    # labels at cuDNN's limit never reach the sparse path
    long = _batch(u_max=CUDNN_CTC_MAX_LABELS, t=2 * CUDNN_CTC_MAX_LABELS + 10)
    np.testing.assert_array_equal(_loss_and_grad(True, long, zero)[0], _loss_and_grad(None, long)[0])
