"""lm: LM text -> KenLM binary -> lm/kenlm.scorer (DeepSpeech 0.9 package format).

Text = train transcripts of every active corpus + the language pack's `lm_text_urls` and
`lm_text_files` + the user's own text files in `sources/lm/` (`*.txt`, `*.gz`, `*.xz`; all normalized
like the labels), minus every dev/test sentence (`extracted/heldout_sentences.txt`). FAST_TRAIN caps the
vocabulary at 500 words (the Italian seed's smoke-run LM). Outputs: `lm/lm.binary`,
`lm/vocab-<top_k>.txt`, `lm/kenlm.scorer`, `lm/lm_report.json`.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.config import Config
from pipeline.fsutil import write_json
from pipeline.paths import Paths
from pipeline.stages.base import Stage, StageContext, combine_extras, pack_parts


def vocab_path(cfg: Config, paths: Paths) -> Path:
    return paths.vocab(cfg.lm.lm_top_k)


def run(ctx: StageContext) -> None:
    from pipeline.lm.build import build_language_model

    report = build_language_model(ctx.cfg, ctx.paths, ctx.pack, ctx.tmp)
    write_json(ctx.paths.lm_report, report)
    ctx.log.info("LM: %d lines, %d words, vocabulary %d, dev/test token coverage %.1f%%, scorer %.1f MB",
                 report["text"]["lines"], report["text"]["words"], report["vocabulary"]["size"],
                 100 * float(report["heldout_coverage"]["token_coverage"]),
                 report["scorer"]["bytes"] / 1e6)


def _local_text_identity(cfg: Config, paths: Paths) -> dict[str, list[tuple[str, int, int]]]:
    from pipeline.lm.build import local_text_files

    return {"sources/lm": [(p.name, p.stat().st_size, int(p.stat().st_mtime))
                           for p in local_text_files(paths.lm_text_dir)]}


STAGE = Stage(
    name="lm",
    help="build the KenLM language model and the .scorer package",
    run=run,
    config_keys=("MODEL_LANGUAGE", "ENGLISH_COMPATIBLE", "LM_TOP_K", "LM_ORDER", "LM_PRUNE",
                 "LM_MEMORY", "LM_ALPHA", "LM_BETA", "FAST_TRAIN", "STRICT_ALPHABET",
                 "BYTES_OUTPUT_MODE"),
    depends_on=("import", "alphabet"),
    requires=lambda cfg, paths: [paths.alphabet],
    produces=lambda cfg, paths: [paths.scorer, paths.lm_report, paths.lm_binary,
                                 vocab_path(cfg, paths)],
    extra_fingerprint=combine_extras(pack=pack_parts("normalizer", "lm_text"),
                                     local=_local_text_identity),
)
