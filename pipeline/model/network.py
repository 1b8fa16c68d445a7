"""The DeepSpeech 0.9 acoustic model on TF2, with weights stored in the DeepSpeech layout.

Geometry (reference §1.2): [B, T, 26] MFCC -> ±9 frames of zero-padded context (494) -> 3 dense
layers (ReLU clipped at 20) -> one unidirectional LSTM (forget bias 0) -> dense (clipped ReLU) ->
dense to |alphabet| + 1 outputs (blank last). Dropout after layers 1, 2, 3 and 5.

The variables have DeepSpeech's shapes and gate order, so the export area and release checkpoints
need no conversion: the LSTM kernel is [in + cell, 4·cell] with input rows first and gate blocks
i, c̃, f, o. On CPU training uses a fast formulation of the same cell: the input projection of every
time step is one big matmul (hoisted out of the recurrence) and only `h @ W_h` runs inside `tf.scan`
(platform notes: ≈ 5× faster than BlockLSTM's CPU gradient, identical outputs). On GPU (LSTM_IMPL)
the same weights run through cuDNN, repacked at run time (`ds_to_cudnn_params`), or BlockLSTM.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.errors import MissingInputError
from pipeline.model.geometry import LSTM_SCOPE, N_FEATURES, N_INPUT, N_WINDOW, RELU_CLIP, weight_shapes

log = logging.getLogger(__name__)

# attribute name on the module -> DeepSpeech TF1 variable name
DS_NAMES: dict[str, str] = {
    "layer_1_weights": "layer_1/weights", "layer_1_bias": "layer_1/bias",
    "layer_2_weights": "layer_2/weights", "layer_2_bias": "layer_2/bias",
    "layer_3_weights": "layer_3/weights", "layer_3_bias": "layer_3/bias",
    "lstm_kernel": f"{LSTM_SCOPE}/kernel", "lstm_bias": f"{LSTM_SCOPE}/bias",
    "layer_5_weights": "layer_5/weights", "layer_5_bias": "layer_5/bias",
    "layer_6_weights": "layer_6/weights", "layer_6_bias": "layer_6/bias",
}
# DROP_SOURCE_LAYERS=N re-initializes the first N groups of this list (DeepSpeech order).
DROP_ORDER: tuple[tuple[str, ...], ...] = (
    ("layer_6_weights", "layer_6_bias"),
    ("layer_5_weights", "layer_5_bias"),
    ("lstm_kernel", "lstm_bias"),
    ("layer_3_weights", "layer_3_bias"),
    ("layer_2_weights", "layer_2_bias"),
)
_OUR_KEY = "model/{}/.ATTRIBUTES/VARIABLE_VALUE"
# FEATURE_NORM's [2, 26] (mean, scale) in a best_dev/ checkpoint; a training checkpoint keeps it in
# its state JSON (so runs that predate it resume unchanged).
NORM_KEY = "feature_norm/.ATTRIBUTES/VARIABLE_VALUE"
STATE_KEY = "state/.ATTRIBUTES/VARIABLE_VALUE"


def identity_norm() -> np.ndarray:
    """The (mean, scale) rows that leave the features as they are."""
    return np.stack([np.zeros(N_INPUT, np.float32), np.ones(N_INPUT, np.float32)])


def fold_feature_norm(weights: dict[str, np.ndarray], norm: np.ndarray) -> dict[str, np.ndarray]:
    """Weights (attribute names) of a model that normalizes its context windows by `norm`
    ([2, 26]: x -> (x - mean) * scale per coefficient) -> the same function on raw features.

    layer_1(x) = ((x - M) * S) @ V + c = x @ (S V) + (c - (M S) @ V), with M, S the mean and
    scale tiled over the 19 frames of a window. So exports, transcribe and the numpy reference
    need nothing new: the normalization is inside layer_1 (exact, padded frames included, since
    the model normalizes after the zero padding as well)."""
    mean = np.tile(norm[0].astype(np.float64), N_WINDOW)
    scale = np.tile(norm[1].astype(np.float64), N_WINDOW)
    v = weights["layer_1_weights"].astype(np.float64)
    out = dict(weights)
    out["layer_1_weights"] = (scale[:, None] * v).astype(np.float32)
    out["layer_1_bias"] = (weights["layer_1_bias"] - (mean * scale) @ v).astype(np.float32)
    return out


@dataclass(frozen=True)
class Geometry:
    n_hidden: int
    n_classes: int

    def shapes(self) -> dict[str, tuple[int, ...]]:
        """Variable shapes keyed by attribute name (geometry.weight_shapes under DS names)."""
        ds = weight_shapes(self.n_hidden, self.n_classes)
        return {attr: ds[name] for attr, name in DS_NAMES.items()}


def initial_values(geometry: Geometry, seed: int) -> dict[str, np.ndarray]:
    """Glorot-uniform kernels and zero biases (DeepSpeech's initializers), deterministic in `seed`
    so every worker of a multi-worker run starts from the same weights."""
    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {}
    for name, shape in geometry.shapes().items():
        if len(shape) == 1:
            out[name] = np.zeros(shape, np.float32)
        else:
            limit = np.sqrt(6.0 / (shape[0] + shape[1]))
            out[name] = rng.uniform(-limit, limit, shape).astype(np.float32)
    return out


def _make_module_class() -> type:
    import tensorflow as tf

    class AcousticModel(tf.Module):
        """Variables in DeepSpeech layout; `__call__` gives time-major float32 logits."""

        def __init__(self, geometry: Geometry, seed: int = 4568):
            super().__init__(name="acoustic_model")
            self.geometry = geometry
            for name, value in initial_values(geometry, seed).items():
                setattr(self, name, tf.Variable(value, name=DS_NAMES[name], trainable=True))
            # FEATURE_NORM (mean, scale) rows; identity unless the trainer sets them. Not a
            # checkpoint dependency of the model: checkpoints without it stay loadable as they are.
            self.feature_norm = self._no_dependency(
                tf.Variable(identity_norm(), trainable=False, name="feature_norm"))

        def weight_list(self) -> list[Any]:
            return [getattr(self, n) for n in DS_NAMES]

        def assign_numpy(self, values: dict[str, np.ndarray]) -> None:
            for name, value in values.items():
                getattr(self, name).assign(value)

        def __call__(self, features: Any, training: bool = False, dropout: float = 0.0,
                     compute_dtype: str = "float32", dropout_seed: Any = None,
                     lstm_impl: str = "scan", feature_len: Any = None) -> Any:
            """features [B, T, 26] -> logits [T, B, C] float32 (pre-softmax).

            `lstm_impl` ("scan", "cudnn", "block"; see `lstm_forward`) only changes how the same
            LSTM is computed; `feature_len` [B] (frames per clip) is what cuDNN needs to stop at
            each clip's end (the valid frames' outputs are the same either way).

            `dropout_seed` ([2] int tensor): stateless dropout masks that depend only on it and the
            layer, so a run is reproducible from RANDOM_SEED and a resumed run equals an
            uninterrupted one (the training loop derives it from the seed and the global step).
            """
            from pipeline.model.features import add_context

            dt = tf.as_dtype(compute_dtype)
            w = {n: tf.cast(getattr(self, n), dt) for n in DS_NAMES}
            h = self.geometry.n_hidden
            x = add_context(tf.cast(features, dt))              # [B, T, 494]
            # per-coefficient normalization of every frame of the window (fold_feature_norm)
            norm = tf.cast(tf.tile(self.feature_norm, [1, N_WINDOW]), dt)
            x = (x - norm[0]) * norm[1]
            x = tf.transpose(x, [1, 0, 2])                      # time-major
            t, b = tf.shape(x)[0], tf.shape(x)[1]
            x = tf.reshape(x, [-1, N_FEATURES])

            def dense(x: Any, layer: int, relu: bool = True) -> Any:
                y = tf.nn.bias_add(tf.matmul(x, w[f"layer_{layer}_weights"]), w[f"layer_{layer}_bias"])
                if relu:
                    y = tf.minimum(tf.nn.relu(y), tf.cast(RELU_CLIP, dt))
                    if training and dropout > 0 and dropout_seed is None:
                        y = tf.nn.dropout(y, rate=dropout)
                    elif training and dropout > 0:
                        seed = tf.random.experimental.stateless_fold_in(dropout_seed, layer)
                        y = tf.nn.experimental.stateless_dropout(y, rate=dropout, seed=seed)
                return y

            x = dense(dense(dense(x, 1), 2), 3)
            x = lstm_forward(lstm_impl, tf.reshape(x, [t, b, h]), w["lstm_kernel"], w["lstm_bias"],
                             feature_len, training)
            x = dense(tf.reshape(x, [-1, h]), 5)
            x = dense(x, 6, relu=False)
            return tf.cast(tf.reshape(x, [t, b, self.geometry.n_classes]), tf.float32)

    return AcousticModel


_MODULE_CLASS: type | None = None


def build_model(geometry: Geometry, seed: int = 4568) -> Any:
    """A new `AcousticModel` (a `tf.Module`); create it inside a strategy scope to distribute it."""
    global _MODULE_CLASS
    if _MODULE_CLASS is None:
        _MODULE_CLASS = _make_module_class()
    return _MODULE_CLASS(geometry, seed)


def lstm_sequence(x: Any, kernel: Any, bias: Any, initial_state: tuple[Any, Any] | None = None,
                  return_state: bool = False) -> Any:
    """DeepSpeech LSTM (gates i, c̃, f, o; forget bias 0) over time-major x [T, B, in]."""
    import tensorflow as tf

    n_in = x.shape[-1]
    h_dim = kernel.shape[-1] // 4
    w_x, w_h = kernel[:n_in], kernel[n_in:]
    t, b = tf.shape(x)[0], tf.shape(x)[1]
    xp = tf.reshape(tf.nn.bias_add(tf.matmul(tf.reshape(x, [-1, n_in]), w_x), bias), [t, b, 4 * h_dim])
    if initial_state is None:
        zeros = tf.zeros([b, h_dim], x.dtype)
        initial_state = (zeros, zeros)

    def step(state: tuple[Any, Any], z_x: Any) -> tuple[Any, Any]:
        c, h = state
        z = z_x + tf.matmul(h, w_h)
        i, j, f, o = tf.split(z, 4, axis=1)
        c = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(j)
        h = tf.sigmoid(o) * tf.tanh(c)
        return c, h

    cs, hs = tf.scan(step, xp, initializer=initial_state)
    if return_state:
        return hs, (cs[-1], hs[-1])
    return hs


# ---------------------------------------------------------------------------------------------
# The same LSTM through GPU kernels (LSTM_IMPL). The variables keep the DeepSpeech layout; the
# kernels get their layout at run time, so checkpoints and exports never depend on the choice.
# ---------------------------------------------------------------------------------------------
LSTM_IMPLS = ("auto", "scan", "cudnn", "block")
# DeepSpeech gate blocks (i, c~, f, o) -> cuDNN's and Keras's order (i, f, c~, o)
_CUDNN_GATE_ORDER = (0, 2, 1, 3)


def resolve_lstm_impl(setting: str) -> str:
    """LSTM_IMPL -> the implementation used: `auto` is cuDNN when TensorFlow sees a GPU, else the
    scan (≈ 5× faster than BlockLSTM on CPU; cuDNN has no CPU kernel)."""
    import tensorflow as tf

    from pipeline.errors import ConfigError

    if setting not in LSTM_IMPLS:
        raise ConfigError(f"LSTM_IMPL={setting} is not one of {', '.join(LSTM_IMPLS)}")
    has_gpu = bool(tf.config.list_logical_devices("GPU"))
    if setting == "auto":
        return "cudnn" if has_gpu else "scan"
    if setting == "cudnn" and not has_gpu:
        raise ConfigError("LSTM_IMPL=cudnn needs a GPU and TensorFlow sees none (with Docker: "
                          "`docker run --gpus all`); set LSTM_IMPL=auto or scan to train on CPU")
    return setting


def ds_to_cudnn_params(kernel: Any, bias: Any, n_in: int) -> Any:
    """DeepSpeech LSTM weights -> cuDNN's flat LSTM parameter buffer (as Keras 3 builds it).

    kernel [n_in + H, 4H] (input rows first, gate blocks i, c~, f, o), bias [4H] ->
    [W_i, W_f, W_c, W_o (each [H, n_in] row-major), R_i, R_f, R_c, R_o ([H, H]), b_W (4 × H, all 0),
    b_R (4 × H, the DeepSpeech bias)]. cuDNN adds b_W + b_R, so a zero input bias and the single DS
    bias as recurrent bias is the same cell (forget bias 0 on both sides). Pure re-layout: its
    gradient carries cuDNN's weight gradients back to the DS variables unchanged.
    """
    import tensorflow as tf

    w_x, w_h = kernel[:n_in], kernel[n_in:]
    wx, wh, b = tf.split(w_x, 4, 1), tf.split(w_h, 4, 1), tf.split(bias, 4)
    mats = [wx[k] for k in _CUDNN_GATE_ORDER] + [wh[k] for k in _CUDNN_GATE_ORDER]
    biases = [tf.zeros_like(b[0])] * 4 + [b[k] for k in _CUDNN_GATE_ORDER]
    return tf.concat([tf.reshape(tf.transpose(m), [-1]) for m in mats] + biases, 0)


def ds_to_keras_weights(kernel: np.ndarray, bias: np.ndarray, n_in: int) -> list[np.ndarray]:
    """DeepSpeech LSTM weights -> `keras.layers.LSTM` weights [kernel, recurrent_kernel, bias]."""
    def reorder(m: np.ndarray) -> np.ndarray:
        blocks = np.split(m, 4, axis=-1)
        return np.concatenate([blocks[k] for k in _CUDNN_GATE_ORDER], axis=-1)

    return [reorder(kernel[:n_in]), reorder(kernel[n_in:]), reorder(bias)]


def lstm_cudnn(x: Any, kernel: Any, bias: Any, seq_len: Any = None, training: bool = True) -> Any:
    """The DS LSTM through cuDNN (`CudnnRNNV3`, GPU only) over time-major x [T, B, in]. Frames at
    or after `seq_len` [B] are not computed (their outputs are 0); the valid frames' outputs are
    the scan's, since a unidirectional LSTM never looks ahead."""
    import tensorflow as tf

    n_in, h_dim = x.shape[-1], kernel.shape[-1] // 4
    t, b = tf.shape(x)[0], tf.shape(x)[1]
    if seq_len is None:
        seq_len = tf.fill([b], t)
    zeros = tf.zeros([1, b, h_dim], x.dtype)
    out, _h, _c, _reserve, _state = tf.raw_ops.CudnnRNNV3(
        input=x, input_h=zeros, input_c=zeros, params=ds_to_cudnn_params(kernel, bias, n_in),
        sequence_lengths=tf.cast(seq_len, tf.int32), rnn_mode="lstm", input_mode="linear_input",
        direction="unidirectional", is_training=training, time_major=True)
    return out


def lstm_block(x: Any, kernel: Any, bias: Any) -> Any:
    """The DS LSTM through `BlockLSTM` (DeepSpeech 0.9's default cell; CPU and GPU kernels for
    float and half): the kernel takes the DS layout as it is, forget bias 0."""
    import tensorflow as tf

    h_dim = kernel.shape[-1] // 4
    b = tf.shape(x)[1]
    zeros = tf.zeros([b, h_dim], x.dtype)
    peep = tf.zeros([h_dim], x.dtype)
    outputs = tf.raw_ops.BlockLSTM(
        seq_len_max=tf.cast(tf.shape(x)[0], tf.int64), x=x, cs_prev=zeros, h_prev=zeros, w=kernel,
        wci=peep, wcf=peep, wco=peep, b=bias, forget_bias=0.0, cell_clip=-1.0, use_peephole=False)
    return outputs[-1]  # h


def lstm_forward(impl: str, x: Any, kernel: Any, bias: Any, seq_len: Any = None,
                 training: bool = False) -> Any:
    """The DS LSTM over time-major x [T, B, in] by implementation (`resolve_lstm_impl` output)."""
    if impl == "cudnn":
        return lstm_cudnn(x, kernel, bias, seq_len, training)
    if impl == "block":
        return lstm_block(x, kernel, bias)
    return lstm_sequence(x, kernel, bias)


# ---------------------------------------------------------------------------------------------
# Checkpoint reading (our TF2 layout and the DeepSpeech/Coqui TF1 release layout)
# ---------------------------------------------------------------------------------------------
def checkpoint_prefix(path: Path) -> str:
    """The checkpoint prefix for a directory (latest `checkpoint`, else DeepSpeech's
    `best_dev_checkpoint` state file) or a prefix given directly."""
    import tensorflow as tf

    path = Path(path)
    if path.is_dir():
        for state_file in ("checkpoint", "best_dev_checkpoint"):
            prefix = tf.train.latest_checkpoint(str(path), latest_filename=state_file)
            if prefix:
                return prefix
        indexes = sorted(path.glob("*.index"), key=lambda p: p.stat().st_mtime)
        if indexes:
            return str(indexes[-1])[: -len(".index")]
        raise MissingInputError(f"no TensorFlow checkpoint in {path} (expected a 'checkpoint' state "
                                f"file or *.index files)")
    if Path(str(path) + ".index").exists():
        return str(path)
    raise MissingInputError(f"checkpoint {path} does not exist")


def checkpoint_feature_norm(reader: Any, keys: set[str]) -> np.ndarray | None:
    """FEATURE_NORM's [2, 26] (mean, scale) stored in a checkpoint, or None (release checkpoints,
    runs without it)."""
    import json

    if NORM_KEY in keys:
        return np.asarray(reader.get_tensor(NORM_KEY), np.float32)
    if STATE_KEY in keys:
        raw = reader.get_tensor(STATE_KEY)
        try:
            state = json.loads(raw.decode("utf-8") if isinstance(raw, bytes) else str(raw))
        except ValueError:
            return None
        if isinstance(state, dict) and state.get("feature_norm"):
            return np.asarray(state["feature_norm"], np.float32)
    return None


def read_checkpoint_weights(path: Path, fold_norm: bool = True) -> dict[str, np.ndarray]:
    """Model weights from a checkpoint dir/prefix, keyed by our attribute names, in DeepSpeech
    layout. Reads both our object-based checkpoints and TF1 name-based release checkpoints.
    A FEATURE_NORM stored with the checkpoint is folded into layer_1 (`fold_feature_norm`), so
    the weights compute the model on raw features like any DeepSpeech checkpoint; `fold_norm=False`
    gives them as trained (for a model that applies the same normalization itself)."""
    import tensorflow as tf

    prefix = checkpoint_prefix(path)
    reader = tf.train.load_checkpoint(prefix)
    keys = set(reader.get_variable_to_shape_map())
    out: dict[str, np.ndarray] = {}
    for attr, ds_name in DS_NAMES.items():
        ours = _OUR_KEY.format(attr)
        if ours in keys:
            out[attr] = reader.get_tensor(ours)
        elif ds_name in keys:
            out[attr] = reader.get_tensor(ds_name)
    if len(out) != len(DS_NAMES):
        missing = [DS_NAMES[a] for a in DS_NAMES if a not in out]
        raise MissingInputError(f"checkpoint {prefix} lacks model variables {', '.join(missing)}; "
                                f"is it a DeepSpeech-geometry checkpoint?")
    weights = {k: np.asarray(v, np.float32) for k, v in out.items()}
    norm = checkpoint_feature_norm(reader, keys) if fold_norm else None
    return fold_feature_norm(weights, norm) if norm is not None else weights


def load_export_weights(checkpoint_dir: Path) -> dict[str, np.ndarray]:
    """DeepSpeech-0.9-named float32 weights (`layer_1/weights`, ..., the LSTM kernel [2H, 4H] in
    i-c-f-o order, `layer_6/bias` [C]) from a checkpoint directory (or prefix)."""
    return {DS_NAMES[k]: v for k, v in read_checkpoint_weights(checkpoint_dir).items()}


def geometry_of(weights: dict[str, np.ndarray]) -> Geometry:
    return Geometry(n_hidden=int(weights["layer_1_weights"].shape[1]),
                    n_classes=int(weights["layer_6_bias"].shape[0]))


# ---------------------------------------------------------------------------------------------
# Transfer learning
# ---------------------------------------------------------------------------------------------
def _source_alphabet(source: Path) -> Any:
    from pipeline.text.alphabet import Alphabet

    base = source if source.is_dir() else source.parent
    for candidate in (base / "alphabet.txt", base.parent / "alphabet.txt"):
        if candidate.exists():
            return Alphabet.from_file(candidate)
    return None


def transfer_weights(source: dict[str, np.ndarray], target: dict[str, np.ndarray], drop: int,
                     source_alphabet: Any = None, target_alphabet: Any = None,
                     keep_shared_chars: bool = False) -> tuple[dict[str, np.ndarray], list[str]]:
    """Target weights made from `source`: the first `drop` groups of DROP_ORDER keep their fresh
    initialization, the rest are copied. With `keep_shared_chars` and a different alphabet, the
    output layer's columns of shared characters (and the blank) are copied. Returns the weights
    and a human-readable list of what was done."""
    from pipeline.errors import ConfigError

    dropped = {name for group in DROP_ORDER[:drop] for name in group}
    out = dict(target)
    notes = []
    for name in DS_NAMES:
        if name in dropped:
            continue
        src, tgt = source[name], target[name]
        differ = (source_alphabet is not None and target_alphabet is not None
                  and source_alphabet.labels != target_alphabet.labels)
        if name.startswith("layer_6") and (src.shape != tgt.shape or differ):
            if not keep_shared_chars or source_alphabet is None or target_alphabet is None:
                raise ConfigError(
                    f"the transfer source's output layer has {src.shape[-1]} classes for another alphabet, "
                    f"this model needs {tgt.shape[-1]}: set DROP_SOURCE_LAYERS>=1, or "
                    f"TRANSFER_KEEP_SHARED_CHARS=1 with an alphabet.txt next to the source checkpoint")
            new = tgt.copy()
            shared = 0
            for j, ch in enumerate(target_alphabet.labels):
                if ch in source_alphabet:
                    new[..., j] = src[..., source_alphabet.labels.index(ch)]
                    shared += 1
            new[..., -1] = src[..., -1]  # blank
            out[name] = new
            if name == "layer_6_bias":
                notes.append(f"output layer: kept {shared} shared characters + blank, "
                             f"{len(target_alphabet) - shared} new")
            continue
        if src.shape != tgt.shape:
            raise ConfigError(f"transfer source {DS_NAMES[name]} has shape {src.shape}, this model needs "
                              f"{tgt.shape}: set N_HIDDEN={int(source['layer_1_bias'].shape[0])} (the "
                              f"source's width) or drop that layer with DROP_SOURCE_LAYERS")
        out[name] = src
    fresh = ", ".join(DS_NAMES[n] for g in DROP_ORDER[:drop] for n in g)
    notes.insert(0, f"re-initialized {fresh or 'nothing'}")
    return out, notes


def apply_transfer(cfg: Any, model: Any, alphabet: Any) -> str:
    """Load TRANSFER_CHECKPOINT into a freshly built `model` (once, at the start of training)."""
    source = Path(cfg.train.transfer_checkpoint)
    if not source.exists():
        raise MissingInputError(f"TRANSFER_LEARNING=1 but TRANSFER_CHECKPOINT={source} does not exist; "
                                f"mount the source checkpoint there or set TRANSFER_CHECKPOINT")
    src = read_checkpoint_weights(source)
    tgt = {n: getattr(model, n).numpy() for n in DS_NAMES}
    weights, notes = transfer_weights(src, tgt, cfg.train.drop_source_layers, _source_alphabet(source),
                                      alphabet, cfg.train.transfer_keep_shared_chars)
    model.assign_numpy(weights)
    log.info("transfer learning from %s (DROP_SOURCE_LAYERS=%d): %s", checkpoint_prefix(source),
             cfg.train.drop_source_layers, "; ".join(notes))
    return str(source)
