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
    def feasible(batch) -> bool:
        _f, fl, labels, ll = batch
        return all(int(fl[j]) >= ctc_min_frames(list(labels[j, :ll[j]])) for j in range(len(fl)))

    assert len(one) == len(plain) == len(plan)
    for (f, *_), (pf, *_) in zip(one, plain, strict=True):
        assert f.shape != pf.shape or not np.allclose(f, pf)
    assert all(feasible(b) for b in one)
    # tempo 2.5–3 (faster) compresses time, but never below what CTC needs for the label
    fast = batches(build_augmenter("tempo=2.5:3", seed=1))
    for (_f, fl, *_), (_pf, pfl, *_) in zip(fast, plain, strict=True):
        assert all(fl < pfl)
    assert all(feasible(b) for b in fast)
    for a, b in zip(one, again, strict=True):
        np.testing.assert_array_equal(a[0], b[0])
    assert any(a[0].shape != b[0].shape or not np.array_equal(a[0], b[0])
               for a, b in zip(one, other, strict=True))


def test_tempo_stops_at_ctc_need_counting_repeats(tiny_corpus) -> None:
    """A tempo far beyond any clip's slack lands exactly on `ctc_min_frames`: one frame per label
    plus a blank between equal neighbours (a floor of just len(label) frames would make CTC
    infeasible for 'aaaaa', which needs 9)."""
    import dataclasses

    from pipeline.model.dataset import ctc_min_frames, load_samples, make_dataset, plan_batches
    from pipeline.text.alphabet import Alphabet

    alphabet = Alphabet.from_file(tiny_corpus.alphabet)
    samples = load_samples([tiny_corpus.csvs["train"]], alphabet, "train", limit=4)
    repeated = [alphabet.encode("a" * 5), alphabet.encode("abba"), alphabet.encode("abc"),
                alphabet.encode("a")]
    samples = dataclasses.replace(samples, labels=repeated)
    need = [ctc_min_frames(lab) for lab in repeated]
    assert need == [9, 5, 3, 1]
    plan = plan_batches(samples.frames, 4)
    aug = build_augmenter("tempo=200:300", seed=1).for_epoch(0)  # ~1 s of frames -> under 1 frame
    got = {}
    for _f, fl, labels, ll in make_dataset(samples, list(range(len(plan))), plan, augment=aug):
        for j in range(len(fl)):
            got[tuple(labels[j, :ll[j]].numpy())] = int(fl[j])
    assert [got[tuple(lab)] for lab in repeated] == need


def test_batch_loader_is_traced_once_for_every_epoch(tiny_corpus) -> None:
    """Each epoch builds a new dataset; the per-batch loader (decode, MFCC, augmentation) is traced
    once per set and augmentation settings, the epoch being an argument: an epoch-2 dataset made
    after epochs 0 and 1 gives what a loader traced for it alone gives."""
    from pipeline.model.dataset import batch_loader, load_samples, make_dataset, plan_batches
    from pipeline.text.alphabet import Alphabet

    alphabet = Alphabet.from_file(tiny_corpus.alphabet)
    aug = build_augmenter("volume,noise=10:20,tempo,specaugment", seed=1)

    def batches(samples, epoch):
        plan = plan_batches(samples.frames, 2, shuffle_seed=epoch)
        ds = make_dataset(samples, list(range(len(plan))), plan, augment=aug.for_epoch(epoch))
        return [tuple(x.numpy() for x in b) for b in ds]

    samples = load_samples([tiny_corpus.csvs["train"]], alphabet, "train", limit=4)
    for epoch in (0, 1):
        batches(samples, epoch)
    reused = batches(samples, 2)
    load = batch_loader(samples, None, aug.for_epoch(2))
    assert load is batch_loader(samples, None, aug) and load.experimental_get_tracing_count() == 1
    fresh = batches(load_samples([tiny_corpus.csvs["train"]], alphabet, "train", limit=4), 2)
    assert len(reused) == len(fresh)
    for a, b in zip(reused, fresh, strict=True):
        assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
