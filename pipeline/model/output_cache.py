"""Acoustic outputs computed once and kept on disk for the test stage and lm_optimize.

Decoding is what those stages repeat (per test run, per alpha/beta trial); running the acoustic
model again each time is waste. The softmax outputs of a set of CSV rows are stored in one file,
`Paths.acoustic_cache(name)`: float16 (half the size of float32; 14 KB per 5 s clip with 29
classes), every clip's frames concatenated, with offsets, wav names and transcripts. The file is
valid for one key: a digest of the checkpoint's files (its identity), of the CSVs' content, of the
alphabet, the row limit and the sample rate. Any change recomputes and replaces it.

Both the first and the later runs decode the float16 values read back, so a cached run gives the
same transcripts as the run that filled the cache.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from pipeline.config import Config
from pipeline.fsutil import atomic_write, remove_stale_temps
from pipeline.model.inference import Utterance
from pipeline.paths import Paths

log = logging.getLogger(__name__)

FORMAT = 1
# How many times the acoustic model ran through `cached_outputs` in this process (tests read it).
COMPUTED = {"sets": 0, "utterances": 0}

Compute = Callable[[Config, Paths, list[Path], Path | None, int | None], list[Utterance]]


def _file_digest(h: hashlib.blake2b, path: Path) -> None:
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)


def checkpoint_identity(checkpoint: Path) -> str:
    """Digest of the checkpoint's files (names and content): equal only for the same weights."""
    h = hashlib.blake2b(digest_size=16)
    checkpoint = Path(checkpoint)
    files = sorted(p for p in checkpoint.rglob("*") if p.is_file()) if checkpoint.is_dir() else \
        sorted(checkpoint.parent.glob(checkpoint.name + ".*"))
    for p in files:
        h.update(p.name.encode() + b"\0")
        _file_digest(h, p)
    return h.hexdigest()


def cache_key(cfg: Config, paths: Paths, csv_files: Sequence[Path], checkpoint: Path,
              limit: int | None) -> str:
    h = hashlib.blake2b(digest_size=16)
    h.update(json.dumps({"format": FORMAT, "checkpoint": checkpoint_identity(checkpoint),
                         "limit": limit, "rate": cfg.data.audio_sample_rate}).encode())
    for f in [*csv_files, paths.alphabet]:
        h.update(str(Path(f).resolve()).encode() + b"\0")
        _file_digest(h, Path(f))
    return h.hexdigest()


def _save(path: Path, key: str, utts: Sequence[Utterance]) -> None:
    lengths = np.asarray([len(u.probs) for u in utts], np.int64)
    classes = utts[0].probs.shape[1] if utts else 0
    probs = (np.concatenate([u.probs for u in utts]).astype(np.float16) if utts
             else np.zeros((0, classes), np.float16))
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path.parent)  # a write cut short by a crash
    with atomic_write(path, "wb", encoding=None) as fh:
        np.savez(fh, key=np.asarray(key), probs=probs, offsets=np.concatenate([[0], np.cumsum(lengths)]),
                 wav=np.asarray([u.wav_filename for u in utts], dtype=str),
                 transcript=np.asarray([u.transcript for u in utts], dtype=str))


def _load(path: Path, key: str) -> list[Utterance] | None:
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["key"]) != key:
                return None
            probs, offsets = z["probs"], z["offsets"]
            wavs, texts = z["wav"].tolist(), z["transcript"].tolist()
    except (OSError, ValueError, KeyError):
        return None  # absent, partial or another format: recompute
    return [Utterance(w, t, probs[offsets[i]:offsets[i + 1]].astype(np.float32))
            for i, (w, t) in enumerate(zip(wavs, texts, strict=True))]


def _compute(cfg: Config, paths: Paths, csv_files: list[Path], checkpoint: Path | None,
             limit: int | None) -> list[Utterance]:
    from pipeline.model.inference import acoustic_outputs

    return acoustic_outputs(cfg, paths, csv_files, checkpoint=checkpoint, limit=limit)


def cached_outputs(cfg: Config, paths: Paths, csv_files: Sequence[Path], name: str,
                   checkpoint: Path | None = None, limit: int | None = None,
                   compute: Compute = _compute) -> list[Utterance]:
    """`acoustic_outputs` of `csv_files` (float16-rounded), from `Paths.acoustic_cache(name)` when
    it holds them for this checkpoint, CSVs and alphabet, else computed and stored there."""
    checkpoint = Path(checkpoint) if checkpoint else paths.best_checkpoint_dir
    csvs = [Path(c) for c in csv_files]
    path = paths.acoustic_cache(name)
    key = cache_key(cfg, paths, csvs, checkpoint, limit) if checkpoint.exists() else ""
    if key:
        utts = _load(path, key)
        if utts is not None:
            log.info("acoustic outputs of %s: %d utterances reused from %s", name, len(utts), path)
            return utts
    computed = compute(cfg, paths, csvs, checkpoint, limit)
    COMPUTED["sets"] += 1
    COMPUTED["utterances"] += len(computed)
    # the same float16 rounding as a cached run, so the transcripts never depend on the cache
    rounded = [Utterance(u.wav_filename, u.transcript, u.probs.astype(np.float16).astype(np.float32))
               for u in computed]
    try:
        _save(path, key, computed)
    except OSError as exc:  # a cache, not an output: a full disk here must not fail the stage
        log.warning("acoustic outputs of %s not cached (%s); they will be computed again next time",
                    name, exc)
        return rounded
    log.info("acoustic outputs of %s: %d utterances computed, cached in %s", name, len(computed), path)
    return rounded
