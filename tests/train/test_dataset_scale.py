"""The input pipeline at corpus scale (#14): per-set tensors are built once from numpy, never with
`tf.ragged.constant` per epoch or dev pass; the feature cache stays inside its memory bound."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from pipeline.model.dataset import FeatureCache, Samples, make_dataset, plan_batches
from pipeline.model.features import ctc_min_frames, num_frames


def _synthetic(n: int, seed: int = 0) -> Samples:
    """n samples whose labels look like transcripts (5-150 ids, some repeats); no audio needed to
    build the dataset's tensors."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(5, 150, n)
    labels = [rng.integers(0, 8, k).tolist() for k in lengths]  # a small alphabet: many repeats
    frames = (lengths * 3 + 10).astype(np.int64)
    return Samples([f"/nowhere/{i}.wav" for i in range(n)], ["x"] * n, labels, frames, Counter())


def test_set_tensors_match_the_per_sample_rules() -> None:
    s = _synthetic(2000)
    st = s.tensors
    assert st is s.tensors  # built once per set, reused by every epoch and dev pass
    assert st.label_lengths.tolist() == [len(lab) for lab in s.labels]
    assert st.label_values.tolist() == [c for lab in s.labels for c in lab]
    assert st.min_frames.tolist() == [ctc_min_frames(lab) for lab in s.labels]
    edge = Samples(["a", "b", "c", "d"], ["", "", "", ""], [[], [3, 3], [1], [2, 2, 2]],
                   np.array([1, 9, 9, 9]), Counter())
    assert edge.tensors.min_frames.tolist() == [0, 3, 1, 5]


def test_dataset_for_100k_samples_is_built_from_numpy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Building the dataset for 100 k samples never goes through `tf.ragged.constant` (16 s at 12 k
    rows and growing faster than linear, reference gpu-notes §3) and gives the right labels."""
    import tensorflow as tf

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("tf.ragged.constant in the input pipeline")

    monkeypatch.setattr(tf.ragged, "constant", forbidden)
    s = _synthetic(100_000)
    plan = plan_batches(s.frames, 64, shuffle_seed=1)
    for _epoch in range(2):  # a second epoch reuses the set's tensors
        ds = make_dataset(s, list(range(len(plan))), plan)
    label_rt = tf.RaggedTensor.from_row_lengths(s.tensors.label_values, s.tensors.label_lengths)
    idx = plan[0]
    assert tf.gather(label_rt, idx).to_list() == [s.labels[i] for i in idx]
    assert ds.element_spec[2].shape.as_list() == [None, None]
    # autotuning off: destroying an epoch's iterator waited up to 20 s for the autotuner's thread
    # (docs/training.md, "Training throughput on CPU"); a fixed parallelism instead
    assert ds.options().autotune.enabled is False


def _wav_samples(tmp_path: Path, n: int) -> Samples:
    rng = np.random.default_rng(3)
    paths, frames = [], []
    for i in range(n):
        x = (rng.standard_normal(16000 + 800 * i) * 0.05).astype(np.float32)
        p = tmp_path / f"{i}.wav"
        sf.write(p, x, 16000, subtype="PCM_16")
        paths.append(str(p))
        frames.append(num_frames(len(x)))
    return Samples(paths, ["ab"] * n, [[0, 1]] * n, np.array(frames, np.int64), Counter())


def test_feature_cache_refuses_to_exceed_its_memory_bound(tmp_path: Path,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    s = _wav_samples(tmp_path, 3)
    need = FeatureCache.bytes_needed(s)
    assert need == 2 * int(s.frames.sum()) * 26 * 2  # float16, numpy + tensor at the peak
    with caplog.at_level(logging.WARNING, logger="pipeline.model.dataset"):
        assert FeatureCache.build_if_it_fits(s, "train", available=need) is None
    assert "FEATURE_CACHE off for the train set" in caplog.text
    cache = FeatureCache.build_if_it_fits(s, "train", available=100 * need)
    assert cache is not None and cache.values.dtype == np.float16
    # the cached features are the ones the pipeline computes from the wavs, to float16 precision
    plan = [[0, 1, 2]]
    cached = next(iter(make_dataset(s, [0], plan, cache=cache)))
    direct = next(iter(make_dataset(s, [0], plan)))
    np.testing.assert_array_equal(cached[1].numpy(), direct[1].numpy())
    np.testing.assert_allclose(cached[0].numpy(), direct[0].numpy(), rtol=2e-3, atol=2e-2)


def test_second_epoch_copies_nothing_of_the_set(monkeypatch: pytest.MonkeyPatch) -> None:
    """An epoch's dataset makes TF constants only of its own batch order: the set's labels, paths
    and CTC minimum frames are converted once per set (a 700 k-row set's paths and labels took
    ~ 8 s per epoch to copy), and the batch order comes from numpy, not from a list of ints."""
    import tensorflow as tf

    s = _synthetic(20_000)
    plan = plan_batches(s.frames, 64, shuffle_seed=1)
    make_dataset(s, list(range(len(plan))), plan)  # the first epoch builds the set's constants
    made: list[object] = []
    real = tf.constant

    def counting(value: object, *args: object, **kwargs: object) -> object:
        made.append(value)
        return real(value, *args, **kwargs)

    monkeypatch.setattr(tf, "constant", counting)
    plan2 = plan_batches(s.frames, 64, shuffle_seed=2)
    ds = make_dataset(s, list(range(len(plan2))), plan2)
    arrays = [v for v in made if np.ndim(v) > 0]
    assert len(arrays) == 2 and all(isinstance(v, np.ndarray) for v in arrays), [type(v) for v in made]
    assert len(made) - len(arrays) <= 1  # and the epoch number (augmentation draws), a scalar
    assert sorted(len(v) for v in arrays) == [len(plan2), len(s)]  # batch sizes, batch members
    assert ds.element_spec[2].shape.as_list() == [None, None]
    label_rt = s.tensors.tf[0]
    assert s.tensors.tf[0] is label_rt  # cached on the set
    assert tf.gather(label_rt, plan2[0]).to_list() == [s.labels[i] for i in plan2[0]]


def test_plans_hold_python_ints() -> None:
    """Plans are lists of Python ints made at C speed (`tolist`), with and without a seconds budget."""
    s = _synthetic(3000)
    for plan in (plan_batches(s.frames, 64, shuffle_seed=1),
                 plan_batches(s.frames, 64, max_batch_seconds=30.0, shuffle_seed=1)):
        flat = [i for b in plan for i in b]
        assert sorted(flat) == list(range(3000))
        assert all(type(i) is int for i in flat)
