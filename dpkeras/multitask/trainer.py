"""Multi-task training loop: one head drawn per step, only that head (and the shared
descriptor) runs and is updated.

The head of step ``s`` is :func:`head_for_step` ``(seed, s, probs)``, a pure function like
:meth:`dpkeras.data.pipeline.DataSystems.sample`, and that head's batch is its data's
``sample(seed, s)``: a restarted run continues with exactly the same heads and batches. Each
``(head, system composition)`` gets its own compiled step (XLA when ``jit_compile``) that runs
the shared descriptor and that head's fitting only and applies Adam to their variables only.
One Adam optimizer holds the state of every variable; the learning rate follows the global
step.

Under a ``tf.distribute`` strategy (``strategy``, :mod:`dpkeras.distribute`) every replica
trains the same head (drawn from the shared seed) on its share of the global batch; only the
chief writes ``lcurve.out`` and checkpoints, the evaluations run unreplicated.

``lcurve.out`` has, per head ``H`` and metric ``M``, the columns ``M_val_H M_trn_H``
(DeePMD-kit's multi-task naming): at every ``disp_freq`` step each head is evaluated on a
training batch of its own data and on its validation data (``nan`` without one).
"""

import contextlib
import json
import logging
import os
import time

import keras
import numpy as np
import tensorflow as tf

from dpkeras import checkpoint
from dpkeras import lr as lr_mod
from dpkeras import distribute
from dpkeras.atomic import atomic_write_text
from dpkeras.data.pipeline import DataSystems
from dpkeras.errors import DPKerasError
from dpkeras.fitting.stats import set_output_stats
from dpkeras.loss import make_loss
from dpkeras.multitask.model import MultiTaskModel
from dpkeras.nlist import batch_args
from dpkeras.stat import compute_env_stats, report_neighbor_stat
from dpkeras.trainer import MODEL_INPUTS, LCurve, _add_file_log, _fmt_time, apply_trainable

log = logging.getLogger("dpkeras")

_HEAD_STREAM = 0x6D74   # the random stream of the head choice (data batches use 0-2)
_TRAIN_EVAL_STREAM = 2  # the training batches evaluated at display steps


def head_for_step(seed, step, probs):
    """Index of the head trained at ``step``: drawn with probabilities ``probs`` from a
    generator seeded by ``(seed, step)`` only."""
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, int(step), _HEAD_STREAM])
    return int(rng.choice(len(probs), p=probs))


class _StepSubset:
    """A ``DataSystems`` whose step ``i`` is step ``steps[i]`` of the underlying data: the
    batches of one head, in order, through the single-task input pipeline."""

    def __init__(self, data, steps, stream=0):
        self._data, self._steps, self._stream = data, steps, stream

    def __getattr__(self, name):
        return getattr(self._data, name)

    def sample(self, seed, i, stream=0):
        return self._data.sample(seed, self._steps[i], self._stream)

    def dataset(self, seed, **nlist):
        """The batches of the subset's steps; ``nlist``: :func:`dpkeras.nlist.batch_args`."""
        return DataSystems.dataset(self, seed, 0, len(self._steps), **nlist)


class MultiTaskTrainer:
    """Args:
      config: normalized multi-task input (:func:`dpkeras.multitask.config.normalize_multitask`).
      output_dir: where ``lcurve.out``, ``out.json``, ``train.log`` and ``checkpoints/`` go.
      restart: a run or checkpoint directory to resume exactly.
      init_model: a model (a multi-task run/checkpoint or united SavedModel, or a single-task
        model) whose descriptor, and the fitting nets of the heads it shares with this input,
        initialize the run (``--init_model`` / ``--init_frz_model``).
      skip_neighbor_stat, jit_compile: as :class:`dpkeras.trainer.Trainer`.
      strategy: a ``tf.distribute`` strategy (:func:`dpkeras.distribute.strategy_from_env`)
        or None. Its steps are not XLA-compiled.
    """

    def __init__(self, config, output_dir=".", restart=None, init_model=None,
                 skip_neighbor_stat=False, jit_compile=True, strategy=None, finetune=None):
        self.config, self.strategy, self.finetune = config, strategy, finetune
        if strategy is not None:
            output_dir = distribute.worker_output_dir(strategy, output_dir)
        self.output_dir, self.restart, self.init_model = output_dir, restart, init_model
        self.skip_neighbor_stat, self.jit_compile = skip_neighbor_stat, jit_compile
        t = config["training"]
        self.numb_steps = t["numb_steps"]
        self.seed = t["seed"] if t["seed"] is not None else int(np.random.SeedSequence().entropy
                                                                 % (2 ** 31))
        self.disp_freq, self.save_freq = t["disp_freq"], t["save_freq"]
        self.heads = list(config["model"]["model_dict"])
        self.probs = np.array([t["model_prob"][h] for h in self.heads], dtype=np.float64)
        self.schedule = lr_mod.from_config(config["learning_rate"], self.numb_steps)
        self.train_data, self.valid_data, self.losses = {}, {}, {}
        for h in self.heads:
            type_map = config["model"]["model_dict"][h]["type_map"]
            dd = t["data_dict"][h]
            where = f"training.data_dict.{h}"
            self.train_data[h] = DataSystems(dd["training_data"], type_map,
                                             f"{where}.training_data")
            self.valid_data[h] = None if dd["validation_data"] is None else DataSystems(
                dd["validation_data"], type_map, f"{where}.validation_data")
            self.losses[h] = make_loss(config["loss_dict"][h], self.schedule.start_lr,
                                       config["model"]["model_dict"][h])
            if strategy is not None:
                distribute.check_batch_sizes(strategy, self.train_data[h],
                                             f"{where}.training_data")

    def head_of(self, step):
        return self.heads[head_for_step(self.seed, step, self.probs)]

    # --- setup ------------------------------------------------------------------------------
    def _all_data(self):
        """Every head's training systems as one ``DataSystems`` (descriptor statistics)."""
        systems, sizes = [], []
        for h in self.heads:
            data = self.train_data[h]
            systems += self.config["training"]["data_dict"][h]["training_data"]["systems"]
            sizes += list(data.batch_sizes)
        section = {"systems": systems, "batch_size": sizes, "auto_prob": "prob_uniform",
                   "sys_probs": None}
        return DataSystems(section, self.train_data[self.heads[0]].type_map,
                           "training.data_dict")

    def build(self):
        """``(model, optimizer, start_step)``: fresh (statistics from the data), restored
        (``restart``) or initialized from ``init_model``; under the strategy's scope."""
        scope = self.strategy.scope() if self.strategy else contextlib.nullcontext()
        with scope:
            return self._build()

    def _build(self):
        cfg = self.config["model"]
        keras.utils.set_random_seed(self.seed)
        model = MultiTaskModel(cfg)
        d = model.descriptor
        all_data = None
        if not self.skip_neighbor_stat:
            all_data = self._all_data()
            report_neighbor_stat(all_data, d, log)
        for h, head in model.heads.items():
            apply_trainable(head, cfg["model_dict"][h])
        optimizer = keras.optimizers.Adam(learning_rate=self.schedule, epsilon=1e-8)
        optimizer.build(model.trainable_variables)
        if self.restart:
            ckpt, start = checkpoint.resume(self.restart, model, optimizer, cfg)
            log.info("restarted from %s at step %d", ckpt, start)
            return model, optimizer, start
        first = cfg["model_dict"][self.heads[0]]
        fresh = list(self.heads)
        if self.finetune is not None:   # multi-task fine-tuning (dpkeras.finetune)
            from dpkeras.finetune import initialize_multitask

            initialize_multitask(model, self.finetune, self.train_data, self.valid_data,
                                 first["data_bias_nsample"], self.seed)
            return model, optimizer, 0
        if self.init_model:
            fresh = init_from(model, self.init_model)
        else:
            all_data = all_data or self._all_data()
            for leaf in d.leaves():
                leaf.env_mat.set_stats(*compute_env_stats(
                    all_data, leaf, first["data_stat_nbatch"], first["data_stat_protect"]))
        for h in fresh:   # energy bias, polar diagonal shift, fparam statistics
            log.info("head %s: output statistics from its data", h)
            set_output_stats(model.heads[h], self.train_data[h], cfg["model_dict"][h])
        return model, optimizer, 0

    # --- compiled steps ----------------------------------------------------------------------
    def make_steps(self, model, optimizer):
        """``train_step(head, batch)`` and ``eval_step(head, batch, lr)``, one compiled
        function per ``(head, composition)``."""
        ntypes, cache = model.get_ntypes(), {}
        variables = {h: model.head_trainable_variables(h) for h in self.heads}

        def train(batch, head, type_counts):
            net, loss_fn, var = model.heads[head], self.losses[head], variables[head]
            lr = self.schedule(optimizer.iterations)
            with tf.GradientTape() as tape:
                out = net({k: batch[k] for k in MODEL_INPUTS}, training=True,
                          type_counts=type_counts)
                loss, metrics = loss_fn(out, batch, lr)
            optimizer.apply(tape.gradient(loss, var), var)
            return metrics

        def evaluate(batch, lr, head, type_counts):
            out = model.heads[head]({k: batch[k] for k in MODEL_INPUTS},
                                    type_counts=type_counts)
            return self.losses[head](out, batch, lr)[1]

        def compiled(fn, head, batch):
            counts = tuple(np.bincount(batch["atype"][0].numpy(), minlength=ntypes).tolist())
            key = (fn.__name__, head, counts)
            if key not in cache:
                cache[key] = tf.function(
                    lambda *args: fn(*args, head=head, type_counts=counts),
                    jit_compile=self.jit_compile, reduce_retracing=True)
            return cache[key]

        def train_step(head, batch):
            return compiled(train, head, batch)(batch)

        def eval_step(head, batch, lr):
            return compiled(evaluate, head, batch)(batch, tf.cast(lr, tf.float64))

        if self.strategy is not None:
            return self._distributed_step(model, optimizer, variables), eval_step

        return train_step, eval_step

    def _distributed_step(self, model, optimizer, variables):
        """``train_step(head, batch)`` under the strategy (:func:`dpkeras.distribute.
        replicated_step`)."""
        n = self.strategy.num_replicas_in_sync

        def replica(batch, head, type_counts):
            net, var = model.heads[head], variables[head]
            lr = self.schedule(optimizer.iterations)
            with tf.GradientTape() as tape:
                out = net({k: batch[k] for k in MODEL_INPUTS}, training=True,
                          type_counts=type_counts)
                loss, metrics = self.losses[head](out, batch, lr)
                scaled = loss / n
            optimizer.apply(tape.gradient(scaled, var), var)
            return metrics

        step = distribute.replicated_step(self.strategy, replica, model.get_ntypes())
        return lambda head, batch: step(batch, head)

    # --- loop ------------------------------------------------------------------------------
    def run(self):
        os.makedirs(self.output_dir, exist_ok=True)
        _add_file_log(os.path.join(self.output_dir, "train.log"))
        atomic_write_text(os.path.join(self.output_dir, "out.json"),
                          json.dumps(self.config, indent=2))
        model, optimizer, start = self.build()
        train_step, eval_step = self.make_steps(model, optimizer)
        d = model.descriptor
        names = [(h, k) for h in self.heads for k in self.losses[h].metric_names()]
        has_valid = any(v is not None for v in self.valid_data.values())
        lcurve = LCurve(os.path.join(self.output_dir, self.config["training"]["disp_file"]),
                        names, has_valid, start, label=lambda hk, kind: f"{hk[1]}_{kind}_{hk[0]}")
        keep = self.config["training"]["max_ckpt_keep"]
        if start == 0:
            self._display(lcurve, eval_step, 0, d)
        order = [head_for_step(self.seed, s, self.probs) for s in range(start, self.numb_steps)]
        iters = {}
        for i, h in enumerate(self.heads):
            steps = [s for s, k in zip(range(start, self.numb_steps), order) if k == i]
            if steps:
                iters[h] = iter(_StepSubset(self.train_data[h], steps).dataset(
                    self.seed, **batch_args(d)))
        counts = {h: 0 for h in self.heads}
        t0, last_t, last_step = time.time(), time.time(), start
        step = start
        for i in order:
            h = self.heads[i]
            train_step(h, next(iters[h]))
            counts[h] += 1
            step += 1
            if step % self.disp_freq == 0 or step == self.numb_steps:
                trn = self._display(lcurve, eval_step, step, d)
                now = time.time()
                rate = (step - last_step) / max(now - last_t, 1e-9)
                log.info("step %d/%d  %s  lr %.2e  %.2f steps/s  ETA %s", step, self.numb_steps,
                         "  ".join(f"{k}_trn_{hh} {v:.3e}" for (hh, k), v in trn.items()),
                         self.schedule.value(step), rate,
                         _fmt_time((self.numb_steps - step) / max(rate, 1e-9)))
                last_t, last_step = now, step
            if step % self.save_freq == 0 or step == self.numb_steps:
                log.info("saved checkpoint %s", checkpoint.save(
                    self.output_dir, step, model, optimizer, self.config["model"], keep))
        if step == 0:
            log.info("saved checkpoint %s", checkpoint.save(
                self.output_dir, 0, model, optimizer, self.config["model"], keep))
        lcurve.close()
        log.info("finished %d steps in %s; steps per head: %s", step - start,
                 _fmt_time(time.time() - t0), counts)
        if self.finetune is not None:
            from dpkeras.finetune import report_heads

            report_heads(model, self.train_data, self.valid_data, "fine-tuned model")
        self.step_counts = counts
        return model

    def _display(self, lcurve, eval_step, step, d):
        """Evaluate every head (a training batch of its own, its validation data) and write
        one ``lcurve.out`` line; returns the training metrics."""
        lr = self.schedule(step)
        trn, val = {}, {}
        for h in self.heads:
            data = self.train_data[h]
            # a stream of its own: the displayed batch is not a training batch
            batch = next(iter(_StepSubset(data, [step], _TRAIN_EVAL_STREAM).dataset(
                self.seed, **batch_args(d))))
            for k, v in eval_step(h, batch, lr).items():
                trn[(h, k)] = float(v)
            for k, v in self._valid(eval_step, h, step, d).items():
                val[(h, k)] = v
        lcurve.write(step, val, trn, self.schedule.value(step))
        return trn

    def _valid(self, eval_step, h, step, d):
        names = self.losses[h].metric_names()
        data = self.valid_data[h]
        if data is None:
            return {k: float("nan") for k in names}
        nb = self.config["training"]["data_dict"][h]["validation_data"].get("numb_btch", 1)
        ds = data.dataset(self.seed, step * nb, step * nb + nb, stream=1, **batch_args(d))
        acc = {}
        for batch in ds:
            for k, v in eval_step(h, batch, self.schedule(step)).items():
                acc.setdefault(k, []).append(float(v) ** 2)
        return {k: float(np.sqrt(np.mean(v))) for k, v in acc.items()}


def init_from(model, path):
    """Copy the descriptor of the model at ``path`` and the fitting nets of the heads it shares
    with ``model`` (same names); returns the heads left to initialize from data."""
    from dpkeras.multitask.load import load_multitask_or_model

    src = load_multitask_or_model(path)
    if src.get_type_map() != model.get_type_map():
        raise DPKerasError(f"{path}: type_map {src.get_type_map()} differs from input.json's "
                           f"{model.get_type_map()}")
    _copy(src.descriptor.weights, model.descriptor.weights, path, "descriptor")
    src_heads = src.heads if isinstance(src, MultiTaskModel) else {}
    fresh = []
    for h, head in model.heads.items():
        if h in src_heads:
            _copy(src_heads[h].fitting.weights, head.fitting.weights, path, f"head {h}")
        else:
            fresh.append(h)
    log.info("initialized the descriptor%s from %s", "" if not src_heads else
             f" and heads {[h for h in model.heads if h in src_heads]}", path)
    return fresh


def _copy(src, dst, path, what):
    if len(src) != len(dst) or any(tuple(a.shape) != tuple(b.shape) for a, b in zip(src, dst)):
        raise DPKerasError(f"{path}: the {what} weights do not match this input's "
                           f"({len(src)} vs {len(dst)} arrays, or other shapes); the "
                           "network settings differ")
    for a, b in zip(src, dst):
        b.assign(a)
