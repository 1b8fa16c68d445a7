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
    assert res["replica_diff"] == 0.0  # weights and EMA_DECAY's averages alike
    assert res["ema_gap"] > 1e-4  # the average was updated (and differs from the weights)
    # global batch = 2 × 4: 24 clips -> 6 plan batches -> 3 steps per epoch
    assert res["global_step"] == 2 * 3
    assert all(h["train_loss"] and np.isfinite(h["train_loss"]) for h in res["history"])
    assert (data / "checkpoints" / "best_dev" / "checkpoint").exists()


def _run_two_workers(data: Path, out: Path, *extra: str) -> tuple[dict, dict]:
    """Two MultiWorkerMirroredStrategy worker processes on 127.0.0.1 (tests/train/dist_worker.py);
    both must exit 0. Returns their result JSONs."""
    ports = [_free_port(), _free_port()]
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    procs = []
    for i in range(2):
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2",
               "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})}
        procs.append(subprocess.Popen([*WORKER, "multiworker", str(data), str(out / f"w{i}.json"), *extra],
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
    r0, r1 = (json.loads((out / f"w{i}.json").read_text()) for i in range(2))
    return r0, r1


def test_multiworker_two_processes(tiny_corpus, tmp_path: Path) -> None:
    data = copy_corpus(tiny_corpus, tmp_path / "data")
    r0, r1 = _run_two_workers(data, tmp_path)
    assert r0["replicas"] == r1["replicas"] == 2
    assert r0["is_chief"] and not r1["is_chief"]
    assert r0["global_step"] == r1["global_step"] == 2 * 3
    w0, w1 = np.load(tmp_path / "w0.npz"), np.load(tmp_path / "w1.npz")
    assert sum(k.startswith("ema_") for k in w0.files) == 12  # EMA_DECAY's averages too
    for k in w0.files:
        np.testing.assert_array_equal(w0[k], w1[k])
    assert [h["dev_loss"] for h in r0["history"]] == [h["dev_loss"] for h in r1["history"]]
    # only the chief wrote the real checkpoints
    assert (data / "checkpoints" / "train" / "checkpoint").exists()
    assert (data / "checkpoints" / "train_done.json").exists()


def _assert_skipped_together(res: dict) -> None:
    # step 1 (inf only in replica 1's batch) changed nothing anywhere, step 2 trained normally
    assert res["step_change"][0] == 0.0, res["step_change"]
    assert res["step_change"][1] > 0.0
    assert res["nonfinite_total"] == 1 and res["loss_scale_skips"] == 0
    assert res["loss_scale"] <= 1.0  # fp32: the scale never grows
    assert all(h["train_loss"] and np.isfinite(h["train_loss"]) for h in res["history"])


def test_replica_nonfinite_on_replica_1_skips_every_replica(tiny_corpus, tmp_path: Path) -> None:
    """Before issue #13 Keras's loss-scale optimizer judged replica 0's gradients only: replica 1's
    NaN gradients were summed into the weights while the log said "skipped"."""
    data = copy_corpus(tiny_corpus, tmp_path / "data")
    out = tmp_path / "mirrored.json"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop("TF_CONFIG", None)
    run = subprocess.run([*WORKER, "mirrored", str(data), str(out), "fp32", "poison"], cwd=REPO,
                         capture_output=True, text=True, timeout=300, env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    res = json.loads(out.read_text())
    assert res["replicas"] == 2 and res["replica_diff"] == 0.0
    _assert_skipped_together(res)
    w = np.load(out.with_suffix(".npz"))
    assert all(np.isfinite(w[k]).all() for k in w.files)


def test_replica_nonfinite_on_worker_1_no_hang_multiworker(tiny_corpus, tmp_path: Path) -> None:
    """Two worker processes, inf only in worker 1's first batch: both skip the step (no worker waits
    in a collective the other never enters) and end with identical, finite weights."""
    data = copy_corpus(tiny_corpus, tmp_path / "data")
    r0, r1 = _run_two_workers(data, tmp_path, "fp32", "poison")  # a hang ends as TimeoutExpired
    assert r0["global_step"] == r1["global_step"] == 2 * 3
    for res in (r0, r1):
        _assert_skipped_together(res)
    w0, w1 = np.load(tmp_path / "w0.npz"), np.load(tmp_path / "w1.npz")
    assert sum(k.startswith("ema_") for k in w0.files) == 12  # EMA_DECAY's averages too
    for k in w0.files:
        np.testing.assert_array_equal(w0[k], w1[k])
        assert np.isfinite(w0[k]).all()


def test_replica_finite_overflow_counted_apart_from_nonfinite_loss() -> None:
    """Replica 1 alone overflows (finite loss): every replica skips, the scale halves, and the step
    is an overflow, not a non-finite batch. Replica 1 alone has an inf loss: a non-finite batch."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop("TF_CONFIG", None)
    run = subprocess.run([sys.executable, "-m", "tests.train.replica_finite_worker"], cwd=REPO,
                         capture_output=True, text=True, timeout=300, env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    res = json.loads(run.stdout.strip().splitlines()[-1])
    assert res["none"]["verdict"] == "ok" and res["none"]["weights"][0] != [1.0, 2.0]
    assert res["none"]["scale"] == 2.0 ** 15
    for case, verdict, bad in (("grad", "overflow", [0.0, 1.0]), ("loss", "nonfinite", [1.0, 0.0])):
        assert res[case]["verdict"] == verdict and res[case]["bad"] == bad, res[case]
        assert res[case]["weights"] == [[1.0, 2.0], [1.0, 2.0]]  # both replicas skipped
        assert res[case]["scale"] == 2.0 ** 14


def test_replica_finite_verdicts_and_fp32_scale_never_grows() -> None:
    import tensorflow as tf

    from pipeline.model.train import global_skip_decision, make_optimizer, step_verdict

    assert step_verdict(0, 0, 3.0, True, 2.0 ** 15) == "ok"
    assert step_verdict(0, 1, 3.0, True, 2.0 ** 15) == "overflow"
    assert step_verdict(0, 1, 3.0, False, 1.0) == "nonfinite"       # fp32: no scale to blame
    assert step_verdict(0, 1, 3.0, True, 0.5) == "nonfinite"        # overflows even unscaled
    assert step_verdict(1, 1, float("nan"), True, 2.0 ** 15) == "nonfinite"
    assert step_verdict(0, 0, float("inf"), True, 2.0 ** 15) == "nonfinite"

    # fp32: 2100 finite steps (Keras's default growth interval is 2000): the scale stays 1.0;
    # the fp16 optimizer doubles it over the same steps
    for fp16, expected in ((False, 1.0), (True, 2.0 ** 16)):
        var = tf.Variable([1.0, 2.0])
        opt = make_optimizer(1e-3, fp16=fp16)
        opt.build([var])

        @tf.function
        def steps(var=var, opt=opt) -> None:
            for _ in tf.range(2100):
                with tf.GradientTape() as tape:
                    scaled = opt.scale_loss(tf.reduce_sum(var * var))
                grads, _, _ = global_skip_decision(tf.distribute.get_replica_context(), True,
                                                   tape.gradient(scaled, [var]))
                opt.apply_gradients(zip(grads, [var], strict=True))

        steps()
        assert float(opt.dynamic_scale.numpy()) == expected
