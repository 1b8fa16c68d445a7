"""M-AILABS Speech Dataset: LibriVox audiobooks read by a few speakers, per language.

- Homepage: https://www.caito.de/2019/01/03/the-m-ailabs-speech-dataset/ ; archives
  `https://data.solak.de/data/Training/stt_tts/<lang>.tgz` (lang = `fr_FR`, `it_IT`, `de_DE`, ...;
  the old host www.caito.de is gone). No published checksums: set `checksum` in the pack.
- License: BSD-3-Clause style (M-AILABS license; the texts are public domain, LibriVox audio).
- Pack table `[corpus.m_ailabs]`: `lang`, `url` (optional), `checksum`, `skip_books` (book folder
  names, or substrings of `<gender>/<speaker>/<book>`, excluded everywhere).
- Layout after extraction: `<lang>/by_book/{female,male}/<speaker>/<book>/{metadata.csv,wavs/*.wav}`
  and `<lang>/by_book/mix/<book>/...` (no speaker level; we use `mix/<book>` as the speaker).
  `metadata.csv` lines are `id|original text|normalized text` (UTF-8, no header); the normalized
  text (3rd field) is used, the 2nd when the 3rd is missing. `metadata_mls.json` is ignored.
- Quirks: the DeepSpeech importer consumed its skip list on the first metadata file only (a one-shot
  iterator); here it applies to every metadata file. The wavs are 16 kHz already, but re-written.
"""

from __future__ import annotations

from pathlib import Path

from importers.base import (
    BAD_ROW,
    SKIP_LIST,
    ImportContext,
    Rejection,
    RowList,
    SourceRow,
    rejection_from_row,
    wav_rel_for,
)
from importers.common import decode_lines, extract_source, fetch
from pipeline.errors import ConfigError, MissingInputError

KEY = "m_ailabs"
TITLE = "M-AILABS Speech Dataset"
LICENSE = "M-AILABS (BSD-3-Clause style)"


def download(ctx: ImportContext) -> Path:
    s = ctx.settings(KEY)
    lang = str(s.get("lang", ""))
    if not lang:
        raise ConfigError(f"language pack {ctx.pack.code} [corpus.m_ailabs] needs lang (e.g. fr_FR)")
    url = str(s.get("url") or f"https://data.solak.de/data/Training/stt_tts/{lang}.tgz")
    return fetch(ctx, KEY, url, f"{lang}.tgz", str(s.get("checksum", "")))


def extract(source: Path, ctx: ImportContext) -> Path:
    return extract_source(source, ctx, KEY)


def book_skipped(rel_dir: str, skip_books: list[str]) -> str | None:
    book = Path(rel_dir).name
    for s in skip_books:
        if s == book or s in rel_dir:
            return s
    return None


def list_rows(root: Path, ctx: ImportContext) -> RowList:
    by_book = sorted(p for p in [root / "by_book", *root.glob("*/by_book"), *root.glob("*/*/by_book")]
                     if p.is_dir())
    if not by_book:
        raise MissingInputError(f"{root}: no by_book/ folder in the M-AILABS archive")
    base = by_book[0]
    skip_books = [str(s) for s in ctx.settings(KEY).get("skip_books", [])]
    out = RowList()
    for meta in sorted(base.rglob("metadata.csv")):
        rel_dir = meta.parent.relative_to(base).as_posix()
        parts = Path(rel_dir).parts
        speaker = f"mix/{parts[-1]}" if parts[0] == "mix" else "/".join(parts[:2])
        skip = book_skipped(rel_dir, skip_books)
        lines, bad = decode_lines(meta.read_bytes(), f"{rel_dir}/metadata.csv")
        out.rejected += bad
        for lineno, line in lines:
            origin = f"{rel_dir}/metadata.csv:{lineno}"
            fields = line.split("|")
            if len(fields) < 2 or not fields[0].strip():
                out.rejected.append(Rejection(key=origin, reason=BAD_ROW,
                                              detail="expected id|text|normalized", transcript=line,
                                              origin=origin))
                continue
            clip_id = fields[0].strip()
            text = fields[2] if len(fields) > 2 and fields[2].strip() else fields[1]
            rel = f"{rel_dir}/wavs/{clip_id}.wav"
            row = SourceRow(key=rel, audio=base / rel, wav_rel=wav_rel_for(rel), transcript=text,
                            speaker=speaker, origin=origin)
            if skip:
                out.rejected.append(rejection_from_row(row, SKIP_LIST, f"skip_books {skip!r}"))
            else:
                out.rows.append(row)
    return out
