"""Alpha/beta search for the scorer (LM_EVALUATE_RANGE), and the weights the decoder then uses.

Like the seeds' `lm_optimizer.py` (reference deepspeech-0.9.md §8): Optuna TPE over alpha in
[0, alpha_max] and beta in [0, beta_max], objective = dev WER (CER for a UTF-8 scorer). Unlike it, the
acoustic model runs once: its outputs are kept and only the beam search is repeated per trial, in a
pool of worker processes that receive the outputs once. The defaults (LM_ALPHA/LM_BETA) are the first
trial, so the result is never worse on dev than they are.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.config import Config, LmRange
from pipeline.faults import crashpoint
from pipeline.lm.decode import Decoder, start_method
from pipeline.paths import Paths
from pipeline.procs import die_with_parent
from pipeline.report.metrics import wer_cer
from pipeline.text.alphabet import Alphabet

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------
# Decoding the same outputs with many (alpha, beta): the probabilities are sent to each worker once.
# ---------------------------------------------------------------------------------------------
_W: dict[str, Any] = {}


def _init(labels: tuple[str, ...], scorer: Path, beam: int, cutoff: int,
          probs: list[np.ndarray], parent: int | None = None) -> None:
    if parent is not None:
        die_with_parent(parent)
    _W["decoder"] = Decoder(Alphabet(labels), scorer, 0.0, 0.0, beam, cutoff)
    _W["probs"] = probs


def _decode_one(task: tuple[float, float, int]) -> str:
    alpha, beta, i = task
    dec = _W["decoder"]
    if (dec.alpha, dec.beta) != (alpha, beta):
        dec.set_weights(alpha, beta)
    return str(dec.decode(_W["probs"][i]))


class TrialDecoder:
    """Decodes a fixed list of outputs with varying weights, in `workers` processes."""

    def __init__(self, alphabet: Alphabet, scorer: Path, probs: list[np.ndarray], beam_width: int,
                 cutoff_top_n: int = 40, workers: int = 0) -> None:
        self.n = len(probs)
        workers = workers or (os.cpu_count() or 1)
        self.workers = max(1, min(workers, self.n))
        args = (alphabet.labels, scorer, beam_width, cutoff_top_n, probs)
        self.order = sorted(range(self.n), key=lambda i: -len(probs[i]))
        if self.workers == 1:
            _init(*args)
            self.pool = None
        else:
            ctx = multiprocessing.get_context(start_method())
            self.pool = ctx.Pool(self.workers, initializer=_init, initargs=(*args, os.getpid()))

    def decode(self, alpha: float, beta: float) -> list[str]:
        tasks = [(alpha, beta, i) for i in self.order]
        texts = (self.pool.map(_decode_one, tasks, chunksize=1) if self.pool
                 else [_decode_one(t) for t in tasks])
        out = [""] * self.n
        for i, t in zip(self.order, texts, strict=True):
            out[i] = t
        return out

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()
            self.pool.join()

    def __enter__(self) -> TrialDecoder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class OptimizeResult:
    alpha: float
    beta: float
    value: float            # dev WER (or CER) with the best values
    default_value: float    # with the defaults
    default_alpha: float
    default_beta: float
    n_trials: int
    metric: str


def optimize(pairs: Sequence[tuple[np.ndarray, str]], alphabet: Alphabet, scorer: Path,
             search: LmRange, default_alpha: float, default_beta: float, beam_width: int,
             seed: int = 0, workers: int = 0, cer: bool = False) -> OptimizeResult:
    """Optuna TPE search of (alpha, beta) minimizing the error rate of `pairs` (probs, transcript)."""
    import optuna

    refs = [t for _, t in pairs]
    probs = [p for p, _ in pairs]
    metric = "cer" if cer else "wer"
    pick = 1 if cer else 0  # wer_cer() returns (WER, CER)
    with TrialDecoder(alphabet, scorer, probs, beam_width, workers=workers) as dec:
        default_value = wer_cer(refs, dec.decode(default_alpha, default_beta))[pick]
        log.info("dev %s with the defaults (alpha %.4f, beta %.4f): %.4f", metric.upper(),
                 default_alpha, default_beta, default_value)

        def objective(trial: optuna.Trial) -> float:
            alpha = trial.suggest_float("alpha", 0.0, search.alpha_max)
            beta = trial.suggest_float("beta", 0.0, search.beta_max)
            crashpoint("lm_optimize.trial")
            return wer_cer(refs, dec.decode(alpha, beta))[pick]

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.create_study(direction="minimize",
                                    sampler=optuna.samplers.TPESampler(seed=seed))
        if 0.0 <= default_alpha <= search.alpha_max and 0.0 <= default_beta <= search.beta_max:
            study.enqueue_trial({"alpha": default_alpha, "beta": default_beta})
        study.optimize(objective, n_trials=search.n_trials)
    best_alpha = float(study.best_params["alpha"])
    best_beta = float(study.best_params["beta"])
    best_value = float(study.best_value)
    if best_value > default_value:  # defaults outside the searched box and better: keep them
        best_alpha, best_beta, best_value = default_alpha, default_beta, default_value
    return OptimizeResult(best_alpha, best_beta, best_value, default_value, default_alpha,
                          default_beta, len(study.trials), metric)


def decoder_weights(cfg: Config, paths: Paths) -> tuple[float, float]:
    """alpha/beta for evaluation and transcription: lm_optimize's result when it ran and the user
    did not set LM_ALPHA/LM_BETA explicitly, else the configured values."""
    explicit = {cfg.sources.get(k, "default") for k in ("LM_ALPHA", "LM_BETA")}
    user_set = any(not (s == "default" or s.startswith("pack:")) for s in explicit)
    path = paths.lm_optimize_result
    if not user_set and path.is_file() and paths.marker("lm_optimize").is_file():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return float(data["alpha"]), float(data["beta"])
        except (ValueError, KeyError, TypeError):
            log.warning("%s is unreadable; using LM_ALPHA/LM_BETA", path)
    return cfg.lm.lm_alpha, cfg.lm.lm_beta
