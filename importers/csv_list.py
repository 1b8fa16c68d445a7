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
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from importers.base import ImportContext, RowList, SourceRow, wav_rel_for
from importers.common import read_table
from pipeline.errors import MissingInputError

KEY = "csv"
TITLE = "Your clip list"
LICENSE = "(yours)"
DEFAULT_NAME = "corpus.csv"
PATH_COLUMNS = ("wav_filename", "file", "filename", "audio")
TEXT_COLUMNS = ("text", "sentence")


def list_file(ctx: ImportContext) -> Path:
    name = ctx.cfg.data.csv_list or str(ctx.settings(KEY).get("list", "")) or DEFAULT_NAME
    p = Path(name) if Path(name).is_absolute() else ctx.paths.sources / name
    if not p.is_file():
        raise MissingInputError(
            f"clip list {p} not found: put your 'path,transcript' list there (a header line naming "
            f"the columns, paths relative to the list) or set CSV_LIST=<file name in sources/>")
    return p


def download(ctx: ImportContext) -> Path:
    return list_file(ctx)


def extract(source: Path, ctx: ImportContext) -> Path:
    return source


def _delimiter(path: Path) -> str:
    with open(path, "rb") as fh:
        head = fh.readline().decode("utf-8", "replace")
    counts = {d: head.count(d) for d in (",", "\t", "|", ";")}
    return max(counts, key=lambda d: counts[d]) if any(counts.values()) else ","


def list_rows(root: Path, ctx: ImportContext) -> RowList:
    base = root.parent
    rows, bad = read_table(root, _delimiter(root), required=("path", "transcript"),
                           aliases={"path": PATH_COLUMNS, "transcript": TEXT_COLUMNS,
                                    "speaker": ("client_id",)}, nonempty=("path",))
    out = RowList(rejected=bad)
    for origin, r in rows:
        raw = r["path"]
        audio = Path(raw) if Path(raw).is_absolute() else base / raw
        try:
            rel = audio.resolve().relative_to(base.resolve()).as_posix()
        except ValueError:
            rel = f"external/{hashlib.sha1(raw.encode()).hexdigest()[:12]}_{Path(raw).name}"
        speaker = r.get("speaker") or (str(Path(rel).parent) if "/" in rel else "default")
        out.rows.append(SourceRow(key=rel, audio=audio, wav_rel=wav_rel_for(rel),
                                  transcript=r["transcript"], speaker=speaker, origin=origin))
    return out
