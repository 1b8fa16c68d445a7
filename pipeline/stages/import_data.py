"""import: corpus archives -> 16 kHz mono wav + DeepSpeech CSVs per corpus, with reports."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pipeline.config import Config
from pipeline.paths import Paths
from pipeline.stages.base import Stage, not_available

SPLITS = ("train", "dev", "test")


def produces(cfg: Config, paths: Paths) -> Sequence[Path]:
    out: list[Path] = [paths.heldout_sentences]
    for corpus in cfg.active_corpora():
        out += [paths.corpus_csv(corpus, s) for s in SPLITS]
        out.append(paths.corpus_report(corpus))
    return out


def sources_identity(cfg: Config, paths: Paths) -> list[tuple[str, int, int]]:
    """Names, sizes and mtimes of what the user placed in sources/: a new archive reruns the import."""
    if not paths.sources.is_dir():
        return []
    return sorted((p.name, p.stat().st_size, int(p.stat().st_mtime)) for p in paths.sources.iterdir()
                  if p.is_file() and not p.name.startswith("."))


STAGE = Stage(
    name="import",
    help="import corpora into extracted/<corpus>/ (CSVs, wavs, reports)",
    run=not_available("import", "importers issue"),
    config_keys=("MODEL_LANGUAGE", "CORPORA", "ENGLISH_COMPATIBLE", "DUPLICATE_SENTENCE_COUNT",
                 "CV_ARCHIVE", "CV_CHECKSUM", "MIN_DURATION", "MAX_DURATION", "MIN_KEPT_RATIO",
                 "RANDOM_SEED", "FAST_TRAIN"),
    produces=produces,
    extra_fingerprint=sources_identity,
)
