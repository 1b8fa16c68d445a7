"""`ds-pipeline new-language LL --from-cv ARCHIVE`: a language pack from a Common Voice archive.

Reads only the archive's TSVs (validated/train/dev/test, streamed out of the tar; no audio is
converted) and writes, in `<data-dir>/langs/LL/` by default:

- `alphabet.txt`: every character of the validated transcripts after normalization, with counts in
  its header; rare ones are kept and listed for review (never dropped silently);
- `pack.toml`: commented; the language's name, the Common Voice corpus pointing at the archive,
  normalizer settings valid for LL (number expansion only when num2words supports LL, else rows with
  digits are quarantined, and the file says so), punctuation found inside words (Catalan `l·l`)
  kept by `in_word`, the LM text file, model-card metadata to fill in;
- `lm_text.txt.gz`: the validated sentences minus the dev/test sentences (raw; the LM stage
  normalizes it like the labels and removes the import's own dev/test sentences too);
- `scaffold_report.md`: what to check before the first import.
"""

from __future__ import annotations

import gzip
import json
import re
import tarfile
import tempfile
import time
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from importers.common_voice import language_folder
from pipeline.errors import MissingInputError, PipelineError, UsageError
from pipeline.fsutil import atomic_write, write_text

TSV_NAMES = ("validated.tsv", "train.tsv", "dev.tsv", "test.tsv")
RARE_COUNT = 5            # characters seen fewer times are listed for review
IN_WORD_SHARE = 0.9       # punctuation found between two letters this often is kept inside words
IN_WORD_MIN = 3
EXAMPLES = 3
# English names of Common Voice languages the built-in packs do not cover (the name is only used in
# messages and the model card; `--name` overrides it, and the report says when it is a guess).
LANGUAGE_NAMES = {
    "ab": "Abkhaz", "ar": "Arabic", "ast": "Asturian", "az": "Azerbaijani", "ba": "Bashkir",
    "be": "Belarusian", "bg": "Bulgarian", "bn": "Bengali", "br": "Breton", "ca": "Catalan",
    "ckb": "Central Kurdish", "cs": "Czech", "cv": "Chuvash", "cy": "Welsh", "da": "Danish",
    "de": "German", "dv": "Dhivehi", "el": "Greek", "eo": "Esperanto", "es": "Spanish",
    "et": "Estonian", "eu": "Basque", "fa": "Persian", "fi": "Finnish", "fy-NL": "Frisian",
    "ga-IE": "Irish", "gl": "Galician", "gn": "Guarani", "hu": "Hungarian", "hy-AM": "Armenian",
    "ia": "Interlingua", "id": "Indonesian", "ka": "Georgian", "kab": "Kabyle", "kk": "Kazakh",
    "ky": "Kyrgyz", "lb": "Luxembourgish", "lg": "Luganda", "lt": "Lithuanian", "lv": "Latvian",
    "mn": "Mongolian", "mt": "Maltese", "nl": "Dutch", "oc": "Occitan", "pl": "Polish",
    "pt": "Portuguese", "rm-sursilv": "Romansh Sursilvan", "ro": "Romanian", "ru": "Russian",
    "rw": "Kinyarwanda", "sc": "Sardinian", "sk": "Slovak", "sl": "Slovenian", "sq": "Albanian",
    "sr": "Serbian", "sv-SE": "Swedish", "sw": "Swahili", "ta": "Tamil", "tr": "Turkish",
    "tt": "Tatar", "ug": "Uyghur", "uk": "Ukrainian", "uz": "Uzbek", "vi": "Vietnamese",
    "yue": "Cantonese", "zh-CN": "Chinese (China)",
}
_CODE_RE = re.compile(r"^[A-Za-z]{2,3}(?:-[A-Za-z0-9]+)*$")


@dataclass
class ScaffoldResult:
    directory: Path
    report: str
    report_path: Path
    alphabet: list[str]
    counts: dict[str, int] = field(default_factory=dict)


def _read_tsvs(archive: Path, code: str, tmp: Path) -> Path:
    """Stream the archive and copy the TSVs of language `code` into `tmp`; return that folder."""
    from pipeline.download import _open_decompressed

    if not archive.is_file():
        raise MissingInputError(f"--from-cv {archive}: no such file")
    found: dict[str, dict[str, bytes]] = {}
    try:
        with _open_decompressed(archive) as raw, tarfile.open(fileobj=raw, mode="r|") as tf:
            for m in tf:
                base = m.name.rstrip("/").rsplit("/", 1)[-1]
                if not m.isfile() or base not in TSV_NAMES:
                    continue
                parent = m.name.rstrip("/").rsplit("/", 1)[0] if "/" in m.name else ""
                fh = tf.extractfile(m)
                if fh is not None:
                    found.setdefault(parent, {})[base] = fh.read()
                if parent.rsplit("/", 1)[-1] == code and len(found[parent]) == len(TSV_NAMES):
                    break  # all four TSVs of the language: the clips after them are not needed
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise MissingInputError(f"--from-cv {archive}: not a readable .tar(.gz) Common Voice "
                                f"archive ({exc})") from None
    folder = language_folder([d for d in found if "validated.tsv" in found[d]], code,
                             f"--from-cv {archive}")
    for name, data in found[folder].items():
        (tmp / name).write_bytes(data)
    return tmp


def _sentences(tsv: Path) -> list[str]:
    from importers.common import read_table

    if not tsv.is_file():
        return []
    rows, _bad = read_table(tsv, "\t", required=("sentence",), nonempty=("sentence",))
    return [r["sentence"] for _, r in rows]


def _rows(tsv: Path) -> int:
    """Data lines of a TSV (for the report only)."""
    if not tsv.is_file():
        return 0
    with open(tsv, "rb") as fh:
        return max(0, sum(1 for line in fh if line.strip()) - 1)


def _decimal_separator(sentences: list[str]) -> tuple[str, int, int]:
    """"," or "." by what the transcripts use for decimals ("2,5" vs "2.5"; "," when tied)."""
    n_comma = sum(len(re.findall(r"\d,\d{1,2}\b", x)) for x in sentences)
    n_dot = sum(len(re.findall(r"\d\.\d{1,2}\b", x)) for x in sentences)
    return ("." if n_dot > n_comma else ","), n_comma, n_dot


def _decimal_word(n2w: str) -> str:
    """The word num2words says between the parts of 1.5 ("un punt cinc" -> "punt"), or ""."""
    from num2words import num2words

    try:
        whole, one, five = (str(num2words(x, lang=n2w)) for x in (1.5, 1, 5))
    except (NotImplementedError, ValueError, TypeError, OverflowError):
        return ""
    if whole.startswith(one) and whole.endswith(five) and len(whole) > len(one) + len(five):
        return whole[len(one):-len(five)].strip().lower()
    return ""


def _in_word_punctuation(sentences: list[str]) -> list[tuple[str, int, int]]:
    """Punctuation that sits between two letters at least IN_WORD_SHARE of the time (Catalan
    "col·lecció"): (char, in-word count, total). Dashes and apostrophes are handled elsewhere."""
    from pipeline.text.normalize import _PUNCT

    punct = re.compile("[" + re.escape(_PUNCT) + "]")
    between = re.compile(r"(?<=[^\W\d_])([" + re.escape(_PUNCT) + r"])(?=[^\W\d_])")
    total: Counter[str] = Counter()
    inside: Counter[str] = Counter()
    for s in sentences:
        s = unicodedata.normalize("NFKC", s)
        total.update(punct.findall(s))
        inside.update(between.findall(s))
    return [(ch, inside[ch], n) for ch, n in total.most_common()
            if inside[ch] >= IN_WORD_MIN and inside[ch] >= IN_WORD_SHARE * n]


def _is_label_char(ch: str) -> bool:
    return unicodedata.category(ch)[0] in "LM"


def _order(chars: list[str]) -> list[str]:
    """Space, apostrophe, a-z, other letters by codepoint, then in-word punctuation."""
    ascii_letters = sorted(c for c in chars if "a" <= c <= "z")
    others = sorted(c for c in chars if _is_label_char(c) and not "a" <= c <= "z")
    rest = sorted(c for c in chars if not _is_label_char(c) and c not in " '")
    head = [c for c in (" ", "'") if c in chars]
    return head + ascii_letters + others + rest


def _toml_str(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)


def scaffold_pack(code: str, archive: Path, out: Path, name: str | None = None,
                  force: bool = False) -> ScaffoldResult:
    """Write the pack for `code` from `archive` into `out` (see the module docstring)."""
    from num2words import CONVERTER_CLASSES

    from pipeline.text.normalize import TextRules, clean_text

    if not _CODE_RE.match(code):
        raise UsageError(f"new-language {code!r}: expected a language code as Common Voice spells "
                         f"it (e.g. br, ca, fy-NL)")
    if (out / "pack.toml").exists() and not force:
        raise UsageError(f"{out}/pack.toml exists; pass --force to overwrite it, or --out DIR")
    with tempfile.TemporaryDirectory(prefix="new-language-") as tmpdir:
        tsv_dir = _read_tsvs(archive, code, Path(tmpdir))
        validated = _sentences(tsv_dir / "validated.tsv")
        heldout_raw = set(_sentences(tsv_dir / "dev.tsv")) | set(_sentences(tsv_dir / "test.tsv"))
        n_train = _rows(tsv_dir / "train.tsv")
    if not validated:
        raise MissingInputError(f"--from-cv {archive}: validated.tsv has no sentences")

    n2w = code if code in CONVERTER_CLASSES else code.split("-")[0] \
        if code.split("-")[0] in CONVERTER_CLASSES else ""
    in_word = _in_word_punctuation(validated)
    rules = TextRules(alphabet=(), num2words_lang=n2w, in_word=tuple(c for c, _, _ in in_word))
    chars: Counter[str] = Counter()
    cleaned: dict[str, str] = {}
    counts: Counter[str] = Counter()
    symbols: Counter[str] = Counter()
    symbol_examples: dict[str, list[str]] = {}
    rejected: Counter[str] = Counter()
    rejected_examples: dict[str, list[str]] = {}
    unique = sorted(set(validated))
    for sentence in unique:
        text, rej = clean_text(sentence, rules)
        if rej is not None:
            reason = rej.detail.split(" (")[0]
            rejected[reason] += 1
            if len(rejected_examples.setdefault(reason, [])) < EXAMPLES:
                rejected_examples[reason].append(sentence)
            continue
        cleaned[sentence] = text = " ".join(text.split())
        chars.update(text)
    for ch, n in chars.items():
        if ch == " " or ch == "'" or ch in rules.in_word or _is_label_char(ch):
            counts[ch] = n
        else:
            symbols[ch] = n
    for sentence, text in cleaned.items():  # a few examples of each symbol
        for ch in symbols:
            if ch in text and len(symbol_examples.setdefault(ch, [])) < EXAMPLES:
                symbol_examples[ch].append(sentence)
        if all(len(symbol_examples.get(ch, [])) >= EXAMPLES for ch in symbols):
            break
    counts.setdefault(" ", 0)
    labels = _order(list(counts))
    rare = [c for c in labels if c != " " and counts[c] < RARE_COUNT]

    lang_name = name or LANGUAGE_NAMES.get(code, "")
    name_guessed = not name and not lang_name
    lang_name = lang_name or code
    lm_lines = [s for s in unique if s not in heldout_raw]

    out.mkdir(parents=True, exist_ok=True)
    # alphabet.txt
    header = [f"{lang_name} alphabet ({code}), written by `ds-pipeline new-language` from "
              f"{archive.name}:",
              "the characters of the validated transcripts after normalization, with counts.",
              "One label per line; the line holding one space is the space label (keep it: some",
              "editors trim trailing whitespace); '\\#' is the '#' label. Delete a line to drop a",
              "character: letters then fold to a base letter or their rows are quarantined, and the",
              "import report counts them.", ""]
    for c in labels:
        flag = "   <- rare: check it belongs to the language" if c in rare else ""
        header.append(f"{c!r:>6} U+{ord(c):04X} {counts[c]:>9}  "
                      f"{unicodedata.name(c, '?')}{flag}")
    text = "".join(f"# {h}".rstrip() + "\n" for h in header)
    text += "".join(("\\#" if c == "#" else c) + "\n" for c in labels)
    write_text(out / "alphabet.txt", text)
    # LM text
    with atomic_write(out / "lm_text.txt.gz", "wb", encoding=None) as raw, \
            gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:
        gz.write("".join(f"{s}\n" for s in lm_lines).encode("utf-8"))
    # pack.toml
    sym_comment = ", ".join(f"{c!r} {n}" for c, n in symbols.most_common(12)) or "none"
    digits_rows = sum(n for r, n in rejected.items() if "digit" in r or "number" in r)
    lines = [
        f"# {lang_name} language pack, written by `ds-pipeline new-language {code} --from-cv "
        f"{archive.name}` on {time.strftime('%Y-%m-%d')}.",
        "# Lines marked CHECK need a decision; scaffold_report.md says what was found. Reference:",
        "# docs/new-language.md. Every key is validated when the pack loads.",
        f"name = {_toml_str(lang_name)}" + ("  # CHECK: the language's English name" if name_guessed
                                             else ""),
        "# The release zip is <export_zip_name>.zip.",
        f"export_zip_name = {_toml_str(f'{code.lower()}-{code.lower()}')}",
        'corpora = ["common_voice"]',
        "# Extra LM text, normalized like the labels; dev/test sentences are always removed.",
        "# lm_text_files: files in this folder (plain, .gz or .xz, one sentence per line);",
        f"# lm_text.txt.gz = the archive's validated sentences minus its dev/test ones "
        f"({len(lm_lines)} lines).",
        "# More text helps most (Wikipedia, OPUS, books): add files here or in <data-dir>/sources/lm/.",
        'lm_text_files = ["lm_text.txt.gz"]',
        "lm_text_urls = []",
        "",
        "[defaults]",
        "# Settings for this language (any variable of `ds-pipeline config`), e.g. for a small",
        "# corpus (see docs/new-language.md, \"Small corpora\"):",
        '# N_HIDDEN = "1024"',
        '# EPOCHS = "50"',
        "",
        "[metadata]",
        'author = ""  # CHECK: you or your group (model card)',
        f"model_name = {_toml_str('ds-pipeline-' + code.lower())}",
        'license = ""  # CHECK: the licence of the model you publish (Common Voice is CC0-1.0)',
        f"language_tag = {_toml_str(code)}  # CHECK: a BCP 47 tag, e.g. \"{code}-XX\"",
        "description = " + _toml_str(f"{lang_name} DeepSpeech-compatible model trained with "
                                     f"ds-pipeline on Common Voice"),
        "",
        "[corpus.common_voice]",
        "# The archive, unchanged, in <data-dir>/sources/ (CV_ARCHIVE overrides this name).",
        f"archive = {_toml_str(archive.name)}",
        '# Optional: "sha256:<output of sha256sum on the archive>" to pin this exact release.',
        'checksum = ""',
        "",
        "[normalizer]",
    ]
    if n2w:
        sep, n_comma, n_dot = _decimal_separator(unique)
        lines += [f"# Numbers are spelled out with num2words in {n2w!r}.",
                  f"num2words_lang = {_toml_str(n2w)}",
                  f"# CHECK: the decimal separator written in this language (the transcripts "
                  f"have {n_comma} like '2,5'",
                  f"# and {n_dot} like '2.5') and the word said for it (here: num2words' own).",
                  f"decimal_separator = {_toml_str(sep)}",
                  f"decimal_word = {_toml_str(_decimal_word(n2w))}",
                  "# CHECK: ordinal suffixes after digits (e.g. French 1er, 2e), spelled as ordinals.",
                  "ordinal_suffixes = []"]
    else:
        lines += [f"# num2words cannot spell numbers in {code!r}: transcripts with digits are "
                  f"quarantined",
                  f"# (invalid_transcript; {digits_rows} of {len(unique)} validated sentences). "
                  f"Spell frequent ones in",
                  "# `replace` if you need them; do NOT copy another language's num2words_lang (its "
                  "words",
                  "# would end up in your labels)."]
    lines += [f"# CHECK: symbols found in the transcripts: {sym_comment}.",
              "# Spell them out in this language (else their rows are quarantined), e.g.",
              '# symbols = { "%" = "<word for percent>", "&" = "<word for and>" }',
              "symbols = {}",
              "# Replacements after lowercasing (e.g. a spelling variant to its standard form).",
              "replace = {}"]
    if in_word:
        found = ", ".join(f"{c!r} {k} of {n} times" for c, k, n in in_word)
        lines += [f"# Punctuation kept between two letters (found inside words: {found});",
                  "# it is in alphabet.txt. Elsewhere it becomes a space.",
                  f"in_word = [{', '.join(_toml_str(c) for c, _, _ in in_word)}]"]
    else:
        lines += ["# Punctuation kept between two letters (e.g. Catalan \"·\"); none found.",
                  "in_word = []"]
    write_text(out / "pack.toml", "\n".join(lines) + "\n")

    _check_written(out, code)
    report = _report(_Findings(
        code=code, lang_name=lang_name, name_guessed=name_guessed, archive=archive, out=out,
        n_validated=len(validated), n_unique=len(unique), n_train=n_train,
        n_heldout=len(heldout_raw), n_lm=len(lm_lines), labels=labels, counts=counts, rare=rare,
        in_word=in_word, symbols=symbols, symbol_examples=symbol_examples, rejected=rejected,
        rejected_examples=rejected_examples, n2w=n2w))
    report_path = out / "scaffold_report.md"
    write_text(report_path, report)
    return ScaffoldResult(out, report, report_path, labels, dict(counts))


def _check_written(out: Path, code: str) -> None:
    """The pack must pass the validation every pack passes at load time."""
    import tomllib

    from pipeline.langs.validate import check_alphabet, check_pack_toml

    text = (out / "pack.toml").read_text(encoding="utf-8")
    data = tomllib.loads(text)
    problems = check_pack_toml(out / "pack.toml", text, data)
    problems += check_alphabet(out / "alphabet.txt", data.get("normalizer", {}))
    if problems:
        raise PipelineError(f"new-language {code}: the written pack does not validate (a bug):\n  "
                            + "\n  ".join(problems))


@dataclass
class _Findings:
    """What the scaffold found in the archive, for `scaffold_report.md`."""

    code: str
    lang_name: str
    name_guessed: bool            # no --name and the code is not in LANGUAGE_NAMES
    archive: Path
    out: Path
    n_validated: int              # validated clips
    n_unique: int                 # distinct validated sentences
    n_train: int                  # clips in train.tsv
    n_heldout: int                # distinct dev/test sentences (kept out of the LM text)
    n_lm: int                     # lines of lm_text.txt.gz
    labels: list[str]
    counts: Counter[str]          # label -> occurrences after normalization
    rare: list[str]
    in_word: list[tuple[str, int, int]]   # (char, in-word count, total)
    symbols: Counter[str]         # non-letters left after normalization (not labels)
    symbol_examples: dict[str, list[str]]
    rejected: Counter[str]        # normalizer rejection detail -> sentences
    rejected_examples: dict[str, list[str]]
    n2w: str                      # num2words language, "" if unsupported


def _report(f: _Findings) -> str:
    code, lang_name, name_guessed, archive, out = f.code, f.lang_name, f.name_guessed, f.archive, f.out
    n_validated, n_unique, n_train, n_heldout, n_lm = (f.n_validated, f.n_unique, f.n_train,
                                                       f.n_heldout, f.n_lm)
    labels, counts, rare, in_word, symbols = f.labels, f.counts, f.rare, f.in_word, f.symbols
    symbol_examples, rejected, rejected_examples, n2w = (f.symbol_examples, f.rejected,
                                                         f.rejected_examples, f.n2w)
    r = [f"# New language pack: {lang_name} ({code})", "",
         f"From `{archive.name}`: {n_validated} validated clips, {n_unique} distinct sentences "
         f"({n_train} clips in train.tsv, {n_heldout} dev/test sentences kept out of the LM text).",
         f"Written to `{out}`: pack.toml, alphabet.txt ({len(labels)} labels), lm_text.txt.gz "
         f"({n_lm} sentences).", "", "## Check before the first import", ""]
    step = 1
    if name_guessed:
        r.append(f"{step}. `name` in pack.toml is the code {code!r}: write the language's English "
                 f"name.")
        step += 1
    r.append(f"{step}. Alphabet: {len(labels)} labels. "
             + (f"Rare characters (fewer than {RARE_COUNT} times) to confirm or delete: "
                + ", ".join(f"{c!r} ({unicodedata.name(c, '?')}, {counts[c]})" for c in rare) + "."
                if rare else "No rare characters."))
    step += 1
    if in_word:
        r.append(f"{step}. Kept inside words (in_word, and in the alphabet): "
                 + ", ".join(f"{c!r} ({k} of {n} occurrences between letters)" for c, k, n in in_word)
                 + ". Elsewhere they become a space.")
        step += 1
    if symbols:
        r.append(f"{step}. Symbols that are not letters (rows with them are quarantined unless you "
                 f"spell them out in [normalizer] symbols):")
        for c, n in symbols.most_common(20):
            r.append(f"   - {c!r} {unicodedata.name(c, '?')}: {n}, e.g. "
                     f"{' | '.join(symbol_examples.get(c, []))}")
        step += 1
    if n2w:
        r.append(f"{step}. Numbers are spelled out with num2words {n2w!r}: set decimal_separator, "
                 f"decimal_word and ordinal_suffixes for this language.")
    else:
        r.append(f"{step}. num2words has no {code!r}: sentences with digits will be quarantined "
                 f"(invalid_transcript).")
    step += 1
    if rejected:
        r.append(f"{step}. Sentences the normalizer rejects (they will be quarantined):")
        for reason, n in rejected.most_common():
            r.append(f"   - {reason}: {n}, e.g. {' | '.join(rejected_examples.get(reason, []))}")
        step += 1
    r.append(f"{step}. Fill in [metadata] author, license and language_tag (model card).")
    from pipeline.langs import PACKS_DIR

    if (PACKS_DIR / code / "pack.toml").is_file():
        r.append(f"Note: ds-pipeline ships a pack for {code!r}; this one, in <data-dir>/langs/{code}/, "
                 f"overrides it (the log says so at every run).")
    r += ["", "## Next", "",
          f"1. Put `{archive.name}` unchanged in `<data-dir>/sources/`.",
          f"2. `ds-pipeline run --data-dir <data-dir> --set MODEL_LANGUAGE={code} --stages "
          f"import,alphabet`, then read `reports/alphabet_report.json` (unknown and folded "
          f"characters) and the import report in the log.",
          f"3. Train: `ds-pipeline run --data-dir <data-dir> --set MODEL_LANGUAGE={code}` (see "
          f"docs/new-language.md for small-corpus settings).",
          "4. Editing this pack later reruns exactly the stages it affects (`--dry-run` shows them).",
          ""]
    return "\n".join(r)
