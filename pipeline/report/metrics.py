"""WER/CER (jiwer), per-sample results, best/median/worst selection and a plain-language hint."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class SampleResult:
    wav_filename: str
    reference: str
    greedy: str
    decoded: str          # with the scorer, or the greedy text when there is no scorer
    cer: float            # of `decoded`
    wer: float
    greedy_cer: float
    greedy_wer: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def wer_cer(refs: Sequence[str], hyps: Sequence[str]) -> tuple[float, float]:
    """THE word and character error rates of the project (test stage, export parity, alpha/beta
    search, benchmarks).

    Corpus level: total edits / total reference words (characters), each capped at 1.0 like
    DeepSpeech's evaluate. A pair whose reference is empty or only spaces is skipped (its rate is
    undefined); an empty hypothesis counts every reference word (character) as deleted. With no
    scorable pair both rates are 0.0.
    """
    import jiwer

    pairs = [(r, h) for r, h in zip(refs, hyps, strict=False) if r.strip()]
    if not pairs:
        return 0.0, 0.0
    r, h = [p[0] for p in pairs], [p[1] for p in pairs]
    wer = jiwer.process_words(r, h)
    cer = jiwer.process_characters(r, h)
    return min(1.0, float(wer.wer)), min(1.0, float(cer.cer))


def score_samples(wavs: Sequence[str], refs: Sequence[str], greedy: Sequence[str],
                  decoded: Sequence[str]) -> list[SampleResult]:
    out = []
    for w, r, g, d in zip(wavs, refs, greedy, decoded, strict=False):
        wer, cer = wer_cer([r], [d])
        gwer, gcer = wer_cer([r], [g])
        out.append(SampleResult(w, r, g, d, cer, wer, gcer, gwer))
    return out


def best_median_worst(samples: Sequence[SampleResult], n: int = 5,
                      by: str = "wer") -> dict[str, list[dict[str, Any]]]:
    """Samples ordered by WER then CER (`by="cer"`: CER then WER; stable): the n best, n around the
    median, n worst."""
    if by not in ("wer", "cer"):
        raise ValueError(f"rank by 'wer' or 'cer', not {by!r}")
    ranked = sorted(samples, key=(lambda s: (s.wer, s.cer)) if by == "wer" else (lambda s: (s.cer, s.wer)))
    mid = len(ranked) // 2
    lo = max(0, mid - n // 2)
    return {"best": [s.as_dict() for s in ranked[:n]],
            "median": [s.as_dict() for s in ranked[lo:lo + n]],
            "worst": [s.as_dict() for s in ranked[::-1][:n]]}


def hint(wer: float, cer: float, greedy_wer: float, greedy_cer: float, has_scorer: bool) -> str:
    """One plain-language sentence on what to improve next."""
    if cer > 0.4:
        return ("The acoustic model is still weak (CER above 40 %): train longer or on more hours, and "
                "look at the loss curve — a dev loss that rises while the train loss falls means "
                "overfitting (raise DROPOUT, add data or augmentation).")
    if has_scorer and wer > greedy_wer + 0.02:
        return ("The scorer makes words worse than plain greedy decoding: its text probably does not "
                "match the speech domain, or LM_ALPHA/LM_BETA are off — tune them with LM_EVALUATE_RANGE.")
    if wer > 0.3 and cer < 0.15:
        return ("High WER with low CER: the model hears most letters right but spells words wrong. "
                "Improve the scorer/LM (more and closer LM text, tune LM_ALPHA/LM_BETA with "
                "LM_EVALUATE_RANGE)" + ("" if has_scorer else ", and build one: no scorer was used")
                + ".")
    if cer < 0.1 and wer < 0.2:
        return "Good results for this data; more varied speakers would tell whether it generalizes."
    return ("Errors are spread over letters and words: more training data (speakers, recording "
            "conditions) helps most; a better LM helps the word level.")
