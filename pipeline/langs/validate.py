"""Language-pack validation: every problem of a pack as one line naming its file and line.

Run when a pack is loaded, i.e. before any stage (the configuration loads the pack). Checked:
unknown keys, tables and `[defaults]` variables (with a did-you-mean), `num2words_lang` not
supported by num2words, the alphabet (no space label, an editor-trimmed space line, duplicate
labels, labels the normalizer can never produce), value types of the keys the pipeline reads.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

# Known keys, by table. `corpus.<key>` tables are checked against the importer registry.
TOP_KEYS = ("name", "export_zip_name", "corpora", "lm_text_urls", "lm_text_files", "defaults",
            "metadata", "corpus", "normalizer")
METADATA_KEYS = ("author", "model_name", "license", "language_tag", "description")
NORMALIZER_KEYS = ("symbols", "num2words_lang", "decimal_separator", "decimal_word",
                   "ordinal_suffixes", "replace", "trailing_apostrophe", "in_word")
_HEADER = re.compile(r"^\s*\[+\s*([^\]]+?)\s*\]+\s*(?:#.*)?$")
_KEY = re.compile(r"^\s*([A-Za-z0-9_\-\"'.]+?)\s*=")


def _hint(word: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(known), n=1)
    return f" (did you mean {close[0]}?)" if close else ""


class _Lines:
    """Line numbers of tables and keys in a TOML text (tomllib gives none)."""

    def __init__(self, text: str) -> None:
        self.tables: dict[str, int] = {}
        self.keys: dict[tuple[str, str], int] = {}
        table = ""
        for lineno, line in enumerate(text.splitlines(), 1):
            m = _HEADER.match(line)
            if m:
                table = m.group(1).replace('"', "").replace(" ", "")
                self.tables.setdefault(table, lineno)
                continue
            k = _KEY.match(line)
            if k:
                self.keys.setdefault((table, k.group(1).strip("\"'")), lineno)

    def of(self, table: str, key: str | None = None) -> int:
        if key is None:
            return self.tables.get(table, 1)
        if (table, key) in self.keys:
            return self.keys[(table, key)]
        # inline tables (`corpus = { ... }`) or dotted keys: fall back to the table's line
        return self.tables.get(table, 1)


def defaults_key_line(pack_file: Path, key: str) -> int:
    """Line of `key` in the [defaults] table of `pack_file`."""
    return _Lines(pack_file.read_text(encoding="utf-8")).of("defaults", key)


def check_pack_toml(pack_file: Path, text: str, data: dict[str, Any]) -> list[str]:
    """Problems of pack.toml, one line each (`file:line: what; how to fix`)."""
    from importers import REGISTRY

    importer_keys = tuple(REGISTRY)

    lines = _Lines(text)
    problems: list[str] = []

    def at(table: str, key: str | None = None) -> str:
        return f"{pack_file}:{lines.of(table, key)}"

    for key in data:
        if key not in TOP_KEYS:
            where = at(key) if key in lines.tables else at("", key)
            problems.append(f"{where}: unknown key {key!r}{_hint(key, TOP_KEYS)}")
    if "name" not in data:
        problems.append(f"{pack_file}:1: missing key 'name' (the language's English name, e.g. "
                        f'name = "Breton")')
    for key in ("corpora", "lm_text_urls", "lm_text_files"):
        if key in data and not (isinstance(data[key], list)
                                and all(isinstance(v, str) for v in data[key])):
            problems.append(f"{at('', key)}: {key} must be a list of strings")
    corpora = data.get("corpora", [])
    if isinstance(corpora, list):
        for c in corpora:
            if isinstance(c, str) and c not in importer_keys:
                problems.append(f"{at('', 'corpora')}: corpora: unknown corpus {c!r}"
                                f"{_hint(c, importer_keys)}; known: {', '.join(importer_keys)}")
    for table, known in (("metadata", METADATA_KEYS), ("normalizer", NORMALIZER_KEYS)):
        section = data.get(table, {})
        if not isinstance(section, dict):
            problems.append(f"{at('', table)}: {table} must be a table ([{table}])")
            continue
        for key in section:
            if key not in known:
                problems.append(f"{at(table, key)}: unknown key {key!r} in [{table}]"
                                f"{_hint(key, known)}; known: {', '.join(known)}")
    # [defaults] names are checked against the settings by `pipeline.config.load_config`
    # (`defaults_key_line` gives it the line), which loads every pack before any stage runs.
    if not isinstance(data.get("defaults", {}), dict):
        problems.append(f"{at('', 'defaults')}: defaults must be a table ([defaults])")
    corpus = data.get("corpus", {})
    if isinstance(corpus, dict):
        for key in corpus:
            if key not in importer_keys:
                problems.append(f"{at('corpus.' + key)}: unknown table [corpus.{key}]"
                                f"{_hint(key, importer_keys)}; known: {', '.join(importer_keys)}")
    norm = data.get("normalizer", {})
    if isinstance(norm, dict):
        problems += _check_normalizer(norm, lambda k: at("normalizer", k))
    return problems


def _check_normalizer(norm: dict[str, Any], at: Any) -> list[str]:
    problems: list[str] = []
    lang = norm.get("num2words_lang")
    if lang is not None:
        from num2words import CONVERTER_CLASSES

        if str(lang) and str(lang) not in CONVERTER_CLASSES:
            problems.append(
                f"{at('num2words_lang')}: num2words_lang = {lang!r} is not a language num2words "
                f"supports{_hint(str(lang), CONVERTER_CLASSES)}; remove the line (transcripts with "
                f"digits are then quarantined as invalid_transcript) or spell numbers in `replace`")
    for key in ("symbols", "replace"):
        if key in norm and not isinstance(norm[key], dict):
            problems.append(f"{at(key)}: [normalizer] {key} must be a table, e.g. "
                            f'{key} = {{ "%" = "percent" }}')
    for key in ("ordinal_suffixes", "in_word"):
        if key in norm and not (isinstance(norm[key], list)
                                and all(isinstance(v, str) for v in norm[key])):
            problems.append(f"{at(key)}: [normalizer] {key} must be a list of strings")
    for ch in norm.get("in_word", []) if isinstance(norm.get("in_word"), list) else []:
        if isinstance(ch, str) and len(ch) != 1:
            problems.append(f"{at('in_word')}: [normalizer] in_word entry {ch!r} must be one "
                            f"character")
    if "decimal_separator" in norm and str(norm["decimal_separator"]) not in (",", "."):
        problems.append(f"{at('decimal_separator')}: [normalizer] decimal_separator must be \",\" "
                        f"or \".\"")
    return problems


def check_alphabet(path: Path, normalizer: dict[str, Any]) -> list[str]:
    """Problems of alphabet.txt, one line each, with the line number."""
    from pipeline.text.normalize import unreachable_label

    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        return [f"{path}: not UTF-8 ({exc.reason}); save it as UTF-8"]
    problems: list[str] = []
    seen: dict[str, int] = {}
    empty_lines: list[int] = []
    labels = 0
    for lineno, raw in enumerate(text.splitlines(), 1):
        if raw == "\\#":
            label = "#"
        elif raw == "":
            empty_lines.append(lineno)
            continue
        elif raw.startswith("#"):
            continue
        elif len(raw) != 1:
            hint = (" (trailing whitespace?)" if len(raw.strip()) == 1 else "")
            problems.append(f"{path}:{lineno}: line {raw!r} must hold exactly one character"
                            f"{hint} (use '\\#' for '#')")
            continue
        else:
            label = raw
        labels += 1
        if label in seen:
            problems.append(f"{path}:{lineno}: label {label!r} appears twice (first on line "
                            f"{seen[label]}); remove one")
            continue
        seen[label] = lineno
        why = unreachable_label(label, normalizer)
        if why:
            problems.append(f"{path}:{lineno}: label {label!r} can never appear in a normalized "
                            f"transcript ({why}); remove the line")
    if labels == 0:
        problems.append(f"{path}: the alphabet has no labels")
    elif " " not in seen:
        if empty_lines:
            problems.append(f"{path}:{empty_lines[0]}: empty line where the space label should be "
                            f"(an editor trimmed its trailing whitespace?); the space label is a "
                            f"line holding exactly one space")
        else:
            problems.append(f"{path}: no space label; add a line holding exactly one space")
    return problems
