"""The train and test stages through the CLI: done-file semantics, test_results.json, reports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.helpers import SUBPROCESS_TIMEOUT
from tests.train.helpers import REPO, copy_corpus


def test_train_then_test_stage(tiny_corpus, tmp_path: Path) -> None:
    data = copy_corpus(tiny_corpus, tmp_path / "data")
    cmd = [sys.executable, "-m", "pipeline", "run", "--data-dir", str(data), "--stages", "train,test"]
    for s in ("CORPORA=synth", "N_HIDDEN=32", "BATCH_SIZE=8", "EPOCHS=2", "EARLY_STOP=0",
              "LEARNING_RATE=0.002"):
        cmd += ["--set", s]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=env, timeout=SUBPROCESS_TIMEOUT)
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-3000:]
    results = json.loads((data / "models" / "test_results.json").read_text())
    assert set(results) == {"synth"}
    r = results["synth"]
    assert set(r) == {"wer", "cer", "greedy_wer", "greedy_cer", "samples"}
    assert r["samples"] == 6
    assert r["wer"] == r["greedy_wer"] and r["cer"] == r["greedy_cer"]  # no scorer: greedy only
    assert "greedy only (no scorer" in log
    detail = json.loads((data / "reports" / "test_synth.json").read_text())
    assert len(detail["worst"]) == 5 and detail["hint"]
    assert (data / "reports" / "loss_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (data / "reports" / "training_report.md").read_text()
    assert "loss_curve.png" in md and "Worst samples" in md and "N_HIDDEN" in md
    assert "<table>" in (data / "reports" / "training_report.html").read_text()
    done = json.loads((data / "checkpoints" / "train_done.json").read_text())
    assert done["epochs"] == 2
