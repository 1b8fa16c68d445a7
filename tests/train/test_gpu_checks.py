"""GPU preflight and the out-of-memory probe, on CPU: the smoke test really runs (BlockLSTM stands in
for cuDNN, which has no CPU kernel); GPUs, drivers, broken kernels and out-of-memory errors are
injected (no GPU here)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tests.train.helpers import copy_corpus, train_config


def _oom():
    import tensorflow as tf

    return tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor with shape[64,1750,2048]")


def test_gpu_smoke_test_passes_and_catches_wrong_or_missing_kernels(monkeypatch: pytest.MonkeyPatch) -> None:
    import tensorflow as tf

    import pipeline.model.network as network
    from pipeline.errors import PipelineError
    from pipeline.model.gpu import smoke_test

    assert smoke_test("block") <= 1e-4  # includes sparse vs dense CTC (~1e-5)
    real = network.lstm_block
    monkeypatch.setattr(network, "lstm_block", lambda x, k, b: real(x, k, b) * 1.05)
    with pytest.raises(PipelineError, match="differ from the scan"):
        smoke_test("block")

    def missing(*_a):
        raise tf.errors.NotFoundError(None, None, "No registered 'CudnnRNNV3' OpKernel for 'GPU' devices")

    monkeypatch.setattr(network, "lstm_block", missing)
    with pytest.raises(PipelineError, match="do not run on this GPU.*LSTM_IMPL=scan"):
        smoke_test("block")


@pytest.mark.parametrize("cc", [(9, 0), (12, 0)])
def test_gpu_preflight_reports_and_runs_the_smoke_test(monkeypatch: pytest.MonkeyPatch,
                                                       caplog: pytest.LogCaptureFixture, cc) -> None:
    import tensorflow as tf

    import pipeline.model.gpu as gpu
    from pipeline.stages.preflight import check_gpu

    phys = tf.config.PhysicalDevice("/physical_device:GPU:0", "GPU")
    real_phys, real_log = tf.config.list_physical_devices, tf.config.list_logical_devices
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda k=None: [phys] if k == "GPU" else real_phys(k))
    monkeypatch.setattr(tf.config, "list_logical_devices",
                        lambda k=None: [tf.config.LogicalDevice("/device:GPU:0", "GPU")] if k == "GPU"
                        else real_log(k))
    monkeypatch.setattr(tf.config.experimental, "get_device_details",
                        lambda d: {"device_name": "NVIDIA H100 80GB HBM3", "compute_capability": cc})
    monkeypatch.setattr(gpu, "driver_version", lambda: "550.54.15")
    ran = []
    monkeypatch.setattr(gpu, "smoke_test", lambda impl: ran.append(impl) or 1e-7)
    monkeypatch.delenv("CUDA_CACHE_PATH", raising=False)
    caplog.set_level(logging.INFO)
    assert check_gpu(train_config(), smoke=True) == 1
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert ran == ["cudnn"]
    assert "NVIDIA driver 550.54.15" in text and f"compute capability {cc[0]}.{cc[1]}" in text
    assert "packages: " in text and "tensorflow" in text and "keras" in text
    assert "GPU smoke test: 2 steps of the cudnn LSTM" in text
    assert ("Blackwell" in text) == (cc[0] >= 10)
    assert ("CUDA_CACHE_PATH" in text) == (cc[0] == 9)
    ran.clear()
    check_gpu(train_config(LSTM_IMPL="scan"), smoke=True)
    assert ran == []  # nothing GPU-specific to test


def test_gpu_oom_probe_search() -> None:
    from pipeline.errors import PipelineError
    from pipeline.model.gpu import probe_batch_fit

    tried = []

    def run(limit: int):
        def f(n: int) -> None:
            tried.append(n)
            if n > limit:
                raise _oom()
        return f

    assert probe_batch_fit(run(64), 64) is None and tried == [64]
    assert probe_batch_fit(run(5), 64) == 5
    assert probe_batch_fit(run(40), 64) >= 36  # within 1/8 of the true limit
    with pytest.raises(PipelineError, match="single clip"):
        probe_batch_fit(run(0), 8)

    def other(n: int) -> None:
        raise ValueError("not a memory problem")

    with pytest.raises(ValueError):
        probe_batch_fit(other, 8)


def test_gpu_oom_probe_stops_before_training_or_applies(tiny_corpus, tmp_path: Path,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    import json

    from pipeline.errors import PipelineError
    from pipeline.model.train import Trainer
    from pipeline.paths import Paths

    def trainer(data: Path, **cfg: object) -> Trainer:
        t = Trainer(train_config(EPOCHS=1, LIVE_TRANSCRIPTS=0, **cfg), Paths.at(data),
                    [tiny_corpus.csvs["train"]], [tiny_corpus.csvs["dev"]])
        t.oom_probe = True
        real = t.probe_step
        sizes = []

        def probe(batch):
            sizes.append(int(batch[0].shape[0]))
            if sizes[-1] > 3:
                raise _oom()
            real(batch)

        t.probe_step = probe
        t.sizes = sizes
        return t

    paths = Paths.at(copy_corpus(tiny_corpus, tmp_path / "a"))
    t = trainer(paths.root)
    with pytest.raises(PipelineError, match=r"training not started: .*BATCH_SIZE=8.*Set BATCH_SIZE=3, or "
                                            r"MAX_BATCH_SECONDS=\d+"):
        t.run()
    assert t.sizes[0] == 8 and 3 in t.sizes
    assert not (paths.train_checkpoint_dir / "checkpoint").exists()  # no step was taken

    paths = Paths.at(copy_corpus(tiny_corpus, tmp_path / "b"))
    caplog.set_level(logging.WARNING, logger="pipeline.model.train")
    t = trainer(paths.root, OOM_AUTO_BATCH=1)
    state = t.run()
    assert state["epoch"] == 1 and t.tc.max_batch_seconds > 0
    assert any("OOM_AUTO_BATCH=1: training with MAX_BATCH_SECONDS=" in r.getMessage() for r in caplog.records)
    plan = t._plan(t.train_set, None)
    longest = max(len(b) * int(t.train_set.frames[b].max()) for b in plan) * 0.02
    assert longest <= t.tc.max_batch_seconds or max(len(b) for b in plan) <= 3
    assert json.loads(paths.train_done.read_text())["epochs"] == 1
