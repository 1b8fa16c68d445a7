"""preflight: checks that fail in seconds instead of hours later.

- the data dir and its folders are writable by the current user (the uid-999 bind-mount trap);
- free disk space against a rough estimate;
- the KenLM tools exist when the lm stage will run;
- a GPU is visible, or a clear "training on CPU" warning; on a GPU: driver, compute capability,
  TensorFlow's CUDA/cuDNN, the resolved package versions, and a 2-step smoke test of the GPU LSTM
  and CTC kernels against the scan (a broken driver or image fails here, not after the import).
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import tempfile
from pathlib import Path

from pipeline.config import Config
from pipeline.errors import DataDirNotWritable, MissingInputError
from pipeline.lm import build as lmbuild
from pipeline.paths import Paths
from pipeline.stages.base import Stage, StageContext
from pipeline.tools import find_tool

log = logging.getLogger(__name__)

GIB = 1 << 30


def check_writable(paths: Paths) -> None:
    """Create the layout and prove every folder is writable, or say exactly how to fix it."""
    uid, gid = os.getuid(), os.getgid()
    fix = (f"make it writable for uid {uid}: on the host run `sudo chown -R {uid}:{gid} <your data dir>` "
           f"(or rebuild the image with `--build-arg UID=$(id -u) --build-arg GID=$(id -g)` so the "
           f"container user matches you)")
    try:
        paths.root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataDirNotWritable(f"cannot create the data dir {paths.root}: {exc.strerror}; {fix}") from None
    bad: list[str] = []
    read_only = True
    for d in paths.top_level_dirs():
        try:
            d.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=d, prefix=".write-test-"):
                pass
        except OSError as exc:
            bad.append(f"{d} ({exc.strerror})")
            read_only = read_only and exc.errno == errno.EROFS
    if bad and read_only:  # no chown can help a read-only mount
        raise DataDirNotWritable(
            f"the data dir {paths.root} is on a read-only file system; mount it read-write (with "
            f"Docker: no `readonly` / `:ro` on the bind mount of /mnt)")
    if bad:
        raise DataDirNotWritable(
            f"the data dir is not writable by uid {uid}: {', '.join(bad)}; {fix}")


def estimate_needed_bytes(cfg: Config, paths: Paths) -> int:
    """Rough need: 3x the source archives (wav is bigger than mp3) plus the model files."""
    sources = 0
    if paths.sources.is_dir():
        sources = sum(p.stat().st_size for p in paths.sources.iterdir() if p.is_file())
    params = 50_000_000 * (cfg.train.n_hidden / 2048) ** 2
    model = int(params * 4 * (cfg.train.max_to_keep + 6))
    return int(3 * sources + model + 0.2 * GIB)


def check_disk(cfg: Config, paths: Paths) -> None:
    free = shutil.disk_usage(paths.root).free
    need = estimate_needed_bytes(cfg, paths)
    if free < need:
        log.warning("only %.1f GiB free in %s; this run may need about %.1f GiB", free / GIB,
                    paths.root, need / GIB)
    else:
        log.info("disk: %.1f GiB free in %s (estimate %.1f GiB needed)", free / GIB, paths.root,
                 need / GIB)


def check_kenlm(cfg: Config) -> None:
    dirs = [cfg.lm.kenlm_bin] if cfg.lm.kenlm_bin else []
    missing = [t for t in lmbuild.KENLM_TOOLS if find_tool(t, dirs) is None]
    if missing:
        raise MissingInputError(
            f"KenLM tools not found: {', '.join(missing)}. Build them with `scripts/build_kenlm.sh` "
            f"(or `make kenlm`), or set KENLM_BIN to the directory that holds them.")


def check_gpu(cfg: Config | None = None, smoke: bool = True) -> int:
    os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")
    try:
        import tensorflow as tf
    except ImportError:
        log.warning("TensorFlow is not installed: only the data stages can run")
        return 0
    from pipeline.model import gpu as gpu_checks

    log.info("packages: %s", ", ".join(f"{k} {v}" for k, v in gpu_checks.package_versions().items()))
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        log.info("GPU: %d visible (%s)", len(gpus), ", ".join(g.name for g in gpus))
        for line in gpu_checks.gpu_report(gpus):
            log.info("GPU: %s", line)
        if smoke and cfg is not None:
            from pipeline.model.network import resolve_lstm_impl

            impl = resolve_lstm_impl(cfg.train.lstm_impl)
            if impl != "scan":
                worst = gpu_checks.smoke_test(impl)
                log.info("GPU smoke test: 2 steps of the %s LSTM + cuDNN CTC match the scan (max rel. "
                         "diff %.1e)", impl, worst)
    else:
        log.warning("no GPU visible: training on CPU (fine for the sample corpus, slow for real "
                    "corpora; with Docker use `docker run --gpus all`)")
    return len(gpus)


def check_transfer(cfg: Config) -> None:
    if cfg.train.transfer_learning and not Path(cfg.train.transfer_checkpoint).is_dir():
        raise MissingInputError(
            f"TRANSFER_LEARNING=1 but TRANSFER_CHECKPOINT={cfg.train.transfer_checkpoint} is not a "
            f"directory; mount the source checkpoint there (docker run --mount type=bind,src=DIR,"
            f"dst=/transfer-checkpoint,readonly) or set TRANSFER_CHECKPOINT")


def run(ctx: StageContext) -> None:
    check_writable(ctx.paths)
    check_disk(ctx.cfg, ctx.paths)
    if "lm" in ctx.planned:
        check_kenlm(ctx.cfg)
    if "train" in ctx.planned:
        check_transfer(ctx.cfg)
    alone = tuple(ctx.planned) == ("preflight",)  # `run --stages preflight`: check everything
    if alone or {"train", "test", "export", "lm_optimize"} & set(ctx.planned):
        check_gpu(ctx.cfg, smoke=alone or "train" in ctx.planned)


STAGE = Stage(
    name="preflight",
    help="check the data dir, disk, tools and GPU",
    run=run,
    always_run=True,
)
