"""The cuDNN kernels themselves, on a GPU only (skipped where TensorFlow sees none, as on the project's
CI). A GPU owner runs `pytest -k cudnn tests/train`: these compare what cuDNN's LSTM and CTC
compute with the scan and the numpy reference of cuDNN's equations the CPU tests prove the packing
against."""

from __future__ import annotations

import numpy as np
import pytest

from tests.train.test_cudnn_lstm import N_IN, SEQ_LEN, _ds_weights, _mask, _rel, _scan, cudnn_reference


@pytest.fixture()
def gpu() -> None:
    import tensorflow as tf

    if not tf.config.list_logical_devices("GPU"):
        pytest.skip("no GPU visible to TensorFlow (cuDNN kernels cannot run)")
    tf32 = tf.config.experimental.tensor_float_32_execution_enabled()
    tf.config.experimental.enable_tensor_float_32_execution(False)
    yield
    tf.config.experimental.enable_tensor_float_32_execution(tf32)


def test_cudnn_kernel_on_gpu_matches_scan_and_reference(gpu) -> None:
    import tensorflow as tf

    from pipeline.model.network import ds_to_cudnn_params

    kernel, bias, x, g = _ds_weights(4)
    y_s, dk_s, db_s = _scan(kernel, bias, x, g)
    with tf.device("/GPU:0"):
        y_c, dk_c, db_c = _scan(kernel, bias, x, g, impl="cudnn")
    assert _rel(y_c, y_s) <= 1e-5 and _rel(dk_c, dk_s) <= 1e-5 and _rel(db_c, db_s) <= 1e-5
    params = ds_to_cudnn_params(tf.constant(kernel), tf.constant(bias), N_IN).numpy().astype(np.float64)
    y_ref, _ = cudnn_reference(params, x.astype(np.float64), SEQ_LEN, N_IN, kernel.shape[1] // 4,
                               (g * _mask()).astype(np.float64))
    assert _rel(y_c, y_ref) <= 1e-5


def test_cudnn_ctc_on_gpu_sparse_equals_dense(gpu) -> None:
    from tests.train.test_ctc_sparse import _batch, _loss_and_grad

    batch = _batch()
    (l_d, g_d), (l_s, g_s) = _loss_and_grad(False, batch), _loss_and_grad(True, batch)
    np.testing.assert_allclose(l_s, l_d, rtol=1e-4)
    assert np.abs(g_s - g_d).max() <= 1e-4 * np.abs(g_d).max()


def test_cudnn_smoke_train_steps_on_gpu(gpu) -> None:
    from pipeline.model.gpu import smoke_test

    assert smoke_test("cudnn", steps=3) <= 1e-4
    assert smoke_test("block", steps=3) <= 1e-4
