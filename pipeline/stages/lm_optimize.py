"""lm_optimize: search LM_ALPHA/LM_BETA on the dev set when LM_EVALUATE_RANGE is set.

Like the seeds' `lm_optimizer.py` (reference deepspeech-0.9.md §8): Optuna TPE over alpha in
[0, alpha_max] and beta in [0, beta_max], objective = dev WER (CER for a UTF-8 scorer). Unlike it, the
acoustic model runs once: its outputs are kept and only the beam search is repeated per trial. The
defaults (LM_ALPHA/LM_BETA) are the first trial, so the result is never worse on dev than they are.
The best values are written into `lm/kenlm.scorer` (its default alpha/beta) and
`models/lm_optimize.json`; no manual re-run is needed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pipeline.config import Config
from pipeline.corpus_csv import split_csvs
from pipeline.errors import MissingInputError
from pipeline.faults import crashpoint
from pipeline.fsutil import write_json
from pipeline.paths import Paths
from pipeline.stages.base import Stage, StageContext
from pipeline.text.alphabet import Alphabet

log = logging.getLogger(__name__)

# (cfg, paths, dev CSVs) -> utterances with `.probs` and `.transcript` (pipeline.model.inference)
OutputsFn = Callable[[Config, Paths, Sequence[Path]], Sequence[Any]]


def _checkpoint_outputs(cfg: Config, paths: Paths, csv_files: Sequence[Path]) -> Sequence[Any]:
    from pipeline.model.output_cache import cached_outputs

    return cached_outputs(cfg, paths, list(csv_files), "lm_optimize_dev")


def _subset_csvs(ctx: StageContext, dev: list[Path]) -> list[Path]:
    """The dev CSVs, or one CSV of their LM_OPTIMIZE_MAX_CLIPS-row subset (in the stage's tmp)."""
    from pipeline.corpus_csv import read_rows, write_rows
    from pipeline.lm.optimize import dev_subset

    rows = [r for f in dev for r in read_rows(f)]
    subset = dev_subset(rows, ctx.cfg.lm.lm_optimize_max_clips)
    if len(subset) == len(rows):
        return dev
    ctx.log.info("dev subset: %d of %d clips (LM_OPTIMIZE_MAX_CLIPS)", len(subset), len(rows))
    path = ctx.tmp / "dev_subset.csv"
    write_rows(path, ((str(r.wav), r.wav_filesize, r.transcript) for r in subset))
    return [path]


def run(ctx: StageContext, outputs: OutputsFn = _checkpoint_outputs) -> None:
    """`outputs` gives the acoustic model's outputs on the dev set: the best checkpoint's by default
    (tests pass synthetic ones, the alpha/beta search being the part under test)."""
    from pipeline.lm.optimize import optimize
    from pipeline.lm.scorer import read_scorer, set_scorer_defaults

    cfg, paths = ctx.cfg, ctx.paths
    search = cfg.lm.lm_evaluate_range
    assert search is not None  # the stage is disabled otherwise
    dev = split_csvs(cfg, paths, "dev")
    if not dev:
        raise MissingInputError("lm_optimize needs dev CSVs (extracted/<corpus>/<corpus>_dev.csv); "
                                "run the import stage, or unset LM_EVALUATE_RANGE")
    alphabet = Alphabet.from_file(paths.alphabet)
    info = read_scorer(paths.scorer)
    utts = outputs(cfg, paths, _subset_csvs(ctx, dev))
    pairs = [(u.probs, u.transcript) for u in utts]
    ctx.log.info("decoding %d dev utterances per trial, %d trials", len(pairs), search.n_trials)
    res = optimize(pairs, alphabet, paths.scorer, search, cfg.lm.lm_alpha, cfg.lm.lm_beta,
                   cfg.lm.beam_width, seed=cfg.general.random_seed, workers=cfg.general.workers,
                   cer=info.utf8, prune_margin=cfg.lm.lm_optimize_prune_margin)
    set_scorer_defaults(paths.scorer, res.alpha, res.beta)
    crashpoint("lm_optimize.write")  # scorer rewritten in place, result file not yet written
    write_json(paths.lm_optimize_result, {
        "alpha": res.alpha, "beta": res.beta, "metric": res.metric,
        "dev_value_before": res.default_value, "dev_value_after": res.value,
        "default_alpha": res.default_alpha, "default_beta": res.default_beta,
        "n_trials": res.n_trials, "pruned_trials": res.pruned,
        "decoded_utterances": res.decoded, "beam_width": cfg.lm.beam_width, "dev_utterances": len(pairs),
        "dev_csvs": [str(p.relative_to(paths.root)) for p in dev],
        "scorer": str(paths.scorer.relative_to(paths.root)),
    })
    ctx.log.info("dev %s %.4f -> %.4f with alpha %.4f, beta %.4f (written into %s)",
                 res.metric.upper(), res.default_value, res.value, res.alpha, res.beta, paths.scorer)


def _disabled(cfg: Config) -> str | None:
    return None if cfg.lm.lm_evaluate_range else "LM_EVALUATE_RANGE is empty"


STAGE = Stage(
    name="lm_optimize",
    help="optimize the scorer's alpha/beta on the dev set (LM_EVALUATE_RANGE)",
    run=run,
    config_keys=("LM_EVALUATE_RANGE", "LM_ALPHA", "LM_BETA", "BEAM_WIDTH", "RANDOM_SEED",
                 "LM_OPTIMIZE_MAX_CLIPS", "LM_OPTIMIZE_PRUNE_MARGIN"),
    depends_on=("train", "lm"),
    requires=lambda cfg, paths: [paths.scorer, paths.best_checkpoint_dir],
    produces=lambda cfg, paths: [paths.lm_optimize_result],
    disabled_reason=_disabled,
    version=2,  # 2: dev subset (LM_OPTIMIZE_MAX_CLIPS), trials stopped early, cached outputs
)
