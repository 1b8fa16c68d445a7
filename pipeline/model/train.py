"""The training loop: CTC + Adam, per-epoch dev loss, checkpoints with exact resume, early stop,
reduce-LR-on-plateau, transfer learning, mixed precision and tf.distribute.

Decisions on DeepSpeech's quirks (reference §4, §11), deliberately:
- batch order is shuffled every epoch (seeded; DeepSpeech never shuffled);
- on resume the configured LEARNING_RATE wins (times any plateau reductions already applied),
  DeepSpeech silently kept the checkpoint's rate;
- best loss and early-stop/plateau counters are saved in the checkpoint, so a resumed run behaves like
  an uninterrupted one (DeepSpeech restarted them);
- a plateau reloads the best weights and lowers the LR but keeps Adam's moments and the step count;
- dropout applies to layers 1, 2, 3 and 5 with one rate (no unused per-layer flags);
- non-finite batches are skipped (not applied) and counted; many in a row stop the run with a report.

Checkpoint state lives inside the checkpoint (a JSON string variable), so weights, optimizer slots,
counters and the data position are always consistent; `train_state.json` is a readable copy.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import shutil
import signal
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.config import FAST_TRAIN, Config
from pipeline.corpus_csv import split_csvs
from pipeline.errors import ConfigError, MissingInputError, PipelineError
from pipeline.faults import crashpoint
from pipeline.fsutil import atomic_dir, remove_stale_temps, write_json, write_text
from pipeline.logs import format_duration
from pipeline.model.ctc import CUDNN_CTC_MAX_LABELS, ctc_loss, eval_sums
from pipeline.model.geometry import N_INPUT
from pipeline.model.normalize import set_model_norm
from pipeline.paths import Paths
from pipeline.text.alphabet import Alphabet

log = logging.getLogger(__name__)

# The one list of the settings that shape training: the train stage's fingerprint, the settings
# recorded in train_done.json and shown in the training report.
TRAINING_SETTINGS = ("MODEL_LANGUAGE", "BATCH_SIZE", "EPOCHS", "LEARNING_RATE", "N_HIDDEN", "DROPOUT",
                     "EARLY_STOP", "ES_STOP", "ES_MIN_DELTA", "REDUCE_LR_ON_PLATEAU", "PLATEAU_EPOCHS",
                     "PLATEAU_REDUCTION", "LR_DECAY", "LR_DECAY_FLOOR", "SORTAGRAD_EPOCHS", "AMP",
                     "TRANSFER_LEARNING", "TRANSFER_CHECKPOINT",
                     "DROP_SOURCE_LAYERS", "AUGMENT", "RANDOM_SEED", "FAST_TRAIN", "MAX_BATCH_SECONDS",
                     "TRAIN_MAX_MINUTES", "TRANSFER_KEEP_SHARED_CHARS", "FEATURE_CACHE", "FEATURE_NORM",
                     "EMA_DECAY", "AUDIO_SAMPLE_RATE", "BYTES_OUTPUT_MODE")
BEST_INFO = "best_dev.json"




@dataclass
class Distribution:
    strategy: Any
    replicas: int
    worker: int
    workers: int
    is_chief: bool


def make_strategy(cpu_replicas: int = 0) -> Distribution:
    """MultiWorkerMirroredStrategy when TF_CONFIG is set, MirroredStrategy over several GPUs (or
    `cpu_replicas` logical CPU devices, for tests), else the default strategy."""
    import tensorflow as tf

    if os.environ.get("TF_CONFIG"):
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        resolver = strategy.cluster_resolver
        spec = resolver.cluster_spec().as_dict()
        workers = len(spec.get("worker", [])) + len(spec.get("chief", []))
        task_type, task_id = resolver.task_type, resolver.task_id or 0
        worker = task_id + (1 if "chief" in spec and task_type == "worker" else 0)
        is_chief = task_type == "chief" or (task_type == "worker" and task_id == 0 and "chief" not in spec)
        return Distribution(strategy, strategy.num_replicas_in_sync, worker, workers, is_chief)
    gpus = tf.config.list_logical_devices("GPU")
    if len(gpus) > 1:
        strategy = tf.distribute.MirroredStrategy()
        return Distribution(strategy, strategy.num_replicas_in_sync, 0, 1, True)
    if cpu_replicas > 1:
        cpus = tf.config.list_logical_devices("CPU")
        if len(cpus) < cpu_replicas:
            raise ConfigError(f"{cpu_replicas} CPU replicas requested but only {len(cpus)} logical CPU "
                              f"devices exist (configure them before TensorFlow initializes)")
        strategy = tf.distribute.MirroredStrategy([d.name for d in cpus[:cpu_replicas]])
        return Distribution(strategy, cpu_replicas, 0, 1, True)
    return Distribution(tf.distribute.get_strategy(), 1, 0, 1, True)


def compute_dtype(cfg: Config) -> str:
    """AMP: float16 with loss scaling on GPU; on CPU bfloat16 exercises the same path."""
    if not cfg.train.amp:
        return "float32"
    import tensorflow as tf

    return "mixed_float16" if tf.config.list_physical_devices("GPU") else "mixed_bfloat16"


NO_GROWTH_STEPS = 2 ** 62  # fp32: the loss scale stays at 1.0 (it only exists to skip bad steps)


def make_optimizer(learning_rate: float, fp16: bool) -> Any:
    """Adam inside a LossScaleOptimizer, always (the same checkpoint structure for AMP and fp32 runs;
    it skips non-finite steps in both). Only fp16 needs a dynamic scale; in fp32 it never grows."""
    import keras

    inner = keras.optimizers.Adam(learning_rate=learning_rate, beta_1=0.9, beta_2=0.999, epsilon=1e-8)
    if fp16:
        return keras.optimizers.LossScaleOptimizer(inner, initial_scale=2.0 ** 15)
    return keras.optimizers.LossScaleOptimizer(inner, initial_scale=1.0,
                                               dynamic_growth_steps=NO_GROWTH_STEPS)


def global_skip_decision(ctx: Any, loss_ok: Any, grads: list[Any]) -> tuple[list[Any], Any, Any]:
    """One decision per step for every replica and worker.

    Keras's LossScaleOptimizer (without XLA) judges finiteness from replica 0's local gradients
    only: a non-finite gradient on another replica was summed into the weights (NaN) while the log
    said "skipped", and workers could take different branches around a collective (a hang). So the
    local verdicts are all-reduced and, if any replica is bad, every replica's gradients become NaN:
    all skip together (and the loss scale halves once). Returns the gradients and the number of
    replicas with a non-finite loss and with non-finite gradients (identical on every replica).
    """
    import tensorflow as tf

    grads_ok = tf.reduce_all([tf.reduce_all(tf.math.is_finite(g)) for g in grads])
    local = tf.stack([1.0 - tf.cast(loss_ok, tf.float32), 1.0 - tf.cast(grads_ok, tf.float32)])
    bad = ctx.all_reduce(tf.distribute.ReduceOp.SUM, local)
    skip = bad[0] + bad[1] > 0
    grads = [tf.where(skip, tf.fill(tf.shape(g), tf.constant(float("nan"), g.dtype)), g) for g in grads]
    return grads, bad[0], bad[1]


def fresh_state(cfg: Config, alphabet: Alphabet) -> dict[str, Any]:
    return {
        "epoch": 0, "step_in_epoch": 0, "global_step": 0, "epoch_loss_sum": 0.0, "epoch_count": 0,
        "best_dev_loss": None, "best_epoch": None, "es_counter": 0, "plateau_reductions": 0,
        "nonfinite_total": 0, "loss_scale_skips": 0, "elapsed_s": 0.0, "history": [], "lr_scale": 1.0,
        "n_hidden": cfg.train.n_hidden, "alphabet": list(alphabet.labels), "transfer_from": None,
        "stop_reason": None,
    }


class Trainer:
    """One training run over fixed train/dev sets. `run()` returns the final state."""

    def __init__(self, cfg: Config, paths: Paths, train_csvs: Sequence[Path], dev_csvs: Sequence[Path],
                 *, dist: Distribution | None = None, alphabet: Alphabet | None = None):
        self.cfg = cfg
        self.paths = paths
        self.alphabet = alphabet or Alphabet.from_file(paths.alphabet)
        self.train_csvs = list(train_csvs)
        self.dev_csvs = list(dev_csvs)
        self.dist = dist or make_strategy()
        self.tc = cfg.train
        self.oom_probe: bool | None = None  # None: probe the longest batch when a GPU is visible
        self._probe_fn: Any = None
        self._dev_ds: Any = None       # (repeating dev iterator, batches per pass), made once
        self._live_feats: list[Any] | None = None  # LIVE_TRANSCRIPTS clips' features, computed once

    # -----------------------------------------------------------------------------------------
    def setup(self) -> dict[str, Any]:
        """Load the data, build model/optimizer/checkpoints and restore; returns the state."""
        import tensorflow as tf

        from pipeline.model.dataset import FeatureCache, load_samples
        from pipeline.model.network import Geometry

        cfg, tc, dist = self.cfg, self.tc, self.dist
        limit_train, limit_dev = ((FAST_TRAIN.train_samples, FAST_TRAIN.dev_samples)
                                  if cfg.general.fast_train else (None, None))
        rate = cfg.data.audio_sample_rate
        self.train_set = load_samples(self.train_csvs, self.alphabet, "train", limit_train, rate)
        self.dev_set = load_samples(self.dev_csvs, self.alphabet, "dev", limit_dev, rate) \
            if self.dev_csvs else None
        if len(self.train_set) == 0:
            raise MissingInputError(f"no usable training samples in {', '.join(map(str, self.train_csvs))}")
        log.info("train: %d samples (%.2f h), dev: %d samples (%.2f h), %d replica(s), %s",
                 len(self.train_set), self.train_set.hours, len(self.dev_set or []),
                 self.dev_set.hours if self.dev_set else 0.0, dist.replicas, compute_dtype(cfg))
        self.dtype = compute_dtype(cfg)
        self.compute = {"float32": "float32", "mixed_float16": "float16",
                        "mixed_bfloat16": "bfloat16"}[self.dtype]
        geometry = Geometry(tc.n_hidden, self.alphabet.num_classes)
        self.build(geometry)
        self.state_var = tf.Variable("", dtype=tf.string, trainable=False, name="train_state")
        self.ckpt = self._train_checkpoint(with_ema=bool(self.ema))
        ckpt_dir = paths_for_worker(self.paths.train_checkpoint_dir, dist)
        self.manager = tf.train.CheckpointManager(self.ckpt, str(ckpt_dir), max_to_keep=tc.max_to_keep,
                                                  checkpoint_name="train")
        remove_unlisted_checkpoints(ckpt_dir, self.manager.checkpoints)
        state = self._restore_or_init()
        state.setdefault("loss_scale_skips", 0)
        if self.compute != "float16":
            self.opt.dynamic_scale.assign(1.0)  # e.g. resumed from an AMP run: fp32 needs no scale
        self.opt.inner_optimizer.learning_rate.assign(self._lr(state))

        self.cache = FeatureCache.build_if_it_fits(self.train_set, "train") if tc.feature_cache else None
        self.dev_cache = (FeatureCache.build_if_it_fits(self.dev_set, "dev")
                          if (tc.feature_cache and self.dev_set) else None)
        from pipeline.model.augment import build_augmenter

        self.augmenter = build_augmenter(tc.augment, cfg.general.random_seed,
                                         cfg.data.audio_sample_rate)
        if self.augmenter is not None and self.cache is not None:
            self.augmenter = self.augmenter.without_audio()
        writer_dir = self.paths.tensorboard
        self.tb_train = tf.summary.create_file_writer(str(writer_dir / "train")) if dist.is_chief else None
        self.tb_dev = tf.summary.create_file_writer(str(writer_dir / "dev")) if dist.is_chief else None

        return state

    def build(self, geometry: Any) -> None:
        """Model, optimizer and step functions (no data needed; benchmarks/gpu_train.py uses this).
        Chooses the LSTM and CTC implementations and logs them."""
        import tensorflow as tf

        from pipeline.model.network import build_model, resolve_lstm_impl

        cfg, tc, dist = self.cfg, self.tc, self.dist
        if not hasattr(self, "dtype"):
            self.dtype = compute_dtype(cfg)
            self.compute = {"float32": "float32", "mixed_float16": "float16",
                            "mixed_bfloat16": "bfloat16"}[self.dtype]
        self.lstm_impl = resolve_lstm_impl(tc.lstm_impl)
        if self.lstm_impl == "block" and self.compute == "bfloat16":
            raise ConfigError("LSTM_IMPL=block has no bfloat16 kernel (AMP on CPU); set AMP=0 or "
                              "LSTM_IMPL=scan")
        self.cudnn_ctc = bool(tf.config.list_logical_devices("GPU"))
        log.info("LSTM: %s (LSTM_IMPL=%s%s); CTC: %s", self.lstm_impl, tc.lstm_impl,
                 ", GPU visible" if self.cudnn_ctc else ", no GPU" if tc.lstm_impl == "auto" else "",
                 f"cuDNN below {CUDNN_CTC_MAX_LABELS} labels, dense labels otherwise"
                 if self.cudnn_ctc else "TensorFlow's C++ kernel")
        with dist.strategy.scope():
            self.model = build_model(geometry, cfg.general.random_seed)
            self.opt = make_optimizer(tc.learning_rate, self.compute == "float16")
            self.opt.build(self.model.weight_list())
            # EMA_DECAY: the averaged weights, beside the trained ones (swapped in for evaluation)
            self.ema = [tf.Variable(tf.zeros(v.shape, v.dtype), trainable=False, name=f"ema_{i}")
                        for i, v in enumerate(self.model.weight_list())] if tc.ema_decay > 0 else None
        self._build_steps()

    def run(self) -> dict[str, Any]:
        tc, dist = self.tc, self.dist
        t_start = time.monotonic()
        state = self.setup()
        if state["epoch"] < tc.epochs:
            self._probe_memory()
        tc = self.tc  # the probe may have set MAX_BATCH_SECONDS (OOM_AUTO_BATCH=1)
        budget_s = tc.train_max_minutes * 60.0
        run_elapsed0 = state["elapsed_s"]
        epoch_time: float | None = None
        try:
            while state["epoch"] < tc.epochs and state["stop_reason"] is None:
                used = run_elapsed0 + time.monotonic() - t_start
                next_end = used + (epoch_time or 0.0)
                if budget_s and (used >= budget_s or next_end > budget_s):
                    state["stop_reason"] = (f"TRAIN_MAX_MINUTES={tc.train_max_minutes:g} reached after "
                                            f"{state['epoch']} epoch(s)")
                    break
                e0 = time.monotonic()
                state = self._train_epoch(state, t_start, run_elapsed0)
                state = self._end_epoch(state, t_start, run_elapsed0)
                epoch_time = time.monotonic() - e0
        except KeyboardInterrupt:
            state["elapsed_s"] = run_elapsed0 + time.monotonic() - t_start
            self._save(state)
            log.warning("interrupted: saved a checkpoint at epoch %d, step %d; rerun to resume",
                        state["epoch"], state["step_in_epoch"])
            raise
        if state["stop_reason"] is None:
            state["stop_reason"] = f"completed {state['epoch']} epoch(s)"
        state["elapsed_s"] = run_elapsed0 + time.monotonic() - t_start
        self._save(state)
        if not self.paths.best_checkpoint_dir.exists():
            # no dev set (or no finished epoch): the last weights are the best we have
            with self.averaged_weights():
                self._save_best(state, None)
        log.info("training finished: %s; best dev loss %s at epoch %s", state["stop_reason"],
                 _fmt(state["best_dev_loss"]), state["best_epoch"])
        crashpoint("train.done_marker")
        if dist.is_chief:
            write_json(self.paths.train_done, {
                "epochs": state["epoch"], "global_step": state["global_step"],
                "best_dev_loss": state["best_dev_loss"], "best_epoch": state["best_epoch"],
                "stop_reason": state["stop_reason"], "train_hours": self.train_set.hours,
                "dev_hours": self.dev_set.hours if self.dev_set else 0.0,
                "train_samples": len(self.train_set), "elapsed_s": round(state["elapsed_s"], 1),
                "lstm_impl": self.lstm_impl, "nonfinite_batches": state["nonfinite_total"],
                "loss_scale_skips": state["loss_scale_skips"],
                "config": {k: v for k, v in self.cfg.as_env().items() if k in TRAINING_SETTINGS},
                "rejected": {"train": dict(self.train_set.rejected),
                             "dev": dict(self.dev_set.rejected) if self.dev_set else {}},
            })
        return state

    def _probe_memory(self) -> None:
        """Before the first step: one forward + backward pass (nothing applied) on the longest
        batch of the plan. Out of GPU memory there means out of memory hours later at that batch:
        find the number of its clips that fits and stop with the settings that work, or (with
        OOM_AUTO_BATCH=1) continue with MAX_BATCH_SECONDS set to what fits."""
        import dataclasses

        import tensorflow as tf

        from pipeline.model.dataset import make_dataset
        from pipeline.model.gpu import oom_advice, probe_batch_fit

        probe = self.oom_probe if self.oom_probe is not None else \
            bool(tf.config.list_logical_devices("GPU"))
        if not probe:
            return
        frames = self.train_set.frames
        plan = self._plan(self.train_set, None)
        longest = max(range(len(plan)), key=lambda b: len(plan[b]) * int(frames[plan[b]].max()))
        feats, flen, labels, llen = next(iter(make_dataset(self.train_set, [longest], plan, cache=self.cache)))
        size = int(tf.shape(feats)[0])

        def run(n: int) -> None:  # the n longest clips of that batch (padded length unchanged)
            self.probe_step((feats[-n:], flen[-n:], labels[-n:], llen[-n:]))

        fits = probe_batch_fit(run, size)
        longest_s = int(frames[plan[longest]].max()) * 0.02
        if fits is None:
            log.info("memory probe: the longest batch (%d clips up to %.1f s) fits", size, longest_s)
            return
        advice = oom_advice(fits, self.tc.batch_size, longest_s, self.tc.max_batch_seconds)
        if not self.tc.oom_auto_batch:
            raise PipelineError(f"training not started: {advice}")
        seconds = float(int(fits * longest_s))
        log.warning("memory probe: %s -- OOM_AUTO_BATCH=1: training with MAX_BATCH_SECONDS=%g",
                    advice.split("; ")[0], seconds)
        self.tc = dataclasses.replace(self.tc, max_batch_seconds=seconds)

    def probe_step(self, batch: Any) -> None:
        """Loss and gradients of `batch` on every replica, nothing applied (the memory probe)."""
        import tensorflow as tf

        if self._probe_fn is None:
            model, strategy, ctc = self.model, self.dist.strategy, self._ctc

            def replica(feats: Any, flen: Any, labels: Any, llen: Any) -> Any:
                with tf.GradientTape() as tape:
                    loss = tf.reduce_sum(ctc(feats, flen, labels, llen, True))
                grads = tape.gradient(loss, model.weight_list())
                return tf.add_n([tf.reduce_sum(tf.cast(g, tf.float32)) for g in grads])

            self._probe_fn = tf.function(lambda b: strategy.run(replica, args=b))
        float(self.dist.strategy.reduce(tf.distribute.ReduceOp.SUM, self._probe_fn(batch), None))

    # -----------------------------------------------------------------------------------------
    def _lr(self, state: dict[str, Any]) -> float:
        return (self.tc.learning_rate * self.tc.plateau_reduction ** state["plateau_reductions"]
                * state.get("lr_scale", 1.0))

    def _restore_or_init(self) -> dict[str, Any]:
        import tensorflow as tf

        latest = self.manager.latest_checkpoint
        if latest:
            ema_missing = bool(self.ema) and not any(
                k.startswith("ema/") for k in tf.train.load_checkpoint(latest).get_variable_to_shape_map())
            if ema_missing:
                log.info("EMA_DECAY=%g: %s holds no averaged weights (trained without EMA_DECAY); the "
                         "average starts from its weights", self.tc.ema_decay, Path(latest).name)
            try:
                self._train_checkpoint(with_ema=not ema_missing and bool(self.ema)).restore(
                    latest).assert_existing_objects_matched()
            except (ValueError, AssertionError, Exception) as exc:
                raise ConfigError(
                    f"cannot resume from {latest}: {str(exc).splitlines()[0][:300]}. The checkpoints in "
                    f"{self.paths.train_checkpoint_dir} were made with other model settings (N_HIDDEN, "
                    f"alphabet); restore those settings or move the checkpoints/ directory away") from None
            state = json.loads(self.state_var.numpy().decode("utf-8"))
            if state.get("n_hidden") != self.tc.n_hidden or \
                    state.get("alphabet") != list(self.alphabet.labels):
                raise ConfigError(f"{self.paths.train_checkpoint_dir} holds a model with N_HIDDEN="
                                  f"{state.get('n_hidden')} and a different alphabet or size; set N_HIDDEN "
                                  f"back or move checkpoints/ away to start over")
            state["stop_reason"] = None
            if state["epoch"] >= self.tc.epochs:
                log.info("resumed %s: all %d epoch(s) already done", Path(latest).name, self.tc.epochs)
            else:
                log.info("resumed from %s: epoch %d of %d, batch %d of that epoch, global step %d, best dev "
                         "loss %s, early-stop counter %d, plateau reductions %d, learning rate %g%s",
                         Path(latest).name, state["epoch"] + 1, self.tc.epochs, state["step_in_epoch"],
                         state["global_step"], _fmt(state["best_dev_loss"]), state["es_counter"],
                         state["plateau_reductions"], self._lr(state),
                         f", transfer from {state['transfer_from']} (not re-applied)"
                         if state.get("transfer_from") else "")
            self._log_best_on_resume(state)
            if state.get("feature_norm"):  # runs that predate FEATURE_NORM resume on raw features
                set_model_norm(self.model, state["feature_norm"])
            if ema_missing:
                self._reset_ema()
            return state
        state = fresh_state(self.cfg, self.alphabet)
        if self.tc.transfer_learning:
            from pipeline.model.network import apply_transfer

            state["transfer_from"] = apply_transfer(self.cfg, self.model, self.alphabet)
            if self.tc.feature_norm:  # the source's layer_1 was trained on raw (or folded) features
                log.info("FEATURE_NORM: not measured for transfer learning (the transferred layer_1 "
                         "expects the source's features)")
        elif self.tc.feature_norm:
            from pipeline.model.normalize import feature_stats, norm_to_state

            norm = feature_stats(self.train_set.paths, self.train_set.sample_rate)
            state["feature_norm"] = norm_to_state(norm)
            set_model_norm(self.model, norm)
        self._reset_ema()
        log.info("starting training from %s%s", "transferred weights" if state["transfer_from"]
                 else "random initialization",
                 f"; averaging the weights (EMA_DECAY={self.tc.ema_decay:g})" if self.ema else "")
        return state

    def _train_checkpoint(self, with_ema: bool) -> Any:
        """The training checkpoint's objects: weights, optimizer, state and (EMA_DECAY) the average."""
        import tensorflow as tf

        return tf.train.Checkpoint(model=self.model, optimizer=self.opt, state=self.state_var,
                                   **({"ema": self.ema} if with_ema else {}))

    def _reset_ema(self) -> None:
        """The average restarts at the current weights (a fresh run, a plateau's reload)."""
        if self.ema:
            for e, v in zip(self.ema, self.model.weight_list(), strict=True):
                e.assign(v)

    @contextlib.contextmanager
    def averaged_weights(self) -> Iterator[None]:
        """With EMA_DECAY, the model holds the averaged weights inside the block (dev pass, best_dev/,
        live transcripts) and the trained ones again after it; without, nothing changes."""
        import tensorflow as tf

        if not self.ema:
            yield
            return
        pairs = list(zip(self.ema, self.model.weight_list(), strict=True))

        def swap() -> None:
            for e, v in pairs:
                trained = tf.identity(v)
                v.assign(e)
                e.assign(trained)

        swap()
        try:
            yield
        finally:
            swap()

    def _log_best_on_resume(self, state: dict[str, Any]) -> None:
        """Say which best validating checkpoint a resume continues from (DeepSpeech logged
        `Loading best validating checkpoint from ...`; its smoke test checks that line)."""
        try:
            best = json.loads((self.paths.best_checkpoint_dir / BEST_INFO).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        name = f"{self.paths.best_checkpoint_dir.name}/best_dev-{best.get('global_step')}"
        if best.get("global_step") == state["global_step"]:
            log.info("loaded the best validating checkpoint %s (epoch %s, dev loss %s): the latest "
                     "checkpoint is the best one", name, best.get("epoch"), _fmt(best.get("dev_loss")))
        else:
            log.info("best validating checkpoint so far: %s (epoch %s, dev loss %s); resuming from the "
                     "latest checkpoint (exact resume), the best one stays in %s", name,
                     best.get("epoch"), _fmt(best.get("dev_loss")), self.paths.best_checkpoint_dir)

    def _check_finite_weights(self, state: dict[str, Any]) -> None:
        """Never write a checkpoint with NaN/inf weights: a resume or an export would inherit them."""
        import tensorflow as tf

        bad = [v.name for v in self.model.weight_list() if not bool(tf.reduce_all(tf.math.is_finite(v)))]
        if bad:
            raise PipelineError(
                f"training stopped at epoch {state['epoch'] + 1}, global step {state['global_step']}: "
                f"the weights {', '.join(bad)} are not finite; no checkpoint was written, the last one in "
                f"{self.paths.train_checkpoint_dir} is intact. Lower LEARNING_RATE (now "
                f"{self._lr(state):g}) and rerun to resume from it")

    def _save(self, state: dict[str, Any]) -> None:
        import tensorflow as tf

        self.state_var.assign(json.dumps(state))
        # Our write callback runs after the files are written, before the manager's own callback
        # records them in `checkpoint` (makes them current).
        opts = tf.train.CheckpointOptions(
            experimental_write_callbacks=[lambda _: crashpoint("train.checkpoint_save")])
        path = self.manager.save(checkpoint_number=state["global_step"], options=opts)
        if self.dist.is_chief:
            write_json(self.paths.train_state, {**state, "checkpoint": Path(path).name})

    def _save_best(self, state: dict[str, Any], dev_loss: float | None) -> None:
        import tensorflow as tf

        self._check_finite_weights(state)
        # the normalization travels with the weights (read_checkpoint_weights folds it in)
        best = tf.train.Checkpoint(model=self.model, feature_norm=self.model.feature_norm)
        if not self.dist.is_chief:
            tmp = self.paths.worker_tmp(self.dist.worker)
            best.write(str(tmp / "best_dev"))
            shutil.rmtree(tmp, ignore_errors=True)
            return
        with atomic_dir(self.paths.best_checkpoint_dir) as tmpdir:
            os.chmod(tmpdir, 0o755)  # mkdtemp makes it private; others read exports from it
            prefix = Path(best.write(str(tmpdir / f"best_dev-{state['global_step']}"))).name
            # The state file without CheckpointManager's wall-clock timestamps: the same weights give
            # the same best_dev/ bytes, so checkpoint_<ll>.tar.xz is reproducible.
            write_text(tmpdir / "checkpoint", f'model_checkpoint_path: "{prefix}"\n'
                                              f'all_model_checkpoint_paths: "{prefix}"\n')
            crashpoint("train.best_save")  # inside the temp dir, not yet renamed to best_dev/
            self.alphabet.write(tmpdir / "alphabet.txt")
            write_json(tmpdir / BEST_INFO, {"epoch": state["epoch"], "global_step": state["global_step"],
                                            "dev_loss": dev_loss, "n_hidden": self.tc.n_hidden,
                                            "n_classes": self.alphabet.num_classes})

    # -----------------------------------------------------------------------------------------
    def _build_steps(self) -> None:
        import tensorflow as tf

        model, opt, strategy = self.model, self.opt, self.dist.strategy
        dropout, compute = self.tc.dropout, self.compute
        variables = model.weight_list()
        base_seed = self.cfg.general.random_seed

        lstm_impl, cudnn = self.lstm_impl, self.cudnn_ctc

        def forward(feats: Any, flen: Any, training: bool, seed: Any = None) -> Any:
            return model(feats, training=training, dropout=dropout, compute_dtype=compute,
                         dropout_seed=seed, lstm_impl=lstm_impl, feature_len=flen)

        def ctc(feats: Any, flen: Any, labels: Any, llen: Any, training: bool, seed: Any = None) -> Any:
            return ctc_loss(labels, forward(feats, flen, training, seed), llen, flen, cudnn)

        def replica_train(feats: Any, flen: Any, labels: Any, llen: Any, step: Any) -> Any:
            ctx = tf.distribute.get_replica_context()
            n_local = tf.cast(tf.shape(feats)[0], tf.float32)
            n_global = ctx.all_reduce(tf.distribute.ReduceOp.SUM, n_local)
            # Dropout masks from (RANDOM_SEED, global step, replica): reproducible, and the same
            # after a resume as in an uninterrupted run (a stateful RNG restarts on resume).
            seed = tf.random.experimental.stateless_fold_in(
                tf.stack([tf.constant(base_seed, tf.int64), step]), ctx.replica_id_in_sync_group)
            with tf.GradientTape() as tape:
                per_ex = ctc(feats, flen, labels, llen, True, seed)
                loss = tf.reduce_sum(per_ex) / n_global
                scaled = opt.scale_loss(loss)
            grads = tape.gradient(scaled, variables)
            grads, bad_loss, bad_grads = global_skip_decision(
                ctx, tf.reduce_all(tf.math.is_finite(per_ex)), grads)
            opt.apply_gradients(zip(grads, variables, strict=False))
            return tf.reduce_sum(per_ex), n_local, bad_loss, bad_grads

        sum_ = tf.distribute.ReduceOp.SUM
        mean_ = tf.distribute.ReduceOp.MEAN

        ema, ema_decay = self.ema, self.tc.ema_decay

        def train_step(batch: Any, step: Any) -> Any:
            """-> (loss sum, examples, replicas with a non-finite loss, replicas with non-finite
            gradients); the last two are all-reduced already, so MEAN just picks the value."""
            s, n, bl, bg = strategy.run(replica_train, args=(*batch, step))
            if ema:
                # TensorFlow's ExponentialMovingAverage with num_updates: early on the decay is
                # lower, so the average is not dominated by the random initialization
                k = tf.cast(step, tf.float32)
                d = tf.minimum(ema_decay, (1.0 + k) / (10.0 + k))
                for e, v in zip(ema, variables, strict=True):
                    e.assign(d * e + (1.0 - d) * v)
            return strategy.reduce(sum_, s, None), strategy.reduce(sum_, n, None), \
                strategy.reduce(mean_, bl, None), strategy.reduce(mean_, bg, None)

        # Fixed signatures (None for batch and time) so variable-length batches never retrace.
        spec = (tf.TensorSpec([None, None, N_INPUT], tf.float32), tf.TensorSpec([None], tf.int32),
                tf.TensorSpec([None, None], tf.int32), tf.TensorSpec([None], tf.int32))
        self._train_step_fn = train_step
        self._train_step_compiled: Any = None

        @tf.function(input_signature=[spec])
        def eval_step(batch: Any) -> Any:
            """-> (sum of the finite per-utterance losses, their count, greedy label errors,
            reference labels): the CTC loss and the best path's edit distance from one forward pass."""
            feats, flen, labels, llen = batch
            return eval_sums(labels, forward(feats, flen, False), llen, flen, cudnn)

        @tf.function(input_signature=[spec[0]])
        def logits_step(feats: Any) -> Any:
            """Logits without dropout, compiled once (an eager LSTM forward pass took longer than
            a training step of a small model; LIVE_TRANSCRIPTS runs it every epoch)."""
            return model(feats, compute_dtype=compute)

        self.eval_step = eval_step
        self.logits_step = logits_step
        self._ctc = ctc
        self._probe_fn = None

    def train_step(self, batch: Any, element_spec: Any, global_step: int = 0) -> Any:
        import tensorflow as tf

        if self._train_step_compiled is None:
            self._train_step_compiled = tf.function(
                self._train_step_fn, input_signature=[element_spec, tf.TensorSpec([], tf.int64)])
        return self._train_step_compiled(batch, tf.constant(global_step, tf.int64))

    def _dataset(self, samples: Any, plan: list[list[int]], start_step: int, cache: Any,
                 augment: Any) -> tuple[Any, int]:
        import tensorflow as tf

        from pipeline.model.dataset import make_dataset, replica_batch_order

        dist = self.dist
        local = dist.replicas // dist.workers
        order, steps = replica_batch_order(len(plan), dist.replicas, dist.worker, local, start_step)
        if dist.replicas == 1:
            return make_dataset(samples, order, plan, cache=cache, augment=augment), steps

        def fn(ctx: tf.distribute.InputContext) -> Any:
            return make_dataset(samples, order, plan, cache=cache, augment=augment)

        return dist.strategy.distribute_datasets_from_function(fn), steps

    def _plan(self, samples: Any, seed: int | None) -> list[list[int]]:
        from pipeline.model.dataset import plan_batches

        return plan_batches(samples.frames, self.tc.batch_size, self.tc.max_batch_seconds, seed,
                            group=self.dist.replicas)

    def epoch_plan(self, epoch: int) -> list[list[int]]:
        """The train batches of `epoch` (0-based) in the order they are trained: by duration,
        shortest first, for the first SORTAGRAD_EPOCHS (few alignments per clip, so CTC leaves its
        all-blank start sooner), then shuffled with a seed fixed by RANDOM_SEED and the epoch."""
        if epoch < self.tc.sortagrad_epochs:
            return self._plan(self.train_set, None)
        return self._plan(self.train_set, self.cfg.general.random_seed * 1000 + epoch)

    def _train_epoch(self, state: dict[str, Any], t_start: float, elapsed0: float) -> dict[str, Any]:

        from pipeline.progress import Progress

        epoch = state["epoch"]
        plan = self.epoch_plan(epoch)
        start = state["step_in_epoch"]
        augment = self.augmenter.for_epoch(epoch) if self.augmenter is not None else None
        ds, steps = self._dataset(self.train_set, plan, start, self.cache, augment)
        if steps == 0:
            raise MissingInputError(f"the train set has fewer batches ({len(plan)}) than replicas "
                                    f"({self.dist.replicas}); lower BATCH_SIZE or add data")
        if start:
            log.info("epoch %d: skipping the %d batch(es) trained before the restart", epoch + 1, start)
        frames = self.train_set.frames.tolist()  # Python ints: no numpy scalar per sample and epoch
        frames_per_step = [sum(frames[i] for r in range(self.dist.replicas)
                               for i in plan[s * self.dist.replicas + r]) for s in range(steps)]
        last_save = time.monotonic()
        consecutive_bad = 0
        t0 = time.monotonic()
        audio_s = 0.0
        with Progress(steps, f"epoch {epoch + 1}/{self.tc.epochs}", "batches", interval_s=30.0) as prog:
            prog.count = start
            for batch in ds:
                loss_sum, n, bad_loss, bad_grads = (
                    float(x) for x in self.train_step(batch, ds.element_spec, state["global_step"]))
                step = state["step_in_epoch"]
                state["step_in_epoch"] += 1
                state["global_step"] += 1
                crashpoint("train.step")  # an update applied that no checkpoint holds yet
                audio_s += frames_per_step[step] * 0.02
                verdict = step_verdict(bad_loss, bad_grads, loss_sum, self.compute == "float16",
                                       float(self.opt.dynamic_scale.numpy()))
                if verdict == "overflow":
                    # fp16 gradients overflowed at this loss scale: normal under AMP (the scale
                    # halves and the step is retried on the next batch), not a data problem
                    state["loss_scale_skips"] += 1
                    log.info("epoch %d batch %d: fp16 gradients overflowed, step skipped, loss scale "
                             "now %g (%d such steps so far)", epoch + 1, step + 1,
                             float(self.opt.dynamic_scale.numpy()), state["loss_scale_skips"])
                elif verdict == "nonfinite":
                    state["nonfinite_total"] += 1
                    consecutive_bad += 1
                    clips = [Path(self.train_set.paths[i]).name for r in range(self.dist.replicas)
                             for i in plan[step * self.dist.replicas + r]]
                    log.warning("epoch %d batch %d: non-finite loss or gradient, batch skipped, weights "
                                "unchanged (%d so far); clips: %s%s", epoch + 1, step + 1,
                                state["nonfinite_total"], ", ".join(clips[:8]),
                                f" and {len(clips) - 8} more" if len(clips) > 8 else "")
                    if consecutive_bad >= self.tc.nonfinite_limit:
                        self._save(state)
                        raise PipelineError(
                            f"training stopped: {consecutive_bad} consecutive batches had a non-finite loss "
                            f"or gradient ({state['nonfinite_total']} in total). The model diverged: lower "
                            f"LEARNING_RATE (now {self._lr(state):g}), or check the data (very long clips, "
                            f"wrong transcripts); raise NONFINITE_LIMIT to tolerate more")
                else:
                    consecutive_bad = 0
                    state["epoch_loss_sum"] += loss_sum
                    state["epoch_count"] += int(n)
                    if self.tb_train is not None:
                        with self.tb_train.as_default(step=state["global_step"]):
                            tb_scalar("step_loss", loss_sum / max(n, 1.0), state["global_step"])
                rate = audio_s / 3600.0 / max(time.monotonic() - t0, 1e-6)
                prog.update(1, f"loss {loss_sum / max(n, 1.0):.2f}, {rate:.3f} audio-h/s")
                if self.dist.workers == 1 and state["step_in_epoch"] < steps \
                        and self._mid_epoch_save_due(state["global_step"], time.monotonic() - last_save):
                    state["elapsed_s"] = elapsed0 + time.monotonic() - t_start
                    self._check_finite_weights(state)
                    self._save(state)
                    last_save = time.monotonic()
        return state

    def _mid_epoch_save_due(self, global_step: int, secs_since_save: float) -> bool:
        """CHECKPOINT_STEPS counts updates (the same on any machine); CHECKPOINT_SECS counts wall
        time. Either one, when set (> 0), makes a mid-epoch checkpoint due."""
        steps, secs = self.tc.checkpoint_steps, self.tc.checkpoint_secs
        return (steps > 0 and global_step % steps == 0) or (secs > 0 and secs_since_save >= secs)

    def dev_pass(self) -> tuple[float | None, float | None]:
        """Mean per-utterance CTC loss on the dev set, without dropout, and the greedy (best path)
        label error rate of the same pass (CER; in bytes mode a byte error rate). Evaluated outside
        the strategy (every worker computes the same value), so no replica ever waits on an empty
        batch."""
        from pipeline.model.dataset import make_dataset

        if not self.dev_set or len(self.dev_set) == 0:
            return None, None
        if self._dev_ds is None:
            # The dev plan never changes: one repeating iterator serves every dev pass (creating a
            # tf.data iterator instantiates and optimizes its whole graph, every time).
            plan = self._plan(self.dev_set, None)
            ds = make_dataset(self.dev_set, list(range(len(plan))), plan, cache=self.dev_cache)
            self._dev_ds = (iter(ds.repeat()), len(plan))
        dev_iter, n_batches = self._dev_ds
        sums = np.zeros(4)  # loss sum, utterances, greedy label errors, labels
        for _ in range(n_batches):
            sums += [float(x) for x in self.eval_step(next(dev_iter))]
        total, count, errors, labels = sums
        return (total / count if count else None), (errors / labels if labels else None)

    def _end_epoch(self, state: dict[str, Any], t_start: float, elapsed0: float) -> dict[str, Any]:
        tc = self.tc
        self._check_finite_weights(state)  # before best_dev/ and the epoch checkpoint are written
        with self.averaged_weights():
            state, dev = self._evaluate_epoch(state, t_start, elapsed0)
        crashpoint("train.epoch_end")  # best_dev/ updated, the epoch-end checkpoint not yet saved
        if dev is not None and tc.early_stop and state["es_counter"] >= tc.es_stop:
            state["stop_reason"] = (f"early stop: dev loss did not improve by {tc.es_min_delta:g} for "
                                    f"{tc.es_stop} epoch(s) (ES_STOP)")
        elif dev is not None and tc.reduce_lr_on_plateau and state["es_counter"] > 0 \
                and state["es_counter"] % tc.plateau_epochs == 0:
            from pipeline.model.network import read_checkpoint_weights

            state["plateau_reductions"] += 1
            self.model.assign_numpy(read_checkpoint_weights(self.paths.best_checkpoint_dir, fold_norm=False))
            self._reset_ema()
            self.opt.inner_optimizer.learning_rate.assign(self._lr(state))
            log.info("dev loss on a plateau for %d epoch(s): reloaded the best weights (epoch %s), learning "
                     "rate now %g", state["es_counter"], state["best_epoch"], self._lr(state))
        if tc.lr_decay != "none":
            # the next epoch's rate, kept in the state so a resumed epoch trains at the same one
            used = budget_used(state["epoch"], tc.epochs, state["elapsed_s"], tc.train_max_minutes)
            state["lr_scale"] = lr_decay_scale(tc.lr_decay, used, tc.lr_decay_floor)
            self.opt.inner_optimizer.learning_rate.assign(self._lr(state))
            log.info("learning rate now %g (LR_DECAY=%s, %.0f %% of the training budget used)",
                     self._lr(state), tc.lr_decay, 100 * used)
        self._save(state)
        return state

    def _evaluate_epoch(self, state: dict[str, Any], t_start: float,
                        elapsed0: float) -> tuple[dict[str, Any], float | None]:
        """Dev pass, history, early-stop counter, log, live transcripts and best_dev/ for the epoch
        just trained (with the weights the model holds: the averaged ones under EMA_DECAY)."""
        tc = self.tc
        epoch = state["epoch"] + 1
        train_loss = state["epoch_loss_sum"] / state["epoch_count"] if state["epoch_count"] else None
        dev, dev_cer = self.dev_pass()
        state.update(epoch=epoch, step_in_epoch=0, epoch_loss_sum=0.0, epoch_count=0)
        state["elapsed_s"] = elapsed0 + time.monotonic() - t_start
        state["history"].append({"epoch": epoch, "train_loss": train_loss, "dev_loss": dev,
                                 "dev_greedy_cer": None if dev_cer is None else round(dev_cer, 4),
                                 "lr": self._lr(state), "elapsed_s": round(state["elapsed_s"], 1)})
        if self.tb_dev is not None and dev is not None:
            with self.tb_dev.as_default(step=epoch):
                tb_scalar("epoch_loss", dev, epoch)
        if self.tb_train is not None and train_loss is not None:
            with self.tb_train.as_default(step=epoch):
                tb_scalar("epoch_loss", train_loss, epoch)
        improved = False
        if dev is not None:
            best = state["best_dev_loss"]
            if best is not None and dev > best - tc.es_min_delta:
                state["es_counter"] += 1
            else:
                state["es_counter"] = 0
            if best is None or dev < best:
                state["best_dev_loss"], state["best_epoch"] = dev, epoch
                improved = True
        log.info("epoch %d/%d: train loss %s, dev loss %s%s%s (%s elapsed)", epoch, tc.epochs,
                 _fmt(train_loss), _fmt(dev),
                 "" if dev_cer is None else f", dev greedy CER {100 * dev_cer:.1f}%",
                 " (new best)" if improved else "", format_duration(state["elapsed_s"]))
        self._live_transcripts()
        if improved or dev is None:
            self._save_best(state, dev)
        return state, dev

    def _live_transcripts(self) -> None:
        n = min(self.tc.live_transcripts, len(self.dev_set or []))
        if n == 0 or self.dist.workers > 1 or self.dev_set is None:
            return
        import tensorflow as tf

        from pipeline.lm.decode import greedy_decode
        from pipeline.model.features import wav_file_to_mfcc

        if self._live_feats is None:
            self._live_feats = [wav_file_to_mfcc(tf.constant(self.dev_set.paths[i]), self.dev_set.sample_rate)
                                for i in range(n)]
        for i, feats in enumerate(self._live_feats):
            logits = self.logits_step(feats[tf.newaxis])[:, 0, :].numpy()
            log.info("  dev sample %d: %r -> %r", i + 1, self.dev_set.transcripts[i],
                     greedy_decode(logits, self.alphabet))


def budget_used(epochs_done: int, epochs: int, elapsed_s: float, max_minutes: float) -> float:
    """Share of the training budget used: of EPOCHS, or of TRAIN_MAX_MINUTES when that is set and
    further along (the one that will end the run)."""
    used = epochs_done / epochs if epochs else 1.0
    if max_minutes > 0:
        used = max(used, elapsed_s / (60.0 * max_minutes))
    return min(1.0, used)


def lr_decay_scale(kind: str, used: float, floor: float) -> float:
    """LR_DECAY's factor on LEARNING_RATE once `used` (0..1) of the budget is spent: 1 at the
    start, `floor` at the end; cosine stays high longer, then falls faster than linear."""
    if kind == "none":
        return 1.0
    shape = 0.5 * (1.0 + math.cos(math.pi * used)) if kind == "cosine" else 1.0 - used
    return floor + (1.0 - floor) * shape


def step_verdict(bad_loss: float, bad_grads: float, loss_sum: float, fp16: bool, scale: float) -> str:
    """"ok", "overflow" (finite loss, non-finite fp16 gradients: a loss-scale overflow, expected
    under AMP) or "nonfinite" (a non-finite loss: data or divergence, counts toward NONFINITE_LIMIT).
    Non-finite gradients in fp32, or in fp16 once the scale is below 1 (they overflow unscaled),
    are not a scale effect and count as non-finite too."""
    if bad_loss > 0 or not math.isfinite(loss_sum):
        return "nonfinite"
    if bad_grads > 0:
        return "overflow" if fp16 and scale >= 1.0 else "nonfinite"
    return "ok"


def tb_scalar(name: str, value: float, step: int) -> None:
    """A TensorBoard scalar without needing the tensorboard package (the raw summary op with the
    scalars plugin's metadata)."""
    import tensorflow as tf
    from tensorflow.core.framework import summary_pb2

    meta = summary_pb2.SummaryMetadata()
    meta.plugin_data.plugin_name = "scalars"
    meta.data_class = summary_pb2.DATA_CLASS_SCALAR
    tf.summary.write(name, tf.constant(float(value), tf.float32), step=step, metadata=meta)


def remove_unlisted_checkpoints(directory: Path, listed: Sequence[str], name: str = "train") -> int:
    """Delete `<name>-N.*` files that the `checkpoint` state file does not list: a crash between
    writing a checkpoint and recording it leaves them, and CheckpointManager only ever deletes the
    checkpoints it lists (so each such crash would leak a full-size checkpoint). Returns the count."""
    keep = {Path(p).name for p in listed}
    removed = 0
    for p in directory.glob(f"{name}-*") if directory.is_dir() else []:
        prefix = p.name.split(".", 1)[0]  # train-N (TF's write temp dir train-N_temp never matches)
        if prefix in keep:
            continue
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
        removed += 1
    if removed:
        log.info("removed %d file(s) of checkpoints a crash left unrecorded in %s", removed, directory)
    return removed


def paths_for_worker(directory: Path, dist: Distribution) -> Path:
    """Non-chief workers of a multi-worker run write their (identical) checkpoints to scratch."""
    if dist.is_chief:
        return directory
    return directory.parent / f".worker{dist.worker}-{directory.name}"


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def run_training(cfg: Config, paths: Paths, *, dist: Distribution | None = None) -> dict[str, Any]:
    """Train on the active corpora's train CSVs, validate on their dev CSVs."""
    train = split_csvs(cfg, paths, "train")
    if not train:
        raise MissingInputError(
            f"no train CSV for the corpora {', '.join(cfg.active_corpora())} under {paths.extracted}; "
            f"run the import stage first (or set CORPORA)")
    paths.train_done.unlink(missing_ok=True)
    remove_stale_temps(paths.train_checkpoint_dir)  # e.g. train_state.json cut short by a crash
    np.random.seed(cfg.general.random_seed)
    # `docker stop` sends SIGTERM: turn it into the same graceful stop as Ctrl-C (checkpoint first)
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _sigterm)
    try:
        return Trainer(cfg, paths, train, split_csvs(cfg, paths, "dev"), dist=dist).run()
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")
