"""DeepSpeech CSVs: the one reader, the one writer, and the active corpora's split files.

The format is DeepSpeech's (`wav_filename,wav_filesize,transcript`, UTF-8, a relative
`wav_filename` is relative to the CSV's folder). Every stage that reads imported corpora goes
through `read_rows` (or `iter_rows`, one row at a time) and finds its files with `split_csvs`.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from pipeline.config import Config
from pipeline.errors import MissingInputError
from pipeline.faults import crashpoint
from pipeline.fsutil import atomic_write
from pipeline.paths import Paths

CSV_HEADER = ("wav_filename", "wav_filesize", "transcript")
SPLITS = ("train", "dev", "test")


@dataclass(frozen=True)
class CsvRow:
    wav: Path            # absolute (a relative wav_filename resolved against the CSV's folder)
    wav_filesize: int
    transcript: str


def read_rows(path: Path) -> list[CsvRow]:
    """All rows of a DeepSpeech CSV. Raises MissingInputError naming the file when it is absent or
    its header lacks `wav_filename`/`transcript`."""
    return list(iter_rows(path))


def iter_rows(path: Path) -> Iterator[CsvRow]:
    """The rows of a DeepSpeech CSV one at a time (a 700 k-row corpus is never held in memory by
    a pass that only looks at each row once); the same checks and errors as `read_rows`, raised
    when iteration starts."""
    if not path.is_file():
        raise MissingInputError(f"CSV {path} does not exist; run the import stage first")
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is None or not {"wav_filename", "transcript"} <= set(reader.fieldnames):
            raise MissingInputError(f"{path}: expected the header {','.join(CSV_HEADER)}, "
                                    f"got {reader.fieldnames}")
        for row in reader:
            wav = Path(row["wav_filename"])
            size = (row.get("wav_filesize") or "0").strip()
            yield CsvRow(wav if wav.is_absolute() else path.parent / wav,
                         int(size) if size.isdigit() else 0, row["transcript"] or "")


def write_rows(path: Path, rows: Iterable[tuple[str, int, str]]) -> int:
    """Write (wav_filename, wav_filesize, transcript) rows atomically; returns the row count."""
    n = 0
    with atomic_write(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(CSV_HEADER)
        for row in rows:
            w.writerow(row)
            crashpoint("import.csv_write")  # rows in the temp file, not yet renamed
            n += 1
    return n


def split_csvs(cfg: Config, paths: Paths, split: str, *, existing: bool = True) -> list[Path]:
    """`extracted/<corpus>/<corpus>_<split>.csv` of every active corpus (only those that exist,
    unless `existing=False`)."""
    found = [paths.corpus_csv(c, split) for c in cfg.active_corpora()]
    return [p for p in found if p.is_file()] if existing else found
