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

import json
import logging
import math
import os
import shutil
import signal
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.config import Config
from pipeline.corpus_csv import split_csvs
from pipeline.errors import ConfigError, MissingInputError, PipelineError
from pipeline.faults import crashpoint
from pipeline.fsutil import atomic_dir, remove_stale_temps, write_json, write_text
from pipeline.logs import format_duration
from pipeline.model.geometry import N_INPUT
from pipeline.paths import Paths
from pipeline.text.alphabet import Alphabet

log = logging.getLogger("pipeline.model.train")

_REPORTED = ("MODEL_LANGUAGE", "N_HIDDEN", "BATCH_SIZE", "EPOCHS", "LEARNING_RATE", "DROPOUT",
             "EARLY_STOP", "ES_STOP", "ES_MIN_DELTA", "REDUCE_LR_ON_PLATEAU", "AMP", "AUGMENT",
             "TRANSFER_LEARNING", "DROP_SOURCE_LAYERS", "FEATURE_CACHE", "TRAIN_MAX_MINUTES",
             "MAX_BATCH_SECONDS", "RANDOM_SEED")
BEST_INFO = "best_dev.json"
FAST_TRAIN_SAMPLES = (16, 8)  # FAST_TRAIN: train and dev samples kept
FAST_TRAIN_HIDDEN = 64       # FAST_TRAIN: N_HIDDEN at most this




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


def fresh_state(cfg: Config, alphabet: Alphabet) -> dict[str, Any]:
    return {
        "epoch": 0, "step_in_epoch": 0, "global_step": 0, "epoch_loss_sum": 0.0, "epoch_count": 0,
        "best_dev_loss": None, "best_epoch": None, "es_counter": 0, "plateau_reductions": 0,
        "nonfinite_total": 0, "elapsed_s": 0.0, "history": [],
        "n_hidden": cfg.train.n_hidden, "alphabet": list(alphabet.labels), "transfer_from": None,
        "stop_reason": None,
    }


class Trainer:
    """One training run over fixed train/dev sets. `run()` returns the final state."""

    def __init__(self, cfg: Config, paths: Paths, train_csvs: Sequence[Path], dev_csvs: Sequence[Path],
                 *, dist: Distribution | None = None, alphabet: Alphabet | None = None):
        if cfg.general.fast_train and cfg.train.n_hidden > FAST_TRAIN_HIDDEN:
            # a smoke run must take seconds, not minutes per step
            log.info("FAST_TRAIN=1: N_HIDDEN %d -> %d", cfg.train.n_hidden, FAST_TRAIN_HIDDEN)
            cfg = cfg.with_values(N_HIDDEN=FAST_TRAIN_HIDDEN)
        self.cfg = cfg
        self.paths = paths
        self.alphabet = alphabet or Alphabet.from_file(paths.alphabet)
        self.train_csvs = list(train_csvs)
        self.dev_csvs = list(dev_csvs)
        self.dist = dist or make_strategy()
        self.tc = cfg.train

    # -----------------------------------------------------------------------------------------
    def setup(self) -> dict[str, Any]:
        """Load the data, build model/optimizer/checkpoints and restore; returns the state."""
        import tensorflow as tf

        from pipeline.model.dataset import FeatureCache, load_samples
        from pipeline.model.network import Geometry, build_model

        cfg, tc, dist = self.cfg, self.tc, self.dist
        limit_train, limit_dev = FAST_TRAIN_SAMPLES if cfg.general.fast_train else (None, None)
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

        import keras

        with dist.strategy.scope():
            self.model = build_model(geometry, cfg.general.random_seed)
            inner = keras.optimizers.Adam(learning_rate=tc.learning_rate, beta_1=0.9, beta_2=0.999,
                                          epsilon=1e-8)
            # Always wrapped: the same checkpoint structure for AMP and fp32 runs, and non-finite
            # steps are skipped by the wrapper in both.
            self.opt = keras.optimizers.LossScaleOptimizer(
                inner, initial_scale=2.0 ** 15 if self.compute == "float16" else 1.0)
            self.opt.build(self.model.weight_list())
        self.state_var = tf.Variable("", dtype=tf.string, trainable=False, name="train_state")
        self.ckpt = tf.train.Checkpoint(model=self.model, optimizer=self.opt, state=self.state_var)
        ckpt_dir = paths_for_worker(self.paths.train_checkpoint_dir, dist)
        self.manager = tf.train.CheckpointManager(self.ckpt, str(ckpt_dir), max_to_keep=tc.max_to_keep,
                                                  checkpoint_name="train")
        remove_unlisted_checkpoints(ckpt_dir, self.manager.checkpoints)
        state = self._restore_or_init(geometry)
        self.opt.inner_optimizer.learning_rate.assign(self._lr(state))

        self.cache = FeatureCache(self.train_set) if tc.feature_cache else None
        self.dev_cache = FeatureCache(self.dev_set) if (tc.feature_cache and self.dev_set) else None
        from pipeline.model.augment import build_augmenter

        self.augmenter = build_augmenter(tc.augment, cfg.general.random_seed)
        if self.augmenter is not None and self.cache is not None:
            self.augmenter = self.augmenter.without_audio()
        self._build_steps()
        writer_dir = self.paths.tensorboard
        self.tb_train = tf.summary.create_file_writer(str(writer_dir / "train")) if dist.is_chief else None
        self.tb_dev = tf.summary.create_file_writer(str(writer_dir / "dev")) if dist.is_chief else None

        return state

    def run(self) -> dict[str, Any]:
        tc, dist = self.tc, self.dist
        t_start = time.monotonic()
        state = self.setup()
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
                "config": {k: v for k, v in self.cfg.as_env().items() if k in _REPORTED},
                "rejected": {"train": dict(self.train_set.rejected),
                             "dev": dict(self.dev_set.rejected) if self.dev_set else {}},
            })
        return state

    # -----------------------------------------------------------------------------------------
    def _lr(self, state: dict[str, Any]) -> float:
        return self.tc.learning_rate * self.tc.plateau_reduction ** state["plateau_reductions"]

    def _restore_or_init(self, geometry: Any) -> dict[str, Any]:
        latest = self.manager.latest_checkpoint
        if latest:
            try:
                self.ckpt.restore(latest).assert_existing_objects_matched()
            except (ValueError, AssertionError, Exception) as exc:  # noqa: BLE001
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
                         "loss %s, early-stop counter %d, plateau reductions %d%s", Path(latest).name,
                         state["epoch"] + 1, self.tc.epochs, state["step_in_epoch"], state["global_step"],
                         _fmt(state["best_dev_loss"]), state["es_counter"], state["plateau_reductions"],
                         f", transfer from {state['transfer_from']} (not re-applied)"
                         if state.get("transfer_from") else "")
            self._log_best_on_resume(state)
            return state
        state = fresh_state(self.cfg, self.alphabet)
        if self.tc.transfer_learning:
            from pipeline.model.network import apply_transfer

            state["transfer_from"] = apply_transfer(self.cfg, self.model, self.alphabet)
        log.info("starting training from %s", "transferred weights" if state["transfer_from"]
                 else "random initialization")
        return state

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
        best = tf.train.Checkpoint(model=self.model)
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

        def ctc(feats: Any, flen: Any, labels: Any, llen: Any, training: bool, seed: Any = None) -> Any:
            logits = model(feats, training=training, dropout=dropout, compute_dtype=compute,
                           dropout_seed=seed)
            return tf.nn.ctc_loss(labels, logits, llen, flen, logits_time_major=True, blank_index=-1)

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
            finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(g)) for g in grads])
            finite = tf.logical_and(finite, tf.math.is_finite(loss))
            opt.apply_gradients(zip(grads, variables, strict=False))
            return tf.reduce_sum(per_ex), n_local, tf.cast(finite, tf.float32)

        sum_ = tf.distribute.ReduceOp.SUM

        def train_step(batch: Any, step: Any) -> Any:
            s, n, f = strategy.run(replica_train, args=(*batch, step))
            return strategy.reduce(sum_, s, None), strategy.reduce(sum_, n, None), \
                strategy.reduce(sum_, f, None) / float(strategy.num_replicas_in_sync)

        # Fixed signatures (None for batch and time) so variable-length batches never retrace.
        spec = (tf.TensorSpec([None, None, N_INPUT], tf.float32), tf.TensorSpec([None], tf.int32),
                tf.TensorSpec([None, None], tf.int32), tf.TensorSpec([None], tf.int32))
        self._train_step_fn = train_step
        self._train_step_compiled: Any = None

        @tf.function(input_signature=[spec])
        def eval_step(batch: Any) -> Any:
            feats, flen, labels, llen = batch
            per_ex = ctc(feats, flen, labels, llen, False)
            ok = tf.math.is_finite(per_ex)
            return tf.reduce_sum(tf.where(ok, per_ex, 0.0)), tf.reduce_sum(tf.cast(ok, tf.float32))

        self.eval_step = eval_step

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

        return plan_batches(samples.frames, self.tc.batch_size, self.tc.max_batch_seconds, seed)

    def _train_epoch(self, state: dict[str, Any], t_start: float, elapsed0: float) -> dict[str, Any]:

        from pipeline.progress import Progress

        epoch = state["epoch"]
        plan = self._plan(self.train_set, self.cfg.general.random_seed * 1000 + epoch)
        start = state["step_in_epoch"]
        augment = self.augmenter.for_epoch(epoch) if self.augmenter is not None else None
        ds, steps = self._dataset(self.train_set, plan, start, self.cache, augment)
        if steps == 0:
            raise MissingInputError(f"the train set has fewer batches ({len(plan)}) than replicas "
                                    f"({self.dist.replicas}); lower BATCH_SIZE or add data")
        if start:
            log.info("epoch %d: skipping the %d batch(es) trained before the restart", epoch + 1, start)
        frames_per_step = [sum(int(self.train_set.frames[i]) for r in range(self.dist.replicas)
                               for i in plan[s * self.dist.replicas + r]) for s in range(steps)]
        last_save = time.monotonic()
        consecutive_bad = 0
        t0 = time.monotonic()
        audio_s = 0.0
        with Progress(steps, f"epoch {epoch + 1}/{self.tc.epochs}", "batches", interval_s=30.0) as prog:
            prog.count = start
            for batch in ds:
                loss_sum, n, finite = (float(x) for x in self.train_step(batch, ds.element_spec,
                                                                         state["global_step"]))
                step = state["step_in_epoch"]
                state["step_in_epoch"] += 1
                state["global_step"] += 1
                crashpoint("train.step")  # an update applied that no checkpoint holds yet
                audio_s += frames_per_step[step] * 0.02
                if finite < 1.0 or not math.isfinite(loss_sum):
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
                if self.dist.workers == 1 and time.monotonic() - last_save >= self.tc.checkpoint_secs \
                        and state["step_in_epoch"] < steps:
                    state["elapsed_s"] = elapsed0 + time.monotonic() - t_start
                    self._check_finite_weights(state)
                    self._save(state)
                    last_save = time.monotonic()
        return state

    def dev_loss(self) -> float | None:
        """Mean per-utterance CTC loss on the dev set, without dropout. Evaluated outside the
        strategy (every worker computes the same value), so no replica ever waits on an empty batch."""
        from pipeline.model.dataset import make_dataset

        if not self.dev_set or len(self.dev_set) == 0:
            return None
        plan = self._plan(self.dev_set, None)
        ds = make_dataset(self.dev_set, list(range(len(plan))), plan, cache=self.dev_cache)
        total, count = 0.0, 0.0
        for batch in ds:
            s, n = self.eval_step(batch)
            total += float(s)
            count += float(n)
        return total / count if count else None

    def _end_epoch(self, state: dict[str, Any], t_start: float, elapsed0: float) -> dict[str, Any]:

        tc = self.tc
        self._check_finite_weights(state)  # before best_dev/ and the epoch checkpoint are written
        epoch = state["epoch"] + 1
        train_loss = state["epoch_loss_sum"] / state["epoch_count"] if state["epoch_count"] else None
        dev = self.dev_loss()
        state.update(epoch=epoch, step_in_epoch=0, epoch_loss_sum=0.0, epoch_count=0)
        state["elapsed_s"] = elapsed0 + time.monotonic() - t_start
        state["history"].append({"epoch": epoch, "train_loss": train_loss, "dev_loss": dev,
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
        log.info("epoch %d/%d: train loss %s, dev loss %s%s (%s elapsed)", epoch, tc.epochs,
                 _fmt(train_loss), _fmt(dev), " (new best)" if improved else "",
                 format_duration(state["elapsed_s"]))
        self._live_transcripts()
        if improved or dev is None:
            self._save_best(state, dev)
        crashpoint("train.epoch_end")  # best_dev/ updated, the epoch-end checkpoint not yet saved
        if dev is not None and tc.early_stop and state["es_counter"] >= tc.es_stop:
            state["stop_reason"] = (f"early stop: dev loss did not improve by {tc.es_min_delta:g} for "
                                    f"{tc.es_stop} epoch(s) (ES_STOP)")
        elif dev is not None and tc.reduce_lr_on_plateau and state["es_counter"] > 0 \
                and state["es_counter"] % tc.plateau_epochs == 0:
            from pipeline.model.network import read_checkpoint_weights

            state["plateau_reductions"] += 1
            self.model.assign_numpy(read_checkpoint_weights(self.paths.best_checkpoint_dir))
            self.opt.inner_optimizer.learning_rate.assign(self._lr(state))
            log.info("dev loss on a plateau for %d epoch(s): reloaded the best weights (epoch %s), learning "
                     "rate now %g", state["es_counter"], state["best_epoch"], self._lr(state))
        self._save(state)
        return state

    def _live_transcripts(self) -> None:
        n = min(self.tc.live_transcripts, len(self.dev_set or []))
        if n == 0 or self.dist.workers > 1 or self.dev_set is None:
            return
        import tensorflow as tf

        from pipeline.lm.decode import greedy_decode
        from pipeline.model.features import wav_file_to_mfcc

        for i in range(n):
            feats = wav_file_to_mfcc(tf.constant(self.dev_set.paths[i]), self.dev_set.sample_rate)
            logits = self.model(feats[tf.newaxis], compute_dtype=self.compute)[:, 0, :].numpy()
            log.info("  dev sample %d: %r -> %r", i + 1, self.dev_set.transcripts[i],
                     greedy_decode(logits, self.alphabet))


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
