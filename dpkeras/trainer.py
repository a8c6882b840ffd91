"""Single-task training loop: DeePMD-kit semantics, Keras model and optimizer, TF checkpoints.

``Trainer(config, output_dir).run()`` with a normalized ``input.json`` dict
(:func:`dpkeras.config.normalize`). Writes ``lcurve.out`` (DeePMD-kit's columns), ``out.json``
(the normalized input), ``train.log`` and ``checkpoints/``.
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
from dpkeras.atomic import atomic_write_text
from dpkeras import lr as lr_mod
from dpkeras.data.pipeline import DataSystems
from dpkeras.errors import DPKerasError
from dpkeras.fitting.stats import set_output_stats
from dpkeras.loss import make_loss
from dpkeras.model.weights import build_model, get_weights, set_weights
from dpkeras.nlist import batch_args
from dpkeras.stat import compute_env_stats, report_neighbor_stat, resolve_auto_sel

log = logging.getLogger("dpkeras")

MODEL_INPUTS = ("coord", "box", "atype", "nlist", "shift", "fparam", "aparam")


class Trainer:
    """Args:
      config: normalized input dict.
      output_dir: where ``lcurve.out``, logs and checkpoints go.
      restart: a run or checkpoint directory to resume exactly (step, lr, optimizer state).
      init_model: a model path (any format) whose weights initialize a fresh run.
      finetune: a :class:`dpkeras.finetune.FinetuneSpec` (``config["model"]`` must be the
        section :func:`dpkeras.finetune.load_finetune_input` made): start from the pretrained
        weights with a recalibrated energy bias, and report the validation errors.
      skip_neighbor_stat: do not scan the data for the neighbor statistics.
      jit_compile: compile the steps with XLA (one compilation per system composition).
      strategy: a ``tf.distribute`` strategy or None (:mod:`dpkeras.distribute`; its steps
        are not XLA-compiled, only the chief writes to ``output_dir``).
    """

    def __init__(self, config, output_dir=".", restart=None, init_model=None,
                 skip_neighbor_stat=False, jit_compile=True, finetune=None, strategy=None):
        from dpkeras import distribute

        self.config, self.strategy = config, strategy
        self.output_dir = output_dir if strategy is None else distribute.worker_output_dir(
            strategy, output_dir)
        self.restart = restart
        self.init_model = init_model
        self.finetune = finetune
        if finetune is not None and init_model:
            raise DPKerasError("give either --finetune or --init_model, not both")
        self.skip_neighbor_stat = skip_neighbor_stat
        self.jit_compile = jit_compile
        t = config["training"]
        self.numb_steps = t["numb_steps"]
        self.seed = t["seed"] if t["seed"] is not None else int(np.random.SeedSequence().entropy
                                                                 % (2 ** 31))
        self.disp_freq, self.save_freq = t["disp_freq"], t["save_freq"]
        type_map = config["model"]["type_map"]
        self.train_data = DataSystems(t["training_data"], type_map, "training.training_data")
        if strategy is not None:
            distribute.check_batch_sizes(strategy, self.train_data, "training.training_data")
        self.valid_data = None
        if t["validation_data"] is not None:
            self.valid_data = DataSystems(t["validation_data"], type_map,
                                          "training.validation_data")
        model_cfg = resolve_auto_sel(config["model"], self.train_data)
        if model_cfg != config["model"]:
            log.info("sel \"auto\" from the training data: %s", _sels(model_cfg["descriptor"]))
            self.config = config = dict(config, model=model_cfg)
        self.schedule = lr_mod.from_config(config["learning_rate"], self.numb_steps)
        self.loss = make_loss(config["loss"], self.schedule.start_lr, config["model"])

    # --- setup ------------------------------------------------------------------------------
    def _build(self):
        cfg = self.config["model"]
        keras.utils.set_random_seed(self.seed)
        model = build_model(cfg)
        d = model.descriptor
        if not self.skip_neighbor_stat:
            report_neighbor_stat(self.train_data, d, log)
        start_step = 0
        apply_trainable(model, cfg)
        optimizer = keras.optimizers.Adam(learning_rate=self.schedule, epsilon=1e-8)
        optimizer.build(model.trainable_variables)
        if self.restart:
            ckpt, start_step = checkpoint.resume(self.restart, model, optimizer, cfg)
            log.info("restarted from %s at step %d", ckpt, start_step)
        elif self.finetune is not None:
            from dpkeras.finetune import initialize

            initialize(model, self.finetune, self.train_data, self.valid_data or self.train_data,
                       cfg["data_bias_nsample"], self.seed)
        elif self.init_model:
            from dpkeras.model.load import load_model

            src, _ = load_model(self.init_model)
            if src.get_type_map() != model.get_type_map():
                raise DPKerasError(f"{self.init_model}: type_map {src.get_type_map()} differs "
                                   f"from input.json's {model.get_type_map()}")
            set_weights(model, get_weights(src), self.init_model)
            log.info("initialized the weights from %s", self.init_model)
        else:
            for leaf in d.leaves():   # hybrid: every sub-descriptor has its own statistics
                leaf.env_mat.set_stats(*compute_env_stats(
                    self.train_data, leaf, cfg["data_stat_nbatch"], cfg["data_stat_protect"]))
            set_output_stats(model, self.train_data, cfg)
        return model, optimizer, start_step

    # --- compiled steps ----------------------------------------------------------------------
    def _make_steps(self, model, optimizer):
        """``train_step(batch)`` and ``eval_step(batch, lr)``.

        Batches come from one system with atoms sorted by type, so each system composition gets
        its own compiled function with static per-type slices (XLA when ``jit_compile``).
        """
        loss_fn, ntypes = self.loss, model.get_ntypes()
        cache = {}

        def train(batch, type_counts):
            lr = self.schedule(optimizer.iterations)
            inputs = {k: batch[k] for k in MODEL_INPUTS}
            with tf.GradientTape() as tape:
                out = model(inputs, training=True, type_counts=type_counts)
                loss, metrics = loss_fn(out, batch, lr)
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply(grads, model.trainable_variables)
            return metrics

        def evaluate(batch, lr, type_counts):
            out = model({k: batch[k] for k in MODEL_INPUTS}, type_counts=type_counts)
            return loss_fn(out, batch, lr)[1]

        def compiled(fn, batch):
            counts = tuple(np.bincount(batch["atype"][0].numpy(), minlength=ntypes).tolist())
            key = (fn.__name__, counts)
            if key not in cache:
                cache[key] = tf.function(
                    lambda *args: fn(*args, type_counts=counts), jit_compile=self.jit_compile,
                    reduce_retracing=True)
            return cache[key]

        def train_step(batch):
            return compiled(train, batch)(batch)

        def eval_step(batch, lr):
            return compiled(evaluate, batch)(batch, tf.cast(lr, tf.float64))

        if self.strategy is not None:
            return self._replicated_step(model, optimizer), eval_step
        return train_step, eval_step

    def _replicated_step(self, model, optimizer):
        """``train_step(batch)`` under the strategy: each replica trains on its frames, the
        loss divided by the replica count (:func:`dpkeras.distribute.replicated_step`)."""
        from dpkeras.distribute import replicated_step

        n = self.strategy.num_replicas_in_sync

        def replica(batch, type_counts):
            lr = self.schedule(optimizer.iterations)
            with tf.GradientTape() as tape:
                out = model({k: batch[k] for k in MODEL_INPUTS}, training=True,
                            type_counts=type_counts)
                loss, metrics = self.loss(out, batch, lr)
                scaled = loss / n
            optimizer.apply(tape.gradient(scaled, model.trainable_variables),
                            model.trainable_variables)
            return metrics

        return replicated_step(self.strategy, replica, model.get_ntypes())

    # --- loop ------------------------------------------------------------------------------
    def run(self):
        os.makedirs(self.output_dir, exist_ok=True)
        _add_file_log(os.path.join(self.output_dir, "train.log"))
        atomic_write_text(os.path.join(self.output_dir, "out.json"),
                                     json.dumps(self.config, indent=2))
        with self.strategy.scope() if self.strategy else contextlib.nullcontext():
            model, optimizer, start = self._build()
        train_step, eval_step = self._make_steps(model, optimizer)
        names = self.loss.metric_names()
        lcurve = LCurve(os.path.join(self.output_dir, self.config["training"]["disp_file"]),
                        names, self.valid_data is not None, start)
        model_cfg = self.config["model"]
        keep = self.config["training"]["max_ckpt_keep"]
        d = model.descriptor
        if start == 0:   # DeePMD-kit's step-0 line: the untrained model on the first batch
            first = next(iter(self.train_data.dataset(self.seed, 0, 1, **batch_args(d))))
            lcurve.write(0, self._valid(eval_step, 0, d), eval_step(first, self.schedule(0)),
                         self.schedule.value(0))
        ds = self.train_data.dataset(self.seed, start, self.numb_steps, **batch_args(d))
        t0, last_t, last_step = time.time(), time.time(), start
        step = start
        for batch in ds:
            metrics = train_step(batch)
            step += 1
            if step % self.disp_freq == 0 or step == self.numb_steps:
                trn = {k: float(v) for k, v in metrics.items()}
                lr_now = self.schedule.value(step)
                lcurve.write(step, self._valid(eval_step, step, d), trn, lr_now)
                now = time.time()
                rate = (step - last_step) / max(now - last_t, 1e-9)
                eta = (self.numb_steps - step) / max(rate, 1e-9)
                log.info("step %d/%d  %s  lr %.2e  %.2f steps/s  ETA %s", step,
                         self.numb_steps, "  ".join(f"{k}_trn {v:.3e}" for k, v in trn.items()),
                         lr_now, rate, _fmt_time(eta))
                last_t, last_step = now, step
            if step % self.save_freq == 0 or step == self.numb_steps:
                path = checkpoint.save(self.output_dir, step, model, optimizer, model_cfg, keep)
                log.info("saved checkpoint %s", path)
        if step == 0:   # numb_steps 0 (e.g. a fine-tuned model with its bias recalibrated only)
            log.info("saved checkpoint %s", checkpoint.save(self.output_dir, 0, model, optimizer,
                                                            model_cfg, keep))
        lcurve.close()
        log.info("finished %d steps in %s", step - start, _fmt_time(time.time() - t0))
        if self.finetune is not None:
            from dpkeras.finetune import report_error

            report_error(model, self.valid_data or self.train_data, "fine-tuned model")
        return model

    def _valid(self, eval_step, step, d):
        """Validation metrics over ``numb_btch`` batches (RMS over batches), or ``None``."""
        if self.valid_data is None:
            return None
        nb = self.config["training"]["validation_data"].get("numb_btch", 1)
        ds = self.valid_data.dataset(self.seed, step * nb, step * nb + nb, stream=1,
                                     **batch_args(d))
        acc = {}
        for batch in ds:
            for k, v in eval_step(batch, self.schedule(step)).items():
                acc.setdefault(k, []).append(float(v) ** 2)
        return {k: float(np.sqrt(np.mean(v))) for k, v in acc.items()}


def apply_trainable(model, model_section):
    """Honour the ``trainable`` flags of the model section (``descriptor``, ``type_embedding``,
    ``fitting_net``; the latter a bool or one bool per layer, hidden layers then the output
    layer) by marking the frozen weights non-trainable. (A ``trainable=False`` layer
    constructor argument alone does not reach the weights of its sub-layers in Keras 3.)"""
    def freeze(layer):
        for v in layer.weights:
            v.trainable = False

    if model_section["descriptor"].get("trainable", True) is False:
        freeze(model.descriptor)
    if model_section["fitting_net"].get("trainable", True) is False:
        freeze(model.fitting)
    te = model_section.get("type_embedding") or {}
    if te.get("trainable") is False and getattr(model.descriptor, "type_embed", None) is not None:
        freeze(model.descriptor.type_embed)
    flags = model_section["fitting_net"].get("trainable", True)
    if isinstance(flags, list):
        for net in model.fitting.nets:
            layers = [[net.ws[k], net.bs[k], net.idts[k]] for k in range(len(net.neuron))]
            layers.append([net.w_out, net.b_out])
            for keep, variables in zip(flags, layers):
                for v in variables:
                    if v is not None and not keep:
                        v.trainable = False


class LCurve:
    """``lcurve.out`` in DeePMD-kit's format; on restart, lines after the restored step are
    dropped so the file continues exactly. ``label(name, "val" | "trn")``: a column's header
    (default ``f"{name}_{kind}"``)."""

    def __init__(self, path, names, has_valid, start_step, label=None):
        self.names, self.has_valid = names, has_valid
        if start_step > 0 and os.path.exists(path):
            with open(path) as f:
                lines = f.readlines()
            kept = [ln for ln in lines if ln.startswith("#") or
                    (ln.split() and int(ln.split()[0]) <= start_step)]
            atomic_write_text(path, "".join(kept))
            self.f = open(path, "a")
        else:
            self.f = open(path, "w")
            head = "%-7s" % "# step"
            label = label or (lambda k, kind: f"{k}_{kind}")
            for k in names:
                head += ("   %11s %11s" % (label(k, "val"), label(k, "trn"))) if has_valid \
                    else ("   %11s" % label(k, "trn"))
            head += "   %-8s\n" % "lr"
            self.f.write(head)
            self.f.write("# If there is no available reference data, rmse_*_{val,trn} will "
                         "print nan\n")
            self.f.flush()

    def write(self, step, valid, train, lr):
        line = "%7d" % step
        for k in self.names:
            trn = float(train[k])
            if self.has_valid:
                line += "   %11.2e %11.2e" % (valid[k], trn)
            else:
                line += "   %11.2e" % trn
        line += "   %8.1e\n" % lr
        self.f.write(line)
        self.f.flush()

    def close(self):
        self.f.close()


def _sels(d):
    return [x["sel"] for x in d["list"]] if d["type"] == "hybrid" else d["sel"]


def _fmt_time(sec):
    sec = int(sec)
    return f"{sec // 3600:d}:{sec % 3600 // 60:02d}:{sec % 60:02d}"


def _add_file_log(path):
    for h in log.handlers:
        if isinstance(h, logging.FileHandler) and h.baseFilename == os.path.abspath(path):
            return
    h = logging.FileHandler(path)
    h.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(h)
