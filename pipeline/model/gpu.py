"""GPU checks that fail in seconds (issue #13): what the machine and the image provide (driver,
compute capability, the CUDA/cuDNN TensorFlow was built for, the resolved package versions), a
2-step LSTM + CTC smoke test of the GPU kernels against the scan, and the out-of-memory probe that
finds a batch that fits before the first epoch instead of failing hours into it."""

from __future__ import annotations

import logging
import os
import re
import shutil
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.errors import PipelineError
from pipeline.tools import run_tool

log = logging.getLogger("pipeline.model.gpu")

# The packages whose versions decide what runs on the GPU (pinned in the image's constraints file).
VERSIONED = ("tensorflow", "tensorflow-cpu", "keras", "numpy")
SMOKE_RTOL = 1e-3  # TF32 is switched off for the check; fp32 kernels agree to ~1e-6 (benchmarks)


def package_versions() -> dict[str, str]:
    """Installed versions of TensorFlow, Keras, numpy and every nvidia-* CUDA wheel."""
    out: dict[str, str] = {}
    for dist in metadata.distributions():
        name = (dist.metadata["Name"] or "").lower().replace("_", "-")
        if name in VERSIONED or name.startswith("nvidia-"):
            out[name] = dist.version
    return dict(sorted(out.items()))


def driver_version() -> str | None:
    """The NVIDIA kernel driver version (nvidia-smi, else /proc), None without one."""
    smi = shutil.which("nvidia-smi")
    if smi:
        try:  # a broken driver can make nvidia-smi hang or fail: fall back to /proc
            res = run_tool([smi, "--query-gpu=driver_version", "--format=csv,noheader"],
                           capture_stdout=True, timeout=20)
            out = res.stdout.decode("utf-8", "replace").strip()
            if out:
                return out.split()[0]
        except PipelineError:
            pass
    proc = Path("/proc/driver/nvidia/version")
    if proc.exists():
        m = re.search(r"Kernel Module\s+(\d+\.\d+(?:\.\d+)?)", proc.read_text(errors="replace"))
        if m:
            return m.group(1)
    return None


def gpu_report(gpus: list[Any]) -> list[str]:
    """Log lines describing the GPUs and the TensorFlow build; warns about cards TF 2.21 cannot
    run well (compute capability 9.x: PTX JIT at start; 10+: Blackwell, no kernels)."""
    import tensorflow as tf

    build = tf.sysconfig.get_build_info()
    lines = [f"NVIDIA driver {driver_version() or 'unknown'}; TensorFlow {tf.__version__} built for CUDA "
             f"{build.get('cuda_version', '?')}, cuDNN {build.get('cudnn_version', '?')}"]
    for gpu in gpus:
        details = tf.config.experimental.get_device_details(gpu)
        cc = details.get("compute_capability")
        lines.append(f"{gpu.name}: {details.get('device_name', '?')}, compute capability "
                     f"{'.'.join(map(str, cc)) if cc else '?'}")
        if cc and cc[0] >= 10:
            log.warning("%s has compute capability %d.%d (Blackwell): TensorFlow 2.21 ships no kernels "
                        "for it and is not supported there; expect failures", gpu.name, cc[0], cc[1])
        elif cc and cc[0] == 9 and not os.environ.get("CUDA_CACHE_PATH", "").startswith("/mnt"):
            log.warning("%s (compute capability 9.x) runs TensorFlow's PTX through the driver's JIT "
                        "compiler at start (minutes, up to 30+); set CUDA_CACHE_PATH to a directory "
                        "under /mnt so the compiled kernels survive the container", gpu.name)
    return lines


def smoke_test(impl: str, steps: int = 2, n_hidden: int = 32, seed: int = 7) -> float:
    """`steps` SGD steps of a tiny DeepSpeech model with the `impl` LSTM and cuDNN's CTC (the
    GPU kernels) and, from the same weights, with the scan and the C++ CTC kernel; returns the max relative
    difference of losses and weights. Raises PipelineError if the kernels fail or disagree."""
    import tensorflow as tf

    from pipeline.model.ctc import ctc_loss
    from pipeline.model.geometry import N_INPUT
    from pipeline.model.network import Geometry, build_model

    rng = np.random.default_rng(seed)
    b, t, classes = 4, 60, 12
    feats = tf.constant(rng.normal(0, 10, (b, t, N_INPUT)).astype(np.float32))
    flen = tf.constant([60, 55, 40, 30], tf.int32)
    llen = tf.constant([12, 9, 7, 3], tf.int32)
    labels = tf.constant(rng.integers(0, classes - 1, (b, 12)).astype(np.int32))
    models = [build_model(Geometry(n_hidden, classes), seed) for _ in range(2)]

    def step(model: Any, which: str) -> Any:
        with tf.GradientTape() as tape:
            logits = model(feats, lstm_impl=which, feature_len=flen)
            loss = tf.reduce_mean(ctc_loss(labels, logits, llen, flen, cudnn=which != "scan"))
        grads = tape.gradient(loss, model.weight_list())
        for v, g in zip(model.weight_list(), grads, strict=True):
            v.assign_sub(0.01 * g)
        return loss

    tf32 = tf.config.experimental.tensor_float_32_execution_enabled()
    tf.config.experimental.enable_tensor_float_32_execution(False)
    try:
        worst = 0.0
        run_impl, run_scan = tf.function(lambda: step(models[0], impl)), tf.function(lambda: step(models[1], "scan"))
        for _ in range(steps):
            got, ref = float(run_impl()), float(run_scan())
            if not np.isfinite(got):
                raise PipelineError(f"GPU smoke test: the {impl} LSTM + CTC loss is {got} where the scan "
                                    f"gives {ref:.4f}")
            worst = max(worst, abs(got - ref) / max(abs(ref), 1e-12))
        for a, r in zip(models[0].weight_list(), models[1].weight_list(), strict=True):
            worst = max(worst, float(np.abs(a.numpy() - r.numpy()).max() / (np.abs(r.numpy()).max() + 1e-12)))
    except PipelineError:
        raise
    except Exception as exc:
        raise PipelineError(
            f"GPU smoke test failed: the {impl} LSTM + CTC kernels do not run on this GPU "
            f"({type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}). The driver or "
            f"image is broken or too old (see docs/docker.md for the minimum drivers); set LSTM_IMPL=scan "
            f"to train without them") from None
    finally:
        tf.config.experimental.enable_tensor_float_32_execution(tf32)
    if worst > SMOKE_RTOL:
        raise PipelineError(
            f"GPU smoke test failed: after {steps} steps the {impl} LSTM + CTC differ from the scan by "
            f"{worst:.2e} (relative, more than {SMOKE_RTOL:g}) on the same weights; this GPU/driver/cuDNN "
            f"gives wrong results. Report it with the lines above; set LSTM_IMPL=scan to train meanwhile")
    return worst


# ---------------------------------------------------------------------------------------------
# Out-of-memory probe
# ---------------------------------------------------------------------------------------------
def is_oom(exc: BaseException) -> bool:
    import tensorflow as tf

    return isinstance(exc, tf.errors.ResourceExhaustedError) or "out of memory" in str(exc).lower()


def probe_batch_fit(run: Callable[[int], None], batch_size: int) -> int | None:
    """Run `run(n)` (one training step on the first n clips of the longest batch) for n = batch_size,
    then halving on out-of-memory and bisecting up: the largest n that ran, or None if the full batch
    fits (nothing to change). Raises PipelineError if even one clip does not fit."""
    try:
        run(batch_size)
        return None
    except Exception as exc:
        if not is_oom(exc):
            raise
    ok, bad = 0, batch_size
    n = batch_size // 2
    while n >= 1:
        try:
            run(n)
            ok = n
            break
        except Exception as exc:
            if not is_oom(exc):
                raise
            bad, n = n, n // 2
    if ok == 0:
        raise PipelineError("out of GPU memory with a single clip of the longest batch: lower "
                            "MAX_DURATION (the longest clips) or N_HIDDEN, or use a GPU with more memory")
    while bad - ok > 1 and bad - ok > max(1, ok // 8):  # refine to within 1/8
        mid = (ok + bad) // 2
        try:
            run(mid)
            ok = mid
        except Exception as exc:
            if not is_oom(exc):
                raise
            bad = mid
    return ok


def oom_advice(fits: int, batch_size: int, longest_s: float, max_batch_seconds: float) -> str:
    """The message for a batch that does not fit: the BATCH_SIZE and MAX_BATCH_SECONDS that do."""
    seconds = fits * longest_s
    now = f"MAX_BATCH_SECONDS={max_batch_seconds:g}" if max_batch_seconds > 0 else f"BATCH_SIZE={batch_size}"
    return (f"the longest batch ({now}, clips up to {longest_s:.1f} s) runs out of GPU memory; "
            f"{fits} clips of {longest_s:.1f} s fit. Set BATCH_SIZE={fits}, or MAX_BATCH_SECONDS="
            f"{int(seconds)} (batches by padded audio: long clips get fewer per batch, short clips "
            f"more), or OOM_AUTO_BATCH=1 to apply it")

