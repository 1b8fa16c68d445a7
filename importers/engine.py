"""Shared import machinery: per-row checks and conversion in a worker pool, duplicates, splits,
and the outputs (DeepSpeech CSVs, quarantine CSV, JSON report, log table).

Row order never depends on worker completion order (`Pool.imap` keeps input order, rows are
listed deterministically), so two runs with the same inputs and seed produce identical files.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import functools
import gc
import hashlib
import json
import logging
import multiprocessing
import os
import shutil
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from importers.base import (
    CTC_INFEASIBLE,
    DUPLICATE_CLIP,
    EMPTY_FILE,
    INVALID_TRANSCRIPT,
    MISSING_FILE,
    SENTENCE_LIMIT,
    SPLIT_OVERLAP,
    TOO_LONG,
    TOO_SHORT,
    UNCOUNTED_REASONS,
    UNREADABLE_AUDIO,
    ImportContext,
    Rejection,
    RowList,
    Sample,
    SourceRow,
    rejection_from_row,
    rejection_from_sample,
)
from pipeline import audio, mp3
from pipeline.config import FAST_TRAIN, SPLIT_POLICIES, Config
from pipeline.corpus_csv import SPLITS, write_rows
from pipeline.faults import crashpoint
from pipeline.fsutil import atomic_write, remove_stale_temps, write_json
from pipeline.model.features import ctc_min_frames
from pipeline.procs import die_with_parent
from pipeline.progress import Progress
from pipeline.text.normalize import TextRules, normalize_text, rules_for

log = logging.getLogger(__name__)

QUARANTINE_HEADER = ("source", "speaker", "transcript", "normalized", "reason", "detail", "duration",
                     "origin")
SPLIT_FRACTIONS = {"test": 0.1, "dev": 0.1, "train": 0.8}
CTC_FRAME_MS = 20
WAVS_MARKER = ".source.json"


@dataclass(frozen=True)
class RowSettings:
    """Per-row settings, passed explicitly to pool workers (no globals)."""

    corpus_dir: Path
    rules: TextRules
    min_duration: float
    max_duration: float
    sample_rate: int = audio.TARGET_RATE  # AUDIO_SAMPLE_RATE of the converted wavs
    normalize: bool = False               # AUDIO_NORMALIZE


def ctc_feasible(label: str, duration_s: float) -> bool:
    """CTC needs one frame per label plus a blank between equal neighbours (20 ms frames)."""
    return ctc_min_frames(label) <= int(duration_s * 1000 // CTC_FRAME_MS)


def process_row(row: SourceRow, settings: RowSettings) -> Sample | Rejection:
    """Check and convert one row. Pure apart from writing the row's own wav."""
    norm = normalize_text(row.transcript, settings.rules)
    normalized = norm.text or norm.attempt
    src = row.audio
    try:
        size = src.stat().st_size
    except (FileNotFoundError, NotADirectoryError):
        return rejection_from_row(row, MISSING_FILE, f"{src.name} is not in the archive", normalized)
    except OSError as exc:
        return rejection_from_row(row, UNREADABLE_AUDIO, str(exc), normalized)
    if size == 0:
        return rejection_from_row(row, EMPTY_FILE, "0 bytes", normalized)
    try:
        with open(src, "rb") as fh:
            content_hash = hashlib.file_digest(fh, "sha1").hexdigest()
    except OSError as exc:
        return rejection_from_row(row, UNREADABLE_AUDIO, str(exc), normalized)
    out = settings.corpus_dir / row.wav_rel
    existing = audio.is_target_wav(out, settings.sample_rate)
    pcm = None
    too_long = ""
    if existing is not None:
        duration = existing.duration
    else:
        try:
            # from the path: faster than a BytesIO; bounded: an hour-long file is not read whole
            samples, rate, _ = audio.decode(src, max_seconds=settings.max_duration,
                                             for_rate=settings.sample_rate)
        except audio.AudioTooLong as exc:
            duration, too_long = exc.duration, "" if exc.exact else str(exc)
        except audio.AudioError as exc:
            reason = EMPTY_FILE if "no audio samples" in str(exc) else UNREADABLE_AUDIO
            return rejection_from_row(row, reason, str(exc), normalized)
        else:
            duration = samples.size / rate
    if norm.text is None:
        return rejection_from_row(row, norm.reason or INVALID_TRANSCRIPT, norm.detail, normalized,
                                  duration)
    if duration < settings.min_duration:
        return rejection_from_row(row, TOO_SHORT, f"{duration:.2f}s < MIN_DURATION "
                                  f"{settings.min_duration:g}s", normalized, duration)
    if too_long or duration > settings.max_duration:
        return rejection_from_row(row, TOO_LONG, f"{too_long or f'{duration:.2f}s'} > MAX_DURATION "
                                  f"{settings.max_duration:g}s", normalized, duration)
    if not ctc_feasible(norm.text, duration):
        return rejection_from_row(row, CTC_INFEASIBLE, f"{len(norm.text)} characters in "
                                  f"{duration:.2f}s ({int(duration * 1000 // CTC_FRAME_MS)} frames)",
                                  normalized, duration)
    if existing is None:
        pcm = audio.to_16k_pcm16(samples, rate, settings.sample_rate, settings.normalize)
        audio.write_wav(out, pcm, settings.sample_rate)
        size = audio.WAV_HEADER_BYTES + 2 * pcm.size  # what write_wav just wrote
    else:
        size = out.stat().st_size
    return Sample(key=row.key, wav_rel=row.wav_rel, wav_filesize=size,
                  transcript=norm.text, duration=duration, speaker=row.speaker, split=row.split,
                  content_hash=content_hash, origin=row.origin, folded=norm.folded)


@contextlib.contextmanager
def _worker_pool(workers: int, ctx: Any) -> Iterator[ProcessPoolExecutor]:
    """A process pool that stops cleanly when the caller's loop raises (disk full, a fault).

    Not `multiprocessing.Pool`: its terminate() can hang for ever when an exception leaves an
    `imap` loop while the task feeder is mid-put (seen about 1 run in 10 on a full disk), and it
    hangs too when a worker is killed. Here pending chunks are cancelled, running ones finish
    (a chunk is a few clips), and a killed worker raises BrokenProcessPool.
    """
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=die_with_parent,
                               initargs=(os.getpid(),))
    try:
        yield pool
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def run_rows(rows: Sequence[SourceRow], settings: RowSettings, workers: int,
             label: str = "convert") -> list[Sample | Rejection]:
    """`process_row` over `rows` in a process pool; results in input order."""
    results: list[Sample | Rejection] = []
    with Progress(len(rows), label, "clips") as prog:
        if workers <= 1 or len(rows) < 8:
            for row in rows:
                results.append(process_row(row, settings))
                crashpoint("import.convert")  # after each converted clip (`:n` = after n clips)
                prog.update()
            return results
        # fork: workers inherit the imported modules (fast start); they read nothing global.
        ctx = multiprocessing.get_context("fork")
        chunk = max(1, min(32, len(rows) // (workers * 8)))
        # Frozen objects are never scanned by the workers' garbage collector, so the parent's
        # heap (every row of a 700 k-clip corpus) is not copied page by page into each worker.
        gc.freeze()
        try:
            with _worker_pool(workers, ctx) as pool:
                # The settings travel once per chunk (inside the partial), not once per row.
                convert = functools.partial(process_row, settings=settings)
                for res in pool.map(convert, rows, chunksize=chunk):
                    results.append(res)
                    crashpoint("import.convert")
                    prog.update()
        finally:
            gc.unfreeze()
    return results


# ---------------------------------------------------------------------------------------------
# Splits
# ---------------------------------------------------------------------------------------------
def _rank(seed: int, name: str) -> str:
    return hashlib.sha256(f"{seed}:{name}".encode()).hexdigest()


DEFAULT_SPLIT_POLICY = SPLIT_POLICIES[0]
# Tried in this order when the default policy drops too much (a small vocabulary repeats its
# sentences across speakers, so speaker- and sentence-disjointness together leave almost nothing).
FALLBACK_POLICIES = ("speaker", "sentence", "none")


def assign_splits(samples: list[Sample], official: bool, seed: int,
                  policy: str = DEFAULT_SPLIT_POLICY
                  ) -> tuple[dict[str, list[Sample]], list[Rejection], dict[str, Any]]:
    """Deterministic train/dev/test under a SPLIT_POLICY.

    Official splits are kept as given. Otherwise units are dealt to the split furthest below its
    share (10 % test, 10 % dev), in an order fixed by hashing the seed and the unit's name. The unit
    is the speaker for `speaker+sentence` and `speaker` (with fewer than 3 speakers: the sentence,
    resp. the row, since speaker disjointness is impossible), the sentence for `sentence`, the row
    for `none`. Under `speaker+sentence` overlaps are then removed with priority test > dev > train:
    a row whose sentence (or, when possible, speaker) is already in a higher split is quarantined
    as `split_overlap`. The other policies are disjoint by construction and drop nothing.
    """
    if policy not in SPLIT_POLICIES:
        raise ValueError(f"SPLIT_POLICY={policy!r}: expected one of {', '.join(SPLIT_POLICIES)}")
    info: dict[str, Any] = {"method": "official" if official else "speaker", "policy": policy}
    # Column form: each row's speaker, sentence and unit as integer ids, found in one pass each;
    # the rest is array work. (Walking the Sample objects again per step made the per-row cost
    # grow with the corpus once the rows no longer fit in the CPU cache: issue #14.)
    n = len(samples)
    keys = [s.key for s in samples]
    speaker = _ids(s.speaker for s in samples)
    sentence = _ids(s.transcript for s in samples)
    remove_overlap = official or policy == DEFAULT_SPLIT_POLICY
    if official:
        split_of_row = np.fromiter((SPLITS_PRIORITY.index(s.split if s.split in SPLITS else "train")
                                    for s in samples), np.int64, n)
        speaker_disjoint = True
        sentence_disjoint = True
    else:
        speaker_disjoint = policy in ("speaker+sentence", "speaker") and len(speaker.names) >= 3
        sentence_disjoint = policy in ("speaker+sentence", "sentence")
        if speaker_disjoint:
            units = speaker
        else:
            if policy == "speaker+sentence":
                info["note"] = (f"only {len(speaker.names)} speaker(s): splits are sentence-disjoint "
                                f"but cannot be speaker-disjoint")
            elif policy == "speaker":
                info["note"] = (f"only {len(speaker.names)} speaker(s): splits cannot be "
                                f"speaker-disjoint (rows dealt one by one)")
            units = sentence if sentence_disjoint else _Ids(keys, np.arange(n))
            info["method"] = "sentence" if sentence_disjoint else "row"
        size = np.bincount(units.of_row, minlength=len(units.names)).tolist()
        split_of_unit = np.zeros(len(units.names), np.int64)
        counts = [0] * len(SPLITS_PRIORITY)
        share = [SPLIT_FRACTIONS[sp] * n for sp in SPLITS_PRIORITY]
        for u in sorted(range(len(units.names)), key=lambda u: _rank(seed, units.names[u])):
            # to the split furthest below its share (ties: test, dev, train)
            target = min(range(len(counts)), key=lambda k: (counts[k] / share[k], k))
            split_of_unit[u] = target
            counts[target] += size[u]
        split_of_row = split_of_unit[units.of_row]
    # overlaps removed with priority test > dev > train; `clash`: dropped for its sentence
    kept = np.zeros(n, bool)
    clash = np.zeros(n, bool)
    sentence_seen = np.zeros(len(sentence.names), bool)
    speaker_seen = np.zeros(len(speaker.names), bool)
    for k in range(len(SPLITS_PRIORITY)):
        here = split_of_row == k
        if remove_overlap:
            clash |= here & sentence_seen[sentence.of_row]
            here &= ~sentence_seen[sentence.of_row]
            if speaker_disjoint:
                here &= ~speaker_seen[speaker.of_row]
        kept |= here
        sentence_seen[sentence.of_row[here]] = True
        speaker_seen[speaker.of_row[here]] = True
    label = np.where(kept, split_of_row, -1).tolist()
    clash_of = clash.tolist()
    buckets: list[list[Sample]] = [[] for _ in SPLITS_PRIORITY]
    overlap: list[Rejection] = []
    for i in sorted(range(n), key=keys.__getitem__):
        if label[i] >= 0:
            buckets[label[i]].append(samples[i])
        else:
            what = "sentence" if clash_of[i] else "speaker"
            overlap.append(rejection_from_sample(samples[i], SPLIT_OVERLAP,
                                                 f"{what} already in a higher-priority split"))
    info["speaker_disjoint"] = speaker_disjoint
    info["sentence_disjoint"] = sentence_disjoint
    return {sp: buckets[SPLITS_PRIORITY.index(sp)] for sp in SPLITS}, overlap, info


@dataclass(frozen=True)
class _Ids:
    """Distinct values in first-seen order (`names`) and each row's index into them (`of_row`)."""

    names: list[str]
    of_row: Any  # np.ndarray[int64]


def _ids(values: Iterable[str]) -> _Ids:
    index: dict[str, int] = {}
    of_row = np.fromiter((index.setdefault(v, len(index)) for v in values), np.int64)
    return _Ids(list(index), of_row)


def choose_splits(samples: list[Sample], official: bool, seed: int, policy: str,
                  min_kept_ratio: float
                  ) -> tuple[dict[str, list[Sample]], list[Rejection], dict[str, Any]]:
    """`assign_splits` under `policy`; the default policy falls back to the first of
    FALLBACK_POLICIES that keeps at least `min_kept_ratio` of the rows and a non-empty train split
    when it would not (the info's `fallback` says from what, why and to what)."""
    splits, overlap, info = assign_splits(samples, official, seed, policy)
    if official or policy != DEFAULT_SPLIT_POLICY or not samples:
        return splits, overlap, info
    kept = 1 - len(overlap) / len(samples)
    if kept >= min_kept_ratio and splits["train"]:
        return splits, overlap, info
    why = (f"would keep {len(samples) - len(overlap)} of {len(samples)} rows ({100 * kept:.1f}% < "
           f"MIN_KEPT_RATIO={min_kept_ratio:g})" if kept < min_kept_ratio
           else "would leave the train split empty")
    for alt in FALLBACK_POLICIES:
        s2, o2, i2 = assign_splits(samples, official, seed, alt)
        if alt == "speaker" and not i2["speaker_disjoint"]:
            continue  # fewer than 3 speakers: "speaker" would only be a row split
        if s2["train"] and 1 - len(o2) / len(samples) >= min_kept_ratio:
            i2["fallback"] = {"from": policy, "to": alt, "reason": why}
            note = (f"SPLIT_POLICY fallback: {policy} {why} (the corpus repeats its sentences "
                    f"across speakers, e.g. a small vocabulary): splits made with SPLIT_POLICY={alt} "
                    f"instead; set SPLIT_POLICY explicitly to choose")
            i2["note"] = f"{i2['note']}; {note}" if i2.get("note") else note
            log.warning("%s", note)
            return s2, o2, i2
    return splits, overlap, info


SPLITS_PRIORITY = ("test", "dev", "train")


def splits_as_given(samples: list[Sample]
                    ) -> tuple[dict[str, list[Sample]], list[Rejection], dict[str, Any]]:
    """The user's own splits (TRAIN_FILES..., a `split` column): nothing moved, nothing removed.

    Overlap between splits is allowed (DeepSpeech's overfit smoke test uses one clip for all
    three) and counted per pair of splits: clips (same source file) and sentences.
    """
    assigned: dict[str, list[Sample]] = {sp: [] for sp in SPLITS}
    for s in samples:
        assigned[s.split or "train"].append(s)
    for sp in SPLITS:
        assigned[sp].sort(key=lambda s: s.key)
    pairs: dict[str, dict[str, int]] = {}
    clips: set[str] = set()
    sentences: set[str] = set()
    for i, a in enumerate(SPLITS):
        for b in SPLITS[i + 1:]:
            shared_clips = {s.key for s in assigned[a]} & {s.key for s in assigned[b]}
            shared_sent = {s.transcript for s in assigned[a]} & {s.transcript for s in assigned[b]}
            if shared_clips or shared_sent:
                pairs[f"{a}/{b}"] = {"clips": len(shared_clips), "sentences": len(shared_sent)}
            clips |= shared_clips
            sentences |= shared_sent
    note = "; ".join(f"{pair} share {n['clips']} clip(s) and {n['sentences']} sentence(s)"
                     for pair, n in pairs.items())
    info: dict[str, Any] = {"method": "as given", "speaker_disjoint": None,
                            "sentence_disjoint": not sentences,
                            "overlap": {"clips": len(clips), "sentences": len(sentences),
                                        "pairs": pairs}}
    if note:
        info["note"] = (f"splits used as given (TRAIN_FILES/DEV_FILES/TEST_FILES or a split "
                        f"column); {note}")
    return assigned, [], info


def _as_listed(res: Sample | Rejection, row: SourceRow) -> Sample | Rejection:
    """A clip's check result for one of its listings (its own split and origin)."""
    if isinstance(res, Sample):
        return dataclasses.replace(res, split=row.split, origin=row.origin)
    return dataclasses.replace(res, origin=row.origin)


# ---------------------------------------------------------------------------------------------
# Outputs
# ---------------------------------------------------------------------------------------------
def write_csv(path: Path, samples: Iterable[Sample]) -> int:
    return write_rows(path, ((s.wav_rel, s.wav_filesize, s.transcript) for s in samples))


def write_quarantine(path: Path, rejections: Iterable[Rejection]) -> None:
    with atomic_write(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(QUARANTINE_HEADER)
        for r in rejections:
            w.writerow((r.key, r.speaker, r.transcript, r.normalized, r.reason, r.detail,
                        "" if r.duration is None else f"{r.duration:.3f}", r.origin))


@dataclass
class ImportReport:
    corpus: str
    language: str
    source: str
    rows_total: int = 0
    rows_kept: int = 0
    rows_considered: int = 0   # total minus rows the settings leave out (skip lists, sentence limits)
    kept_ratio: float = 0.0
    hours_total: float = 0.0
    hours_kept: float = 0.0
    speakers_total: int = 0
    speakers_kept: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    splits: dict[str, dict[str, float]] = field(default_factory=dict)
    split_method: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    elapsed_s: float = 0.0
    # characters folded to a base letter in the kept rows: char -> {to, count, rows, examples}
    folded: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def table(self) -> str:
        """A plain-text table for the log."""
        lines = [f"import report: {self.corpus} ({self.source})",
                 f"  rows {self.rows_total}, kept {self.rows_kept} "
                 f"({100 * self.kept_ratio:.1f}% of {self.rows_considered} considered)",
                 f"  hours kept {self.hours_kept:.3f} / total {self.hours_total:.3f}; speakers kept "
                 f"{self.speakers_kept} / {self.speakers_total}; {self.elapsed_s:.1f}s"]
        if self.folded:
            lines.append("  folded to a base letter (not in the alphabet; STRICT_ALPHABET=1 "
                         "quarantines instead):")
            for ch, d in self.folded.items():
                lines.append(f"    {ch!r} -> {d['to']!r}: {d['count']} times in {d['rows']} rows")
        if self.reasons:
            lines.append(f"  {'reason':<22}{'rows':>8}")
            for reason, n in sorted(self.reasons.items(), key=lambda kv: (-kv[1], kv[0])):
                lines.append(f"  {reason:<22}{n:>8}")
        sm = self.split_method
        if sm.get("policy"):
            fb = sm.get("fallback")
            lines.append(f"  splits by {sm.get('method')}, SPLIT_POLICY={sm['policy']}"
                         + (f" (fallback from {fb['from']}: it {fb['reason']})" if fb else ""))
        lines.append(f"  {'split':<8}{'rows':>8}{'hours':>10}{'speakers':>10}")
        for sp in SPLITS:
            d = self.splits.get(sp, {})
            lines.append(f"  {sp:<8}{int(d.get('rows', 0)):>8}{d.get('hours', 0.0):>10.3f}"
                         f"{int(d.get('speakers', 0)):>10}")
        return "\n".join(lines)


def _fast_train_limit(rl: RowList, seed: int) -> int:
    """FAST_TRAIN: keep a few hundred rows, chosen by hash (not by position)."""
    before = len(rl.rows)
    ranked = sorted(rl.rows, key=lambda r: _rank(seed, r.key))
    if rl.official_splits or rl.fixed_splits:
        keep: list[SourceRow] = []
        for sp, n in FAST_TRAIN.import_rows:
            keep += [r for r in ranked if r.split == sp][:n]
    else:
        keep = ranked[:FAST_TRAIN.import_total]
    keep_keys = {r.key for r in keep}
    rl.rows = [r for r in rl.rows if r.key in keep_keys]
    return before - len(rl.rows)


def _workers(cfg_workers: int) -> int:
    return cfg_workers or (os.cpu_count() or 1)


def prepare_wavs_dir(corpus_dir: Path, identity: dict[str, Any]) -> None:
    """Converted wavs are reused only if they came from the same source archive."""
    wavs = corpus_dir / "wavs"
    marker = wavs / WAVS_MARKER
    try:
        same = json.loads(marker.read_text(encoding="utf-8")) == identity
    except (OSError, ValueError):
        same = False
    if not same:
        shutil.rmtree(wavs, ignore_errors=True)
        wavs.mkdir(parents=True, exist_ok=True)
        write_json(marker, identity)
    else:
        # temp files of workers killed mid-write (crash, disk full): never under a final name
        remove_stale_temps(wavs, recursive=True)


def import_rows(key: str, rl: RowList, ctx: ImportContext, source_name: str,
                identity: dict[str, Any]) -> ImportReport:
    """Run the shared pipeline on the rows of one corpus and write all its outputs: listings
    deduplicated, each clip checked and converted once (in parallel), duplicate audio dropped, the
    per-sentence limit, the splits, then the CSVs, the quarantine and the report."""
    cfg, paths = ctx.cfg, ctx.paths
    start = time.monotonic()
    corpus_dir = paths.corpus_dir(key)
    corpus_dir.mkdir(parents=True, exist_ok=True)
    # wavs converted at another level are not reused (no key when off: older data dirs' wavs are raw)
    prepare_wavs_dir(corpus_dir, {**identity, "level_dbfs": audio.SPEECH_LEVEL_DBFS}
                     if cfg.data.audio_normalize else identity)
    report = ImportReport(corpus=key, language=ctx.pack.code, source=source_name,
                          notes=list(rl.notes))
    seed = cfg.general.random_seed
    if cfg.general.fast_train:
        dropped = _fast_train_limit(rl, seed)
        if dropped:
            report.notes.append(f"FAST_TRAIN=1: {dropped} rows not imported (limit "
                                f"{FAST_TRAIN.import_total})")
    rejections: list[Rejection] = list(rl.rejected)
    unique_rows = _dedupe_listings(rl, rejections)
    rules = rules_for(ctx.pack, cfg.data.english_compatible, cfg.data.strict_alphabet)
    if cfg.data.bytes_output_mode:
        rules = dataclasses.replace(rules, bytes_output_mode=True)
    settings = RowSettings(corpus_dir=corpus_dir, rules=rules,
                           min_duration=cfg.data.min_duration, max_duration=cfg.data.max_duration,
                           sample_rate=cfg.data.audio_sample_rate, normalize=cfg.data.audio_normalize)
    results = _convert_once(key, unique_rows, settings, _workers(cfg.general.workers))
    samples = _dedupe_audio(results, rl.fixed_splits, rejections)
    if rl.max_clips_per_sentence > 0:
        samples, limited = _limit_per_sentence(samples, rl.max_clips_per_sentence, seed)
        rejections += limited
    if rl.fixed_splits:
        splits, overlap, info = splits_as_given(samples)
        if info["overlap"]["clips"] or info["overlap"]["sentences"]:
            log.warning("%s: splits used as given overlap: %s", key, info["note"])
    else:
        splits, overlap, info = choose_splits(samples, rl.official_splits, seed, cfg.data.split_policy,
                                              cfg.data.min_kept_ratio)
    rejections += overlap
    report.split_method = info
    if info.get("note") and not rl.fixed_splits:  # fixed splits: logged as a warning above
        report.notes.append(info["note"])

    for sp in SPLITS:
        write_csv(paths.corpus_csv(key, sp), splits[sp])
    rejections.sort(key=lambda r: (r.reason, r.key))
    write_quarantine(paths.corpus_quarantine(key), rejections)
    _fill_report(report, rl, samples, splits, rejections, settings, cfg)
    report.elapsed_s = round(time.monotonic() - start, 2)
    write_json(paths.corpus_report(key), report.to_json())
    return report


def _dedupe_listings(rl: RowList, rejections: list[Rejection]) -> list[SourceRow]:
    """The same clip listed twice (e.g. in two TSVs): keep the first listing. With splits used as
    given, a clip may be listed once per split (an overfit test lists it in all three)."""
    seen: set[tuple[str | None, str]] = set()
    unique_rows: list[SourceRow] = []
    for r in rl.rows:
        listing = (r.split if rl.fixed_splits else None, r.key)
        if listing in seen:
            rejections.append(rejection_from_row(r, DUPLICATE_CLIP, "listed twice"
                                                 + (f" in {r.split}" if rl.fixed_splits else "")))
        else:
            seen.add(listing)
            unique_rows.append(r)
    return unique_rows


def _convert_once(key: str, rows: list[SourceRow], settings: RowSettings,
                  workers: int) -> list[Sample | Rejection]:
    """Check and convert each clip once (even when listed in several splits), one result per
    listing; a full disk or a killed worker becomes one clear error."""
    first_listing: dict[str, SourceRow] = {}
    for r in rows:
        first_listing.setdefault(r.key, r)
    if first_listing:
        log.info("%s: checking and converting %d clips with %d workers; MP3 decoder: %s", key,
                 len(first_listing), workers, mp3.describe())
    try:
        converted = run_rows(list(first_listing.values()), settings, workers, f"import {key}")
    except OSError as exc:  # raised in a pool worker: name the directory being filled
        from pipeline.fsutil import disk_full_error, is_disk_full

        if is_disk_full(exc):
            raise disk_full_error(exc, settings.corpus_dir / "wavs") from None
        raise
    except BrokenProcessPool:
        from pipeline.errors import PipelineError

        raise PipelineError(f"a worker converting {key} clips died (killed by the system, e.g. out of "
                            f"memory: lower WORKERS); rerun to continue, converted clips are kept") from None
    by_key = {r.key: res for r, res in zip(first_listing.values(), converted, strict=True)}
    return [_as_listed(by_key[r.key], r) for r in rows]


def _dedupe_audio(results: list[Sample | Rejection], fixed_splits: bool,
                  rejections: list[Rejection]) -> list[Sample]:
    """Kept samples; rejections, and clips whose audio bytes another kept clip already has (per
    split when the splits are given), go to `rejections`."""
    samples: list[Sample] = []
    seen_hash: dict[tuple[str | None, str], str] = {}
    for res in results:
        if isinstance(res, Rejection):
            rejections.append(res)
            continue
        same_audio = (res.split if fixed_splits else None, res.content_hash)
        if same_audio in seen_hash:
            rejections.append(rejection_from_sample(res, DUPLICATE_CLIP,
                                                    f"same audio bytes as {seen_hash[same_audio]}"))
        else:
            seen_hash[same_audio] = res.key
            samples.append(res)
    return samples


def _fill_report(report: ImportReport, rl: RowList, samples: list[Sample],
                 splits: dict[str, list[Sample]], rejections: list[Rejection], settings: RowSettings,
                 cfg: Config) -> None:
    """Counts, reasons with examples, hours and speakers, per split and in total."""
    kept = [s for sp in SPLITS for s in splits[sp]]
    reasons = Counter(r.reason for r in rejections)
    # rows left out by the user's own settings; split overlap counts (issue #16)
    policy = sum(n for r, n in reasons.items() if r in UNCOUNTED_REASONS)
    report.rows_total = len(kept) + len(rejections)
    report.rows_kept = len(kept)
    report.rows_considered = report.rows_total - policy
    report.kept_ratio = round(len(kept) / report.rows_considered, 4) if report.rows_considered else 0.0
    report.reasons = dict(sorted(reasons.items()))
    examples: dict[str, list[dict[str, str]]] = defaultdict(list)
    for rej in rejections:
        if len(examples[rej.reason]) < 3:
            examples[rej.reason].append({"source": rej.key, "transcript": rej.transcript,
                                         "detail": rej.detail})
    report.examples = dict(examples)
    report.folded = folded_summary(samples, settings.rules.alphabet_set)
    all_durations = [s.duration for s in samples] + [r.duration for r in rejections
                                                     if r.duration is not None
                                                     and r.reason != SPLIT_OVERLAP]
    report.hours_total = round(sum(all_durations) / 3600, 4)
    report.hours_kept = round(sum(s.duration for s in kept) / 3600, 4)
    report.speakers_total = len({r.speaker for r in rl.rows} | {r.speaker for r in rl.rejected})
    report.speakers_kept = len({s.speaker for s in kept})
    report.splits = {sp: {"rows": len(splits[sp]),
                          "hours": round(sum(s.duration for s in splits[sp]) / 3600, 4),
                          "speakers": len({s.speaker for s in splits[sp]})} for sp in SPLITS}
    report.settings = {"MIN_DURATION": cfg.data.min_duration, "MAX_DURATION": cfg.data.max_duration,
                       "ENGLISH_COMPATIBLE": cfg.data.english_compatible,
                       "DUPLICATE_SENTENCE_COUNT": cfg.data.duplicate_sentence_count,
                       "RANDOM_SEED": cfg.general.random_seed, "FAST_TRAIN": cfg.general.fast_train,
                       "STRICT_ALPHABET": cfg.data.strict_alphabet,
                       "BYTES_OUTPUT_MODE": cfg.data.bytes_output_mode}


def folded_summary(samples: Iterable[Sample], alphabet: frozenset[str]) -> dict[str, dict[str, Any]]:
    """Per folded character: the letter(s) it became, occurrences, rows and a few examples."""
    from pipeline.text.normalize import fold_target

    out: dict[str, dict[str, Any]] = {}
    for s in samples:
        for ch in sorted(set(s.folded)):
            d = out.setdefault(ch, {"to": fold_target(ch, alphabet), "count": 0, "rows": 0,
                                    "examples": []})
            d["count"] += s.folded.count(ch)
            d["rows"] += 1
            if len(d["examples"]) < 3:
                d["examples"].append({"source": s.key, "transcript": s.transcript})
    return dict(sorted(out.items(), key=lambda kv: (-kv[1]["count"], kv[0])))


def _limit_per_sentence(samples: list[Sample], n: int, seed: int
                        ) -> tuple[list[Sample], list[Rejection]]:
    """At most `n` clips per sentence, chosen by hashing the seed and the clip's key."""
    sentence = _ids(s.transcript for s in samples)
    crowded = np.bincount(sentence.of_row, minlength=len(sentence.names)) > n
    groups: dict[int, list[int]] = defaultdict(list)  # only sentences with more than n clips
    for i in np.flatnonzero(crowded[sentence.of_row]).tolist():
        groups[int(sentence.of_row[i])].append(i)
    drop = np.zeros(len(samples), bool)
    out: list[Rejection] = []
    for _, group in sorted(groups.items()):  # sentences in first-seen order
        for i in sorted(group, key=lambda i: _rank(seed, samples[i].key))[n:]:
            drop[i] = True
            out.append(rejection_from_sample(
                samples[i], SENTENCE_LIMIT, f"more than DUPLICATE_SENTENCE_COUNT={n} clips of this sentence"))
    return [s for s, d in zip(samples, drop.tolist(), strict=True) if not d], out


__all__ = ["ImportReport", "RowSettings", "assign_splits", "choose_splits", "ctc_feasible",
           "splits_as_given",
           "import_rows", "process_row", "run_rows", "TOO_SHORT", "TOO_LONG",
           "CTC_INFEASIBLE", "UNREADABLE_AUDIO"]
