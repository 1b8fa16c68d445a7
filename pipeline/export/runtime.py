"""Running an exported DeepSpeech model the way the native client does.

`.tflite` runs in LiteRT, `.pb`/`.pbmm` in TensorFlow. `stream_probs` feeds the features like
`libdeepspeech`: 512-sample windows every 320 samples (the last partial window zero-padded), 9
zero MFCC frames of context at both ends, 16-step chunks with the LSTM state carried from chunk to
chunk. The tensor names used here are the runtime boundary stated in `pipeline.model.geometry`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import numpy as np

from pipeline.errors import MissingInputError, UsageError
from pipeline.model.geometry import N_STEPS
from pipeline.model.reference import context_windows, mfcc_frames
from pipeline.text.alphabet import Alphabet


class ExportedModel(Protocol):
    alphabet: Alphabet
    sample_rate: int
    n_hidden: int
    beam_width: int

    def step(self, windows: np.ndarray, n_valid: int, c: np.ndarray, h: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...


class TfliteModel:
    """A DeepSpeech `.tflite` in LiteRT (`ai-edge-litert`)."""

    def __init__(self, path: Path, threads: int = 1):
        from ai_edge_litert.interpreter import Interpreter

        self.interp = Interpreter(model_path=str(path), num_threads=threads)
        self.interp.allocate_tensors()
        self.idx = {d["name"]: d["index"] for d in
                    [*self.interp.get_input_details(), *self.interp.get_output_details()]}
        for name in ("input_node", "previous_state_c", "previous_state_h", "logits",
                     "new_state_c", "new_state_h", "metadata_alphabet", "metadata_sample_rate"):
            if name not in self.idx:
                raise UsageError(f"{path} is not a DeepSpeech tflite model: no tensor {name!r}")
        self.n_hidden = int(self.interp.get_tensor(self.idx["previous_state_c"]).shape[1])
        self.interp.invoke()  # the metadata outputs are computed by the graph
        self.alphabet = Alphabet.deserialize(bytes(self._get("metadata_alphabet")[0]))
        self.sample_rate = int(self._get("metadata_sample_rate")[0])
        self.beam_width = int(self._get("metadata_beam_width")[0])

    def _get(self, name: str) -> Any:
        return self.interp.get_tensor(self.idx[name])

    def step(self, windows: np.ndarray, n_valid: int, c: np.ndarray, h: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        self.interp.set_tensor(self.idx["input_node"], windows[None])
        self.interp.set_tensor(self.idx["previous_state_c"], c)
        self.interp.set_tensor(self.idx["previous_state_h"], h)
        self.interp.invoke()
        return (self._get("logits")[:n_valid].copy(), self._get("new_state_c").copy(),
                self._get("new_state_h").copy())


class TfModel:
    """A DeepSpeech `.pb` or `.pbmm` in TensorFlow (the `.pbmm` through `pipeline.export.pbmm`)."""

    def __init__(self, path: Path):
        import tensorflow as tf

        from pipeline.export import pbmm

        if path.suffix == ".pbmm":
            gd = pbmm.read_pbmm(path)
        else:
            gd = tf.compat.v1.GraphDef()
            gd.ParseFromString(path.read_bytes())
        self.graph = tf.Graph()
        with self.graph.as_default():
            tf.compat.v1.import_graph_def(gd, name="")
        self.sess = tf.compat.v1.Session(graph=self.graph)
        t = self.graph.get_tensor_by_name
        self.n_hidden = int(t("previous_state_c:0").shape[1])
        alpha, rate, beam = self.sess.run([t("metadata_alphabet:0"), t("metadata_sample_rate:0"),
                                           t("metadata_beam_width:0")])
        self.alphabet = Alphabet.deserialize(bytes(alpha[0]))
        self.sample_rate = int(rate[0])
        self.beam_width = int(beam[0])
        self._fetch = [t("logits:0"), t("new_state_c:0"), t("new_state_h:0")]

    def step(self, windows: np.ndarray, n_valid: int, c: np.ndarray, h: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        feed = {"input_node:0": windows[None], "input_lengths:0": np.array([n_valid], np.int32),
                "previous_state_c:0": c, "previous_state_h:0": h}
        probs, c, h = self.sess.run(self._fetch, feed)
        return probs[:n_valid, 0], c, h


def load_model(path: str | Path, threads: int = 1) -> ExportedModel:
    path = Path(path)
    if not path.is_file():
        raise MissingInputError(f"model file {path} not found (--model)")
    if path.suffix == ".tflite":
        return TfliteModel(path, threads)
    if path.suffix in (".pb", ".pbmm"):
        return TfModel(path)
    raise UsageError(f"--model {path}: expected a .tflite, .pb or .pbmm file")


def stream_probs(model: ExportedModel, samples: np.ndarray) -> np.ndarray:
    """[T, C] probabilities for float samples at the model's rate, chunked like the client."""
    windows = context_windows(mfcc_frames(samples, model.sample_rate))
    c = np.zeros((1, model.n_hidden), np.float32)
    h = np.zeros((1, model.n_hidden), np.float32)
    out = []
    for k in range(0, len(windows), N_STEPS):
        chunk = windows[k:k + N_STEPS]
        n = len(chunk)
        if n < N_STEPS:
            chunk = np.concatenate([chunk, np.zeros((N_STEPS - n, *chunk.shape[1:]), np.float32)])
        probs, c, h = model.step(chunk, n, c, h)
        out.append(probs)
    if not out:
        return np.zeros((0, model.alphabet.num_classes), np.float32)
    return np.concatenate(out)
