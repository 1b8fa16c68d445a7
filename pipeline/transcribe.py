"""`ds-pipeline transcribe`: run an exported model on audio files the way the DeepSpeech client does.

Audio (any format soundfile reads, any rate and channel count) is down-mixed and resampled to the
model's rate, long files are split into speech segments with webrtcvad, and each segment is
streamed through the model like `libdeepspeech` does it: 512-sample windows every 320 samples (the
last partial window zero-padded), 9 zero MFCC frames of context at both ends, 16-step chunks with
the LSTM state carried from chunk to chunk. `.tflite` runs in LiteRT, `.pb`/`.pbmm` in TensorFlow.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.audio import level_gain
from pipeline.config import LmConfig
from pipeline.errors import MissingInputError, UsageError
from pipeline.export.runtime import ExportedModel, stream_probs
from pipeline.lm.decode import WIDE, Decoder, greedy_decode
from pipeline.lm.scorer import read_scorer
from pipeline.model.geometry import SAMPLE_RATE
from pipeline.vad import Segment, split_speech

log = logging.getLogger(__name__)


# -------------------------------------------------------------------------------------------------
# Files
# -------------------------------------------------------------------------------------------------
def load_audio(path: str | Path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
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


def trained_on_normalized_levels(model_path: str | Path) -> bool:
    """AUDIO_NORMALIZE of the run that made the model, from the `config.env` beside it (a data
    dir's models/ folder, an unpacked release); False without one (a DeepSpeech model)."""
    from pipeline.config import SPEC_BY_ENV, parse_value, read_env_file

    env = Path(model_path).parent / "config.env"
    if not env.is_file():
        return False
    layer, _ = read_env_file(env, environ={})
    raw = layer.values.get("AUDIO_NORMALIZE")
    try:
        return bool(raw and parse_value(SPEC_BY_ENV["AUDIO_NORMALIZE"], raw[0]))
    except ValueError:
        return False


@dataclass
class Transcriber:
    """Transcribes files with one model and an optional scorer.

    Like the DeepSpeech client it decodes with CTC prefix beam search (`pipeline.lm.decode.Decoder`;
    beam width from the model's metadata unless given), lexicon- and LM-constrained with a scorer;
    `greedy=True` takes the best path.
    """

    model: ExportedModel
    scorer: Path | None = None
    beam_width: int | None = None
    greedy: bool = False
    alpha: float | None = None
    beta: float | None = None
    vad_min_s: float = 20.0     # files longer than this are split with webrtcvad
    normalize: bool = False     # each segment's speech to the import's level (AUDIO_NORMALIZE)
    model_name: str = "the model"  # for error messages (the --model file)
    _decoder: Any = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.scorer is not None and self.greedy:
            raise UsageError("--greedy cannot be combined with --scorer")
        if self.scorer is not None or not self.greedy:
            alpha, beta = self.alpha, self.beta
            if (alpha is None or beta is None) and self.scorer is not None:
                # like the DeepSpeech clients: the scorer package's defaults (lm_optimize writes them)
                info = read_scorer(self.scorer)
                alpha = info.alpha if alpha is None else alpha
                beta = info.beta if beta is None else beta
            if alpha is None or beta is None:
                alpha = LmConfig().lm_alpha if alpha is None else alpha
                beta = LmConfig().lm_beta if beta is None else beta
            # ds_ctcdecoder's breadth (WIDE), not the fast bulk-decoding default: `transcribe` must
            # read like the DeepSpeech client; on a weak model the fast pruning loses words the
            # client keeps (tests/export/test_export_legacy.py).
            self._decoder = Decoder(self.model.alphabet, self.scorer, alpha, beta,
                                    self.beam_width or self.model.beam_width, pruning=WIDE, rescue=None,
                                    model_name=self.model_name)

    def decode(self, probs: np.ndarray) -> str:
        if len(probs) == 0:
            return ""
        if self._decoder is not None:
            return str(self._decoder.decode(probs)).strip()
        return greedy_decode(probs, self.model.alphabet)

    def transcribe_samples(self, samples: np.ndarray) -> dict[str, Any]:
        rate = self.model.sample_rate
        if len(samples) > self.vad_min_s * rate:
            segs = split_speech(samples, rate) or [Segment(0, len(samples))]
        else:
            segs = [Segment(0, len(samples))]
        out: list[dict[str, Any]] = []
        for s in segs:
            seg = samples[s.start:s.end]
            if self.normalize:
                seg = np.clip(seg * np.float32(level_gain(seg, rate)), -1.0, 1.0)
            text = self.decode(stream_probs(self.model, seg))
            out.append({"start": round(s.start / rate, 3), "end": round(s.end / rate, 3),
                        "text": text})
        transcript = " ".join(str(seg["text"]) for seg in out if seg["text"])
        return {"transcript": transcript, "segments": out}

    def transcribe_file(self, path: str | Path) -> dict[str, Any]:
        res = self.transcribe_samples(load_audio(path, self.model.sample_rate))
        return {"file": str(path), **res}
