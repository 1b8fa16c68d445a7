"""package: release archives in the data-dir root (seed names) and the model card."""

from __future__ import annotations

from pipeline.config import Config
from pipeline.langs import load_pack
from pipeline.paths import Paths
from pipeline.stages.base import Stage, not_available


def produces(cfg: Config, paths: Paths) -> list:
    pack = load_pack(cfg.general.model_language)
    lang = pack.code
    return [paths.release_zip(pack.export_zip_name), paths.model_card,
            *(paths.package_archive(k, lang) for k in ("model_tensorflow", "model_tflite", "checkpoint"))]


STAGE = Stage(
    name="package",
    help="write <ll>-<ll>.zip, model_*.tar.xz, checkpoint_<ll>.tar.xz and the model card",
    run=not_available("package", "export issue"),
    config_keys=("MODEL_LANGUAGE", "EXPORT_AUTHOR", "EXPORT_MODEL_NAME", "EXPORT_MODEL_VERSION",
                 "EXPORT_LICENSE", "EXPORT_CONTACT"),
    depends_on=("export", "test", "lm"),
    requires=lambda cfg, paths: [paths.output_graph_tflite, paths.scorer, paths.alphabet],
    produces=produces,
)
