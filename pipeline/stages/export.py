"""export: output_graph.pb / .pbmm / .tflite (int8 and fp32) from the best checkpoint.

After writing, a parity check transcribes a few dev clips (greedy) with every artifact, streamed
like the DeepSpeech client, and compares them with the checkpoint's own forward pass (numpy, on
the same features): `.pb`, `.pbmm` (through our reader) and fp32 `.tflite` must give the same
transcripts; the WER delta of the int8 `.tflite` is recorded in models/export_parity.json.
"""

from __future__ import annotations

import csv
import hashlib
import logging
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.config import Config
from pipeline.errors import DataQualityError, MissingInputError, StageNotAvailable
from pipeline.paths import Paths
from pipeline.stages.base import Stage, StageContext

log = logging.getLogger("pipeline.stages.export")

PARITY_FILE = "export_parity.json"
MAX_FP32_CER_DELTA = 0.01


def parity_path(paths: Paths) -> Path:
    return paths.models / PARITY_FILE


def _checkpoint_identity(cfg: Config, paths: Paths) -> list[tuple[str, int, int]]:
    d = paths.best_checkpoint_dir
    if not d.is_dir():
        return []
    return sorted((p.name, p.stat().st_size, int(p.stat().st_mtime)) for p in d.iterdir()
                  if p.is_file())


# -------------------------------------------------------------------------------------------------
# Reference forward pass (the checkpoint's math, independent of any exported graph)
# -------------------------------------------------------------------------------------------------
def reference_probs(weights: dict[str, np.ndarray], windows: np.ndarray) -> np.ndarray:
    """[T, C] softmax of the DeepSpeech model on [T, 19, 26] windows, in float64 numpy."""
    from pipeline.export import LSTM_BIAS, LSTM_KERNEL

    def dense(x: np.ndarray, layer: str, relu: bool) -> np.ndarray:
        y = x @ weights[f"{layer}/weights"].astype(np.float64) + weights[f"{layer}/bias"]
        return np.minimum(np.maximum(y, 0.0), 20.0) if relu else y

    x = windows.reshape(len(windows), -1).astype(np.float64)
    for layer in ("layer_1", "layer_2", "layer_3"):
        x = dense(x, layer, True)
    kernel = weights[LSTM_KERNEL].astype(np.float64)
    h_dim = kernel.shape[1] // 4
    proj = x @ kernel[:h_dim] + weights[LSTM_BIAS]
    c = np.zeros(h_dim)
    h = np.zeros(h_dim)
    outs = np.zeros((len(x), h_dim))
    sig = lambda v: 1.0 / (1.0 + np.exp(-v))  # noqa: E731
    for t in range(len(x)):
        z = proj[t] + h @ kernel[h_dim:]
        i, j, f, o = np.split(z, 4)
        c = sig(f) * c + sig(i) * np.tanh(j)
        h = sig(o) * np.tanh(c)
        outs[t] = h
    logits = dense(dense(outs, "layer_5", True), "layer_6", False)
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def _dev_clips(cfg: Config, paths: Paths, n: int) -> list[tuple[Path, str]]:
    clips: list[tuple[Path, str]] = []
    for corpus in cfg.active_corpora():
        csv_path = paths.corpus_csv(corpus, "dev")
        if not csv_path.is_file():
            continue
        with open(csv_path, newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                wav = Path(row["wav_filename"])
                clips.append((wav if wav.is_absolute() else csv_path.parent / wav,
                              row["transcript"]))
                if len(clips) >= n:
                    return clips
    return clips


def _wer(refs: list[str], hyps: list[str]) -> float:
    import jiwer

    pairs = [(r, h) for r, h in zip(refs, hyps, strict=False) if r.strip()]
    if not pairs:
        return 0.0
    return float(jiwer.wer([r for r, _ in pairs], [h if h else "<empty>" for _, h in pairs]))


def _cer(refs: list[str], hyps: list[str]) -> float:
    import jiwer

    pairs = [(r, h) for r, h in zip(refs, hyps, strict=False) if r]
    if not pairs:
        return 0.0
    return float(jiwer.cer([r for r, _ in pairs], [h for _, h in pairs]))


def check_parity(weights: dict[str, np.ndarray], artifacts: dict[str, Path],
                 clips: list[tuple[Path, str]]) -> dict[str, Any]:
    """Transcribe `clips` with the reference and each artifact; return the parity report."""
    from pipeline.transcribe import (
        context_windows,
        greedy_decode,
        load_audio,
        load_model,
        mfcc_frames,
        stream_probs,
    )

    models = {k: load_model(p) for k, p in artifacts.items()}
    alphabet = next(iter(models.values())).alphabet
    refs = [t for _, t in clips]
    report: dict[str, Any] = {"clips": [str(p) for p, _ in clips], "references": refs,
                              "artifacts": {}}
    audio = [load_audio(p) for p, _ in clips]
    ref_probs = [reference_probs(weights, context_windows(mfcc_frames(a))) for a in audio]
    ckpt = [greedy_decode(p, alphabet) for p in ref_probs]
    report["checkpoint"] = {"transcripts": ckpt, "wer": _wer(refs, ckpt), "cer": _cer(refs, ckpt)}
    for name, model in models.items():
        probs = [stream_probs(model, a) for a in audio]
        hyps = [greedy_decode(p, alphabet) for p in probs]
        diff = max((float(np.abs(p - r).max()) for p, r in zip(probs, ref_probs, strict=False) if len(p)),
                   default=0.0)
        report["artifacts"][name] = {
            "transcripts": hyps, "wer": _wer(refs, hyps), "cer": _cer(refs, hyps),
            "cer_vs_checkpoint": _cer(ckpt, hyps), "same_as_checkpoint": hyps == ckpt,
            "max_abs_prob_diff": diff}
    arts = report["artifacts"]
    if "tflite" in arts and "tflite_fp32" in arts:
        report["int8_wer_delta"] = arts["tflite"]["wer"] - arts["tflite_fp32"]["wer"]
        report["int8_cer_delta"] = arts["tflite"]["cer"] - arts["tflite_fp32"]["cer"]
    return report


def run_export(cfg: Config, paths: Paths, weights: dict[str, np.ndarray]) -> dict[str, Any]:
    """Write the four model files and the parity report from a DeepSpeech-layout weights dict."""
    from pipeline.export import export_models
    from pipeline.fsutil import write_json
    from pipeline.langs import load_pack
    from pipeline.text.alphabet import Alphabet

    if not paths.alphabet.is_file():
        raise MissingInputError(f"{paths.alphabet} missing: run the alphabet stage first")
    alphabet = Alphabet.from_file(paths.alphabet)
    pack = load_pack(cfg.general.model_language)
    language = pack.metadata.get("language_tag", pack.code)
    n_hidden = int(weights["layer_1/bias"].shape[0])
    if n_hidden != cfg.train.n_hidden:
        log.warning("best checkpoint has N_HIDDEN=%d, config says %d: exporting the checkpoint's",
                    n_hidden, cfg.train.n_hidden)
    res = export_models(weights, alphabet, paths.models, n_hidden, cfg.lm.beam_width, language)
    artifacts = {"pb": res.pb, "pbmm": res.pbmm, "tflite_fp32": res.tflite_fp32,
                 "tflite": res.tflite}
    report: dict[str, Any] = {"sizes": {k: p.stat().st_size for k, p in artifacts.items()},
                              "sha256": {k: hashlib.sha256(p.read_bytes()).hexdigest()
                                         for k, p in artifacts.items()},
                              "n_hidden": n_hidden, "language": language}
    clips = _dev_clips(cfg, paths, cfg.export.export_parity_clips)
    if clips:
        report["parity"] = check_parity(weights, artifacts, clips)
        # float32 graphs vs the float64 reference: allow an argmax flip on a near-tie, no more.
        bad = [k for k in ("pb", "pbmm", "tflite_fp32")
               if report["parity"]["artifacts"][k]["cer_vs_checkpoint"] > MAX_FP32_CER_DELTA]
        write_json(parity_path(paths), report)
        if bad:
            raise DataQualityError(f"exported {', '.join(bad)} transcribe the dev clips differently "
                                   f"from the checkpoint; see {parity_path(paths)}")
        p = report["parity"]
        log.info("export parity on %d dev clips: checkpoint WER %.3f, int8 WER delta %+.3f",
                 len(clips), p["checkpoint"]["wer"], p.get("int8_wer_delta", 0.0))
    else:
        log.warning("no dev clips found: export parity check skipped")
        write_json(parity_path(paths), report)
    return report


def run(ctx: StageContext) -> None:
    try:
        from pipeline.model import load_export_weights
    except ImportError as exc:
        raise StageNotAvailable("stage 'export' needs pipeline.model.load_export_weights "
                                "(training area)") from exc
    if not ctx.paths.best_checkpoint_dir.is_dir():
        raise MissingInputError(f"no best checkpoint in {ctx.paths.best_checkpoint_dir}: train first "
                                "(or point ONLY_EXPORT=1 at a data dir that has one)")
    weights = load_export_weights(ctx.paths.best_checkpoint_dir)
    run_export(ctx.cfg, ctx.paths, weights)


STAGE = Stage(
    name="export",
    help="export .pb, .pbmm and .tflite models into models/",
    run=run,
    config_keys=("MODEL_LANGUAGE", "N_HIDDEN", "BEAM_WIDTH", "ONLY_EXPORT", "EXPORT_PARITY_CLIPS"),
    depends_on=("train", "alphabet"),
    requires=lambda cfg, paths: [paths.best_checkpoint_dir, paths.alphabet],
    produces=lambda cfg, paths: [paths.output_graph_pb, paths.output_graph_pbmm,
                                 paths.output_graph_tflite, paths.output_graph_fp32_tflite,
                                 parity_path(paths)],
    # Re-export whenever the best checkpoint changes (ONLY_EXPORT=1 after more training).
    extra_fingerprint=_checkpoint_identity,
)
