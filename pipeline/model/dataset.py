"""Training/eval input: CSV rows -> checked samples -> batch plans -> `tf.data` pipelines.

- Rows are checked once up front (file readable, 16 kHz mono, transcript encodable, CTC-feasible:
  frames >= labels + repeated adjacent labels). Anything the loss cannot handle is dropped with a
  counted, logged reason instead of crashing the run mid-epoch (DeepSpeech aborted or produced inf).
- Batches are planned in Python: samples sorted by duration, cut into batches of BATCH_SIZE (or of
  at most MAX_BATCH_SECONDS of audio), and the batch order is shuffled every epoch with a seed derived
  from RANDOM_SEED and the epoch (DeepSpeech never shuffled); with R replicas, groups of R
  neighbouring batches are shuffled instead, so one step's batches have similar lengths. A plan is
  deterministic, so resume can skip exactly the batches already trained.
- `tf.data`: one element per planned (per-replica) batch; wav decoding and MFCC run in-graph, batches
  in parallel, prefetched. Optionally features are computed once and served from memory.
"""

from __future__ import annotations

import array
import functools
import logging
import os
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.corpus_csv import read_rows
from pipeline.model.features import ctc_min_frames, num_frames
from pipeline.model.geometry import N_INPUT, SAMPLE_RATE
from pipeline.text.alphabet import Alphabet

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Samples:
    """Checked samples of one set, in CSV order."""

    paths: list[str]
    transcripts: list[str]
    labels: list[list[int]]
    frames: np.ndarray          # feature frames per sample
    rejected: Counter = field(default_factory=Counter)
    sample_rate: int = SAMPLE_RATE  # AUDIO_SAMPLE_RATE: every wav of the set has it

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def hours(self) -> float:
        return float(self.frames.sum()) * 0.02 / 3600.0

    def subset(self, n: int) -> Samples:
        return Samples(self.paths[:n], self.transcripts[:n], self.labels[:n], self.frames[:n],
                       self.rejected, self.sample_rate)

    @functools.cached_property
    def loaders(self) -> dict[Any, Any]:
        """The traced per-batch loaders of this set (`make_dataset`), by (cache, augmenter)."""
        return {}

    @functools.cached_property
    def tensors(self) -> SetTensors:
        """The per-sample constants the input pipeline needs, built once per set from numpy (not
        per epoch or per dev pass: `tf.ragged.constant` over 720k label lists takes minutes)."""
        return SetTensors.of(self)


@dataclass(frozen=True)
class SetTensors:
    """Labels (flat values + row lengths), CTC minimum frames and wav paths of a set, as numpy."""

    label_values: np.ndarray    # int32, all labels concatenated
    label_lengths: np.ndarray   # int64, one per sample
    min_frames: np.ndarray      # int32, ctc_min_frames per sample
    paths: np.ndarray           # bytes, one per sample

    @classmethod
    def of(cls, samples: Samples) -> SetTensors:
        lengths = np.fromiter((len(lab) for lab in samples.labels), np.int64, len(samples.labels))
        values = _flatten(samples.labels, "i", np.int32)
        # ctc_min_frames for every label at once: length + equal neighbours inside the label
        ends = np.cumsum(lengths)
        starts = ends - lengths
        same = np.zeros(len(values), np.int64)
        if len(values) > 1:
            same[1:] = values[1:] == values[:-1]
        same[starts[lengths > 0]] = 0  # a label's first character has no neighbour in that label
        csum = np.concatenate([[0], np.cumsum(same)])
        repeats = csum[ends] - csum[starts]
        paths = np.array([p.encode("utf-8") for p in samples.paths] or [b""], dtype=object)
        return cls(values, lengths, (lengths + repeats).astype(np.int32), paths)

    @functools.cached_property
    def tf(self) -> tuple[Any, Any, Any]:
        """(labels RaggedTensor, wav paths, CTC minimum frames) as TF constants, made once per set:
        every epoch's and dev pass's dataset shares them (no per-epoch copy of 700 k paths)."""
        import tensorflow as tf

        label_rt = tf.RaggedTensor.from_row_lengths(tf.constant(self.label_values, tf.int32),
                                                    tf.constant(self.label_lengths, tf.int64))
        min_frames = self.min_frames if len(self.min_frames) else np.zeros(1, np.int32)
        return label_rt, tf.constant(self.paths), tf.constant(min_frames, tf.int32)


def _flatten(lists: Sequence[Sequence[int]], code: str, dtype: Any) -> np.ndarray:
    """The lists concatenated into one numpy array, at C speed (`array.extend` per list; a
    generator into `np.fromiter` costs ~0.5 µs per element: 25 s for 700 k transcripts)."""
    buf = array.array(code)
    for item in lists:
        buf.extend(item)
    return np.frombuffer(buf, dtype=dtype) if len(buf) else np.zeros(0, dtype)


def _probe(path: str, sample_rate: int = SAMPLE_RATE) -> tuple[int, str | None]:
    import soundfile as sf

    try:
        info = sf.info(path)
    except Exception:
        return 0, "unreadable or missing wav"
    if info.samplerate != sample_rate:
        return 0, f"sample rate {info.samplerate} != {sample_rate}"
    if info.channels != 1:
        return 0, "not mono"
    if info.subtype != "PCM_16":
        return 0, f"not PCM16 ({info.subtype})"
    return int(info.frames), None


def load_samples(csv_files: Sequence[Path], alphabet: Alphabet, name: str = "set",
                 limit: int | None = None, sample_rate: int = SAMPLE_RATE) -> Samples:
    """Read and check the rows of `csv_files`; log a table of rejection reasons."""
    rows: list[tuple[str, str]] = []
    for f in csv_files:
        rows.extend((str(r.wav), r.transcript) for r in read_rows(Path(f)))
    if limit:
        rows = rows[:limit]
    with ThreadPoolExecutor(8) as pool:
        probes = list(pool.map(lambda p: _probe(p, sample_rate), [r[0] for r in rows]))
    paths, texts, labels, frames = [], [], [], []
    rejected: Counter = Counter()
    examples: dict[str, str] = {}
    for (path, text), (n_samples, problem) in zip(rows, probes, strict=False):
        if problem is None and not text.strip():
            problem = "empty transcript"
        if problem is None and alphabet.missing(text):
            problem = "characters not in the alphabet"
        ids: list[int] = []
        if problem is None:
            ids = alphabet.encode(text)
            if num_frames(n_samples, sample_rate) < ctc_min_frames(ids):
                problem = "audio too short for its transcript (CTC infeasible)"
        if problem is not None:
            rejected[problem] += 1
            examples.setdefault(problem, path)
            continue
        paths.append(path)
        texts.append(text)
        labels.append(ids)
        frames.append(num_frames(n_samples, sample_rate))
    for reason, count in rejected.most_common():
        log.warning("%s: dropped %d row(s): %s (e.g. %s)", name, count, reason, examples[reason])
    return Samples(paths, texts, labels, np.asarray(frames, np.int64), rejected, sample_rate)


# ---------------------------------------------------------------------------------------------
# Batch plans
# ---------------------------------------------------------------------------------------------
def plan_batches(frames: np.ndarray, batch_size: int, max_batch_seconds: float = 0.0,
                 shuffle_seed: int | None = None, group: int = 1) -> list[list[int]]:
    """Sample indices grouped into batches of similar length.

    Sorted by duration, cut into `batch_size` samples (or, with `max_batch_seconds`, as many as fit
    that much audio, at least one); the batch order is shuffled when a seed is given. With `group`
    = R replicas, R neighbouring batches stay together (one step of R replicas waits for its longest
    batch, so they must be alike) and the groups are shuffled; the batches left over (fewer than R)
    go last, where `replica_batch_order` drops them, and which ones they are changes every epoch.
    """
    order = np.argsort(frames, kind="stable")
    batches: list[list[int]] = []
    if max_batch_seconds > 0:
        budget = max_batch_seconds / 0.02
        cur: list[int] = []
        for i, f in zip(order.tolist(), np.asarray(frames)[order].tolist(), strict=True):
            # padded cost: the longest sample (the current one, sorted) times the batch size
            if cur and (len(cur) + 1) * f > budget:
                batches.append(cur)
                cur = []
            cur.append(i)
        if cur:
            batches.append(cur)
    else:
        batches = [order[s:s + batch_size].tolist() for s in range(0, len(order), batch_size)]
    if shuffle_seed is not None:
        rng = np.random.default_rng(shuffle_seed)
        if group <= 1:
            perm = rng.permutation(len(batches))
            batches = [batches[i] for i in perm]
        else:
            batches = _shuffle_groups(batches, group, rng)
    return batches


def _shuffle_groups(batches: list[list[int]], group: int, rng: np.random.Generator) -> list[list[int]]:
    full = len(batches) // group
    offset = int(rng.integers(0, len(batches) - full * group + 1))
    groups = [batches[offset + g * group: offset + (g + 1) * group] for g in range(full)]
    left = batches[:offset] + batches[offset + full * group:]
    return [b for g in rng.permutation(full) for b in groups[g]] + left


def replica_batch_order(n_batches: int, n_replicas: int, worker: int, local_replicas: int,
                        start_step: int = 0) -> tuple[list[int], int]:
    """Batch indices this input pipeline yields, and the number of steps per epoch.

    Step s uses plan batches s·R .. s·R+R−1; worker w feeds its local replicas l with batch
    s·R + w·L + l. A trailing group smaller than R is dropped so every replica does the same steps.
    """
    steps = n_batches // n_replicas
    order = [s * n_replicas + worker * local_replicas + j
             for s in range(start_step, steps) for j in range(local_replicas)]
    return order, steps


# FEATURE_CACHE may use at most this share of the memory available when training starts.
CACHE_MEMORY_SHARE = 0.5


def available_memory() -> int:
    """Bytes of memory available now (MemAvailable, Linux), else the physical total."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


class FeatureCache:
    """Features of a whole set computed once (parallel, in-graph) and kept in memory, stored as
    float16 (half the bytes; MFCCs need no more precision) in one preallocated array, and handed to
    the input pipeline as one RaggedTensor built once (no per-epoch copy)."""

    DTYPE = np.float16

    def __init__(self, samples: Samples):
        import tensorflow as tf

        from pipeline.model.features import wav_file_to_mfcc

        frames = np.asarray(samples.frames, np.int64)
        self.row_splits = np.concatenate([[0], np.cumsum(frames)]).astype(np.int64)
        self.values = np.zeros((int(self.row_splits[-1]), N_INPUT), self.DTYPE)
        rate = samples.sample_rate
        ds = tf.data.Dataset.from_tensor_slices(samples.paths).map(
            lambda p: wav_file_to_mfcc(p, rate), num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True)
        for i, f in enumerate(ds.prefetch(8)):
            a, b = self.row_splits[i], self.row_splits[i + 1]
            self.values[a:b] = f.numpy()[: b - a]
        self.tensor = tf.RaggedTensor.from_row_splits(tf.constant(self.values),
                                                      tf.constant(self.row_splits))

    @classmethod
    def bytes_needed(cls, samples: Samples) -> int:
        """Memory the cache of `samples` holds: its values twice at the peak (numpy + tensor)."""
        return 2 * int(np.asarray(samples.frames, np.int64).sum()) * N_INPUT * np.dtype(cls.DTYPE).itemsize

    @classmethod
    def build_if_it_fits(cls, samples: Samples, name: str,
                         available: int | None = None) -> FeatureCache | None:
        """The cache, or None with a log line saying why when it would use more than
        CACHE_MEMORY_SHARE of the available memory (FEATURE_CACHE is then off for this set)."""
        need = cls.bytes_needed(samples)
        avail = available_memory() if available is None else available
        if need > CACHE_MEMORY_SHARE * avail:
            log.warning("FEATURE_CACHE off for the %s set: it would need %.1f GiB, more than %d%% of the "
                        "%.1f GiB available; features are computed from the wavs every epoch",
                        name, need / 2**30, int(CACHE_MEMORY_SHARE * 100), avail / 2**30)
            return None
        log.info("FEATURE_CACHE: %s set, %.2f GiB (float16)", name, need / 2**30)
        return cls(samples)


def make_dataset(samples: Samples, batch_order: Sequence[int], plan: list[list[int]], *,
                 cache: FeatureCache | None = None, augment: Any = None,
                 parallel: int | None = None) -> Any:
    """A `tf.data.Dataset` of (features [B,T,26], feature_len [B], labels [B,U], label_len [B])
    for the plan batches listed in `batch_order`, in that order."""
    import tensorflow as tf

    # A fixed parallelism, not AUTOTUNE: with tf.data's autotuning on, destroying an epoch's
    # iterator waited for the autotuner's thread, up to 20 s at the end of about one epoch in
    # three (TF 2.21; the demo's 22 s epochs took 42 s; docs/training.md).
    workers = parallel if parallel is not None else (os.cpu_count() or 1)
    # this epoch's batches, from numpy (a Python list of 700 k ints into tf.constant takes seconds)
    flat = _flatten([plan[b] for b in batch_order], "q", np.int64)
    lens = np.fromiter((len(plan[b]) for b in batch_order), np.int64, len(batch_order))
    batch_members = tf.RaggedTensor.from_row_lengths(tf.constant(flat, tf.int64),
                                                     tf.constant(lens, tf.int64))
    load = batch_loader(samples, cache, augment)
    epoch = tf.constant(augment.epoch if augment is not None else 0, tf.int64)
    ds = tf.data.Dataset.range(len(batch_order)).map(lambda b: load(batch_members[b], epoch),
                                                     num_parallel_calls=workers, deterministic=True)
    options = tf.data.Options()
    options.autotune.enabled = False
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    return ds.with_options(options).prefetch(2)


def batch_loader(samples: Samples, cache: FeatureCache | None, augment: Any) -> Any:
    """(sample indices [B], epoch) -> one batch, as a `tf.function` traced once per set, feature
    cache and augmentation settings. Every epoch builds a new dataset (new batch order, new
    augmentation draws); tracing the loader (wav decoding, MFCC, augmentation, map_fn) each time
    cost about 0.3 s per dataset, more than a training step of a small model. The epoch is an
    argument, not a constant, so augmentation draws per epoch stay as before."""
    import tensorflow as tf

    from pipeline.model.features import audio_to_mfcc

    key = (cache, augment.for_epoch(0) if augment is not None else None)
    if key in samples.loaders:
        return samples.loaders[key]
    label_rt, path_t, min_frames = samples.tensors.tf  # built once per set
    feat_spec = tf.RaggedTensorSpec([None, N_INPUT], tf.float32, ragged_rank=0)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.int64), tf.TensorSpec([], tf.int64)])
    def load(idx: Any, epoch: Any) -> tuple[Any, Any, Any, Any]:
        aug = augment.for_epoch(epoch) if augment is not None else None

        def one(i: Any) -> Any:
            if cache is not None:
                feats = tf.cast(cache.tensor[i], tf.float32)
            else:
                audio, _rate = tf.audio.decode_wav(tf.io.read_file(path_t[i]), desired_channels=1)
                audio = audio[:, 0]
                if aug is not None:
                    audio = aug.audio(audio, i)
                feats = audio_to_mfcc(audio, samples.sample_rate)
            if aug is not None:
                feats = aug.features(feats, i, min_frames[i])
            return feats

        feats = tf.map_fn(one, idx, fn_output_signature=feat_spec)
        labels = tf.gather(label_rt, idx)
        return (feats.to_tensor(), tf.cast(feats.row_lengths(), tf.int32),
                labels.to_tensor(), tf.cast(labels.row_lengths(), tf.int32))

    samples.loaders[key] = load
    return load
