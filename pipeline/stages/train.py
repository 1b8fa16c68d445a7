"""train: the acoustic model, with checkpoints in checkpoints/ and exact resume."""

from __future__ import annotations

from pipeline.config import Config
from pipeline.stages.base import Stage, not_available

TRAIN_KEYS = ("MODEL_LANGUAGE", "BATCH_SIZE", "EPOCHS", "LEARNING_RATE", "N_HIDDEN", "DROPOUT",
              "EARLY_STOP", "ES_STOP", "ES_MIN_DELTA", "REDUCE_LR_ON_PLATEAU", "PLATEAU_EPOCHS",
              "PLATEAU_REDUCTION", "AMP", "TRANSFER_LEARNING", "TRANSFER_CHECKPOINT",
              "DROP_SOURCE_LAYERS", "AUGMENT", "RANDOM_SEED", "FAST_TRAIN")


def _disabled(cfg: Config) -> str | None:
    return "ONLY_EXPORT=1 (re-export from the best checkpoint)" if cfg.general.only_export else None


STAGE = Stage(
    name="train",
    help="train the acoustic model (resumes from checkpoints/)",
    run=not_available("train", "training issue"),
    config_keys=TRAIN_KEYS,
    depends_on=("import", "alphabet"),
    requires=lambda cfg, paths: [paths.alphabet],
    produces=lambda cfg, paths: [paths.best_checkpoint_dir],
    enabled=_disabled,
)
