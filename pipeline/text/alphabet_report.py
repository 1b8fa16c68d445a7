"""`reports/alphabet_report.json`: characters the data has and the alphabet lacks.

Two lists, side by side: `unknown_characters` (rows quarantined as `outside_alphabet`) and
`folded_characters` (letters the normalizer folded to a base letter in kept rows, ñ -> n, counted by
the import). Written by the alphabet stage, and by the import stage when the import fails
MIN_KEPT_RATIO (from the rows that were read): the report that explains the failure.
"""

from __future__ import annotations

import csv
import json
import logging
import unicodedata
from collections import Counter, defaultdict
from typing import Any

from pipeline.config import Config
from pipeline.corpus_csv import SPLITS, iter_rows
from pipeline.fsutil import write_json
from pipeline.langs import LanguagePack
from pipeline.paths import Paths
from pipeline.text.alphabet import Alphabet

log = logging.getLogger("pipeline.alphabet")
MAX_EXAMPLES = 3
UNENCODABLE_SHOWN = 20  # rows listed in the report (all are counted)


def _char_info(ch: str) -> dict[str, str]:
    return {"char": ch, "codepoint": f"U+{ord(ch):04X}", "name": unicodedata.name(ch, "?")}


def report_failed_import(cfg: Config, paths: Paths, pack: LanguagePack) -> dict[str, Any]:
    """The report after an import that failed MIN_KEPT_RATIO (`"import_failed": true`), against the
    alphabet the import used (the pack's, or the English one with ENGLISH_COMPATIBLE=1)."""
    from pipeline.langs import load_pack
    from pipeline.text.normalize import target_alphabet

    english = cfg.data.english_compatible
    source = load_pack("en") if english else pack
    return build_alphabet_report(cfg, paths, target_alphabet(pack, english),
                                 "en (ENGLISH_COMPATIBLE=1)" if english else pack.code,
                                 import_failed=True, alphabet_file=str(source.alphabet_path))


def build_alphabet_report(cfg: Config, paths: Paths, alphabet: Alphabet, source: str,
                          import_failed: bool = False, alphabet_file: str = "") -> dict[str, Any]:
    """Write the report from the corpora's CSVs, quarantine files and import reports; return it."""
    from importers.base import OUTSIDE_ALPHABET

    counts: Counter[str] = Counter()
    examples: dict[str, list[dict[str, str]]] = defaultdict(list)
    folded: dict[str, dict[str, Any]] = {}
    unencodable: list[dict[str, str]] = []  # the first UNENCODABLE_SHOWN only: a count for the rest
    unencodable_count = 0
    rows_checked = 0
    for corpus in cfg.active_corpora():
        for split in SPLITS:
            path = paths.corpus_csv(corpus, split)
            for row in iter_rows(path):
                rows_checked += 1
                if alphabet.missing(row.transcript):
                    unencodable_count += 1
                    if len(unencodable) < UNENCODABLE_SHOWN:
                        unencodable.append({"csv": path.name, "wav_filename": row.wav.name,
                                            "transcript": row.transcript})
        try:
            imp = json.loads(paths.corpus_report(corpus).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            imp = {}
        for ch, d in (imp.get("folded") or {}).items():
            f = folded.setdefault(ch, {**_char_info(ch), "to": d.get("to", ""), "count": 0,
                                       "rows": 0, "examples": []})
            f["count"] += int(d.get("count", 0))
            f["rows"] += int(d.get("rows", 0))
            for ex in d.get("examples", []):
                if len(f["examples"]) < MAX_EXAMPLES:
                    f["examples"].append({"corpus": corpus, **ex})
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
        {**_char_info(ch), "count": n, "examples": examples[ch]} for ch, n in counts.most_common()]
    folded_list = sorted(folded.values(), key=lambda d: (-d["count"], d["char"]))
    report = {
        "alphabet": alphabet_file or str(paths.alphabet), "language_pack": source,
        "labels": len(alphabet), "import_failed": import_failed, "rows_checked": rows_checked,
        "unencodable_count": unencodable_count, "unencodable_rows": unencodable,
        "unknown_characters": unknown,
        "folded_characters": folded_list,
        "no_space_label": " " not in alphabet,
    }
    write_json(paths.alphabet_report, report)
    if unknown:
        lines = [f"  {'char':<6}{'codepoint':<10}{'count':>8}  name"]
        lines += [f"  {u['char']!r:<6}{u['codepoint']:<10}{u['count']:>8}  {u['name']}"
                  for u in unknown[:30]]
        log.info("characters in the data but not in the alphabet (rows quarantined, alphabet NOT "
                 "grown; add them to the language pack if they belong to the language):\n%s",
                 "\n".join(lines))
    if folded_list:
        lines = [f"  {'char':<6}{'codepoint':<10}{'count':>8}  {'->':<6}name"]
        lines += [f"  {u['char']!r:<6}{u['codepoint']:<10}{u['count']:>8}  {u['to']!r:<6}{u['name']}"
                  for u in folded_list[:30]]
        log.warning("letters in the data but not in the alphabet, FOLDED to a base letter in kept "
                    "rows (add them to the alphabet if they belong to the language, or set "
                    "STRICT_ALPHABET=1 to quarantine such rows):\n%s", "\n".join(lines))
    return report
