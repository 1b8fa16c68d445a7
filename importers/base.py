"""The importer contract: what every corpus module exposes, and the types that flow between them.

A corpus module (`importers/<key>.py`) exposes, at module level and with no work done at import:

    KEY: str                                   registry key = module name = output prefix
    TITLE: str                                 human name of the corpus
    download(ctx: ImportContext) -> Path       the archive (or list file) in sources/, fetched if
                                               the corpus is downloadable, checksum verified
    extract(source: Path, ctx) -> Path         the directory holding the corpus files
    list_rows(root: Path, ctx) -> RowList      every row of the corpus, in a deterministic order

Everything after `list_rows` is shared (`importers.engine`): a pure per-row function
`process_row(row, settings) -> Sample | Rejection` run in a worker pool, duplicate detection,
splits, CSV/quarantine/report writing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.config import Config
from pipeline.langs import LanguagePack
from pipeline.paths import Paths
from pipeline.text.normalize import EMPTY, INVALID, OUTSIDE

# Rejection reasons (the quarantine CSV's `reason` column and the report's keys).
MISSING_FILE = "missing_file"
EMPTY_FILE = "empty_file"
UNREADABLE_AUDIO = "unreadable_audio"
TOO_SHORT = "too_short"
TOO_LONG = "too_long"
CTC_INFEASIBLE = "ctc_infeasible"
# the transcript reasons are decided by the normalizer
EMPTY_TRANSCRIPT, INVALID_TRANSCRIPT, OUTSIDE_ALPHABET = EMPTY, INVALID, OUTSIDE
DUPLICATE_CLIP = "duplicate_clip"
BAD_ROW = "bad_row"                     # metadata line unusable (missing column, not UTF-8)
# Policy reasons: rows left out on purpose.
SKIP_LIST = "skip_list"
SENTENCE_LIMIT = "sentence_over_limit"  # DUPLICATE_SENTENCE_COUNT
SPLIT_OVERLAP = "split_overlap"          # would break speaker/sentence disjointness of the splits

POLICY_REASONS = frozenset({SKIP_LIST, SENTENCE_LIMIT, SPLIT_OVERLAP})
# Left out by the user's own settings: these do not count against MIN_KEPT_RATIO. Rows the split
# policy drops (SPLIT_OVERLAP) do count: a policy that drops most of a corpus must not pass silently.
UNCOUNTED_REASONS = frozenset({SKIP_LIST, SENTENCE_LIMIT})



@dataclass(frozen=True)
class ImportContext:
    """What an importer may look at. No globals: pool workers get explicit arguments."""

    cfg: Config
    paths: Paths
    pack: LanguagePack

    def settings(self, key: str) -> dict[str, Any]:
        """The language pack's `[corpus.<key>]` table."""
        return self.pack.corpus(key)

    def corpus_dir(self, key: str) -> Path:
        return self.paths.corpus_dir(key)

    def source_dir(self, key: str) -> Path:
        """Where the archive is extracted: `extracted/<key>/source/`."""
        return self.paths.corpus_dir(key) / "source"


@dataclass(frozen=True, slots=True)
class SourceRow:
    """One row as the corpus lists it, before any check."""

    key: str                  # unique within the corpus (e.g. the clip's relative path)
    audio: Path               # source audio file
    wav_rel: str              # output wav, relative to extracted/<corpus>/
    transcript: str           # raw transcript
    speaker: str
    split: str | None = None  # official split, if the corpus has one
    origin: str = ""          # where the row came from, e.g. "train.tsv:12"


@dataclass(frozen=True, slots=True)
class Sample:
    """A kept row: the converted wav exists and every check passed."""

    key: str
    wav_rel: str
    wav_filesize: int
    transcript: str           # normalized
    duration: float
    speaker: str
    split: str | None
    content_hash: str
    origin: str = ""
    folded: str = ""          # characters folded to a base letter, one per occurrence (ñ -> n)


@dataclass(frozen=True, slots=True)
class Rejection:
    """A quarantined row and why."""

    key: str
    reason: str
    detail: str = ""
    transcript: str = ""
    normalized: str = ""
    speaker: str = ""
    duration: float | None = None
    origin: str = ""


@dataclass
class RowList:
    """What `list_rows` returns."""

    rows: list[SourceRow] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)  # refused before audio is looked at
    official_splits: bool = False      # rows carry the corpus' own train/dev/test
    fixed_splits: bool = False         # rows carry the user's splits: used as given, overlap allowed
    max_clips_per_sentence: int = 0    # >0: keep at most N clips per sentence (CV rebuild)
    notes: list[str] = field(default_factory=list)


def rejection_from_row(row: SourceRow, reason: str, detail: str = "", normalized: str = "",
                       duration: float | None = None) -> Rejection:
    return Rejection(key=row.key, reason=reason, detail=detail, transcript=row.transcript,
                     normalized=normalized, speaker=row.speaker, duration=duration, origin=row.origin)


def rejection_from_sample(s: Sample, reason: str, detail: str = "") -> Rejection:
    """A kept sample quarantined after all (duplicate audio, split overlap, sentence limit)."""
    return Rejection(key=s.key, reason=reason, detail=detail, transcript=s.transcript,
                     normalized=s.transcript, speaker=s.speaker, duration=s.duration, origin=s.origin)


def wav_rel_for(audio_rel: str | Path) -> str:
    """Output wav path (relative to the corpus dir) for a source path relative to the data root."""
    return str(Path("wavs") / Path(audio_rel).with_suffix(".wav"))
