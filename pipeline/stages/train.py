"""train: the acoustic model, with checkpoints in checkpoints/ and exact resume.

Done means `checkpoints/train_done.json` exists (written last, only after the planned epochs, an
early stop or the time budget) together with `checkpoints/best_dev/`; a killed run leaves neither
the marker nor the done file, so the next run resumes instead of skipping (the French seed's bug).
"""

from __future__ import annotations

from pathlib import Path

from pipeline.config import Config
from pipeline.model.train import TRAINING_SETTINGS
from pipeline.paths import Paths
from pipeline.stages.base import Stage, StageContext


def _disabled(cfg: Config) -> str | None:
    return "ONLY_EXPORT=1 (re-export from the best checkpoint)" if cfg.general.only_export else None


def _run(ctx: StageContext) -> None:
    from pipeline.model.train import run_training

    run_training(ctx.cfg, ctx.paths)


def _produces(cfg: Config, paths: Paths) -> list[Path]:
    return [paths.best_checkpoint_dir, paths.train_done]


STAGE = Stage(
    name="train",
    help="train the acoustic model (resumes from checkpoints/)",
    run=_run,
    config_keys=TRAINING_SETTINGS,
    depends_on=("import", "alphabet"),
    requires=lambda cfg, paths: [paths.alphabet],
    produces=_produces,
    disabled_reason=_disabled,
    version=2,
)
