"""export: output_graph.pb / .pbmm / .tflite (int8 and fp32) from the best checkpoint."""

from __future__ import annotations

from pipeline.stages.base import Stage, not_available

STAGE = Stage(
    name="export",
    help="export .pb, .pbmm and .tflite models into models/",
    run=not_available("export", "export issue"),
    config_keys=("MODEL_LANGUAGE", "N_HIDDEN", "BEAM_WIDTH"),
    depends_on=("train", "alphabet"),
    requires=lambda cfg, paths: [paths.best_checkpoint_dir, paths.alphabet],
    produces=lambda cfg, paths: [paths.output_graph_pb, paths.output_graph_pbmm,
                                 paths.output_graph_tflite, paths.output_graph_fp32_tflite],
)
