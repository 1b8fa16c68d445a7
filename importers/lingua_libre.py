"""Lingua Libre (Wikimedia France): recordings of single words and short phrases, one file each.

- Homepage: https://lingualibre.org — datasets at
  `https://lingualibre.org/datasets/Q{qid}-{iso639_3}-{english_name}.zip` (e.g. Q21-fra-French.zip,
  Q385-ita-Italian.zip). The URL is unversioned (the file changes over time; seed issue #129), so
  no checksum can be pinned by default; set `checksum` in the pack to freeze a copy.
- License: CC-BY-SA-4.0 for most recordings (per-file licenses on Wikimedia Commons).
- Pack table `[corpus.lingua_libre]`: `qid`, `iso639_3`, `english_name`, `url` (optional, built from
  the three), `checksum`, `skip_speakers` (regexes matched against `<Speaker>/<relative path>`, for
  speakers with bad recordings).
- Layout after extraction: `Q{qid}-{iso}-{name}/<Speaker>/**/<word>.ogg` (also .wav/.flac/.mp3).
- Quirks: the transcript is the file stem ("Bonjour.ogg" -> "bonjour"), so many rows are single
  words, often shorter than MIN_DURATION allows; the same word by many speakers is common, so
  sentence-disjoint splits drop some rows as `split_overlap`.
"""

from __future__ import annotations

import re
from pathlib import Path

from importers.base import SKIP_LIST, ImportContext, RowList, SourceRow, rejection_from_row, wav_rel_for
from importers.common import extract_source, fetch
from pipeline.errors import ConfigError, MissingInputError

KEY = "lingua_libre"
TITLE = "Lingua Libre"
LICENSE = "CC-BY-SA-4.0"
AUDIO_SUFFIXES = (".ogg", ".wav", ".flac", ".mp3")


def dataset_name(ctx: ImportContext) -> str:
    s = ctx.settings(KEY)
    try:
        return f"Q{int(s['qid'])}-{s['iso639_3']}-{s['english_name']}"
    except (KeyError, ValueError) as exc:
        raise ConfigError(f"language pack {ctx.pack.code} [corpus.lingua_libre] needs qid, iso639_3 "
                          f"and english_name ({exc})") from None


def download(ctx: ImportContext) -> Path:
    s = ctx.settings(KEY)
    name = dataset_name(ctx)
    url = str(s.get("url") or f"https://lingualibre.org/datasets/{name}.zip")
    return fetch(ctx, KEY, url, f"{name}.zip", str(s.get("checksum", "")))


def extract(source: Path, ctx: ImportContext) -> Path:
    return extract_source(source, ctx, KEY)


def list_rows(root: Path, ctx: ImportContext) -> RowList:
    name = dataset_name(ctx)
    base = root / name if (root / name).is_dir() else root
    try:
        skips = [re.compile(p) for p in ctx.settings(KEY).get("skip_speakers", [])]
    except re.error as exc:
        raise ConfigError(f"language pack {ctx.pack.code} [corpus.lingua_libre] skip_speakers: "
                          f"bad regex ({exc})") from None
    files = sorted(p for p in base.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())
    if not files:
        raise MissingInputError(f"{base}: no recordings found in the Lingua Libre archive")
    out = RowList()
    for f in files:
        rel = f.relative_to(base).as_posix()
        parts = Path(rel).parts
        speaker = parts[0] if len(parts) > 1 else "unknown"
        row = SourceRow(key=rel, audio=f, wav_rel=wav_rel_for(rel), transcript=f.stem,
                        speaker=speaker, origin=rel)
        hit = next((p.pattern for p in skips if p.match(rel)), None)
        if hit:
            out.rejected.append(rejection_from_row(row, SKIP_LIST, f"skip_speakers {hit!r}"))
        else:
            out.rows.append(row)
    return out
