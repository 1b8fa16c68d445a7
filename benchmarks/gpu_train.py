"""GPU training benchmark (issue #13): the real training step (`Trainer.train_step`: model, CTC,
loss scaling, Adam) for each available LSTM_IMPL, fp32 and AMP, at DeepSpeech's size, and how far
the GPU kernels are from the scan on the same weights.

    python benchmarks/gpu_train.py                  # N_HIDDEN 2048, batch 64, clips of 5/10/20 s
    python benchmarks/gpu_train.py --smoke          # tiny sizes: runs anywhere (CI, CPU)
    python benchmarks/gpu_train.py --json out.json  # also write the rows

Columns: audio-h/h = hours of audio trained per wall-clock hour (batch × clip length / step time),
step = seconds per step (median of --steps after a warm-up step), peak GPU memory (GiB; "-" on CPU),
and for each kernel other than the scan, the max relative difference of its logits and of the
gradients of all weights against the scan (TF32 off for that check). cuDNN rows exist only where
TensorFlow sees a GPU; "block" (BlockLSTM) runs everywhere; AMP is float16 on a GPU, bfloat16 on CPU
(where BlockLSTM has no kernel). See docs/training.md for the expected figures.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ALPHABET = " abcdefghijklmnopqrstuvwxyz'"
CHARS_PER_SECOND = 14  # Common Voice / LibriSpeech read speech: ~12-16 characters per second


def _trainer(impl: str, amp: bool, n_hidden: int, batch: int, data: Path) -> Any:
    import tensorflow as tf

    from pipeline.config import load_config
    from pipeline.model.network import Geometry
    from pipeline.model.train import Distribution, Trainer
    from pipeline.paths import Paths
    from pipeline.text.alphabet import Alphabet

    cfg = load_config(environ={}, overrides=[f"LSTM_IMPL={impl}", f"AMP={int(amp)}", f"N_HIDDEN={n_hidden}",
                                             f"BATCH_SIZE={batch}", "DROPOUT=0.05"])
    alphabet = Alphabet.from_text("\n".join(ALPHABET) + "\n")
    dist = Distribution(tf.distribute.get_strategy(), 1, 0, 1, True)
    trainer = Trainer(cfg, Paths.at(data), [], [], dist=dist, alphabet=alphabet)
    trainer.build(Geometry(n_hidden, alphabet.num_classes))
    return trainer


def synthetic_batch(batch: int, seconds: float, classes: int, seed: int = 0) -> tuple[Any, ...]:
    """Random MFCC-scale features for `batch` clips of 85-100 % of `seconds` (a sorted plan's batch),
    with ~14 characters per second of labels."""
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    t_max = int(seconds / 0.02)
    flen = np.maximum((t_max * rng.uniform(0.85, 1.0, batch)).astype(np.int32), 2)
    flen[0] = t_max
    llen = np.maximum((flen * 0.02 * CHARS_PER_SECOND).astype(np.int32), 1)
    llen = np.minimum(llen, flen // 2)
    labels = rng.integers(0, classes - 1, (batch, int(llen.max()))).astype(np.int32)
    feats = rng.normal(0, 10, (batch, t_max, 26)).astype(np.float32)
    return (tf.constant(feats), tf.constant(flen), tf.constant(labels), tf.constant(llen))


def _spec() -> tuple[Any, ...]:
    import tensorflow as tf

    from pipeline.model.geometry import N_INPUT

    return (tf.TensorSpec([None, None, N_INPUT], tf.float32), tf.TensorSpec([None], tf.int32),
            tf.TensorSpec([None, None], tf.int32), tf.TensorSpec([None], tf.int32))


def time_steps(trainer: Any, batch: tuple[Any, ...], steps: int, gpu: bool) -> tuple[float, float]:
    """Median seconds per training step after one warm-up step, and peak GPU memory (GiB, nan on CPU)."""
    import tensorflow as tf

    if gpu:
        tf.config.experimental.reset_memory_stats("GPU:0")
    spec = _spec()
    [float(x) for x in trainer.train_step(batch, spec, 0)]  # trace + autotune
    times = []
    for s in range(steps):
        t = time.perf_counter()
        [float(x) for x in trainer.train_step(batch, spec, s + 1)]  # float(): waits for the step
        times.append(time.perf_counter() - t)
    peak = tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2 ** 30 if gpu else float("nan")
    return statistics.median(times), peak


def max_rel_diff(model: Any, impl: str, batch: tuple[Any, ...], compute: str) -> tuple[float, float]:
    """Max relative difference of logits (valid frames) and of all weight gradients (dense CTC)
    between `impl` and the scan, same weights and batch, TF32 off."""
    import numpy as np
    import tensorflow as tf

    from pipeline.model.ctc import ctc_loss

    feats, flen, labels, llen = batch
    mask = tf.transpose(tf.sequence_mask(flen, tf.shape(feats)[1], tf.float32))[..., None]

    @tf.function
    def run(which: str) -> Any:
        with tf.GradientTape() as tape:
            logits = model(feats, compute_dtype=compute, lstm_impl=which, feature_len=flen) * mask
            loss = tf.reduce_sum(ctc_loss(labels, logits, llen, flen, False))
        return logits, tape.gradient(loss, model.weight_list())

    tf32 = tf.config.experimental.tensor_float_32_execution_enabled()
    tf.config.experimental.enable_tensor_float_32_execution(False)
    try:
        (la, ga), (lb, gb) = run(impl), run("scan")
    finally:
        tf.config.experimental.enable_tensor_float_32_execution(tf32)

    def rel(a: Any, b: Any) -> float:
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        return float(np.abs(a - b).max() / (np.abs(b).max() + 1e-30))

    return rel(la, lb), max(rel(a, b) for a, b in zip(ga, gb, strict=True))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n-hidden", type=int, default=2048)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--seconds", default="5,10,20", help="clip lengths (s) of the timed batches")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--impls", default="", help="comma list (default: every one this machine runs)")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes (N_HIDDEN 32, batch 2, 1-2 s, 1 step)")
    ap.add_argument("--json", type=Path)
    a = ap.parse_args(argv)
    if a.smoke:
        a.n_hidden, a.batch, a.seconds, a.steps = 32, 2, "1,2", 1
    import tensorflow as tf

    gpu = bool(tf.config.list_logical_devices("GPU"))
    impls = a.impls.split(",") if a.impls else (["scan", "block", "cudnn"] if gpu else ["scan", "block"])
    build = tf.sysconfig.get_build_info()
    names = ", ".join(d.name for d in tf.config.list_logical_devices("GPU"))
    print(f"TensorFlow {tf.__version__}, GPU: {gpu} ({names}), "
          f"built for CUDA {build.get('cuda_version', '-')} / cuDNN {build.get('cudnn_version', '-')}; "
          f"N_HIDDEN {a.n_hidden}, batch {a.batch}, {a.steps} timed step(s)")
    rows = []
    header = f"{'LSTM_IMPL':9s} {'precision':9s} {'clip s':>6s} {'step s':>8s} {'audio-h/h':>10s} " \
             f"{'peak GiB':>8s} {'rel.diff logits':>15s} {'rel.diff grads':>14s}"
    print(header)
    print("-" * len(header))
    with tempfile.TemporaryDirectory() as tmp:
        for impl in impls:
            for amp in (False, True):
                precision = ("fp16" if gpu else "bf16") if amp else "fp32"
                if impl == "block" and amp and not gpu:
                    continue  # no bfloat16 BlockLSTM kernel
                trainer = _trainer(impl, amp, a.n_hidden, a.batch, Path(tmp))
                for seconds in map(float, a.seconds.split(",")):
                    batch = synthetic_batch(a.batch, seconds, trainer.alphabet.num_classes)
                    step, peak = time_steps(trainer, batch, a.steps, gpu)
                    d_logits, d_grads = (max_rel_diff(trainer.model, impl, batch, trainer.compute)
                                         if impl != "scan" else (float("nan"), float("nan")))
                    row = {"impl": impl, "precision": precision, "clip_s": seconds, "step_s": step,
                           "audio_h_per_h": a.batch * seconds / step, "peak_gib": peak,
                           "rel_diff_logits": d_logits, "rel_diff_grads": d_grads}
                    rows.append(row)
                    print(f"{impl:9s} {precision:9s} {seconds:6.1f} {step:8.3f} {row['audio_h_per_h']:10.1f} "
                          f"{'-' if peak != peak else f'{peak:.1f}':>8s} "
                          f"{'-' if d_logits != d_logits else f'{d_logits:.1e}':>15s} "
                          f"{'-' if d_grads != d_grads else f'{d_grads:.1e}':>14s}", flush=True)
    if a.json:
        a.json.write_text(json.dumps({"gpu": gpu, "n_hidden": a.n_hidden, "batch": a.batch, "rows": rows},
                                     indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
