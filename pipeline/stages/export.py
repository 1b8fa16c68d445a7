"""export: output_graph.pb / .pbmm / .tflite (int8 and fp32) from the best checkpoint.

After writing, `pipeline.export.parity` transcribes a few dev clips with every artifact and compares
them with the checkpoint's own forward pass; the report goes to models/export_parity.json.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import numpy as np

from pipeline.config import Config
from pipeline.corpus_csv import split_csvs
from pipeline.errors import DataQualityError, MissingInputError
from pipeline.fsutil import write_json
from pipeline.langs import load_pack
from pipeline.paths import Paths
from pipeline.stages.base import Stage, StageContext, combine_extras, pack_parts
from pipeline.text.alphabet import Alphabet

log = logging.getLogger(__name__)


def _checkpoint_identity(cfg: Config, paths: Paths) -> list[tuple[str, int, int]]:
    d = paths.best_checkpoint_dir
    if not d.is_dir():
        return []
    return sorted((p.name, p.stat().st_size, int(p.stat().st_mtime)) for p in d.iterdir()
                  if p.is_file())


def run_export(cfg: Config, paths: Paths, weights: dict[str, np.ndarray]) -> dict[str, Any]:
    """Write the four model files and the parity report from a DeepSpeech-layout weights dict."""
    from pipeline.export.graph import export_models
    from pipeline.export.parity import check_parity, dev_clips, parity_failures

    if not paths.alphabet.is_file():
        raise MissingInputError(f"{paths.alphabet} missing: run the alphabet stage first")
    alphabet = Alphabet.from_file(paths.alphabet)
    pack = load_pack(cfg.general.model_language, paths.root)
    language = pack.metadata.get("language_tag", pack.code)
    n_hidden = int(weights["layer_1/bias"].shape[0])  # the checkpoint's width is what exports
    if n_hidden != cfg.train.n_hidden:
        log.warning("best checkpoint has N_HIDDEN=%d, config says %d: exporting the checkpoint's",
                    n_hidden, cfg.train.n_hidden)
    res = export_models(weights, alphabet, paths.models, n_hidden, cfg.lm.beam_width, language,
                        sample_rate=cfg.data.audio_sample_rate)
    artifacts = {"pb": res.pb, "pbmm": res.pbmm, "tflite_fp32": res.tflite_fp32,
                 "tflite": res.tflite}
    report: dict[str, Any] = {"sizes": {k: p.stat().st_size for k, p in artifacts.items()},
                              "sha256": {k: hashlib.sha256(p.read_bytes()).hexdigest()
                                         for k, p in artifacts.items()},
                              "n_hidden": n_hidden, "language": language}
    clips = dev_clips(split_csvs(cfg, paths, "dev"), cfg.export.export_parity_clips)
    if clips:
        report["parity"] = check_parity(weights, artifacts, clips)
        bad = parity_failures(report["parity"])
        write_json(paths.export_parity, report)
        if bad:
            raise DataQualityError(f"exported {', '.join(bad)} transcribe the dev clips differently "
                                   f"from the checkpoint; see {paths.export_parity}")
        p = report["parity"]
        log.info("export parity on %d dev clips: checkpoint WER %.3f, int8 WER delta %+.3f",
                 len(clips), p["checkpoint"]["wer"], p.get("int8_wer_delta", 0.0))
    else:
        log.warning("no dev clips found: export parity check skipped")
        write_json(paths.export_parity, report)
    return report


def run(ctx: StageContext) -> None:
    from pipeline.model.network import load_export_weights

    if not ctx.paths.best_checkpoint_dir.is_dir():
        raise MissingInputError(f"no best checkpoint in {ctx.paths.best_checkpoint_dir}: train first "
                                "(or point ONLY_EXPORT=1 at a data dir that has one)")
    weights = load_export_weights(ctx.paths.best_checkpoint_dir)
    run_export(ctx.cfg, ctx.paths, weights)


STAGE = Stage(
    name="export",
    help="export .pb, .pbmm and .tflite models into models/",
    run=run,
    config_keys=("MODEL_LANGUAGE", "N_HIDDEN", "BEAM_WIDTH", "BYTES_OUTPUT_MODE", "ONLY_EXPORT", "EXPORT_PARITY_CLIPS",
                 "AUDIO_SAMPLE_RATE"),
    depends_on=("train", "alphabet"),
    requires=lambda cfg, paths: [paths.best_checkpoint_dir, paths.alphabet],
    produces=lambda cfg, paths: [paths.output_graph_pb, paths.output_graph_pbmm,
                                 paths.output_graph_tflite, paths.output_graph_fp32_tflite,
                                 paths.export_parity],
    # Re-export whenever the best checkpoint changes (ONLY_EXPORT=1 after more training).
    extra_fingerprint=combine_extras(checkpoint=_checkpoint_identity, pack=pack_parts("language_tag")),
)
