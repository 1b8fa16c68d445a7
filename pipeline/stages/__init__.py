"""The ordered stage list. Each stage lives in its own module and exposes `STAGE`.

Stage modules import heavy libraries (TensorFlow, ...) inside their `run` function, never at module
import, so planning and `--dry-run` stay fast.
"""

from __future__ import annotations

from pipeline.stages import (
    alphabet,
    evaluate,
    export,
    import_data,
    lm,
    lm_optimize,
    package,
    preflight,
    train,
)
from pipeline.stages.base import Stage

STAGES: tuple[Stage, ...] = (
    preflight.STAGE,
    import_data.STAGE,
    alphabet.STAGE,
    lm.STAGE,
    train.STAGE,
    lm_optimize.STAGE,
    evaluate.STAGE,
    export.STAGE,
    package.STAGE,
)

STAGE_NAMES: tuple[str, ...] = tuple(s.name for s in STAGES)

# Settings that change no stage's outputs, so they are in no stage's `config_keys` (changing them
# never reruns a stage). Every other setting must be in the config_keys of each stage whose outputs it
# changes; tests/unit/test_settings_coverage.py checks that each setting is in exactly one of the two.
NO_OUTPUT_EFFECT: dict[str, str] = {
    "WORKERS": "parallelism only: rows are imported and utterances decoded to the same results in any "
               "number of processes",
    "KENLM_BIN": "where the KenLM tools are found, not what they build",
    "CHECKPOINT_SECS": "when mid-epoch checkpoints are saved; resume is exact, so the trained weights "
                       "are the same",
    "CHECKPOINT_STEPS": "when mid-epoch checkpoints are saved (as CHECKPOINT_SECS)",
    "MAX_TO_KEEP": "how many intermediate checkpoints checkpoints/train/ keeps; best_dev/ is unaffected",
    "LIVE_TRANSCRIPTS": "dev transcripts printed to the log after each epoch; nothing is written",
    "NONFINITE_LIMIT": "whether a diverging run stops with an error; a run that finishes skipped the "
                       "same batches under any limit",
    "LSTM_IMPL": "which kernel computes the same LSTM (scan, BlockLSTM, cuDNN): variables, checkpoints "
                 "and exports are the same, so a run moves between CPU and GPU without retraining",
    "OOM_AUTO_BATCH": "whether a batch that does not fit the GPU stops the run or is lowered (logged); "
                      "a run that fits is unchanged",
}
