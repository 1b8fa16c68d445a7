"""Alpha/beta search for the scorer (LM_EVALUATE_RANGE), and the weights the decoder then uses.

Like the seeds' `lm_optimizer.py` (reference deepspeech-0.9.md §8): Optuna TPE over alpha in
[0, alpha_max] and beta in [0, beta_max], objective = dev WER (CER for a UTF-8 scorer). Unlike it, the
acoustic model runs once: its outputs are kept and only the beam search is repeated per trial, in a
pool of worker processes that receive the outputs once. The defaults (LM_ALPHA/LM_BETA) are the first
trial, so the result is never worse on dev than they are.

Bounded work (docs/language-model.md): the dev set is a fixed pseudo-random subset of at most
LM_OPTIMIZE_MAX_CLIPS clips (`dev_subset`), and each trial is first decoded on a quarter of it; a trial
whose error there exceeds the best trial's on the same quarter by more than LM_OPTIMIZE_PRUNE_MARGIN
is stopped (Optuna's "pruned", its quarter value reported) without decoding the rest.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import multiprocessing
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.config import Config, LmRange
from pipeline.corpus_csv import CsvRow
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
        self.decoded = 0  # utterances decoded so far (all trials)
        if self.workers == 1:
            _init(*args)
            self.pool = None
        else:
            ctx = multiprocessing.get_context(start_method())
            self.pool = ctx.Pool(self.workers, initializer=_init, initargs=(*args, os.getpid()))

    def decode(self, alpha: float, beta: float, indices: Sequence[int] | None = None) -> list[str]:
        """Transcripts of the outputs at `indices` (default: all), in that order."""
        wanted = set(range(self.n) if indices is None else indices)
        order = [i for i in self.order if i in wanted]  # longest first
        self.decoded += len(order)
        tasks = [(alpha, beta, i) for i in order]
        texts = (self.pool.map(_decode_one, tasks, chunksize=1) if self.pool
                 else [_decode_one(t) for t in tasks])
        by_index = dict(zip(order, texts, strict=True))
        return [by_index[i] for i in (range(self.n) if indices is None else indices)]

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
    pruned: int = 0             # trials stopped after the first quarter
    decoded: int = 0            # utterances decoded over all trials


def dev_subset(rows: Sequence[CsvRow], max_clips: int) -> list[CsvRow]:
    """At most `max_clips` rows (0: all), in CSV order: those whose (wav file name, transcript)
    hashes lowest, so the same rows on every run and machine, spread over the whole CSV."""
    if not max_clips or len(rows) <= max_clips:
        return list(rows)

    def rank(r: CsvRow) -> bytes:
        return hashlib.blake2b(f"{r.wav.name}\0{r.transcript}".encode(), digest_size=8).digest()

    keep = set(sorted(range(len(rows)), key=lambda i: rank(rows[i]))[:max_clips])
    return [r for i, r in enumerate(rows) if i in keep]


def prune_slice(n: int, seed: int) -> list[int]:
    """The quarter of the `n` dev utterances every trial decodes first (a seeded sample)."""
    k = n // 4
    return sorted(int(i) for i in np.random.default_rng(seed).permutation(n)[:k]) if k else []


def optimize(pairs: Sequence[tuple[np.ndarray, str]], alphabet: Alphabet, scorer: Path,
             search: LmRange, default_alpha: float, default_beta: float, beam_width: int,
             seed: int = 0, workers: int = 0, cer: bool = False,
             prune_margin: float = 1.0) -> OptimizeResult:
    """Optuna TPE search of (alpha, beta) minimizing the error rate of `pairs` (probs, transcript).

    A trial is first decoded on `prune_slice`; it is stopped there when its error exceeds the best
    finished trial's error on that slice by more than `prune_margin` (1.0: never, errors are <= 1)."""
    import optuna

    refs = [t for _, t in pairs]
    probs = [p for p, _ in pairs]
    metric = "cer" if cer else "wer"
    pick = 1 if cer else 0  # wer_cer() returns (WER, CER)
    first = prune_slice(len(pairs), seed) if prune_margin < 1.0 else []
    first_set = set(first)
    rest = [i for i in range(len(pairs)) if i not in first_set]
    best = {"value": math.inf, "on_first": math.inf}  # the best finished trial so far
    seen: dict[tuple[float, float], float] = {}     # the enqueued defaults are not decoded twice
    with TrialDecoder(alphabet, scorer, probs, beam_width, workers=workers) as dec:

        def error(alpha: float, beta: float, trial: optuna.Trial | None = None) -> float:
            if (alpha, beta) in seen:
                return seen[(alpha, beta)]
            if not first:
                value = wer_cer(refs, dec.decode(alpha, beta))[pick]
                seen[(alpha, beta)] = value
                return value
            head = dec.decode(alpha, beta, first)
            on_first = wer_cer([refs[i] for i in first], head)[pick]
            if trial is not None and on_first > best["on_first"] + prune_margin:
                trial.report(on_first, step=0)
                log.info("trial %d (alpha %.4f, beta %.4f) stopped: %s %.4f on %d of %d "
                         "utterances, the best trial has %.4f there", trial.number, alpha, beta,
                         metric.upper(), on_first, len(first), len(refs), best["on_first"])
                raise optuna.TrialPruned()
            hyps = dict(zip(first, head, strict=True))
            hyps.update(zip(rest, dec.decode(alpha, beta, rest), strict=True))
            value = wer_cer(refs, [hyps[i] for i in range(len(refs))])[pick]
            if value < best["value"]:
                best.update(value=value, on_first=on_first)
            seen[(alpha, beta)] = value
            return value

        default_value = error(default_alpha, default_beta)
        log.info("dev %s with the defaults (alpha %.4f, beta %.4f): %.4f", metric.upper(),
                 default_alpha, default_beta, default_value)

        def objective(trial: optuna.Trial) -> float:
            alpha = trial.suggest_float("alpha", 0.0, search.alpha_max)
            beta = trial.suggest_float("beta", 0.0, search.beta_max)
            crashpoint("lm_optimize.trial")
            return error(alpha, beta, trial)

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.create_study(direction="minimize",
                                    sampler=optuna.samplers.TPESampler(seed=seed))
        if 0.0 <= default_alpha <= search.alpha_max and 0.0 <= default_beta <= search.beta_max:
            study.enqueue_trial({"alpha": default_alpha, "beta": default_beta})
        study.optimize(objective, n_trials=search.n_trials)
        decoded = dec.decoded
    pruned = sum(t.state == optuna.trial.TrialState.PRUNED for t in study.trials)
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    best_alpha, best_beta, best_value = default_alpha, default_beta, default_value
    if complete and study.best_value < default_value:
        best_alpha = float(study.best_params["alpha"])
        best_beta = float(study.best_params["beta"])
        best_value = float(study.best_value)
    return OptimizeResult(best_alpha, best_beta, best_value, default_value, default_alpha,
                          default_beta, len(study.trials), metric, pruned, decoded)


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
