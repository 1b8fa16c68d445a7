"""Export parity: every exported artifact must transcribe like the checkpoint it came from.

A few dev clips are transcribed (greedy) with every artifact, streamed like the DeepSpeech client,
and compared with the checkpoint's own forward pass (`pipeline.model.reference`, numpy, on the same
features): `.pb`, `.pbmm` and fp32 `.tflite` must give the same transcripts (an argmax flip on a
near-tie is tolerated: CER against the checkpoint ≤ MAX_FP32_CER_DELTA); the WER delta of the int8
`.tflite` is recorded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from pipeline.corpus_csv import read_rows
from pipeline.export.runtime import load_model, stream_probs
from pipeline.lm.decode import greedy_decode
from pipeline.model.reference import context_windows, mfcc_frames, reference_probs
from pipeline.report.metrics import wer_cer
from pipeline.transcribe import load_audio

MAX_FP32_CER_DELTA = 0.01
FP32_ARTIFACTS = ("pb", "pbmm", "tflite_fp32")


def dev_clips(csvs: list[Path], n: int) -> list[tuple[Path, str]]:
    """The first `n` (wav, transcript) rows of `csvs`."""
    clips: list[tuple[Path, str]] = []
    for csv_path in csvs:
        for row in read_rows(csv_path):
            clips.append((row.wav, row.transcript))
            if len(clips) >= n:
                return clips
    return clips


def check_parity(weights: dict[str, np.ndarray], artifacts: dict[str, Path],
                 clips: list[tuple[Path, str]]) -> dict[str, Any]:
    """Transcribe `clips` with the reference and each artifact; return the parity report."""
    models = {k: load_model(p) for k, p in artifacts.items()}
    alphabet = next(iter(models.values())).alphabet
    refs = [t for _, t in clips]
    report: dict[str, Any] = {"clips": [str(p) for p, _ in clips], "references": refs,
                              "artifacts": {}}
    rate = next(iter(models.values())).sample_rate  # the exported metadata (AUDIO_SAMPLE_RATE)
    audio = [load_audio(p, rate) for p, _ in clips]
    ref_probs = [reference_probs(weights, context_windows(mfcc_frames(a, rate))) for a in audio]
    ckpt = [greedy_decode(p, alphabet) for p in ref_probs]
    wer, cer = wer_cer(refs, ckpt)
    report["checkpoint"] = {"transcripts": ckpt, "wer": wer, "cer": cer}
    for name, model in models.items():
        probs = [stream_probs(model, a) for a in audio]
        hyps = [greedy_decode(p, alphabet) for p in probs]
        diff = max((float(np.abs(p - r).max()) for p, r in zip(probs, ref_probs, strict=False) if len(p)),
                   default=0.0)
        wer, cer = wer_cer(refs, hyps)
        report["artifacts"][name] = {
            "transcripts": hyps, "wer": wer, "cer": cer,
            "cer_vs_checkpoint": wer_cer(ckpt, hyps)[1], "same_as_checkpoint": hyps == ckpt,
            "max_abs_prob_diff": diff}
    arts = report["artifacts"]
    if "tflite" in arts and "tflite_fp32" in arts:
        report["int8_wer_delta"] = arts["tflite"]["wer"] - arts["tflite_fp32"]["wer"]
        report["int8_cer_delta"] = arts["tflite"]["cer"] - arts["tflite_fp32"]["cer"]
    return report


def parity_failures(report: dict[str, Any]) -> list[str]:
    """The fp32 artifacts that transcribe differently from the checkpoint."""
    return [k for k in FP32_ARTIFACTS
            if report["artifacts"][k]["cer_vs_checkpoint"] > MAX_FP32_CER_DELTA]
