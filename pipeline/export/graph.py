"""DeepSpeech-0.9-compatible model export: frozen `.pb`, `.pbmm`, fp32 and int8 `.tflite`.

The graphs are built directly from a weights dict in the DeepSpeech 0.9 layout (see
`pipeline.model.network.load_export_weights`) as TF1-style graphs whose weights are constants, so the
result is already frozen and every tensor name is the one the legacy clients look up.

Why the graphs look the way they do (measured against libdeepspeech 0.9.3 / libstt 1.4.0, see
docs/export.md):
- `.pb`: only ops the TF r2.3 build in libdeepspeech registers: dense = BiasAdd(MatMul), clipped
  ReLU = Minimum(Relu, 20), LSTM = BlockLSTM with seq_len_max = Cast(Max(input_lengths)), final
  state gathered with GatherNd at `input_lengths` after prepending the initial state; then every
  attr equal to its op-def default (and every `_` attr) is stripped, because a TF 2.3 runtime
  rejects attrs it does not know (e.g. GatherNd's `bad_indices_policy`).
- `.tflite`: unrolled LSTM (input projection hoisted, one FULLY_CONNECTED per step for the
  recurrence), v1 `from_frozen_graph` converter (keeps names), then flatbuffer fixes in
  `pipeline.export.tflite_compat`.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.faults import crashpoint
from pipeline.model.geometry import (
    GRAPH_VERSION,
    INPUT_NAMES_TFLITE,
    LSTM_BIAS,
    LSTM_KERNEL,
    N_FEATURES,
    N_INPUT,
    N_STEPS,
    N_WINDOW,
    OUTPUT_NAMES,
    RELU_CLIP,
    weight_shapes,
)
from pipeline.text.alphabet import Alphabet

log = logging.getLogger(__name__)


# Ops registered by the CPU libdeepspeech 0.9.3 TF build (reference deepspeech-0.9.md §1.5).
LEGACY_TF_OPS = frozenset({
    "AudioSpectrogram", "Mfcc", "BlockLSTM", "BiasAdd", "Cast", "ConcatV2", "Const", "Placeholder",
    "ExpandDims", "Shape", "GatherNd", "Identity", "ImmutableConst", "Less", "Minimum", "Mul",
    "MatMul", "Max", "NoOp", "Pack", "Range", "Relu", "Reshape", "Softmax", "Tile", "Transpose"})


@dataclass(frozen=True)
class ExportSettings:
    """What goes into the graph besides the weights."""

    n_hidden: int
    beam_width: int = 500
    language: str = ""
    sample_rate: int = 16000
    win_len_ms: int = 32
    win_step_ms: int = 20

    @property
    def window_samples(self) -> int:
        return self.sample_rate * self.win_len_ms // 1000

    @property
    def step_samples(self) -> int:
        return self.sample_rate * self.win_step_ms // 1000


def check_weights(weights: dict[str, np.ndarray], n_hidden: int, n_classes: int) -> None:
    """Raise ValueError naming the variable whose shape does not match the geometry."""
    h = n_hidden
    expected = weight_shapes(n_hidden, n_classes)
    for name, shape in expected.items():
        if name not in weights:
            raise ValueError(f"export weights lack variable {name!r} (expected shape {shape})")
        got = tuple(np.shape(weights[name]))
        if got != shape:
            raise ValueError(f"export weight {name!r} has shape {got}, expected {shape} "
                             f"(N_HIDDEN={h}, classes={n_classes})")


# -------------------------------------------------------------------------------------------------
# Graph builders
# -------------------------------------------------------------------------------------------------
def _metadata(tf: Any, alphabet: Alphabet, s: ExportSettings) -> None:
    ints = {"metadata_version": GRAPH_VERSION, "metadata_sample_rate": s.sample_rate,
            "metadata_feature_win_len": s.win_len_ms, "metadata_feature_win_step": s.win_step_ms,
            "metadata_beam_width": s.beam_width}
    for name, value in ints.items():
        tf.constant([value], dtype=tf.int32, name=name)
    tf.constant([alphabet.serialize()], dtype=tf.string, name="metadata_alphabet")
    tf.constant([s.language.encode("utf-8")], dtype=tf.string, name="metadata_language")


def _features(tf: Any, s: ExportSettings) -> None:
    samples = tf.compat.v1.placeholder(tf.float32, [s.window_samples], name="input_samples")
    spec = tf.raw_ops.AudioSpectrogram(input=tf.expand_dims(samples, -1),
                                       window_size=s.window_samples, stride=s.step_samples,
                                       magnitude_squared=True)
    mfcc = tf.raw_ops.Mfcc(spectrogram=spec, sample_rate=tf.constant(s.sample_rate, tf.int32),
                           upper_frequency_limit=s.sample_rate / 2,
                           dct_coefficient_count=N_INPUT)
    tf.identity(tf.reshape(mfcc, [1, N_INPUT]), name="mfccs")


def _dense(tf: Any, x: Any, weights: dict[str, np.ndarray], layer: str, relu: bool) -> Any:
    w = tf.constant(np.asarray(weights[f"{layer}/weights"], np.float32), name=f"{layer}/weights")
    b = tf.constant(np.asarray(weights[f"{layer}/bias"], np.float32), name=f"{layer}/bias")
    # BiasAdd(MatMul): `x @ w + b` would emit AddV2, which libdeepspeech 0.9.3 does not register.
    y = tf.nn.bias_add(tf.matmul(x, w), b)
    if relu:
        # min(relu(y), clip): clip_by_value/Maximum are not registered either.
        y = tf.minimum(tf.nn.relu(y), tf.constant(RELU_CLIP, tf.float32))
    return y


def _build(tf: Any, weights: dict[str, np.ndarray], alphabet: Alphabet, s: ExportSettings,
           tflite: bool) -> Any:
    """Return a GraphDef holding the whole inference graph (not yet pruned)."""
    h = s.n_hidden
    n_classes = alphabet.num_classes
    graph = tf.Graph()
    with graph.as_default():
        input_node = tf.compat.v1.placeholder(
            tf.float32, [1, N_STEPS, N_WINDOW, N_INPUT], name="input_node")
        if not tflite:
            input_lengths = tf.compat.v1.placeholder(tf.int32, [1], name="input_lengths")
        state_c = tf.compat.v1.placeholder(tf.float32, [1, h], name="previous_state_c")
        state_h = tf.compat.v1.placeholder(tf.float32, [1, h], name="previous_state_h")
        # Batch is 1, so [1, T, 19, 26] -> [T, 494] is already time-major.
        x = tf.reshape(input_node, [N_STEPS, N_FEATURES])
        for layer in ("layer_1", "layer_2", "layer_3"):
            x = _dense(tf, x, weights, layer, relu=True)
        kernel = np.asarray(weights[LSTM_KERNEL], np.float32)
        bias = np.asarray(weights[LSTM_BIAS], np.float32)
        if tflite:
            outputs, c_out, h_out = _unrolled_lstm(tf, x, state_c, state_h, kernel, bias, h)
        else:
            outputs, c_out, h_out = _block_lstm(tf, x, input_lengths, state_c, state_h, kernel,
                                                bias, h)
        tf.identity(c_out, name="new_state_c")
        tf.identity(h_out, name="new_state_h")
        x = _dense(tf, outputs, weights, "layer_5", relu=True)
        x = _dense(tf, x, weights, "layer_6", relu=False)
        if tflite:
            tf.nn.softmax(x, name="logits")  # TFLite wants 2-D logits [T, C]
        else:
            x = tf.reshape(x, [N_STEPS, 1, n_classes], name="raw_logits")
            tf.nn.softmax(x, name="logits")
            tf.constant([N_STEPS, 1, n_classes], tf.int32, name="logits_shape")
        _features(tf, s)
        _metadata(tf, alphabet, s)
    return graph.as_graph_def()


def _block_lstm(tf: Any, x: Any, input_lengths: Any, state_c: Any, state_h: Any,
                kernel: np.ndarray, bias: np.ndarray, h: int) -> tuple[Any, Any, Any]:
    seq = tf.reshape(x, [N_STEPS, 1, h])
    seq_len_max = tf.cast(tf.reduce_max(input_lengths), tf.int64)
    zeros = tf.constant(np.zeros([h], np.float32), name="cudnn_lstm/peephole")
    res = tf.raw_ops.BlockLSTM(
        seq_len_max=seq_len_max, x=seq, cs_prev=state_c, h_prev=state_h,
        w=tf.constant(kernel, name=LSTM_KERNEL), wci=zeros, wcf=zeros, wco=zeros,
        b=tf.constant(bias, name=LSTM_BIAS), forget_bias=0.0, cell_clip=-1.0,
        use_peephole=False, name="cudnn_lstm/BlockLSTM")
    cs, hs = res.cs, res.h  # [T, 1, H]; steps >= seq_len_max are zero
    # Final state = state after step input_lengths-1, or the initial state when it is 0:
    # prepend the initial state and gather at input_lengths (no Sub/StridedSlice needed).
    all_c = tf.concat([tf.expand_dims(state_c, 0), cs], 0)
    all_h = tf.concat([tf.expand_dims(state_h, 0), hs], 0)
    idx = tf.stack([input_lengths, tf.constant([0], tf.int32)], axis=1)  # [[len, 0]]
    c_out = tf.gather_nd(all_c, idx)
    h_out = tf.gather_nd(all_h, idx)
    return tf.reshape(hs, [N_STEPS, h]), c_out, h_out


def _unrolled_lstm(tf: Any, x: Any, state_c: Any, state_h: Any, kernel: np.ndarray,
                   bias: np.ndarray, h: int) -> tuple[Any, Any, Any]:
    # Input projection for all steps in one FULLY_CONNECTED; per step only h @ W_h.
    w_x = tf.constant(kernel[:h], name="cudnn_lstm/kernel_input")
    w_h = tf.constant(kernel[h:], name="cudnn_lstm/kernel_recurrent")
    b = tf.constant(bias, name=LSTM_BIAS)
    proj = tf.nn.bias_add(tf.matmul(x, w_x), b)  # [T, 4H]
    steps = tf.split(proj, N_STEPS, axis=0)
    c, hh = state_c, state_h
    outs = []
    for t in range(N_STEPS):
        z = steps[t] + tf.matmul(hh, w_h)
        i, j, f, o = tf.split(z, 4, axis=1)  # gate order i, c~, f, o (forget bias 0)
        c = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(j)
        hh = tf.sigmoid(o) * tf.tanh(c)
        outs.append(hh)
    return tf.concat(outs, 0), c, hh


def strip_default_attrs(graph_def: Any) -> Any:
    """Remove every attr equal to its op-def default and every `_`-prefixed attr (in place)."""
    from tensorflow.python.framework import op_def_registry

    for node in graph_def.node:
        op_def = op_def_registry.get(node.op)
        defaults = {a.name: a.default_value for a in op_def.attr if a.HasField("default_value")} \
            if op_def is not None else {}
        for key in list(node.attr):
            if key.startswith("_") or (key in defaults and node.attr[key] == defaults[key]):
                del node.attr[key]
    return graph_def


def build_pb_graph_def(weights: dict[str, np.ndarray], alphabet: Alphabet,
                       settings: ExportSettings) -> Any:
    """The frozen `.pb` GraphDef (BlockLSTM, legacy op set, default attrs stripped)."""
    import tensorflow as tf

    check_weights(weights, settings.n_hidden, alphabet.num_classes)
    gd = _build(tf, weights, alphabet, settings, tflite=False)
    gd = tf.compat.v1.graph_util.extract_sub_graph(gd, [*OUTPUT_NAMES, "logits_shape"])
    gd = strip_default_attrs(gd)
    bad = sorted({n.op for n in gd.node} - LEGACY_TF_OPS)
    if bad:  # a builder change that libdeepspeech 0.9.3 could not run
        raise RuntimeError(f"the .pb graph uses ops libdeepspeech 0.9.3 lacks: {bad}")
    return gd


def build_tflite_graph_def(weights: dict[str, np.ndarray], alphabet: Alphabet,
                           settings: ExportSettings) -> Any:
    """The frozen streaming step graph converted to `.tflite` (unrolled LSTM, 2-D logits)."""
    import tensorflow as tf

    check_weights(weights, settings.n_hidden, alphabet.num_classes)
    gd = _build(tf, weights, alphabet, settings, tflite=True)
    return tf.compat.v1.graph_util.extract_sub_graph(gd, OUTPUT_NAMES)


def convert_tflite(graph_def: Any, quantize: bool) -> bytes:
    """Convert the step graph with the v1 converter (exact names) and apply the legacy fixes."""
    import tensorflow as tf

    from pipeline.export import tflite_compat

    with tempfile.TemporaryDirectory(prefix="ds-export-") as tmp:
        pb = Path(tmp) / "step.pb"
        pb.write_bytes(graph_def.SerializeToString(deterministic=True))
        conv = tf.compat.v1.lite.TFLiteConverter.from_frozen_graph(
            str(pb), INPUT_NAMES_TFLITE, OUTPUT_NAMES)
        conv.allow_custom_ops = True  # AudioSpectrogram / Mfcc
        if quantize:
            conv.optimizations = [tf.lite.Optimize.DEFAULT]
            # Per-channel hybrid FC is version 12, unknown to TFLite 2.3 / 2.9.
            conv._experimental_disable_per_channel = True
        data = conv.convert()
    return tflite_compat.make_legacy_compatible(data)


# -------------------------------------------------------------------------------------------------
# Top level
# -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ExportedModels:
    pb: Path
    pbmm: Path
    tflite: Path
    tflite_fp32: Path


def export_models(weights: dict[str, np.ndarray], alphabet: Alphabet, out_dir: Path,
                  n_hidden: int, beam_width: int = 500, language: str = "",
                  sample_rate: int = 16000) -> ExportedModels:
    """Write output_graph.pb, .pbmm, .tflite (int8 weights) and _fp32.tflite into `out_dir`."""
    from pipeline.export import pbmm
    from pipeline.fsutil import atomic_write

    s = ExportSettings(n_hidden=n_hidden, beam_width=beam_width, language=language,
                       sample_rate=sample_rate)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    res = ExportedModels(out_dir / "output_graph.pb", out_dir / "output_graph.pbmm",
                         out_dir / "output_graph.tflite", out_dir / "output_graph_fp32.tflite")
    gd = build_pb_graph_def(weights, alphabet, s)
    with atomic_write(res.pb, "wb") as fh:
        fh.write(gd.SerializeToString(deterministic=True))  # attr maps in key order: same bytes
        crashpoint("export.pb")  # written to the temp file, not yet renamed
    pbmm.write_pbmm(gd, res.pbmm)
    step = build_tflite_graph_def(weights, alphabet, s)
    for path, quantize in ((res.tflite_fp32, False), (res.tflite, True)):
        data = convert_tflite(step, quantize=quantize)
        with atomic_write(path, "wb") as fh:
            fh.write(data)
            crashpoint("export.tflite")  # `:1` the fp32 model, `:2` the int8 one
    for p in (res.pb, res.pbmm, res.tflite_fp32, res.tflite):
        log.info("wrote %s (%.1f MB)", p, p.stat().st_size / 1e6)
    return res
