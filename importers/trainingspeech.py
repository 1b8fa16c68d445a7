"""TrainingSpeech (French audiobooks aligned with their text, by Nicolas Panel).

- Homepage: https://github.com/wasertech/TrainingSpeech (original project; the S3 bucket of the
  DeepSpeech importer returns 403, DeepSpeech issue #2092); mirror used by the seeds:
  https://deepspeech-storage-mirror.s3.fr-par.scw.cloud/2019-04-11_fr_FR.zip
- License: CC-BY-4.0 (per the project's README; check before redistributing a model).
- Archive: `ts_2019-04-11_fr_FR.zip` (the pack's `[corpus.trainingspeech] archive`); no published
  checksum — set `checksum = "sha256:…"` in the pack once you have verified a copy.
- Layout after extraction: a `data.csv` (columns `path,text,duration`, comma-separated, read by
  header name; a `speaker` column is used when present) and the audio files it names, paths relative
  to the csv's folder, at any depth below `extracted/trainingspeech/source/`.
- Quirks: no speaker column in the 2019 release: the speaker is the first folder of `path` (the book
  reader), else the file-name prefix before the last `_`. Transcripts contain typographic quotes,
  NBSP and `’`: the language pack normalizer handles them.
"""

from __future__ import annotations

from pathlib import Path

from importers.base import ImportContext, RowList, SourceRow, wav_rel_for
from importers.common import extract_source, fetch, read_table
from pipeline.errors import MissingInputError

KEY = "trainingspeech"
TITLE = "TrainingSpeech"
LICENSE = "CC-BY-4.0"


def download(ctx: ImportContext) -> Path:
    s = ctx.settings(KEY)
    return fetch(ctx, KEY, str(s.get("url", "")), str(s.get("archive", "")), str(s.get("checksum", "")))


def extract(source: Path, ctx: ImportContext) -> Path:
    return extract_source(source, ctx, KEY)


def _speaker(rel: str) -> str:
    parts = Path(rel).parts
    if len(parts) > 1:
        return parts[0]
    stem = Path(rel).stem
    return stem.rsplit("_", 1)[0] if "_" in stem else stem


def list_rows(root: Path, ctx: ImportContext) -> RowList:
    found = sorted(root.rglob("data.csv"))
    if not found:
        raise MissingInputError(f"{root}: no data.csv in the TrainingSpeech archive")
    data_csv = found[0]
    base = data_csv.parent
    rows, bad = read_table(data_csv, ",", required=("path", "text"),
                           aliases={"speaker": (), "duration": ()}, nonempty=("path",))
    out = RowList(rejected=bad)
    for origin, r in rows:
        rel = r["path"]
        out.rows.append(SourceRow(key=rel, audio=base / rel, wav_rel=wav_rel_for(rel),
                                  transcript=r["text"], speaker=r.get("speaker") or _speaker(rel),
                                  origin=origin))
    return out
