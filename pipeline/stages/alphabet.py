"""alphabet: models/alphabet.txt from the language pack, with a report of unknown characters.

The alphabet is never grown from the data: characters found in the corpora but missing from the
alphabet (quarantined as `outside_alphabet` by the import) are listed with counts and example rows
in `reports/alphabet_report.json` and in the log, so a maintainer can decide to add them to the
language pack (`pipeline/langs/<lang>/alphabet.txt`) or to a normalizer rule.
"""

from __future__ import annotations

import csv
import logging
import unicodedata
from collections import Counter, defaultdict
from typing import Any

from pipeline.corpus_csv import SPLITS, read_rows
from pipeline.errors import DataQualityError
from pipeline.faults import crashpoint
from pipeline.stages.base import Stage, StageContext

log = logging.getLogger(__name__)
MAX_EXAMPLES = 3


def run(ctx: StageContext) -> None:
    from importers.base import OUTSIDE_ALPHABET
    from pipeline.fsutil import write_json
    from pipeline.text.normalize import target_alphabet

    cfg, paths = ctx.cfg, ctx.paths
    english = cfg.data.english_compatible
    alphabet = target_alphabet(ctx.pack, english)
    source = "en (ENGLISH_COMPATIBLE=1)" if english else ctx.pack.code
    alphabet.write(paths.alphabet, header=[
        f"ds-pipeline alphabet, language pack {source}: {len(alphabet)} labels + CTC blank.",
        "One label per line; the line holding one space is the space label; \\# is '#'."])
    crashpoint("alphabet.write")

    counts: Counter[str] = Counter()
    examples: dict[str, list[dict[str, str]]] = defaultdict(list)
    unencodable: list[dict[str, str]] = []
    rows_checked = 0
    for corpus in cfg.active_corpora():
        for split in SPLITS:
            path = paths.corpus_csv(corpus, split)
            for row in read_rows(path):
                rows_checked += 1
                if alphabet.missing(row.transcript):
                    unencodable.append({"csv": path.name, "wav_filename": row.wav.name,
                                        "transcript": row.transcript})
        qpath = paths.corpus_quarantine(corpus)
        if not qpath.is_file():
            continue
        with open(qpath, encoding="utf-8", newline="") as fh:
            for qrow in csv.DictReader(fh):
                if qrow["reason"] != OUTSIDE_ALPHABET:
                    continue
                text = qrow["normalized"] or qrow["transcript"]
                for ch in alphabet.missing(text):
                    counts[ch] += text.count(ch)
                    if len(examples[ch]) < MAX_EXAMPLES:
                        examples[ch].append({"corpus": corpus, "source": qrow["source"],
                                             "transcript": qrow["transcript"]})
    unknown: list[dict[str, Any]] = [
        {"char": ch, "codepoint": f"U+{ord(ch):04X}", "name": unicodedata.name(ch, "?"),
         "count": n, "examples": examples[ch]} for ch, n in counts.most_common()]
    write_json(paths.alphabet_report, {
        "alphabet": str(paths.alphabet), "language_pack": source, "labels": len(alphabet),
        "rows_checked": rows_checked, "unencodable_rows": unencodable[:20],
        "unknown_characters": unknown})
    log.info("alphabet: %d labels -> %s; %d CSV rows checked", len(alphabet), paths.alphabet,
             rows_checked)
    if unknown:
        lines = [f"  {'char':<6}{'codepoint':<10}{'count':>8}  name"]
        lines += [f"  {u['char']!r:<6}{u['codepoint']:<10}{u['count']:>8}  {u['name']}"
                  for u in unknown[:30]]
        log.info("characters in the data but not in the alphabet (rows quarantined, alphabet NOT "
                 "grown; add them to the language pack if they belong to the language):\n%s",
                 "\n".join(lines))
    if unencodable:
        raise DataQualityError(
            f"{len(unencodable)} transcripts in the corpus CSVs cannot be encoded with {paths.alphabet} "
            f"(first: {unencodable[0]}); rerun the import stage (--force import) with the same "
            f"ENGLISH_COMPATIBLE/MODEL_LANGUAGE")


STAGE = Stage(
    name="alphabet",
    help="write models/alphabet.txt and report characters outside it",
    run=run,
    config_keys=("MODEL_LANGUAGE", "ENGLISH_COMPATIBLE"),
    depends_on=("import",),
    produces=lambda cfg, paths: [paths.alphabet, paths.alphabet_report],
)
