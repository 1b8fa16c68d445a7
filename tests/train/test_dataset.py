"""Input checks and batch plans: rejected rows are counted with reasons, plans are deterministic
per seed, cover every sample once, and replicas/workers get disjoint batches."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import soundfile as sf

from pipeline.model.dataset import ctc_min_frames, load_samples, plan_batches, replica_batch_order
from pipeline.model.features import num_frames
from pipeline.text.alphabet import Alphabet


def test_bad_rows_are_dropped_with_reasons(tmp_path: Path) -> None:
    alphabet = Alphabet(tuple(" abc"))
    sr = 16000
    sf.write(tmp_path / "ok.wav", np.zeros(sr, np.float32), sr, subtype="PCM_16")
    sf.write(tmp_path / "short.wav", np.zeros(2000, np.float32), sr, subtype="PCM_16")
    sf.write(tmp_path / "8k.wav", np.zeros(8000, np.float32), 8000, subtype="PCM_16")
    sf.write(tmp_path / "stereo.wav", np.zeros((sr, 2), np.float32), sr, subtype="PCM_16")
    (tmp_path / "junk.wav").write_bytes(b"not a wav")
    rows = [("ok.wav", "abc"), ("short.wav", "abcabcabc"), ("8k.wav", "a"), ("stereo.wav", "a"),
            ("junk.wav", "a"), ("missing.wav", "a"), ("ok.wav", "xyz"), ("ok.wav", "  "),
            ("ok.wav", "aab")]
    path = tmp_path / "t.csv"
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["wav_filename", "wav_filesize", "transcript"])
        w.writerows([(f, 0, t) for f, t in rows])
    s = load_samples([path], alphabet, "t")
    assert s.transcripts == ["abc", "aab"]
    assert s.rejected == {"audio too short for its transcript (CTC infeasible)": 1,
                          "sample rate 8000 != 16000": 1, "not mono": 1,
                          "unreadable or missing wav": 2, "characters not in the alphabet": 1,
                          "empty transcript": 1}
    assert s.frames[0] == num_frames(sr) == 49
    assert ctc_min_frames([1, 1, 2]) == 4


def test_plans() -> None:
    frames = np.array([50, 10, 30, 20, 40, 60, 70, 5])
    a = plan_batches(frames, 3, shuffle_seed=1)
    b = plan_batches(frames, 3, shuffle_seed=1)
    c = plan_batches(frames, 3, shuffle_seed=2)
    assert a == b and sorted(map(tuple, a)) == sorted(map(tuple, c))
    assert sorted(i for batch in a for i in batch) == list(range(8))
    for batch in plan_batches(frames, 3):  # sorted by length within the plan
        assert list(frames[batch]) == sorted(frames[batch])
    by_time = plan_batches(frames, 100, max_batch_seconds=2.0)  # 100 frames of padded audio
    assert all(len(bt) * frames[bt].max() <= 100 or len(bt) == 1 for bt in by_time)
    # 2 workers x 1 replica: disjoint batches, same number of steps, trailing batch dropped
    o0, steps = replica_batch_order(7, 2, 0, 1)
    o1, _ = replica_batch_order(7, 2, 1, 1)
    assert steps == 3 and o0 == [0, 2, 4] and o1 == [1, 3, 5]
    assert replica_batch_order(7, 2, 0, 1, start_step=2)[0] == [4]


def test_replica_steps_are_balanced_on_a_common_voice_like_mix() -> None:
    """R replicas wait for the longest of their R batches each step. Grouping R neighbouring
    length-sorted batches per step keeps them alike: on a Common Voice-like mix (50k clips, log-normal
    around 4.5 s, 1-10 s) the step time lost to the longest batch is <= 2 % for R = 2, 4, 8 (the old
    plan, single batches shuffled, lost 20-57 %), the median step's batches differ by <= 2 %, and
    the plan stays deterministic for exact resume."""
    rng = np.random.default_rng(0)
    secs = np.clip(rng.lognormal(np.log(4.5), 0.35, 50_000), 1.0, 10.0)
    frames = (secs / 0.02).astype(np.int64)
    for r in (2, 4, 8):
        plans = {g: plan_batches(frames, 64, shuffle_seed=7, group=g) for g in (1, r)}
        assert plans[r] == plan_batches(frames, 64, shuffle_seed=7, group=r)
        assert plans[r] != plan_batches(frames, 64, shuffle_seed=8, group=r)
        assert sorted(i for b in plans[r] for i in b) == list(range(len(frames)))
        lost = {}
        for g, plan in plans.items():
            _, steps = replica_batch_order(len(plan), r, 0, r)
            longest = np.array([[frames[plan[s * r + j]].max() for j in range(r)] for s in range(steps)])
            lost[g] = longest.max(1).sum() / longest.mean(1).sum()
            if g == r:
                assert np.median(longest.max(1) / longest.min(1)) <= 1.02
        assert lost[r] <= 1.02 and lost[1] > 1.15, (r, lost)
    # a single replica keeps the plan it always had (resume of older runs stays exact)
    small = np.array([50, 10, 30, 20, 40, 60, 70, 5])
    assert plan_batches(small, 3, shuffle_seed=1, group=1) == plan_batches(small, 3, shuffle_seed=1)
    # leftover batches (7 batches, 2 replicas) go last and are dropped, never mid-plan
    grouped = plan_batches(np.arange(1, 15), 2, shuffle_seed=3, group=2)
    for s in range(3):
        a, b = grouped[2 * s], grouped[2 * s + 1]
        assert abs(min(a) - min(b)) == 2  # neighbours in length order
