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

