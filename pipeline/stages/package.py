"""package: release archives in the data-dir root (seed names) and the model card.

- `<ll>-<ll>.zip`: output_graph.tflite, kenlm.scorer, alphabet.txt, the model card
- `model_tensorflow_<ll>.tar.xz`: output_graph.pbmm, alphabet.txt, kenlm.scorer
- `model_tflite_<ll>.tar.xz`: output_graph.tflite, alphabet.txt, kenlm.scorer
- `checkpoint_<ll>.tar.xz`: the best-dev checkpoint directory
"""

from __future__ import annotations

from pipeline.config import Config
from pipeline.langs import load_pack
from pipeline.paths import Paths
from pipeline.stages.base import Stage, StageContext, pack_parts


def produces(cfg: Config, paths: Paths) -> list:
    pack = load_pack(cfg.general.model_language, paths.root)
    lang = pack.code
    return [paths.release_zip(pack.export_zip_name), paths.model_card,
            *(paths.package_archive(k, lang) for k in ("model_tensorflow", "model_tflite", "checkpoint"))]


def run(ctx: StageContext) -> None:
    from pipeline.export.package import write_release

    write_release(ctx.cfg, ctx.paths)


STAGE = Stage(
    name="package",
    help="write <ll>-<ll>.zip, model_*.tar.xz, checkpoint_<ll>.tar.xz and the model card",
    run=run,
    config_keys=("MODEL_LANGUAGE", "EXPORT_AUTHOR", "EXPORT_MODEL_NAME", "EXPORT_MODEL_VERSION",
                 "EXPORT_LICENSE", "EXPORT_CONTACT"),
    depends_on=("export", "test", "lm"),
    requires=lambda cfg, paths: [paths.output_graph_tflite, paths.scorer, paths.alphabet],
    produces=produces,
    extra_fingerprint=pack_parts("export"),
)
