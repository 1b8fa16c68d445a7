"""test: WER/CER on every test set, greedy and with the scorer; reports."""

from __future__ import annotations

from pipeline.stages.base import Stage, not_available

STAGE = Stage(
    name="test",
    help="evaluate on the test sets; write models/test_results.json and reports/",
    run=not_available("test", "training issue"),
    config_keys=("BEAM_WIDTH", "LM_ALPHA", "LM_BETA", "BATCH_SIZE"),
    depends_on=("train", "lm", "lm_optimize"),
    requires=lambda cfg, paths: [paths.best_checkpoint_dir],
    produces=lambda cfg, paths: [paths.test_results],
)
