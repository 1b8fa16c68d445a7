"""tf.distribute on CPU: MirroredStrategy over 2 logical CPU devices, MultiWorkerMirroredStrategy
with 2 worker processes on 127.0.0.1. Replicas/workers must end with identical weights."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np

from tests.helpers import SUBPROCESS_TIMEOUT
from tests.train.helpers import REPO, copy_corpus

WORKER = [sys.executable, "-m", "tests.train.dist_worker"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_mirrored_two_cpu_replicas(tiny_corpus, tmp_path: Path) -> None:
    data = copy_corpus(tiny_corpus, tmp_path / "data")
    out = tmp_path / "mirrored.json"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop("TF_CONFIG", None)
    run = subprocess.run([*WORKER, "mirrored", str(data), str(out)], cwd=REPO, capture_output=True,
                         text=True, timeout=SUBPROCESS_TIMEOUT, env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    res = json.loads(out.read_text())
    assert res["replicas"] == 2
    assert res["replica_diff"] == 0.0
    # global batch = 2 × 4: 24 clips -> 6 plan batches -> 3 steps per epoch
    assert res["global_step"] == 2 * 3
    assert all(h["train_loss"] and np.isfinite(h["train_loss"]) for h in res["history"])
    assert (data / "checkpoints" / "best_dev" / "checkpoint").exists()


def test_multiworker_two_processes(tiny_corpus, tmp_path: Path) -> None:
    data = copy_corpus(tiny_corpus, tmp_path / "data")
    ports = [_free_port(), _free_port()]
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    procs = []
    for i in range(2):
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2",
               "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})}
        procs.append(subprocess.Popen([*WORKER, "multiworker", str(data), str(tmp_path / f"w{i}.json")],
                                      cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      text=True, env=env))
    logs = []
    try:
        for p in procs:
            logs.append(p.communicate(timeout=SUBPROCESS_TIMEOUT)[0])
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert all(p.returncode == 0 for p in procs), "\n".join(lg[-2000:] for lg in logs)
    r0, r1 = (json.loads((tmp_path / f"w{i}.json").read_text()) for i in range(2))
    assert r0["replicas"] == r1["replicas"] == 2
    assert r0["is_chief"] and not r1["is_chief"]
    assert r0["global_step"] == r1["global_step"] == 2 * 3
    w0, w1 = np.load(tmp_path / "w0.npz"), np.load(tmp_path / "w1.npz")
    for k in w0.files:
        np.testing.assert_array_equal(w0[k], w1[k])
    assert [h["dev_loss"] for h in r0["history"]] == [h["dev_loss"] for h in r1["history"]]
    # only the chief wrote the real checkpoints
    assert (data / "checkpoints" / "train" / "checkpoint").exists()
    assert (data / "checkpoints" / "train_done.json").exists()
