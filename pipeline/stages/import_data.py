"""import: corpus archives -> 16 kHz mono wav + DeepSpeech CSVs per corpus, with reports.

For each corpus of `cfg.active_corpora()`: the importer finds or downloads its archive in
`sources/`, extracts it safely into `extracted/<corpus>/source/`, lists its rows; the shared engine
(`importers.engine`) checks and converts every row in a worker pool, quarantines bad rows with a
reason, makes deterministic speaker/sentence-disjoint splits and writes
`extracted/<corpus>/<corpus>_{train,dev,test}.csv`, `<corpus>_quarantine.csv` and
`import_report.json`. Finally `extracted/heldout_sentences.txt` lists every dev/test transcript.
The stage fails only when a corpus keeps less than MIN_KEPT_RATIO of its rows (rows the split policy
drops count) or has an empty train split. SPLIT_POLICY picks what dev/test must not share with train;
the default falls back to a weaker policy when it would drop too much (the report and log say so).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pipeline.config import Config
from pipeline.corpus_csv import iter_rows, split_csvs
from pipeline.errors import DataQualityError
from pipeline.fsutil import write_text
from pipeline.paths import Paths
from pipeline.stages.base import Stage, StageContext, combine_extras, pack_parts

SPLITS = ("train", "dev", "test")
log = logging.getLogger(__name__)


def produces(cfg: Config, paths: Paths) -> Sequence[Path]:
    out: list[Path] = [paths.heldout_sentences]
    for corpus in cfg.active_corpora():
        out += [paths.corpus_csv(corpus, s) for s in SPLITS]
        out.append(paths.corpus_report(corpus))
        out.append(paths.corpus_quarantine(corpus))
    return out


def sources_identity(cfg: Config, paths: Paths) -> list[tuple[str, int, int]]:
    """Names, sizes and mtimes of what the user placed in sources/: a new archive reruns the import."""
    if not paths.sources.is_dir():
        return []
    files = [p for p in paths.sources.iterdir() if p.is_file()]
    # VoxForge comes as a folder of session archives: adding one reruns the import too
    if (paths.sources / "voxforge").is_dir():
        files += [p for p in (paths.sources / "voxforge").iterdir() if p.is_file()]
    return sorted((p.relative_to(paths.sources).as_posix(), p.stat().st_size, int(p.stat().st_mtime))
                  for p in files if not p.name.startswith(".") and not p.name.endswith(".part"))


def write_heldout(cfg: Config, paths: Paths) -> tuple[int, int]:
    """Every dev/test transcript of the active corpora that is not also a train transcript, sorted
    and unique (the LM excludes them). Returns (held out, also in train so left in the LM text):
    the second is 0 unless splits are used as given and overlap."""
    sentences: set[str] = set()
    for split in ("dev", "test"):
        for csv_path in split_csvs(cfg, paths, split):
            sentences.update(r.transcript for r in iter_rows(csv_path))
    # the train rows stream past: memory holds the dev/test sentences, never the train set's
    in_train: set[str] = set()
    for csv_path in split_csvs(cfg, paths, "train"):
        in_train.update(r.transcript for r in iter_rows(csv_path) if r.transcript in sentences)
    heldout = sentences - in_train
    write_text(paths.heldout_sentences, "".join(f"{s}\n" for s in sorted(heldout)))
    return len(heldout), len(in_train)


def empty_train_message(key: str, report: Any, cfg: Config, paths: Paths) -> str:
    """The error for a corpus whose train split is empty, naming what to change."""
    sizes = ", ".join(f"{sp} {int(report.splits.get(sp, {}).get('rows', 0))}" for sp in SPLITS)
    if report.rows_kept == 0:
        fix = f"no row was kept: fix the rows listed in {paths.corpus_quarantine(key)}"
    elif report.split_method.get("method") == "official":
        fix = "the corpus's own split has no train rows: give it training rows"
    else:
        fix = (f"SPLIT_POLICY={cfg.data.split_policy} leaves nothing for train: add clips (more "
               f"speakers or sentences), or set SPLIT_POLICY=speaker, sentence or none")
    return f"{key}: the train split is empty ({sizes} rows); {fix}"


def run(ctx: StageContext) -> None:
    from importers import get_importer
    from importers.base import UNCOUNTED_REASONS, ImportContext
    from importers.engine import import_rows
    from pipeline.download import archive_identity

    cfg, paths = ctx.cfg, ctx.paths
    ictx = ImportContext(cfg, paths, ctx.pack)
    corpora = cfg.active_corpora()
    modules = {key: get_importer(key) for key in corpora}  # unknown keys fail before any work
    paths.sources.mkdir(parents=True, exist_ok=True)
    failures: list[str] = []
    empty_train: list[str] = []
    for key, mod in modules.items():
        log.info("importing %s (%s)", key, mod.TITLE)
        source = mod.download(ictx)
        root = mod.extract(source, ictx)
        rows = mod.list_rows(root, ictx)
        report = import_rows(key, rows, ictx, source.name, archive_identity(source))
        log.info("%s", report.table())
        for note in report.notes:
            log.info("%s: %s", key, note)
        no_train = not report.splits.get("train", {}).get("rows")
        if no_train and (report.rows_kept or report.kept_ratio >= cfg.data.min_kept_ratio):
            empty_train.append(empty_train_message(key, report, cfg, paths))
        elif report.kept_ratio < cfg.data.min_kept_ratio:
            top = sorted(((n, r) for r, n in report.reasons.items() if r not in UNCOUNTED_REASONS),
                         reverse=True)[:3]
            # one example of the top reason, so the message itself says what to fix
            ex = report.examples.get(top[0][1], [{}])[0] if top else {}
            example = f" (e.g. {ex.get('source')}: {ex.get('detail')})" if ex.get("detail") else ""
            failures.append(
                f"{key} kept {report.rows_kept} of {report.rows_considered} rows "
                f"({100 * report.kept_ratio:.1f}% < MIN_KEPT_RATIO={cfg.data.min_kept_ratio:g}); "
                f"top reasons: {', '.join(f'{r} {n}' for n, r in top) or 'none'}{example}; see "
                f"{paths.corpus_quarantine(key)}")
    n, in_train = write_heldout(cfg, paths)
    log.info("held-out sentences (dev+test): %d -> %s", n, paths.heldout_sentences)
    if in_train:
        log.warning("%d dev/test sentence(s) are also train sentences: the LM text keeps them (only "
                    "dev/test sentences not in train are kept out of the LM)", in_train)
    if empty_train:
        raise DataQualityError("import left nothing to train on:\n  - " + "\n  - ".join(empty_train))
    if failures:
        from pipeline.text.alphabet_report import report_failed_import

        # The one report that explains most failures (characters missing from the alphabet): the
        # alphabet stage will not run, so it is written here from the rows that were read.
        report_failed_import(cfg, paths, ctx.pack)
        raise DataQualityError("import rejected too much data:\n  - " + "\n  - ".join(failures) +
                               f"\nFix the input, or lower MIN_KEPT_RATIO if this is expected; "
                               f"characters missing from the alphabet are listed in "
                               f"{paths.alphabet_report}.")


STAGE = Stage(
    name="import",
    help="import corpora into extracted/<corpus>/ (CSVs, wavs, reports)",
    run=run,
    config_keys=("MODEL_LANGUAGE", "CORPORA", "SPLIT_POLICY", "ENGLISH_COMPATIBLE", "DUPLICATE_SENTENCE_COUNT",
                 "CV_ARCHIVE", "CV_CHECKSUM", "MIN_DURATION", "MAX_DURATION", "MIN_KEPT_RATIO",
                 "RANDOM_SEED", "FAST_TRAIN", "CSV_LIST", "STRICT_ALPHABET", "TRAIN_FILES", "DEV_FILES",
                 "TEST_FILES", "AUDIO_SAMPLE_RATE", "AUDIO_NORMALIZE", "BYTES_OUTPUT_MODE"),
    produces=produces,
    extra_fingerprint=combine_extras(sources=sources_identity,
                                     pack=pack_parts("alphabet", "normalizer", "corpora")),
)
