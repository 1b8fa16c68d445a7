"""lm_optimize: search LM_ALPHA/LM_BETA on the dev set when LM_EVALUATE_RANGE is set."""

from __future__ import annotations

from pipeline.config import Config
from pipeline.stages.base import Stage, not_available


def _disabled(cfg: Config) -> str | None:
    return None if cfg.lm.lm_evaluate_range else "LM_EVALUATE_RANGE is empty"


STAGE = Stage(
    name="lm_optimize",
    help="optimize the scorer's alpha/beta on the dev set (LM_EVALUATE_RANGE)",
    run=not_available("lm_optimize", "language-model issue"),
    config_keys=("LM_EVALUATE_RANGE", "BEAM_WIDTH", "RANDOM_SEED"),
    depends_on=("train", "lm"),
    requires=lambda cfg, paths: [paths.scorer, paths.best_checkpoint_dir],
    produces=lambda cfg, paths: [paths.models / "lm_optimize.json"],
    enabled=_disabled,
)
