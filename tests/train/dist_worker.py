"""Subprocess entry for distribution tests: train one short run under MirroredStrategy on 2 logical
CPUs (`mirrored`) or as one worker of a MultiWorkerMirroredStrategy (`multiworker`, TF_CONFIG set),
then save the final weights (and, for mirrored, the max difference between replica copies)."""

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

    cfg = train_config(EPOCHS=2, N_HIDDEN=32, BATCH_SIZE=4, LIVE_TRANSCRIPTS=0, AMP=sys.argv[4] == "amp"
                       if len(sys.argv) > 4 else False)
    dist = make_strategy(cpu_replicas=2 if mode == "mirrored" else 0)
    corpus = data / "extracted" / "synth"
    trainer = Trainer(cfg, Paths.at(data), [corpus / "synth_train.csv"], [corpus / "synth_dev.csv"],
                      dist=dist)
    state = trainer.run()
    weights = {v.name.split(":")[0].replace("/", "__"): v.numpy() for v in trainer.model.weight_list()}
    replica_diff = 0.0
    if mode == "mirrored":
        for v in trainer.model.weight_list():
            vals = [x.numpy() for x in v.values]
            replica_diff = max(replica_diff, float(np.abs(vals[0] - vals[1]).max()))
    np.savez(out.with_suffix(".npz"), **weights)
    out.write_text(json.dumps({"replicas": dist.replicas, "replica_diff": replica_diff,
                               "history": state["history"], "global_step": state["global_step"],
                               "is_chief": dist.is_chief}))


if __name__ == "__main__":
    main()
