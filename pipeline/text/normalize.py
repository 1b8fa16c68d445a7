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
`trailing_apostrophe` (keep a word-final "'", e.g. Italian "po'").
"""

from __future__ import annotations

import functools
import json
import re
import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING

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


@dataclass(frozen=True)
class Normalized:
    """Result of `normalize_verbose`: `text` is None when rejected, then `reason` says why."""

    text: str | None
    reason: str | None = None
    detail: str = ""
    attempt: str = ""   # the text as far as normalization got (for reports on rejected rows)


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

    @functools.cached_property
    def alphabet_set(self) -> frozenset[str]:
        return frozenset(self.alphabet)

    @classmethod
    def from_pack(cls, pack: LanguagePack, english_compatible: bool = False) -> TextRules:
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
        )


def target_alphabet(pack: LanguagePack, english_compatible: bool = False) -> Alphabet:
    """The alphabet labels must fit: the pack's, or the English a-z' one when `english_compatible`."""
    if english_compatible:
        from pipeline.langs import load_pack

        return load_pack("en").alphabet
    return pack.alphabet


_RULES_CACHE: dict[tuple[str, str, str, bool], TextRules] = {}
_BY_ID: dict[tuple[int, bool], tuple[LanguagePack, TextRules]] = {}


def rules_for(pack: LanguagePack, english_compatible: bool = False) -> TextRules:
    """The pack's rules, built once per (pack, english_compatible): the LM calls this per line."""
    hit = _BY_ID.get((id(pack), english_compatible))
    if hit is not None and hit[0] is pack:
        return hit[1]
    key = (pack.code, str(pack.directory), json.dumps(pack.normalizer, sort_keys=True, default=str),
           english_compatible)
    rules = _RULES_CACHE.get(key)
    if rules is None:
        rules = _RULES_CACHE[key] = TextRules.from_pack(pack, english_compatible)
    _BY_ID[(id(pack), english_compatible)] = (pack, rules)  # holding `pack` keeps its id unique
    return rules


def normalize(text: str, pack: LanguagePack, english_compatible: bool = False) -> str | None:
    """Normalized text, or None when the text must be rejected (see `normalize_verbose` for why)."""
    return normalize_text(text, rules_for(pack, english_compatible)).text


def normalize_verbose(text: str, pack: LanguagePack, english_compatible: bool = False) -> Normalized:
    return normalize_text(text, rules_for(pack, english_compatible))


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


def _fold(ch: str, alphabet: frozenset[str]) -> str:
    """A Latin letter the alphabet lacks -> its base letter(s) if the alphabet has them."""
    base = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))
    if base and all(c in alphabet for c in base):
        return base
    return ch


def normalize_text(text: str, rules: TextRules) -> Normalized:
    """The normalization itself (see the module docstring)."""
    if not isinstance(text, str):
        return Normalized(None, INVALID, "not text")
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
        return Normalized(None, INVALID, str(exc))
    s = _DROP_RE.sub("", _SPACE_RE.sub(" ", s))
    # Apostrophes are kept inside words only ("aujourd'hui"); quote-like ones become spaces.
    s = re.sub(r"'{2,}", "'", s)
    if rules.trailing_apostrophe:  # Italian "po'", English "dogs'": keep one after a letter
        s = re.sub(r"(?<![^\W\d_])'", " ", s)
    else:
        s = re.sub(r"(?<![^\W\d_])'|'(?![^\W\d_])", " ", s)
    alphabet = rules.alphabet_set
    unknown = set(s) - alphabet
    foreign = sorted(c for c in unknown if c.isalpha() and not _is_latin_letter(c))
    if foreign:
        return Normalized(None, OUTSIDE, "foreign script: " + " ".join(foreign), _WS.sub(" ", s).strip())
    if rules.english_compatible:
        s = unidecode(s).lower()
    elif any(c.isalpha() for c in unknown):
        s = "".join(c if c in alphabet or not c.isalpha() else _fold(c, alphabet) for c in s)
    s = _WS.sub(" ", s).strip()
    if not s:
        return Normalized(None, EMPTY, "nothing left after normalization")
    missing = sorted(set(s) - alphabet)
    if missing:
        return Normalized(None, OUTSIDE, " ".join(repr(c) for c in missing), s)
    return Normalized(s)
