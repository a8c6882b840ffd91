"""``tf.distribute`` for training: the strategy from the environment, per-replica batches.

* ``TF_CONFIG`` naming more than one task: ``MultiWorkerMirroredStrategy`` (one process per
  host or per device, collectives over gRPC);
* else, when asked (``mirrored``, ``--mirrored``), ``MirroredStrategy`` over the local GPUs;
* else ``None``: the plain single-device loop.

The batch of a step is a pure function of ``(seed, step)``, so every worker builds the same
global batch without communication and replica ``r`` of ``n`` takes its frames ``r::n``; each
replica's loss is divided by ``n`` and the optimizer sums the gradients over the replicas, so
the update equals the single-device update on the global batch (the losses are means over
frames). The strategy must be created before TensorFlow runs any op (``python -m
dpkeras.train`` does so first).
"""

import json
import os
import tempfile

import tensorflow as tf

from dpkeras.errors import DPKerasError


def strategy_from_env(mirrored=False):
    """The strategy the environment asks for (module docstring), or ``None``."""
    raw = os.environ.get("TF_CONFIG")
    if raw:
        try:
            cluster = json.loads(raw).get("cluster", {})
        except (json.JSONDecodeError, AttributeError):
            raise DPKerasError(f"TF_CONFIG is not valid JSON: {raw!r}") from None
        if sum(len(v) for v in cluster.values()) > 1:
            return tf.distribute.MultiWorkerMirroredStrategy()
    if mirrored:
        return tf.distribute.MirroredStrategy()
    return None


def is_chief(strategy):
    """Whether this process writes the outputs (the chief, or worker 0 without a chief)."""
    resolver = getattr(strategy, "cluster_resolver", None) if strategy is not None else None
    if resolver is None or not resolver.task_type:
        return True
    if resolver.task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief


def worker_output_dir(strategy, output_dir):
    """``output_dir`` on the chief; a scratch directory on the other workers (they write the
    same files, which nobody reads)."""
    return output_dir if is_chief(strategy) else tempfile.mkdtemp(prefix="dpkeras-worker-")


def check_batch_sizes(strategy, data, path):
    """Every batch size must split evenly over the replicas (equal shares keep the update
    equal to the single-device one)."""
    n = strategy.num_replicas_in_sync
    bad = [b for b in data.batch_sizes if b % n]
    if bad:
        raise DPKerasError(f"input.json: {path}.batch_size: {sorted(set(bad))} frames do not "
                           f"split over {n} replicas; use a multiple of {n}")


def split_batch(strategy, batch):
    """A per-replica value: replica ``r`` of ``n`` gets frames ``r::n`` of ``batch`` (scalars,
    e.g. the ``find_*`` flags, are shared)."""
    n = strategy.num_replicas_in_sync

    def local(ctx):
        r = ctx.replica_id_in_sync_group
        return {k: (v[r::n] if v.shape.rank else v) for k, v in batch.items()}

    return strategy.experimental_distribute_values_from_function(local)
