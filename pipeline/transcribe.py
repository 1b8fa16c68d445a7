"""`ds-pipeline transcribe`: run an exported model on audio files the way the DeepSpeech client does.

Audio (any format soundfile reads, any rate and channel count) is down-mixed and resampled to the
model's rate, long files are split into speech segments with webrtcvad, and each segment is
streamed through the model like `libdeepspeech` does it: 512-sample windows every 320 samples (the
last partial window zero-padded), 9 zero MFCC frames of context at both ends, 16-step chunks with
the LSTM state carried from chunk to chunk. `.tflite` runs in LiteRT, `.pb`/`.pbmm` in TensorFlow.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from pipeline.errors import MissingInputError, UsageError
from pipeline.text.alphabet import Alphabet

log = logging.getLogger("pipeline.transcribe")

N_CONTEXT = 9
N_INPUT = 26
N_STEPS = 16


# -------------------------------------------------------------------------------------------------
# Features: numpy port of TF's AudioSpectrogram(512, 320, magnitude_squared) + Mfcc(26) kernels
# -------------------------------------------------------------------------------------------------
def _hz_to_mel(f: np.ndarray | float) -> np.ndarray:
    return 1127.0 * np.log1p(np.asarray(f, np.float64) / 700.0)


@lru_cache(maxsize=4)
def _mel_matrix(n_bins: int, sample_rate: int, channels: int = 40, lower: float = 20.0,
                upper: float | None = None) -> np.ndarray:
    """[n_bins, channels] weights reproducing MfccMelFilterbank (applied to magnitudes)."""
    upper = sample_rate / 2 if upper is None else upper
    mel_low, mel_hi = _hz_to_mel(lower), _hz_to_mel(upper)
    spacing = (mel_hi - mel_low) / (channels + 1)
    centers = mel_low + spacing * np.arange(1, channels + 2)
    hz_per_bin = 0.5 * sample_rate / (n_bins - 1)
    start = int(1.5 + lower / hz_per_bin)
    end = int(upper / hz_per_bin)
    mat = np.zeros((n_bins, channels), np.float64)
    channel = 0
    for i in range(start, end + 1):
        mel = _hz_to_mel(i * hz_per_bin)
        while channel < channels and centers[channel] < mel:
            channel += 1
        band = channel - 1
        if band >= 0:
            w = (centers[band + 1] - mel) / (centers[band + 1] - centers[band])
        else:
            w = (centers[0] - mel) / (centers[0] - mel_low)
        if band >= 0:
            mat[i, band] += w
        if band + 1 < channels:
            mat[i, band + 1] += 1.0 - w
    return mat


@lru_cache(maxsize=2)
def _dct_matrix(n_in: int = 40, n_out: int = N_INPUT) -> np.ndarray:
    i = np.arange(n_out)[:, None]
    j = np.arange(n_in)[None, :]
    return (math.sqrt(2.0 / n_in) * np.cos(i * (math.pi / n_in) * (j + 0.5))).T  # [in, out]


def mfcc_frames(samples: np.ndarray, sample_rate: int = 16000, window: int = 512,
                step: int = 320, pad_last: bool = True) -> np.ndarray:
    """[frames, 26] MFCCs. `pad_last` adds the client's zero-padded final partial window."""
    x = np.asarray(samples, np.float32)
    n = len(x)
    full = 0 if n < window else (n - window) // step + 1
    starts = [k * step for k in range(full)]
    if pad_last:
        rest = full * step
        if n - rest > 0 or full == 0 and n > 0:  # client flushes whatever is left in its buffer
            starts.append(rest)
    if not starts:
        return np.zeros((0, N_INPUT), np.float32)
    padded = np.concatenate([x, np.zeros(window, np.float32)])
    idx = np.asarray(starts)[:, None] + np.arange(window)[None, :]
    hann = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(window) / window)
    frames = padded[idx].astype(np.float64) * hann
    power = np.abs(np.fft.rfft(frames, n=window)) ** 2
    mel = np.sqrt(power) @ _mel_matrix(power.shape[1], sample_rate)
    logmel = np.log(np.maximum(mel, 1e-12))
    return (logmel @ _dct_matrix()).astype(np.float32)


def context_windows(mfcc: np.ndarray) -> np.ndarray:
    """[frames, 19, 26]: each frame with 9 zero-padded frames of context on both sides."""
    pad = np.zeros((N_CONTEXT, N_INPUT), np.float32)
    x = np.concatenate([pad, mfcc, pad])
    idx = np.arange(len(mfcc))[:, None] + np.arange(2 * N_CONTEXT + 1)[None, :]
    return x[idx]


# -------------------------------------------------------------------------------------------------
# Model runners
# -------------------------------------------------------------------------------------------------
class AcousticModel(Protocol):
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
    """A DeepSpeech `.pb` or `.pbmm` in TensorFlow (the `.pbmm` through `pipeline.pbmm`)."""

    def __init__(self, path: Path):
        import tensorflow as tf

        from pipeline import pbmm

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


def load_model(path: str | Path, threads: int = 1) -> AcousticModel:
    path = Path(path)
    if not path.is_file():
        raise MissingInputError(f"model file {path} not found (--model)")
    if path.suffix == ".tflite":
        return TfliteModel(path, threads)
    if path.suffix in (".pb", ".pbmm"):
        return TfModel(path)
    raise UsageError(f"--model {path}: expected a .tflite, .pb or .pbmm file")


def stream_probs(model: AcousticModel, samples: np.ndarray) -> np.ndarray:
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


def greedy_decode(probs: np.ndarray, alphabet: Alphabet) -> str:
    """Best path: argmax per step, collapse repeats, drop the blank (last class)."""
    best = np.argmax(probs, axis=1)
    keep = [int(b) for k, b in enumerate(best) if b != alphabet.blank_index
            and (k == 0 or b != best[k - 1])]
    return alphabet.decode(keep).strip()


# -------------------------------------------------------------------------------------------------
# Files
# -------------------------------------------------------------------------------------------------
def load_audio(path: str | Path, sample_rate: int = 16000) -> np.ndarray:
    """Mono float32 samples at `sample_rate` from wav/mp3/ogg/flac (any rate, any channels)."""
    import soundfile as sf

    path = Path(path)
    if not path.is_file():
        raise MissingInputError(f"audio file {path} not found")
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:  # soundfile raises its own error types per format
        raise UsageError(f"cannot read audio file {path}: {exc}") from exc
    mono = data.mean(axis=1)
    if rate != sample_rate:
        import soxr

        mono = soxr.resample(mono, rate, sample_rate, quality="HQ")
    return np.asarray(mono, np.float32)


@dataclass
class Transcriber:
    """Transcribes files with one model and an optional scorer.

    Like the DeepSpeech client it decodes with CTC prefix beam search (the LM area's
    `pipeline.decode.Decoder`; beam width from the model's metadata unless given), lexicon- and
    LM-constrained with a scorer; `greedy=True` (or no decoder installed) takes the best path.
    """

    model: AcousticModel
    scorer: Path | None = None
    beam_width: int | None = None
    greedy: bool = False
    alpha: float | None = None
    beta: float | None = None
    vad_min_s: float = 20.0     # files longer than this are split with webrtcvad
    _decoder: Any = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.scorer is not None and self.greedy:
            raise UsageError("--greedy cannot be combined with --scorer")
        if self.scorer is not None or not self.greedy:
            try:
                from pipeline.decode import Decoder  # LM area
            except ImportError as exc:
                if self.scorer is not None:
                    raise UsageError("--scorer needs pipeline.decode (the LM area's beam-search "
                                     "decoder), which this installation lacks") from exc
                log.info("no beam-search decoder installed (pipeline.decode): greedy decoding")
                self.greedy = True
                return
            alpha, beta = self.alpha, self.beta
            if (alpha is None or beta is None) and self.scorer is not None:
                # like the DeepSpeech clients: the scorer package's defaults (lm_optimize writes them)
                from pipeline.scorer import read_scorer

                info = read_scorer(self.scorer)
                alpha = info.alpha if alpha is None else alpha
                beta = info.beta if beta is None else beta
            if alpha is None or beta is None:
                from pipeline.config import LmConfig

                alpha = LmConfig().lm_alpha if alpha is None else alpha
                beta = LmConfig().lm_beta if beta is None else beta
            self._decoder = Decoder(self.model.alphabet, self.scorer, alpha, beta,
                                    self.beam_width or self.model.beam_width)

    def decode(self, probs: np.ndarray) -> str:
        if len(probs) == 0:
            return ""
        if self._decoder is not None:
            return str(self._decoder.decode(probs)).strip()
        return greedy_decode(probs, self.model.alphabet)

    def transcribe_samples(self, samples: np.ndarray) -> dict[str, Any]:
        from pipeline.vad import Segment, split_speech

        rate = self.model.sample_rate
        if len(samples) > self.vad_min_s * rate:
            segs = split_speech(samples, rate) or [Segment(0, len(samples))]
        else:
            segs = [Segment(0, len(samples))]
        out: list[dict[str, Any]] = []
        for s in segs:
            text = self.decode(stream_probs(self.model, samples[s.start:s.end]))
            out.append({"start": round(s.start / rate, 3), "end": round(s.end / rate, 3),
                        "text": text})
        transcript = " ".join(str(seg["text"]) for seg in out if seg["text"])
        return {"transcript": transcript, "segments": out}

    def transcribe_file(self, path: str | Path) -> dict[str, Any]:
        res = self.transcribe_samples(load_audio(path, self.model.sample_rate))
        return {"file": str(path), **res}
