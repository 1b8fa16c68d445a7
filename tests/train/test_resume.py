"""Resume: SIGKILL a real training process mid-epoch; the rerun continues from the last checkpoint
(weights, Adam, FEATURE_NORM, EMA_DECAY's average),
says so in the log, and ends with the planned epochs and exactly epochs × steps updates, at the
learning rate LR_DECAY had set for the interrupted epoch."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import SUBPROCESS_TIMEOUT
from tests.train.helpers import REPO, copy_corpus

REPEAT = 8
EVERY = 30  # CHECKPOINT_STEPS: mid-epoch checkpoints counted in updates, not seconds

SETTINGS = ["CORPORA=rep", "N_HIDDEN=32", "BATCH_SIZE=2", "EPOCHS=3", "LEARNING_RATE=0.002",
            "DROPOUT=0.0", "EARLY_STOP=0", "CHECKPOINT_SECS=0", f"CHECKPOINT_STEPS={EVERY}",
            "LIVE_TRANSCRIPTS=0", "MAX_TO_KEEP=3", "FEATURE_NORM=1", "LR_DECAY=linear", "EMA_DECAY=0.99"]
# LR_DECAY=linear over EPOCHS=3 (floor 0.05): epoch e trains at 0.002 * (0.05 + 0.95 * (1 - (e-1)/3))
EPOCH_LRS = [0.002, 0.002 * (0.05 + 0.95 * 2 / 3), 0.002 * (0.05 + 0.95 / 3)]


def _cmd(data: Path) -> list[str]:
    cmd = [sys.executable, "-m", "pipeline", "run", "--data-dir", str(data), "--stages", "train"]
    for s in SETTINGS:
        cmd += ["--set", s]
    return cmd


def test_sigkill_mid_epoch_then_resume(tiny_corpus, tmp_path: Path) -> None:
    data = copy_corpus(tiny_corpus, tmp_path / "data")
    # epochs long enough (8 × 24 clips, batch 2) that a mid-epoch checkpoint is observable
    (data / "extracted").unlink()
    rep = data / "extracted" / "rep"
    rep.mkdir(parents=True)
    for split, times in (("train", REPEAT), ("dev", 1)):
        lines = tiny_corpus.csvs[split].read_text().splitlines()
        body = [f"{tiny_corpus.csvs[split].parent / ln.split(',', 1)[0]},{ln.split(',', 1)[1]}"
                for ln in lines[1:]]
        (rep / f"rep_{split}.csv").write_text("\n".join([lines[0]] + body * times) + "\n")
    state_path = data / "checkpoints" / "train" / "train_state.json"
    steps_per_epoch = 24 * REPEAT // 2
    # SIGKILL after update 90 of epoch 3 (pipeline/faults.py). Checkpoints are step-based (no wall
    # clock), so the last one before the kill is at the last multiple of EVERY, on any machine.
    kill_at = 2 * steps_per_epoch + 90
    last_saved = kill_at - kill_at % EVERY
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    run1 = subprocess.run(_cmd(data), cwd=REPO, capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT,
                          env={**env, "DS_PIPELINE_CRASH_AT": f"train.step:{kill_at}"})
    assert run1.returncode == -signal.SIGKILL, (run1.stdout + run1.stderr)[-3000:]
    killed_at = json.loads(state_path.read_text())
    assert killed_at["epoch"] == 2, killed_at
    assert killed_at["global_step"] == last_saved, killed_at
    assert killed_at["step_in_epoch"] == last_saved - 2 * steps_per_epoch > 0, killed_at
    assert math.isclose(killed_at["lr_scale"], EPOCH_LRS[2] / EPOCH_LRS[0], rel_tol=1e-9), killed_at
    assert not (data / "checkpoints" / "train_done.json").exists()
    assert not (data / ".state" / "train.done.json").exists()

    out = subprocess.run(_cmd(data), cwd=REPO, capture_output=True, text=True, env=env, timeout=SUBPROCESS_TIMEOUT)
    log2 = out.stdout + out.stderr
    assert out.returncode == 0, log2[-3000:]
    assert "resumed from train-" in log2
    # FEATURE_NORM is measured once, at the fresh start, and travels in the checkpoint's state
    assert "FEATURE_NORM: MFCC mean and scale" in run1.stdout + run1.stderr
    assert "FEATURE_NORM: MFCC mean" not in log2 and len(killed_at["feature_norm"]) == 2
    # EMA_DECAY's average is in the checkpoint too: the resume continues it
    assert "averaging the weights (EMA_DECAY=0.99)" in run1.stdout + run1.stderr
    assert "holds no averaged weights" not in log2 and "averaging the weights" not in log2
    resumed = log2.split("resumed from", 1)[1].splitlines()[0]
    assert f"batch {last_saved - 2 * steps_per_epoch} of that epoch, global step {last_saved}" in resumed
    assert f"learning rate {EPOCH_LRS[2]:g}" in resumed  # the decayed rate, not LEARNING_RATE
    final = json.loads(state_path.read_text())
    done = json.loads((data / "checkpoints" / "train_done.json").read_text())
    assert final["epoch"] == 3 and done["epochs"] == 3
    assert [h["epoch"] for h in final["history"]] == [1, 2, 3]
    assert [h["lr"] for h in final["history"]] == pytest.approx(EPOCH_LRS, rel=1e-9)
    assert final["global_step"] == 3 * steps_per_epoch
    assert final["feature_norm"] == killed_at["feature_norm"]
    assert (data / "checkpoints" / "best_dev" / "best_dev.json").exists()
    assert (data / ".state" / "train.done.json").exists()
    # a third run is a no-op skip
    out3 = subprocess.run(_cmd(data), cwd=REPO, capture_output=True, text=True, env=env, timeout=SUBPROCESS_TIMEOUT)
    assert "skip: done with the same settings" in out3.stdout + out3.stderr
