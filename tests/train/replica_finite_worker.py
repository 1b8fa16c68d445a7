"""Subprocess for the loss-scale overflow test: 2 logical CPU replicas, a toy variable under the
Trainer's optimizer (`make_optimizer`) and step decision (`global_skip_decision`); one case per
fault, printed as JSON. Fp16 loss scaling cannot overflow on CPU, so the fault is injected into
replica 1's gradient (finite loss: an overflow) or into its loss (a non-finite loss)."""

from __future__ import annotations

import json


def main() -> None:
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from pipeline.model.train import global_skip_decision, make_optimizer, step_verdict

    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    out = {}
    for case in ("none", "grad", "loss"):
        with strategy.scope():
            var = tf.Variable([1.0, 2.0])
            opt = make_optimizer(0.1, fp16=True)
            opt.build([var])

        def replica(var=var, opt=opt, case=case):
            ctx = tf.distribute.get_replica_context()
            r1 = tf.equal(ctx.replica_id_in_sync_group, 1)
            with tf.GradientTape() as tape:
                loss = tf.reduce_sum(var * var)
                if case == "loss":
                    loss = tf.where(r1, float("inf"), loss)
                scaled = opt.scale_loss(loss)
            grads = tape.gradient(scaled, [var])
            if case == "grad":
                grads = [tf.where(r1, float("inf"), grads[0])]
            grads, bad_loss, bad_grads = global_skip_decision(ctx, tf.math.is_finite(loss), grads)
            opt.apply_gradients(zip(grads, [var], strict=True))
            return bad_loss, bad_grads

        bl, bg = strategy.run(tf.function(replica))
        per_replica = [v.numpy().tolist() for v in var.values]
        bad_loss, bad_grads = (float(strategy.reduce("MEAN", x, None)) for x in (bl, bg))
        out[case] = {"weights": per_replica, "bad": [bad_loss, bad_grads],
                     "scale": float(opt.dynamic_scale.numpy()),
                     "verdict": step_verdict(bad_loss, bad_grads, 1.0, True, float(opt.dynamic_scale.numpy()))}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
