"""Your own recordings: a list of clips with transcripts (registry key `csv`).

- Input: a delimited text file (comma, tab, `|` or `;`, detected from the header) with a header
  naming the columns: the audio path as `path`, `wav_filename`, `file`, `filename` or `audio`; the
  text as `transcript`, `text` or `sentence`; optionally the speaker as `speaker` or `client_id`.
  A DeepSpeech CSV (`wav_filename,wav_filesize,transcript`) works as is.
- Where: `CSV_LIST` (a file name in `sources/` or an absolute path), else the pack's
  `[corpus.csv] list`, else `sources/corpus.csv`. Relative audio paths resolve against the list's
  folder. Audio: anything libsndfile reads (wav, flac, ogg, mp3), any rate/channels.
- License / URL / checksum: yours; nothing is downloaded.
- Quirks: without a speaker column the speaker is the clip's folder (relative to the list), so a
  flat folder is one speaker and the splits are made sentence-disjoint only (the report says so).
- Pre-split lists (DeepSpeech's habit): `TRAIN_FILES`, `DEV_FILES`, `TEST_FILES` (comma lists of
  such files), or a `split` column (train/dev/test) in the one list. The splits are then used as
  given: clips are still checked, converted and quarantined, but never moved between splits, and a
  clip or sentence in two splits is kept in both (an overfit test does that; the import warns).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from importers.base import BAD_ROW, ImportContext, Rejection, RowList, SourceRow, wav_rel_for
from importers.common import read_table
from pipeline.errors import MissingInputError

KEY = "csv"
TITLE = "Your clip list"
LICENSE = "(yours)"
DEFAULT_NAME = "corpus.csv"
PATH_COLUMNS = ("wav_filename", "file", "filename", "audio")
TEXT_COLUMNS = ("text", "sentence")


SPLIT_NAMES = {"train": "train", "dev": "dev", "test": "test", "validation": "dev", "valid": "dev",
               "eval": "test"}
SPLIT_VARS = {"train": "TRAIN_FILES", "dev": "DEV_FILES", "test": "TEST_FILES"}


def _resolve(name: str, ctx: ImportContext) -> Path:
    return Path(name) if Path(name).is_absolute() else ctx.paths.sources / name


def list_file(ctx: ImportContext) -> Path:
    name = ctx.cfg.data.csv_list or str(ctx.settings(KEY).get("list", "")) or DEFAULT_NAME
    p = _resolve(name, ctx)
    if not p.is_file():
        raise MissingInputError(
            f"clip list {p} not found: put your 'path,transcript' list there (a header line naming "
            f"the columns, paths relative to the list) or set CSV_LIST=<file name in sources/>")
    return p


def split_lists(ctx: ImportContext) -> list[tuple[str, Path]]:
    """(split, file) of TRAIN_FILES/DEV_FILES/TEST_FILES, each checked to exist."""
    out = []
    for split, names in ctx.cfg.split_files().items():
        for name in names:
            p = _resolve(name, ctx)
            if not p.is_file():
                raise MissingInputError(f"{SPLIT_VARS[split]}: clip list {p} not found (a file name "
                                        f"in sources/ or an absolute path)")
            out.append((split, p))
    return out


def download(ctx: ImportContext) -> Path:
    pre = split_lists(ctx)
    return pre[0][1] if pre else list_file(ctx)


def extract(source: Path, ctx: ImportContext) -> Path:
    return source


def _delimiter(path: Path) -> str:
    with open(path, "rb") as fh:
        head = fh.readline().decode("utf-8", "replace")
    counts = {d: head.count(d) for d in (",", "\t", "|", ";")}
    return max(counts, key=lambda d: counts[d]) if any(counts.values()) else ","


def list_rows(root: Path, ctx: ImportContext) -> RowList:
    pre = split_lists(ctx)
    if not pre:
        return _read_list(root, root.parent, None)
    # Keys relative to the lists' common folder: two lists naming the same clip name the same key.
    base = Path(os.path.commonpath([str(p.parent.resolve()) for _, p in pre]))
    out = RowList(fixed_splits=True)
    for split, path in pre:
        part = _read_list(path, base, split)
        out.rows += part.rows
        out.rejected += part.rejected
    return out


def _read_list(path: Path, base: Path, split: str | None) -> RowList:
    """The rows of one list; `split` given = every row is in it, else a `split` column may say."""
    rows, bad = read_table(path, _delimiter(path), required=("path", "transcript"),
                           aliases={"path": PATH_COLUMNS, "transcript": TEXT_COLUMNS,
                                    "speaker": ("client_id",), "split": ("subset", "set")},
                           nonempty=("path",))
    out = RowList(rejected=bad, fixed_splits=split is not None or any("split" in r for _, r in rows))
    for origin, r in rows:
        raw = r["path"]
        audio = Path(raw) if Path(raw).is_absolute() else path.parent / raw
        try:
            rel = audio.resolve().relative_to(base.resolve()).as_posix()
        except ValueError:
            rel = f"external/{hashlib.sha1(raw.encode()).hexdigest()[:12]}_{Path(raw).name}"
        row_split = split
        if split is None and "split" in r:
            row_split = SPLIT_NAMES.get(r["split"].lower())
            if row_split is None:
                out.rejected.append(Rejection(key=rel, reason=BAD_ROW, transcript=r["transcript"],
                                              detail=f"split {r['split']!r} is not train, dev or test",
                                              origin=origin))
                continue
        speaker = r.get("speaker") or (str(Path(rel).parent) if "/" in rel else "default")
        out.rows.append(SourceRow(key=rel, audio=audio, wav_rel=wav_rel_for(rel),
                                  transcript=r["transcript"], speaker=speaker, split=row_split,
                                  origin=origin if split is None else f"{SPLIT_VARS[split]} {origin}"))
    return out
