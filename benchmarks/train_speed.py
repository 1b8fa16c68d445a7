"""Training speed: one DeepSpeech training step vs the machine's matmul peak, the real-data
input pipeline vs the same batches held in memory, and the CPU's CTC loss (TensorFlow's C++
kernel) vs `tf.nn.ctc_loss` with dense labels. Ratios are against baselines measured in the same
run (HOUSE_STYLE: benchmarks print ratios, they are not timed tests).

    python benchmarks/train_speed.py                       # N_HIDDEN=2048, batch 8 x 10 s
    python benchmarks/train_speed.py --n-hidden 512 --pipeline-hidden 256 --json out.json
    python benchmarks/train_speed.py --ctc-only            # the CTC comparison alone (seconds)
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def matmul_peak(n: int = 2048, reps: int = 20) -> float:
    """Dense fp32 matmul GFLOP/s (best of 3)."""
    import tensorflow as tf

    a = tf.random.normal([n, n])
    b = tf.random.normal([n, n]) / float(n) ** 0.5  # keeps the chained product's scale

    @tf.function
    def loop(a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
        # a chain, so graph optimization cannot merge identical matmuls into one
        x = a
        for _ in range(reps):
            x = tf.matmul(x, b)
        return x

    loop(a, b).numpy()
    best = 0.0
    for _ in range(3):
        t = time.perf_counter()
        loop(a, b).numpy()
        best = max(best, 2.0 * n ** 3 * reps / (time.perf_counter() - t) / 1e9)
    return best


def step_flops(h: int, classes: int, frames: int, batch: int) -> float:
    """Training FLOPs of one step: 3 × forward (forward + two backward matmuls per layer)."""
    per_frame = 2 * (494 * h + 2 * h * h + 8 * h * h + h * h + h * classes)
    return 3.0 * per_frame * frames * batch


def ctc_speed(batch: int = 16, frames: int = 150, labels_per_clip: int = 45, classes: int = 40,
              reps: int = 20) -> dict[str, float]:
    """CTC loss + gradient per batch (demo-sized by default: 16 clips of 3 s, 15 characters a
    second): `tf.nn.ctc_loss` with dense labels (what the CPU trained with until session 9) vs
    `kernel_loss` (the C++ kernel), same inputs, alternated, best of 3; and their largest
    loss and gradient differences."""
    import numpy as np
    import tensorflow as tf

    from pipeline.model.ctc import kernel_loss

    rng = np.random.default_rng(1)
    logits = tf.Variable(rng.normal(size=(frames, batch, classes)).astype(np.float32))
    flen = tf.constant(rng.integers(frames // 2, frames + 1, batch).astype(np.int32))
    labels = tf.constant(rng.integers(0, classes - 1, (batch, labels_per_clip)).astype(np.int32))
    llen = tf.constant(rng.integers(labels_per_clip // 2, labels_per_clip + 1, batch).astype(np.int32))

    def make(fn: Callable[[], Any]) -> Any:
        @tf.function
        def run() -> tuple:
            with tf.GradientTape() as tape:
                per_ex = fn()
                total = tf.reduce_sum(per_ex)
            return per_ex, tape.gradient(total, logits)
        return run

    dense = make(lambda: tf.nn.ctc_loss(labels, logits, llen, flen, logits_time_major=True, blank_index=-1))
    kernel = make(lambda: kernel_loss(labels, logits, llen, flen))
    (ld, gd), (lk, gk) = dense(), kernel()
    best = {"dense": float("inf"), "kernel": float("inf")}
    for _ in range(3):
        for name, fn in (("dense", dense), ("kernel", kernel)):
            t = time.perf_counter()
            for _ in range(reps):
                fn()[0].numpy()
            best[name] = min(best[name], (time.perf_counter() - t) / reps)
    return {"dense_s": best["dense"], "kernel_s": best["kernel"], "speedup": best["dense"] / best["kernel"],
            "loss_rel_diff": float(np.max(np.abs(lk.numpy() - ld.numpy()) / np.abs(ld.numpy()))),
            "grad_rel_diff": float(np.abs(gk.numpy() - gd.numpy()).max() / np.abs(gd.numpy()).max())}


def model_step_time(h: int, batch: int, frames: int, steps: int) -> float:
    """Seconds per training step (Adam, CTC) on random features, after one warm-up step."""
    import keras
    import tensorflow as tf

    from pipeline.model.ctc import ctc_loss
    from pipeline.model.network import Geometry, build_model

    classes = 29
    model = build_model(Geometry(h, classes))
    opt = keras.optimizers.Adam(1e-4)
    variables = model.weight_list()
    opt.build(variables)
    feats = tf.random.normal([batch, frames, 26])
    flen = tf.fill([batch], frames)
    labels = tf.random.uniform([batch, frames // 4], 0, classes - 1, tf.int32)
    llen = tf.fill([batch], frames // 4)

    @tf.function
    def step() -> tf.Tensor:
        with tf.GradientTape() as tape:
            logits = model(feats, training=True, dropout=0.05)
            loss = tf.reduce_mean(ctc_loss(labels, logits, llen, flen, False))
        opt.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=False))
        return loss

    step().numpy()
    t = time.perf_counter()
    for _ in range(steps):
        step().numpy()
    return (time.perf_counter() - t) / steps


def pipeline_overhead(h: int, clips: int, batch: int) -> dict[str, float]:
    """An epoch fed by the real tf.data pipeline (wav decode + MFCC in graph) vs the same batches
    preloaded in memory, through the Trainer's own train step."""
    from pipeline.config import load_config
    from pipeline.model.train import Trainer
    from pipeline.paths import Paths
    from tests.train.synth import make_corpus

    root = Path(tempfile.mkdtemp(prefix="train_speed_"))
    corpus = make_corpus(root, n_train=clips, n_dev=2, n_test=2, words=(3, 7))
    cfg = load_config(environ={}, overrides=[f"N_HIDDEN={h}", f"BATCH_SIZE={batch}", "EPOCHS=1",
                                             "LIVE_TRANSCRIPTS=0", "CORPORA=synth"])
    tr = Trainer(cfg, Paths.at(root), [corpus.csvs["train"]], [corpus.csvs["dev"]])
    tr.setup()
    plan = tr._plan(tr.train_set, 1)
    ds, _steps = tr._dataset(tr.train_set, plan, 0, None, None)
    for b in ds.take(1):  # compile
        tr.train_step(b, ds.element_spec)
    t = time.perf_counter()
    for b in ds:
        tr.train_step(b, ds.element_spec)[0].numpy()
    real = time.perf_counter() - t
    t = time.perf_counter()
    for _b in ds:  # the input pipeline alone (decode + MFCC + padding), no training
        pass
    pipeline_only = time.perf_counter() - t
    mem = [b for b in ds]
    t = time.perf_counter()
    for b in mem:
        tr.train_step(b, ds.element_spec)[0].numpy()
    in_memory = time.perf_counter() - t
    return {"pipeline_s": real, "in_memory_s": in_memory, "overhead": real / in_memory - 1.0,
            "pipeline_only_s_per_batch": pipeline_only / len(mem), "steps": len(mem),
            "audio_h": tr.train_set.hours}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-hidden", type=int, default=2048)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--frames", type=int, default=500, help="frames per utterance (20 ms each)")
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--pipeline-hidden", type=int, default=256, help="N_HIDDEN for the pipeline test")
    ap.add_argument("--pipeline-clips", type=int, default=160)
    ap.add_argument("--json", help="also write the numbers here")
    ap.add_argument("--ctc-only", action="store_true", help="only the CTC loss comparison")
    args = ap.parse_args()
    ctc = ctc_speed()
    print(f"CTC loss + gradient, 16 clips x 150 frames, 45 labels: dense labels {1000 * ctc['dense_s']:.1f} ms, "
          f"C++ kernel {1000 * ctc['kernel_s']:.1f} ms -> {ctc['speedup']:.1f}x (largest relative "
          f"difference: loss {ctc['loss_rel_diff']:.1e}, gradient {ctc['grad_rel_diff']:.1e})")
    if args.ctc_only:
        return 0
    peak = matmul_peak()
    print(f"matmul peak (fp32, 2048^3): {peak:.1f} GFLOP/s")
    st = model_step_time(args.n_hidden, args.batch, args.frames, args.steps)
    flops = step_flops(args.n_hidden, 29, args.frames, args.batch)
    achieved = flops / st / 1e9
    print(f"train step N_HIDDEN={args.n_hidden}, batch {args.batch} x {args.frames} frames: {st:.2f} s, "
          f"{flops / 1e9:.0f} GFLOP -> {achieved:.1f} GFLOP/s = {100 * achieved / peak:.0f} % of peak")
    po = pipeline_overhead(args.pipeline_hidden, args.pipeline_clips, 16)
    print(f"input pipeline (N_HIDDEN={args.pipeline_hidden}, {po['steps']} steps, {po['audio_h']:.3f} h): "
          f"real data {po['pipeline_s']:.2f} s vs in-memory {po['in_memory_s']:.2f} s -> overhead "
          f"{100 * po['overhead']:+.1f} %")
    per_audio_s = po["pipeline_only_s_per_batch"] * po["steps"] / (po["audio_h"] * 3600)
    per_batch = per_audio_s * args.batch * args.frames * 0.02
    print(f"input pipeline alone: {1000 * per_audio_s:.2f} ms per audio second -> at most "
          f"{100 * per_batch / st:.2f} % of a N_HIDDEN={args.n_hidden} step (batch {args.batch}) even "
          f"without any overlap")
    if args.json:
        Path(args.json).write_text(json.dumps({"peak_gflops": peak, "step_s": st, "step_gflop": flops / 1e9,
                                               "achieved_gflops": achieved,
                                               "fraction_of_peak": achieved / peak, **po,
                                               "ctc": ctc}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
