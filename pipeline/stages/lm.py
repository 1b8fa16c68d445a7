"""lm: LM text -> KenLM binary -> lm/kenlm.scorer (DeepSpeech 0.9 package format)."""

from __future__ import annotations

from pipeline.stages.base import Stage, not_available

STAGE = Stage(
    name="lm",
    help="build the KenLM language model and the .scorer package",
    run=not_available("lm", "language-model issue"),
    config_keys=("MODEL_LANGUAGE", "ENGLISH_COMPATIBLE", "LM_TOP_K", "LM_ORDER", "LM_PRUNE",
                 "LM_MEMORY", "LM_ALPHA", "LM_BETA", "FAST_TRAIN"),
    depends_on=("import", "alphabet"),
    requires=lambda cfg, paths: [paths.alphabet],
    produces=lambda cfg, paths: [paths.scorer, paths.lm_report],
)
