"""Subprocess entry for distribution tests: train one short run under MirroredStrategy on 2 logical
CPUs (`mirrored`) or as one worker of a MultiWorkerMirroredStrategy (`multiworker`, TF_CONFIG set),
then save the final weights (and, for mirrored, the max difference between replica copies).

With a 6th argument `poison`, the first training batch of global replica 1 (only) carries inf
features, and the weight change of that step is recorded: every replica must skip it together."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main() -> None:
    mode, data, out = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    import numpy as np
    import tensorflow as tf

    if mode == "mirrored":
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from pipeline.logs import setup_logging

    setup_logging()
    from pipeline.model.train import Trainer, make_strategy
    from pipeline.paths import Paths
    from tests.train.helpers import train_config

    # with EMA_DECAY, whose average is updated in the step's cross-replica context
    cfg = train_config(EPOCHS=2, N_HIDDEN=32, BATCH_SIZE=4, LIVE_TRANSCRIPTS=0, AMP=sys.argv[4] == "amp"
                       if len(sys.argv) > 4 else False, EMA_DECAY=0.9)
    dist = make_strategy(cpu_replicas=2 if mode == "mirrored" else 0)
    corpus = data / "extracted" / "synth"
    trainer = Trainer(cfg, Paths.at(data), [corpus / "synth_train.csv"], [corpus / "synth_dev.csv"],
                      dist=dist)
    step_change: list[float] = []
    if len(sys.argv) > 5 and sys.argv[5] == "poison":
        step_change = _poison_replica_1(trainer, dist)
    state = trainer.run()
    weights = {v.name.split(":")[0].replace("/", "__"): v.numpy() for v in trainer.model.weight_list()}
    weights.update({f"ema_{i}": e.numpy() for i, e in enumerate(trainer.ema)})
    replica_diff = ema_gap = 0.0
    if mode == "mirrored":
        for v in trainer.model.weight_list() + trainer.ema:
            vals = [x.numpy() for x in v.values]
            replica_diff = max(replica_diff, float(np.abs(vals[0] - vals[1]).max()))
        ema_gap = max(float(np.abs(e.numpy() - v.numpy()).max())
                      for e, v in zip(trainer.ema, trainer.model.weight_list(), strict=True))
    np.savez(out.with_suffix(".npz"), **weights)
    out.write_text(json.dumps({"replicas": dist.replicas, "replica_diff": replica_diff, "ema_gap": ema_gap,
                               "history": state["history"], "global_step": state["global_step"],
                               "is_chief": dist.is_chief, "nonfinite_total": state["nonfinite_total"],
                               "loss_scale_skips": state["loss_scale_skips"], "step_change": step_change,
                               "loss_scale": float(trainer.opt.dynamic_scale.numpy())}))


def _poison_replica_1(trainer, dist) -> list[float]:
    """Inf features in the batch global replica 1 trains first (the 2nd element of the mirrored
    pipeline, which feeds local replicas round-robin; the 1st element on worker 1 of two). Returns
    the max |weight change| of the first two steps (filled in as they run)."""
    import numpy as np
    import tensorflow as tf

    import pipeline.model.dataset as dataset

    make = dataset.make_dataset
    target = 1 if dist.workers == 1 else (0 if dist.worker == 1 else -1)
    calls = []

    def poisoned(*args, **kwargs):
        ds = make(*args, **kwargs)
        calls.append(1)
        if len(calls) > 1 or target < 0:  # only the first epoch's train pipeline
            return ds

        def poison(i, batch):
            feats, flen, labels, llen = batch
            return tf.where(i == target, feats + float("inf"), feats), flen, labels, llen

        return ds.enumerate().map(poison)

    dataset.make_dataset = poisoned
    change: list[float] = []
    step = trainer.train_step

    def recording_step(batch, spec, global_step=0):
        before = [v.numpy() for v in trainer.model.weight_list()]
        out = step(batch, spec, global_step)
        if global_step < 2:
            change.append(max(float(np.abs(v.numpy() - b).max())
                              for v, b in zip(trainer.model.weight_list(), before, strict=True)))
        return out

    trainer.train_step = recording_step
    return change


if __name__ == "__main__":
    main()
