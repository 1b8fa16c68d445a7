"""Augmentation: syntax errors name the item; every augmentation runs in the input pipeline,
keeps CTC feasibility and is deterministic for a given (seed, epoch, sample)."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.errors import ConfigError
from pipeline.model.augment import build_augmenter, parse_augment
from tests.helpers import REPO


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


def _logmel_peak(mfcc: np.ndarray) -> int:
    """The strongest of the 40 log-mel channels of an MFCC frame (pseudo-inverse of the DCT)."""
    from pipeline.model.reference import _dct_matrix

    return int(np.argmax(mfcc @ np.linalg.pinv(_dct_matrix())))


def test_vtlp_moves_formants_like_a_frequency_scaled_voice() -> None:
    """vtlp(alpha) on the MFCCs of a 700 Hz tone puts its peak where the MFCCs of a 700·alpha Hz
    tone have it (what a shorter/longer vocal tract does to formants); alpha 1 is the identity."""
    import tensorflow as tf

    from pipeline.model.augment import vtlp_matrix
    from pipeline.model.features import audio_to_mfcc

    t = np.arange(8000) / 16000.0

    def tone(f: float) -> np.ndarray:
        return audio_to_mfcc((0.5 * np.sin(2 * np.pi * f * t)).astype(np.float32)).numpy()[5]

    np.testing.assert_allclose(vtlp_matrix(tf.constant(1.0)).numpy(), np.eye(26), atol=1e-5)
    base = tone(700.0)
    for alpha in (0.8, 1.25):
        warped = base @ vtlp_matrix(tf.constant(alpha)).numpy()
        assert abs(_logmel_peak(warped) - _logmel_peak(tone(700.0 * alpha))) <= 1, alpha
        assert _logmel_peak(warped) != _logmel_peak(base)


def test_volume_on_cached_features_equals_the_gain_on_audio() -> None:
    import tensorflow as tf

    from pipeline.model.augment import build_augmenter
    from pipeline.model.features import audio_to_mfcc

    audio = (np.random.default_rng(0).standard_normal(16000) * 0.05).astype(np.float32)
    aug = build_augmenter("volume=6:6", seed=1)
    on_audio = audio_to_mfcc(aug.audio(tf.constant(audio), 0)).numpy()
    on_features = aug.without_audio().features(audio_to_mfcc(audio), 0, 0).numpy()
    np.testing.assert_allclose(on_features, on_audio, atol=1e-3)
    assert not np.allclose(on_features, audio_to_mfcc(audio).numpy(), atol=1e-1)


def test_quieter_on_cached_features_matches_a_quieter_int16_recording() -> None:
    """volume below 0 dB on features: the speech sinks towards the 16-bit quantization floor, which
    stays (a real quieter recording, re-quantized); much closer than a plain c0 shift."""
    import soundfile as sf
    import tensorflow as tf

    from pipeline.audio import to_16k_pcm16
    from pipeline.model.augment import feature_gain
    from pipeline.model.features import audio_to_mfcc

    # an 8 kHz FSDD clip as the import makes it: 16 kHz int16, nothing but the floor above 4 kHz
    pcm, rate8k = sf.read(str(REPO / "tests" / "data" / "fsdd" / "3_jackson_5.wav"), dtype="float32")
    rate = 16000
    loud = to_16k_pcm16(pcm, rate8k, rate).astype(np.float32) / 32768
    feats = audio_to_mfcc(loud, rate).numpy()
    for db in (-20.0, -10.0):
        quiet = np.round(loud * 10 ** (db / 20) * 32768).astype(np.float32) / 32768
        truth = audio_to_mfcc(quiet, rate).numpy()
        ours = feature_gain(tf.constant(feats), tf.constant(db), rate).numpy()
        shifted = feats.copy()
        shifted[:, 0] += db * np.log(10) / 20 * np.sqrt(80)
        assert np.abs(ours - truth).mean() < 0.3 * np.abs(shifted - truth).mean(), db
