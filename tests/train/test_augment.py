"""Augmentation: syntax errors name the item; every augmentation runs in the input pipeline,
keeps CTC feasibility and is deterministic for a given (seed, epoch, sample)."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.errors import ConfigError
from pipeline.model.augment import build_augmenter, parse_augment


def test_parse() -> None:
    specs = parse_augment("specaugment, volume=-3:3@0.5, tempo=0.8:1.2, noise=20")
    assert [s.name for s in specs] == ["time_mask", "freq_mask", "volume", "tempo", "noise"]
    assert specs[2].p == 0.5 and (specs[3].low, specs[3].high) == (0.8, 1.2)
    assert specs[4].low == specs[4].high == 20
    for bad in ("warp", "tempo=1.2:0.8", "volume=3@2", "tempo=0:1"):
        with pytest.raises(ConfigError, match="AUGMENT"):
            parse_augment(bad)


def test_pipeline_applies_augmentations(tiny_corpus) -> None:
    from pipeline.model.dataset import ctc_min_frames, load_samples, make_dataset, plan_batches
    from pipeline.text.alphabet import Alphabet

    alphabet = Alphabet.from_file(tiny_corpus.alphabet)
    samples = load_samples([tiny_corpus.csvs["train"]], alphabet, "train", limit=8)
    plan = plan_batches(samples.frames, 4)
    order = list(range(len(plan)))

    def batches(aug):
        return [tuple(x.numpy() for x in b) for b in make_dataset(samples, order, plan, augment=aug)]

    plain = batches(None)
    aug = build_augmenter("volume,noise=10:20,speed,pitch,tempo,specaugment", seed=1)
    one = batches(aug.for_epoch(0))
    again = batches(aug.for_epoch(0))
    other = batches(aug.for_epoch(1))
    for (f, fl, _l, ll), (pf, _pfl, _pl, _pll) in zip(one, plain, strict=False):
        assert f.shape != pf.shape or not np.allclose(f, pf)
        assert all(fl >= ll)
    # tempo 2.5–3 (faster) compresses time, but never below what CTC needs for the label
    fast = batches(build_augmenter("tempo=2.5:3", seed=1))
    for (_f, fl, _l, ll), (_pf, pfl, _pl, _pll) in zip(fast, plain, strict=False):
        assert all(fl < pfl)
        assert all(fl >= ll)
    for a, b in zip(one, again, strict=False):
        np.testing.assert_array_equal(a[0], b[0])
    assert any(a[0].shape != b[0].shape or not np.array_equal(a[0], b[0])
               for a, b in zip(one, other, strict=False))
    mins = [ctc_min_frames(lab) for lab in samples.labels]
    assert min(mins) > 0
