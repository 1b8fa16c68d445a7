"""LSTM_IMPL: the DeepSpeech LSTM weights through cuDNN's layout, Keras's LSTM and BlockLSTM give
the scan's outputs and gradients (issue #13). cuDNN has no CPU kernel, so its side is a numpy
implementation of cuDNN's LSTM equations that reads only the packed parameter buffer; what the GPU
kernel itself computes is checked by `benchmarks/gpu_train.py` and the GPU preflight."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pytest

N_IN, H, B, T = 7, 5, 3, 9
SEQ_LEN = np.array([9, 6, 1])


def _sig(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def cudnn_reference(params: np.ndarray, x: np.ndarray, seq_len: np.ndarray, n_in: int, h_dim: int,
                    d_out: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """cuDNN's LSTM (CUDNN_LSTM, linear input, unidirectional, time-major, variable lengths) in
    numpy, reading only the flat buffer: W_{i,f,c,o} [H, in], R_{i,f,c,o} [H, H], b_W, b_R [H] each.
    Returns the outputs [T, B, H] (0 after each sequence's end) and d(params) for the output
    gradient `d_out` (backpropagation through time)."""
    sizes = [h_dim * n_in] * 4 + [h_dim * h_dim] * 4 + [h_dim] * 8
    assert params.size == sum(sizes)
    parts = np.split(params, np.cumsum(sizes)[:-1])
    w = [p.reshape(h_dim, n_in) for p in parts[:4]]
    r = [p.reshape(h_dim, h_dim) for p in parts[4:8]]
    bw, br = parts[8:12], parts[12:16]
    t_max, b = x.shape[:2]
    h, c = np.zeros((b, h_dim)), np.zeros((b, h_dim))
    y = np.zeros((t_max, b, h_dim))
    cache = []
    for t in range(t_max):
        m = (t < seq_len)[:, None]
        z = [x[t] @ w[g].T + h @ r[g].T + bw[g] + br[g] for g in range(4)]
        i, f, cc, o = _sig(z[0]), _sig(z[1]), np.tanh(z[2]), _sig(z[3])
        c_new = f * c + i * cc
        h_new = o * np.tanh(c_new)
        cache.append((h, c, i, f, cc, o, c_new, m))
        y[t] = np.where(m, h_new, 0.0)
        h, c = np.where(m, h_new, h), np.where(m, c_new, c)
    dw, dr = [np.zeros_like(a) for a in w], [np.zeros_like(a) for a in r]
    db = [np.zeros(h_dim) for _ in range(4)]
    dh_next, dc_next = np.zeros((b, h_dim)), np.zeros((b, h_dim))
    for t in reversed(range(t_max)):
        h_prev, c_prev, i, f, cc, o, c_new, m = cache[t]
        dh = np.where(m, d_out[t], 0.0) + dh_next
        tc = np.tanh(c_new)
        dc = dc_next + dh * o * (1.0 - tc ** 2)
        dz = [dc * cc * i * (1 - i), dc * c_prev * f * (1 - f), dc * i * (1 - cc ** 2), dh * tc * o * (1 - o)]
        dz = [np.where(m, d, 0.0) for d in dz]
        for g in range(4):
            dw[g] += dz[g].T @ x[t]
            dr[g] += dz[g].T @ h_prev
            db[g] += dz[g].sum(0)
        dh_next = np.where(m, sum(dz[g] @ r[g] for g in range(4)), dh)
        dc_next = np.where(m, dc * f, dc_next)
    grad = np.concatenate([a.ravel() for a in dw + dr] + db + db)  # d b_W == d b_R
    return y, grad


def _ds_weights(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    kernel = rng.uniform(-0.6, 0.6, (N_IN + H, 4 * H)).astype(np.float32)
    bias = rng.uniform(-0.5, 0.5, 4 * H).astype(np.float32)
    x = rng.normal(size=(T, B, N_IN)).astype(np.float32)
    g = rng.normal(size=(T, B, H)).astype(np.float32)
    return kernel, bias, x, g


def _mask() -> np.ndarray:
    return (np.arange(T)[:, None] < SEQ_LEN[None, :]).astype(np.float32)[..., None]


def _scan(kernel: np.ndarray, bias: np.ndarray, x: np.ndarray, g: np.ndarray,
          impl: str = "scan") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Outputs (valid frames) and gradients of sum(outputs * g) over the valid frames."""
    import tensorflow as tf

    from pipeline.model.network import lstm_forward

    k, b = tf.Variable(kernel), tf.Variable(bias)
    with tf.GradientTape() as tape:
        y = lstm_forward(impl, tf.constant(x), k, b, tf.constant(SEQ_LEN), True) * _mask()
        loss = tf.reduce_sum(y * g)
    dk, db = tape.gradient(loss, [k, b])
    return y.numpy(), dk.numpy(), db.numpy()


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(np.asarray(a, np.float64) - b).max() / (np.abs(b).max() + 1e-30))


def test_cudnn_packing_numpy_reference_matches_scan() -> None:
    import tensorflow as tf

    from pipeline.model.network import ds_to_cudnn_params

    kernel, bias, x, g = _ds_weights()
    y_scan, dk_scan, db_scan = _scan(kernel, bias, x, g)
    k, b = tf.Variable(kernel), tf.Variable(bias)
    with tf.GradientTape(persistent=True) as tape:
        params = ds_to_cudnn_params(k, b, N_IN)
    y_ref, d_params = cudnn_reference(params.numpy().astype(np.float64), x.astype(np.float64), SEQ_LEN,
                                      N_IN, H, (g * _mask()).astype(np.float64))
    assert _rel(y_scan, y_ref) <= 1e-5
    # cuDNN's weight gradient, carried back to the DS variables through the packing's own gradient
    # (what TensorFlow does on a GPU): it must be the scan's gradient.
    dk_ref, db_ref = tape.gradient(params, [k, b], output_gradients=tf.constant(d_params, tf.float32))
    assert _rel(dk_scan, dk_ref.numpy()) <= 1e-5
    assert _rel(db_scan, db_ref.numpy()) <= 1e-5
    # and the padded frames are cuDNN's zeros, the valid ones nonzero
    assert np.all(y_ref[SEQ_LEN[2]:, 2] == 0) and np.abs(y_ref[0]).min() > 0


def test_cudnn_packing_is_a_pure_permutation() -> None:
    """Every DS weight lands exactly once in the buffer; the input-bias block is zero."""
    import tensorflow as tf

    from pipeline.model.network import ds_to_cudnn_params

    n = (N_IN + H) * 4 * H + 4 * H
    ids = np.arange(1, n + 1, dtype=np.float64)
    params = ds_to_cudnn_params(tf.constant(ids[:-4 * H].reshape(N_IN + H, 4 * H)),
                                tf.constant(ids[-4 * H:]), N_IN).numpy()
    assert params.size == n + 4 * H
    assert sorted(params[params > 0].tolist()) == ids.tolist()
    input_bias = params[-8 * H:-4 * H]
    assert np.all(input_bias == 0)


def test_cudnn_keras_lstm_with_repacked_weights_matches_scan() -> None:
    import keras
    import tensorflow as tf

    from pipeline.model.network import ds_to_keras_weights

    kernel, bias, x, g = _ds_weights(1)
    layer = keras.layers.LSTM(H, return_sequences=True, use_cudnn=False)
    layer.build((B, T, N_IN))
    layer.set_weights(ds_to_keras_weights(kernel, bias, N_IN))
    y_keras = tf.transpose(layer(tf.transpose(tf.constant(x), [1, 0, 2])), [1, 0, 2]).numpy()
    y_scan = _scan(kernel, bias, x, np.ones_like(g))[0]
    m = _mask()
    assert _rel(y_keras * m, y_scan) <= 1e-5


def test_cudnn_keras_gpu_path_packs_like_ours(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keras 3's own cuDNN call (its TF backend's `_cudnn_lstm`) with the Keras-layout weights hands
    cuDNN the same buffer and the same op attributes as our `lstm_cudnn` with the DS weights."""
    import importlib

    import tensorflow as tf

    from pipeline.model.network import ds_to_keras_weights, lstm_cudnn

    keras_rnn = importlib.import_module("keras.src.backend.tensorflow.rnn")
    calls: list[dict[str, Any]] = []

    def fake_cudnn(**kw: Any) -> tuple[Any, ...]:
        calls.append(kw)
        zeros = tf.zeros([tf.shape(kw["input"])[0], B, H])
        return zeros, zeros[:1], zeros[:1], tf.zeros([0]), tf.zeros([0], tf.int8)

    monkeypatch.setattr(tf.raw_ops, "CudnnRNNV3", fake_cudnn)
    kernel, bias, x, _ = _ds_weights(2)
    kk, kr, kb = ds_to_keras_weights(kernel, bias, N_IN)
    z = tf.zeros([B, H])
    keras_rnn._cudnn_lstm(tf.constant(x), z, z, tf.constant(kk), tf.constant(kr), tf.constant(kb),
                          mask=None, time_major=True, go_backwards=False, return_sequences=True)
    lstm_cudnn(tf.constant(x), tf.constant(kernel), tf.constant(bias), tf.constant([T] * B))
    keras_call, ours = calls
    np.testing.assert_array_equal(keras_call["params"].numpy(), ours["params"].numpy())
    for attr in ("rnn_mode", "time_major", "is_training"):
        assert keras_call[attr] == ours[attr]
    np.testing.assert_array_equal(keras_call["sequence_lengths"].numpy(), ours["sequence_lengths"].numpy())
    assert ours["input_mode"] == "linear_input" and ours["direction"] == "unidirectional"


def test_cudnn_alternative_blocklstm_matches_scan() -> None:
    kernel, bias, x, g = _ds_weights(3)
    y_s, dk_s, db_s = _scan(kernel, bias, x, g)
    y_b, dk_b, db_b = _scan(kernel, bias, x, g, impl="block")
    assert _rel(y_b, y_s) <= 1e-5 and _rel(dk_b, dk_s) <= 1e-5 and _rel(db_b, db_s) <= 1e-5


def test_cudnn_auto_selection_with_mocked_devices(monkeypatch: pytest.MonkeyPatch, tiny_corpus, tmp_path,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    import tensorflow as tf

    from pipeline.errors import ConfigError
    from pipeline.model.network import Geometry, resolve_lstm_impl
    from pipeline.model.train import Trainer
    from pipeline.paths import Paths
    from tests.train.helpers import copy_corpus, train_config

    real = tf.config.list_logical_devices
    gpu = tf.config.LogicalDevice("/device:GPU:0", "GPU")
    monkeypatch.setattr(tf.config, "list_logical_devices",
                        lambda kind=None: [gpu] if kind == "GPU" else real(kind))
    assert resolve_lstm_impl("auto") == "cudnn"
    assert resolve_lstm_impl("block") == "block" and resolve_lstm_impl("scan") == "scan"
    caplog.set_level(logging.INFO, logger="pipeline.model.train")
    t = Trainer(train_config(), Paths.at(copy_corpus(tiny_corpus, tmp_path / "data")), [], [])
    t.build(Geometry(16, t.alphabet.num_classes))  # builds, traces nothing: no GPU kernel runs
    assert t.lstm_impl == "cudnn" and t.cudnn_ctc
    assert any("LSTM: cudnn (LSTM_IMPL=auto, GPU visible)" in r.getMessage() for r in caplog.records)
    # The whole train step (forward, gradients, the all-reduced skip decision, Adam) traces with
    # the GPU ops in the graph: cuDNN's LSTM and its gradient, cuDNN's CTC (CTCLossV2). Only
    # running them needs a GPU.
    spec = (tf.TensorSpec([None, None, 26], tf.float32), tf.TensorSpec([None], tf.int32),
            tf.TensorSpec([None, None], tf.int32), tf.TensorSpec([None], tf.int32))
    graph = tf.function(t._train_step_fn).get_concrete_function(spec, tf.TensorSpec([], tf.int64)).graph
    ops = {op.type for op in graph.get_operations()}
    ops |= {n.op for f in graph.as_graph_def().library.function for n in f.node_def}
    assert {"CudnnRNNV3", "CudnnRNNBackpropV3", "CTCLossV2"} <= ops

    monkeypatch.setattr(tf.config, "list_logical_devices", lambda kind=None: [] if kind == "GPU" else real(kind))
    assert resolve_lstm_impl("auto") == "scan"
    with pytest.raises(ConfigError, match="LSTM_IMPL=cudnn needs a GPU"):
        resolve_lstm_impl("cudnn")


def test_cudnn_setting_leaves_checkpoint_and_logits_alone() -> None:
    """LSTM_IMPL is not a model setting: the same variables, and the model's logits through the
    block kernel equal the scan's (the default of every export and inference path)."""
    import tensorflow as tf

    from pipeline.model.network import Geometry, build_model
    from pipeline.model.train import TRAINING_SETTINGS
    from pipeline.stages import NO_OUTPUT_EFFECT

    assert "LSTM_IMPL" not in TRAINING_SETTINGS and "LSTM_IMPL" in NO_OUTPUT_EFFECT
    model = build_model(Geometry(16, 5), seed=1)
    feats = tf.random.stateless_normal([2, 30, 26], seed=[1, 2])
    a = model(feats).numpy()
    b = model(feats, lstm_impl="block", feature_len=tf.constant([30, 20])).numpy()
    assert _rel(b, a) <= 1e-5
