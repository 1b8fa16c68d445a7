"""CTC with sparse labels (what TensorFlow sends to cuDNN's CTC on a GPU) against the dense-label
loss the CPU uses: same losses and gradients; the routing (label limit, non-finite fallback)."""

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


def _loss_and_grad(sparse: bool, batch: tuple, sparse_fn=None) -> tuple[np.ndarray, np.ndarray]:
    import tensorflow as tf

    from pipeline.model.ctc import ctc_loss

    logits, labels, llen, flen = batch

    @tf.function  # as in the train step (eager tf.cond drops this gradient)
    def run() -> tuple:
        with tf.GradientTape() as tape:
            per_ex = ctc_loss(labels, logits, llen, flen, sparse, sparse_fn)
            total = tf.reduce_sum(per_ex)
        return per_ex, tape.gradient(total, logits)

    per_ex, grad = run()
    return per_ex.numpy(), grad.numpy()


def test_cudnn_ctc_sparse_labels_equal_dense_losses_and_gradients() -> None:
    batch = _batch()
    (l_dense, g_dense), (l_sparse, g_sparse) = _loss_and_grad(False, batch), _loss_and_grad(True, batch)
    assert np.all(np.isfinite(l_dense))
    np.testing.assert_allclose(l_sparse, l_dense, rtol=1e-5)
    # two float32 algorithms (TF's C++ CTC kernel vs the dense log-space loops): ~1.5e-5 measured
    assert np.abs(g_sparse - g_dense).max() <= 1e-4 * np.abs(g_dense).max()


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
    dense = _loss_and_grad(False, batch)
    # a non-finite sparse loss: the batch is recomputed dense, gradients included
    fallback = _loss_and_grad(True, batch, broken)
    np.testing.assert_array_equal(fallback[0], dense[0])
    np.testing.assert_array_equal(fallback[1], dense[1])
    # a finite sparse loss is used as it is
    assert np.all(_loss_and_grad(True, batch, zero)[0] == 0)
    # labels at cuDNN's limit never reach the sparse path
    long = _batch(u_max=CUDNN_CTC_MAX_LABELS, t=2 * CUDNN_CTC_MAX_LABELS + 10)
    np.testing.assert_array_equal(_loss_and_grad(True, long, zero)[0], _loss_and_grad(False, long)[0])
