"""Transcript and LM-text normalization, driven by the language pack's `[normalizer]` table.

One function for acoustic labels and LM text alike, so both sides agree (the seed mismatch: with
`english_compatible`, "œ" was dropped from labels but became "oe" in the LM text):

    normalize(text: str, pack: LanguagePack, english_compatible: bool = False) -> str | None
    normalize_verbose(text, pack, english_compatible) -> Normalized(text, reason, detail)

Steps: invisible format characters (soft hyphen, zero-width space, BOM: category Cf) removed ->
symbols spelled out (pack table, before NFKC because NFKC rewrites "½" and "º") -> NFKC ->
typographic apostrophes to "'" -> lowercase -> numbers to words (`num2words` in the pack's language:
"50 000", "3,5", ordinals like "1er") -> dashes/punctuation to space, quotes removed -> foreign
scripts rejected -> `ENGLISH_COMPATIBLE`: Unidecode transliteration (œ -> oe, é -> e) -> other Latin
letters folded to a base letter the alphabet has (č -> c) -> whitespace collapsed -> every character
must be in the target alphabet. A rejected text returns None (`normalize`) or a reason
(`normalize_verbose`): `empty_transcript`, `invalid_transcript` or `outside_alphabet`.

`[normalizer]` keys: `symbols` (table), `num2words_lang`, `decimal_separator` ("," or "."),
`decimal_word`, `ordinal_suffixes` (list), `replace` (table applied after lowercasing),
`trailing_apostrophe` (keep a word-final "'", e.g. Italian "po'"), `in_word` (punctuation kept
between two letters, e.g. Catalan "·" in "col·lecció"; elsewhere it becomes a space; put it in the
alphabet too).

Folding is never silent: `Normalized.folded` lists the characters folded (one per occurrence), the
import counts them per character, and `STRICT_ALPHABET=1` (`TextRules.strict_alphabet`) quarantines
such rows as `outside_alphabet` instead.
"""

from __future__ import annotations

import functools
import json
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from unidecode import unidecode

from pipeline.text.alphabet import Alphabet

if TYPE_CHECKING:
    from pipeline.langs import LanguagePack

# Rejection reasons decided here (importers.base re-exports them with the other reasons).
EMPTY = "empty_transcript"
INVALID = "invalid_transcript"
OUTSIDE = "outside_alphabet"

_DASHES = "-‐‑‒–—―−_"
_QUOTES = "«»\"“”„‟‹›"
_PUNCT = ".,;:!?…()[]{}/\\*|~<>=^@#¡¿·•"
_APOSTROPHE_RE = re.compile("[’‘ʼ`´′ʹ]")
_SPACE_RE = re.compile("[" + re.escape(_DASHES + _PUNCT) + "]")
_DROP_RE = re.compile("[" + re.escape(_QUOTES) + "]")
_DIGIT_RE = re.compile(r"\d")
_WS = re.compile(r"\s+")
_THOUSANDS_SPACE = re.compile(r"\b(\d{1,3})((?: \d{3})+)\b")
_MULTI_APOSTROPHE = re.compile(r"'{2,}")
_APOSTROPHE_NOT_AFTER_LETTER = re.compile(r"(?<![^\W\d_])'")
_APOSTROPHE_NOT_IN_WORD = re.compile(r"(?<![^\W\d_])'|'(?![^\W\d_])")


@dataclass(frozen=True)
class Normalized:
    """Result of `normalize_verbose`: `text` is None when rejected, then `reason` says why."""

    text: str | None
    reason: str | None = None
    detail: str = ""
    attempt: str = ""   # the text as far as normalization got (for reports on rejected rows)
    folded: str = ""    # characters folded to a base letter the alphabet has, one per occurrence


@dataclass(frozen=True)
class TextRules:
    """Everything normalization needs, picklable (import workers receive it)."""

    alphabet: tuple[str, ...]
    symbols: tuple[tuple[str, str], ...] = ()
    replace: tuple[tuple[str, str], ...] = ()
    num2words_lang: str = ""
    decimal_separator: str = ","
    decimal_word: str = ""
    ordinal_suffixes: tuple[str, ...] = ()
    trailing_apostrophe: bool = False
    english_compatible: bool = False
    in_word: tuple[str, ...] = ()
    strict_alphabet: bool = False
    # BYTES_OUTPUT_MODE: labels are UTF-8 bytes, so every character is kept (no script or alphabet check)
    bytes_output_mode: bool = False

    @functools.cached_property
    def alphabet_set(self) -> frozenset[str]:
        return frozenset(self.alphabet)

    @classmethod
    def from_pack(cls, pack: LanguagePack, english_compatible: bool = False,
                  strict_alphabet: bool = False) -> TextRules:
        n = pack.normalizer
        symbols = dict(n.get("symbols", {}))
        replace = dict(n.get("replace", {}))
        # Longest keys first so "n°" wins over "°".
        return cls(
            alphabet=target_alphabet(pack, english_compatible).labels,
            symbols=tuple(sorted(symbols.items(), key=lambda kv: -len(kv[0]))),
            replace=tuple(sorted(replace.items(), key=lambda kv: -len(kv[0]))),
            num2words_lang=str(n.get("num2words_lang", "")),
            decimal_separator=str(n.get("decimal_separator", ",")),
            decimal_word=str(n.get("decimal_word", "")),
            ordinal_suffixes=tuple(sorted((str(s) for s in n.get("ordinal_suffixes", [])),
                                          key=lambda s: -len(s))),
            trailing_apostrophe=bool(n.get("trailing_apostrophe", False)),
            english_compatible=english_compatible,
            in_word=tuple(str(c) for c in n.get("in_word", [])),
            strict_alphabet=strict_alphabet,
        )


def target_alphabet(pack: LanguagePack, english_compatible: bool = False) -> Alphabet:
    """The alphabet labels must fit: the pack's, or the English a-z' one when `english_compatible`."""
    if english_compatible:
        return _english_alphabet()
    return pack.alphabet


@functools.cache
def _english_alphabet() -> Alphabet:
    # the built-in English pack's alphabet, read as a file: text/ does not depend on langs/
    return Alphabet.from_file(Path(__file__).resolve().parents[1] / "langs" / "en" / "alphabet.txt")


_RULES_CACHE: dict[tuple[str, str, str, bool, bool], TextRules] = {}
_BY_ID: dict[tuple[int, bool, bool], tuple[LanguagePack, TextRules]] = {}


def rules_for(pack: LanguagePack, english_compatible: bool = False,
              strict_alphabet: bool = False) -> TextRules:
    """The pack's rules, built once per (pack, flags): the LM calls this per line."""
    hit = _BY_ID.get((id(pack), english_compatible, strict_alphabet))
    if hit is not None and hit[0] is pack:
        return hit[1]
    key = (pack.code, str(pack.directory), json.dumps(pack.normalizer, sort_keys=True, default=str),
           english_compatible, strict_alphabet)
    rules = _RULES_CACHE.get(key)
    if rules is None:
        rules = _RULES_CACHE[key] = TextRules.from_pack(pack, english_compatible, strict_alphabet)
    # holding `pack` keeps its id unique
    _BY_ID[(id(pack), english_compatible, strict_alphabet)] = (pack, rules)
    return rules


def normalize(text: str, pack: LanguagePack, english_compatible: bool = False,
              strict_alphabet: bool = False) -> str | None:
    """Normalized text, or None when the text must be rejected (see `normalize_verbose` for why)."""
    return normalize_text(text, rules_for(pack, english_compatible, strict_alphabet)).text


def normalize_verbose(text: str, pack: LanguagePack, english_compatible: bool = False,
                      strict_alphabet: bool = False) -> Normalized:
    return normalize_text(text, rules_for(pack, english_compatible, strict_alphabet))


# ---------------------------------------------------------------------------------------------
def _words(n: int, rules: TextRules, ordinal: bool = False) -> str:
    from num2words import num2words

    return str(num2words(n, lang=rules.num2words_lang, to="ordinal" if ordinal else "cardinal"))


def _spell_numbers(s: str, rules: TextRules) -> str:
    if not _DIGIT_RE.search(s):
        return s
    if not rules.num2words_lang:
        raise ValueError("digits, and the language pack sets no [normalizer] num2words_lang")
    dec = re.escape(rules.decimal_separator)
    thousands = "." if rules.decimal_separator == "," else ","
    s = _THOUSANDS_SPACE.sub(lambda m: m.group(1) + m.group(2).replace(" ", ""), s)
    s = re.sub(r"\b\d{1,3}(?:" + re.escape(thousands) + r"\d{3})+\b",
               lambda m: m.group(0).replace(thousands, ""), s)

    def decimal(m: re.Match[str]) -> str:
        frac = m.group(2)
        zeros = len(frac) - len(frac.lstrip("0"))
        parts = [_words(int(m.group(1)), rules), rules.decimal_word or rules.decimal_separator]
        parts += [_words(0, rules)] * zeros
        if frac.lstrip("0"):
            parts.append(_words(int(frac), rules))
        return " " + " ".join(parts) + " "

    s = re.sub(r"\b(\d+)" + dec + r"(\d+)\b", decimal, s)
    if rules.ordinal_suffixes:
        suffixes = "|".join(re.escape(x) for x in rules.ordinal_suffixes)
        s = re.sub(r"\b(\d+)(?:" + suffixes + r")\b",
                   lambda m: " " + _words(int(m.group(1)), rules, ordinal=True) + " ", s)
    if re.search(r"\d[^\W\d_]|[^\W\d_]\d", s):
        raise ValueError("a number is glued to letters (e.g. '3d', 'mp3')")
    return re.sub(r"\d+", lambda m: " " + _words(int(m.group(0)), rules) + " ", s)


def _is_latin_letter(ch: str) -> bool:
    return "LATIN" in unicodedata.name(ch, "")


def fold_target(ch: str, alphabet: frozenset[str] | set[str]) -> str:
    """A Latin letter the alphabet lacks -> its base letter(s) if the alphabet has them, else `ch`."""
    base = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))
    if base and all(c in alphabet for c in base):
        return base
    return ch


def _space_re(in_word: tuple[str, ...]) -> re.Pattern[str]:
    if not in_word:
        return _SPACE_RE
    return _space_re_cached("".join(sorted(in_word)))


@functools.cache
def _space_re_cached(keep: str) -> re.Pattern[str]:
    return re.compile("[" + re.escape("".join(c for c in _DASHES + _PUNCT if c not in keep)) + "]")


def clean_text(text: str, rules: TextRules) -> tuple[str, Normalized | None]:
    """The steps before the alphabet is looked at (symbols, NFKC, lowercase, numbers, punctuation,
    apostrophes): `(text, None)`, or `("", rejection)` when a number cannot be spelled out.
    The scaffold (`pipeline.langs.scaffold`) derives a new alphabet from this output."""
    # Invisible format characters (Unicode category Cf: soft hyphen U+00AD, zero-width space and
    # joiners, BOM, bidi marks) are layout hints, not text: removed, never a reason to reject.
    s = "".join(c for c in unicodedata.normalize("NFC", text) if unicodedata.category(c) != "Cf")
    for key, word in rules.symbols:
        if key in s:
            s = s.replace(key, f" {word} ")
    s = unicodedata.normalize("NFKC", s)
    s = _APOSTROPHE_RE.sub("'", s).lower()
    for key, word in rules.replace:
        s = s.replace(key, word)
    try:
        s = _spell_numbers(s, rules)
    except (ValueError, NotImplementedError, OverflowError) as exc:
        detail = str(exc) or (f"num2words cannot spell numbers in {rules.num2words_lang!r} "
                              f"({type(exc).__name__})")
        return "", Normalized(None, INVALID, detail)
    s = _DROP_RE.sub("", _space_re(rules.in_word).sub(" ", s))
    for ch in rules.in_word:  # kept between two letters only ("col·lecció"), else a word break
        if ch in s:
            s = _not_in_word_re(ch).sub(" ", s)
    # Apostrophes are kept inside words only ("aujourd'hui"); quote-like ones become spaces.
    if "'" in s:
        s = _MULTI_APOSTROPHE.sub("'", s)
        if rules.trailing_apostrophe:  # Italian "po'", English "dogs'": keep one after a letter
            s = _APOSTROPHE_NOT_AFTER_LETTER.sub(" ", s)
        else:
            s = _APOSTROPHE_NOT_IN_WORD.sub(" ", s)
    return s, None


@functools.cache
def _not_in_word_re(ch: str) -> re.Pattern[str]:
    c = re.escape(ch)
    return re.compile(r"(?<![^\W\d_])" + c + "|" + c + r"(?![^\W\d_])")


def unreachable_label(label: str, normalizer: dict[str, Any]) -> str | None:
    """Why the normalizer can never output `label` (None if it can): pack validation uses this to
    reject alphabet lines that would only waste an output class."""
    produced = "".join(str(v) for v in dict(normalizer.get("replace", {})).values())
    if label == " " or label in produced:
        return None
    if unicodedata.normalize("NFKC", label) != label:
        return f"NFKC turns it into {unicodedata.normalize('NFKC', label)!r}"
    if label.lower() != label:
        return "transcripts are lowercased"
    if _APOSTROPHE_RE.match(label):
        return "typographic apostrophes become \"'\""
    if label in _QUOTES:
        return "quotes are removed"
    if label in _DASHES + _PUNCT and label not in [str(c) for c in normalizer.get("in_word", [])]:
        return ("punctuation becomes a space (list it in [normalizer] in_word to keep it inside "
                "words)")
    if label.isdigit():
        return "digits are spelled out (num2words_lang) or the row is rejected"
    if label.isspace():
        return "whitespace becomes one space"
    return None


def normalize_text(text: str, rules: TextRules) -> Normalized:
    """The normalization itself (see the module docstring)."""
    if not isinstance(text, str):
        return Normalized(None, INVALID, "not text")
    s, rejected = clean_text(text, rules)
    if rejected is not None:
        return rejected
    if rules.bytes_output_mode:
        # any script is kept; punctuation of any script (e.g. "。") goes like ASCII punctuation
        s = "".join(" " if c == "\x00" or (c != "'" and unicodedata.category(c).startswith("P"))
                    else c for c in s)
        s = _WS.sub(" ", s).strip()
        return Normalized(s) if s else Normalized(None, EMPTY, "nothing left after normalization")
    alphabet = rules.alphabet_set
    unknown = set(s) - alphabet
    foreign = sorted(c for c in unknown if c.isalpha() and not _is_latin_letter(c))
    if foreign:
        return Normalized(None, OUTSIDE, "foreign script: " + " ".join(foreign), _WS.sub(" ", s).strip())
    folded = ""
    if rules.english_compatible:
        s = unidecode(s).lower()
    elif any(c.isalpha() for c in unknown):
        targets = {c: fold_target(c, alphabet) for c in unknown if c.isalpha()}
        foldable = {c: t for c, t in targets.items() if t != c}
        if foldable and not rules.strict_alphabet:
            folded = "".join(c for c in s if c in foldable)
            s = "".join(foldable.get(c, c) for c in s)
    s = _WS.sub(" ", s).strip()
    if not s:
        return Normalized(None, EMPTY, "nothing left after normalization")
    missing = sorted(set(s) - alphabet)
    if missing:
        detail = " ".join(repr(c) for c in missing)
        if rules.strict_alphabet:
            would = [f"{c!r}->{fold_target(c, alphabet)!r}" for c in missing
                     if c.isalpha() and fold_target(c, alphabet) != c]
            if would:
                detail += f" (STRICT_ALPHABET=1: not folded {', '.join(would)})"
        return Normalized(None, OUTSIDE, detail, s)
    return Normalized(s, folded=folded)
