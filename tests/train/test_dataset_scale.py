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
