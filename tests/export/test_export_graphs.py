"""Graph contract, op set, attrs, .pbmm layout and round trip, tflite versions/names, logit parity
of every artifact against a numpy forward pass (seeded random weights, N_HIDDEN=32)."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from pipeline.export import graph, pbmm, tflite_compat
from pipeline.export.runtime import TfliteModel, TfModel
from pipeline.model import geometry
from pipeline.model.geometry import METADATA_NAMES
from pipeline.model.reference import context_windows, mfcc_frames, reference_probs
from pipeline.text.alphabet import Alphabet
from tests.export.helpers import random_weights

H = 32


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory, fr_alphabet: Alphabet
             ) -> tuple[graph.ExportedModels, dict[str, np.ndarray]]:
    w = random_weights(H, fr_alphabet.num_classes)
    out = tmp_path_factory.mktemp("graphs")
    return graph.export_models(w, fr_alphabet, out, H, 321, "fr-FR"), w


def _graph(path: Path):
    import tensorflow as tf

    gd = tf.compat.v1.GraphDef()
    gd.ParseFromString(path.read_bytes())
    return gd


def test_pb_contract_and_op_set(exported, fr_alphabet) -> None:
    import tensorflow as tf
    from tensorflow.python.framework import op_def_registry

    res, _ = exported
    gd = _graph(res.pb)
    nodes = {n.name: n for n in gd.node}
    assert {n.op for n in gd.node} <= graph.LEGACY_TF_OPS
    assert {"AddV2", "Maximum", "StridedSlice", "Sub"}.isdisjoint({n.op for n in gd.node})
    assert nodes["cudnn_lstm/BlockLSTM"].op == "BlockLSTM"
    for name, dims in (("input_node", [1, 16, 19, 26]), ("input_lengths", [1]),
                       ("previous_state_c", [1, H]), ("previous_state_h", [1, H]),
                       ("input_samples", [512])):
        assert nodes[name].op == "Placeholder"
        assert [d.size for d in nodes[name].attr["shape"].shape.dim] == dims
    assert sorted(n for n, node in nodes.items() if node.op == "Placeholder") == sorted(geometry.INPUT_NAMES_PB)
    for name in geometry.OUTPUT_NAMES:
        assert name in nodes
    assert nodes["logits"].op == "Softmax"
    # No attr a TF 2.3 runtime could reject: nothing equal to its default, nothing private.
    for n in gd.node:
        op_def = op_def_registry.get(n.op)
        defaults = {a.name: a.default_value for a in op_def.attr if a.HasField("default_value")}
        for key, val in n.attr.items():
            assert not key.startswith("_"), (n.name, key)
            assert not (key in defaults and val == defaults[key]), (n.name, key)
    g = tf.Graph()
    with g.as_default():
        tf.compat.v1.import_graph_def(gd, name="")
    with tf.compat.v1.Session(graph=g) as s:
        meta = s.run({k: f"{k}:0" for k in METADATA_NAMES})
    assert meta["metadata_version"].tolist() == [6]
    assert meta["metadata_sample_rate"].tolist() == [16000]
    assert meta["metadata_feature_win_len"].tolist() == [32]
    assert meta["metadata_feature_win_step"].tolist() == [20]
    assert meta["metadata_beam_width"].tolist() == [321]
    assert Alphabet.deserialize(meta["metadata_alphabet"][0]) == fr_alphabet
    assert meta["metadata_language"][0] == b"fr-FR"


def test_pbmm_layout_and_round_trip(exported) -> None:
    import tensorflow as tf

    res, _ = exported
    gd = _graph(res.pb)
    data, regions = pbmm.read_directory(res.pbmm)
    (dir_offset,) = struct.unpack("<Q", data[-8:])
    assert regions[-1][0] == "memmapped_package://." and regions[-1][1] + regions[-1][2] == dir_offset
    big = [n for n in gd.node if n.op == "Const"
           and tf.make_ndarray(n.attr["value"].tensor).nbytes >= 10000]
    tensor_regions = regions[:-1]
    assert len(tensor_regions) == len(big) > 0
    assert all(off % 64 == 0 for _, off, _ in tensor_regions)
    stored = tf.compat.v1.GraphDef()
    stored.ParseFromString(data[regions[-1][1]:dir_offset])
    assert sum(n.op == "ImmutableConst" for n in stored.node) == len(big)
    back = pbmm.read_pbmm(res.pbmm)
    assert [n.name for n in back.node] == [n.name for n in gd.node]
    for a, b in zip(back.node, gd.node, strict=True):
        assert (a.op, list(a.input)) == (b.op, list(b.input))
        assert set(a.attr) == set(b.attr)
        for k in a.attr:
            if k == "value":
                np.testing.assert_array_equal(tf.make_ndarray(a.attr[k].tensor),
                                              tf.make_ndarray(b.attr[k].tensor))
            else:
                assert a.attr[k] == b.attr[k]


def test_tflite_names_and_versions(exported, fr_alphabet) -> None:
    res, _ = exported
    for path in (res.tflite, res.tflite_fp32):
        data = path.read_bytes()
        assert tflite_compat.check_versions(data) == []
        versions = tflite_compat.op_versions(data)
        assert "CUSTOM:AudioSpectrogram" in versions and "CUSTOM:Mfcc" in versions
        model = tflite_compat.read_flatbuffer(data)
        sg = model.subgraphs[0]
        names = [t.name.decode() for t in sg.tensors]
        assert [names[i] for i in sg.inputs] == geometry.INPUT_NAMES_TFLITE
        assert [names[i] for i in sg.outputs] == geometry.OUTPUT_NAMES
        produced = {o for op in sg.operators for o in op.outputs}
        assert set(sg.outputs) <= produced  # every output has a producer
        assert list(sg.tensors[sg.outputs[0]].shape) == [16, fr_alphabet.num_classes]
    q = tflite_compat.op_versions(res.tflite.read_bytes())
    assert q["FULLY_CONNECTED"] == 3
    assert res.tflite.stat().st_size < res.tflite_fp32.stat().st_size


def test_logits_parity_all_artifacts(exported, fr_alphabet) -> None:
    res, w = exported
    rng = np.random.default_rng(5)
    windows = context_windows(mfcc_frames(rng.standard_normal(16000 * 1).astype(np.float32) * 0.1))
    windows = windows[:40]
    ref = reference_probs(w, windows)
    models = {"pb": TfModel(res.pb), "pbmm": TfModel(res.pbmm),
              "fp32": TfliteModel(res.tflite_fp32), "int8": TfliteModel(res.tflite)}
    for name, m in models.items():
        c = np.zeros((1, H), np.float32)
        h = np.zeros((1, H), np.float32)
        outs = []
        for k in range(0, len(windows), 16):
            chunk = windows[k:k + 16]
            n = len(chunk)
            chunk = np.concatenate([chunk, np.zeros((16 - n, 19, 26), np.float32)])
            p, c, h = m.step(chunk, n, c, h)
            outs.append(p)
        got = np.concatenate(outs)
        assert got.shape == ref.shape
        tol = 2e-2 if name == "int8" else 1e-4
        assert np.abs(got - ref).max() < tol, name
        if name != "int8":
            assert (got.argmax(1) == ref.argmax(1)).all(), name
        assert m.alphabet == fr_alphabet


def test_pb_partial_chunk_final_state(exported) -> None:
    """new_state_* of the .pb is the state after input_lengths steps (0 = the initial state)."""
    res, _ = exported
    m = TfModel(res.pb)
    rng = np.random.default_rng(9)
    chunk = rng.standard_normal((16, 19, 26)).astype(np.float32)
    c0 = rng.standard_normal((1, H)).astype(np.float32) * 0.1
    h0 = rng.standard_normal((1, H)).astype(np.float32) * 0.1
    _, c0_out, h0_out = m.step(chunk, 0, c0, h0)
    np.testing.assert_allclose(c0_out, c0)
    np.testing.assert_allclose(h0_out, h0)
    _, c7, h7 = m.step(chunk, 7, c0, h0)
    part = chunk.copy()
    part[7:] = rng.standard_normal((9, 19, 26))  # steps after input_lengths must not matter
    _, c7b, h7b = m.step(part, 7, c0, h0)
    np.testing.assert_allclose(c7, c7b, atol=1e-6)
    np.testing.assert_allclose(h7, h7b, atol=1e-6)


def test_mfcc_port_matches_tf_ops_and_graph(exported) -> None:
    import tensorflow as tf

    x = (np.random.default_rng(2).standard_normal(16000) * 0.1).astype(np.float32)
    ours = mfcc_frames(x, pad_last=False)
    spec = tf.raw_ops.AudioSpectrogram(input=x[:, None], window_size=512, stride=320,
                                       magnitude_squared=True)
    ref = tf.raw_ops.Mfcc(spectrogram=spec, sample_rate=16000, upper_frequency_limit=8000.0,
                          dct_coefficient_count=26).numpy()[0]
    assert np.abs(ours - ref).max() < 1e-4
    g = tf.Graph()
    with g.as_default():
        tf.compat.v1.import_graph_def(_graph(exported[0].pb), name="")
    with tf.compat.v1.Session(graph=g) as s:
        graph_mfcc = s.run("mfccs:0", {"input_samples:0": x[:512]})
    assert np.abs(graph_mfcc[0] - ours[0]).max() < 1e-4
