"""train: the acoustic model, with checkpoints in checkpoints/ and exact resume.

Done means `checkpoints/train_done.json` exists (written last, only after the planned epochs, an
early stop or the time budget) together with `checkpoints/best_dev/`; a killed run leaves neither
the marker nor the done file, so the next run resumes instead of skipping (the French seed's bug).
"""

from __future__ import annotations

from pipeline.config import Config
from pipeline.stages.base import Stage, StageContext

TRAIN_KEYS = ("MODEL_LANGUAGE", "BATCH_SIZE", "EPOCHS", "LEARNING_RATE", "N_HIDDEN", "DROPOUT",
              "EARLY_STOP", "ES_STOP", "ES_MIN_DELTA", "REDUCE_LR_ON_PLATEAU", "PLATEAU_EPOCHS",
              "PLATEAU_REDUCTION", "AMP", "TRANSFER_LEARNING", "TRANSFER_CHECKPOINT",
              "DROP_SOURCE_LAYERS", "AUGMENT", "RANDOM_SEED", "FAST_TRAIN", "MAX_BATCH_SECONDS",
              "TRAIN_MAX_MINUTES", "TRANSFER_KEEP_SHARED_CHARS", "AUDIO_SAMPLE_RATE")


def _disabled(cfg: Config) -> str | None:
    return "ONLY_EXPORT=1 (re-export from the best checkpoint)" if cfg.general.only_export else None


def _run(ctx: StageContext) -> None:
    from pipeline.model.train import run_training

    run_training(ctx.cfg, ctx.paths)


def _produces(cfg: Config, paths):  # noqa: ANN001, ANN202

    return [paths.best_checkpoint_dir, paths.train_done]


STAGE = Stage(
    name="train",
    help="train the acoustic model (resumes from checkpoints/)",
    run=_run,
    config_keys=TRAIN_KEYS,
    depends_on=("import", "alphabet"),
    requires=lambda cfg, paths: [paths.alphabet],
    produces=_produces,
    enabled=_disabled,
    version=2,
)
