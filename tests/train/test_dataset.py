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
