"""The training loop: DeePMD-kit semantics, Keras model and optimizer, TF checkpoints.

``Trainer(config, output_dir).run()`` with a normalized ``input.json`` dict
(:func:`dpkeras.config.normalize`), single- or multi-task. A single-task input is one head,
``Default``; a multi-task input has one head per ``model.model_dict`` entry sharing one
descriptor. Writes ``lcurve.out`` (DeePMD-kit's columns), ``out.json`` (the normalized input),
``train.log`` and ``checkpoints/``.

The head of step ``s`` is :func:`head_for_step` ``(seed, s, probs)`` and its batch is its
data's ``sample(seed, s)``: pure functions of the seed and the step, so a restarted run
continues with exactly the same heads and batches. Each ``(head, system composition)`` gets its
own compiled step (XLA when ``jit_compile``) that runs the shared descriptor and that head's
fitting and applies Adam to their variables only. One Adam optimizer holds the state of every
variable; the learning rate follows the global step.

Under a ``tf.distribute`` strategy (``strategy``, :mod:`dpkeras.distribute`) every replica
trains the same head on its share of the global batch, the loss divided by the replica count;
only the chief writes to ``output_dir``; the evaluations run unreplicated.

``lcurve.out``: single-task, DeePMD-kit's ``M_val M_trn`` per metric, the training column being
the metrics of the step's own batch; multi-task, ``M_val_H M_trn_H`` per head ``H`` (DeePMD-kit's
multi-task naming), each head evaluated at every ``disp_freq`` step on a training batch of its
own and on its validation data (``nan`` without one).
"""

import contextlib
import json
import logging
import os
import time

import keras
import numpy as np
import tensorflow as tf

from dpkeras import allocator
from dpkeras import checkpoint
from dpkeras import distribute
from dpkeras import lr as lr_mod
from dpkeras import xla
from dpkeras.atomic import atomic_write_text
from dpkeras.config import DEFAULT_HEAD, is_multitask
from dpkeras.data.pipeline import DataSystems
from dpkeras.errors import DPKerasError
from dpkeras.fitting.stats import set_output_stats
from dpkeras.lcurve import LCurve, StepTimer, TensorBoard, add_file_log, fmt_time
from dpkeras.loss import make_loss
from dpkeras.model.build import build_model
from dpkeras.multitask.model import MultiTaskModel
from dpkeras.network import compute_precision
from dpkeras.nlist import batch_args
from dpkeras.rundir import RunDir
from dpkeras.stat import compute_env_stats, report_neighbor_stat, resolve_auto_sel

log = logging.getLogger("dpkeras")


class _ExpectedRetracing(logging.Filter):
    """TensorFlow warns that "N out of the last M calls ... triggered tf.function retracing"
    when a run compiles several steps in a row; here that is by design (one compiled step per
    head and system composition, each traced once), so the warning is dropped."""

    def filter(self, record):
        return "triggered tf.function retracing" not in record.getMessage()


@contextlib.contextmanager
def _expected_retracing_quiet():
    """The filter on TensorFlow's logger for the duration of a run only (a user's own
    functions keep the warning outside it)."""
    tf_log, f = logging.getLogger("tensorflow"), _ExpectedRetracing()
    tf_log.addFilter(f)
    try:
        yield
    finally:
        tf_log.removeFilter(f)

MODEL_INPUTS = ("coord", "box", "atype", "nlist", "shift", "fparam", "aparam")
_HEAD_STREAM = 0x6D74   # the random stream of the head choice (data batches use 0-2)
_TRAIN_EVAL_STREAM = 2  # multi-task: the training batches evaluated at display steps


def head_for_step(seed, step, probs):
    """Index of the head trained at ``step``: drawn with probabilities ``probs`` from a
    generator seeded by ``(seed, step)`` only."""
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, int(step), _HEAD_STREAM])
    return int(rng.choice(len(probs), p=probs))


class _StepSubset:
    """A ``DataSystems`` whose step ``i`` is step ``steps[i]`` of the underlying data: the
    batches of one head, in order, through the one input pipeline."""

    def __init__(self, data, steps, stream=0):
        self._data, self._steps, self._stream = data, steps, stream

    def __getattr__(self, name):
        return getattr(self._data, name)

    def sample(self, seed, i, stream=0):
        return self._data.sample(seed, self._steps[i], self._stream)

    def dataset(self, seed, **nlist):
        """The batches of the subset's steps; ``nlist``: :func:`dpkeras.nlist.batch_args`."""
        return DataSystems.dataset(self, seed, 0, len(self._steps), **nlist)

    def batches(self, seed, **nlist):
        """:meth:`dataset`'s batches without ``tf.data`` (:meth:`DataSystems.batches`)."""
        return DataSystems.batches(self, seed, 0, len(self._steps), **nlist)


class Trainer:
    """Args:
      config: normalized input dict (single- or multi-task).
      output_dir: where ``lcurve.out``, ``out.json``, ``train.log`` and ``checkpoints/`` go.
      restart: a run or checkpoint directory to resume exactly (step, lr, optimizer state).
      init_model: a model (any format; ``--init_model`` / ``--init_frz_model``) whose
        descriptor, and the fitting nets of the heads it shares with this input by name (a
        single-task model's head is ``Default``), initialize a fresh run.
      finetune: how the model starts from a pretrained one, any object with
        ``initialize(model, train_data, valid_data, ntest, seed)`` and ``report(model,
        train_data, valid_data)`` (``*_data``: ``{head: DataSystems or None}``), e.g.
        :class:`dpkeras.finetune.FinetuneSpec`.
      skip_neighbor_stat: do not scan the data for the neighbor statistics.
      jit_compile: compile the steps with XLA (one compilation per head and composition);
        None: :func:`dpkeras.xla.jit_compile`'s default (on unless ``DPKERAS_JIT_COMPILE=0``).
      strategy: a ``tf.distribute`` strategy or None (its steps are not XLA-compiled).
      overwrite: replace another run found in ``output_dir`` (else that is refused).
    """

    def __init__(self, config, output_dir=".", restart=None, init_model=None,
                 skip_neighbor_stat=False, jit_compile=None, finetune=None, strategy=None,
                 overwrite=False):
        # freed step buffers stay mapped: a quarter off a step; before data and model
        # allocate, so the threads' heaps are made with it (dpkeras.allocator)
        allocator.keep_freed_memory()
        if finetune is not None and init_model:
            raise DPKerasError("give either --finetune or --init_model, not both")
        self.config, self.strategy, self.finetune = config, strategy, finetune
        self.output_dir = output_dir if strategy is None else distribute.worker_output_dir(
            strategy, output_dir)
        self.restart, self.init_model, self.overwrite = restart, init_model, overwrite
        self._accepted = None   # (checkpoint, meta) of an accepted --restart
        self.skip_neighbor_stat = skip_neighbor_stat
        self.jit_compile = xla.jit_compile(jit_compile)
        t = config["training"]
        self.numb_steps = t["numb_steps"]
        self.seed = t["seed"] if t["seed"] is not None else int(np.random.SeedSequence().entropy
                                                                 % (2 ** 31))
        self.disp_freq, self.save_freq = t["disp_freq"], t["save_freq"]
        self.multi = is_multitask(config)
        if self.multi:
            self.heads = list(config["model"]["model_dict"])
            self.probs = np.array([t["model_prob"][h] for h in self.heads], dtype=np.float64)
            data = {h: (t["data_dict"][h], f"training.data_dict.{h}.") for h in self.heads}
        else:
            self.heads, self.probs = [DEFAULT_HEAD], np.ones(1)
            data = {DEFAULT_HEAD: (t, "training.")}
        self.train_data, self.valid_data, self.numb_btch = {}, {}, {}
        for h, (dd, where) in data.items():
            type_map = self.section(h)["type_map"]
            sel_type = self.section(h)["fitting_net"].get("sel_type")
            self.train_data[h] = DataSystems(dd["training_data"], type_map,
                                             f"{where}training_data", sel_type)
            if strategy is not None:
                distribute.check_batch_sizes(strategy, self.train_data[h],
                                             f"{where}training_data")
            self.valid_data[h] = None if dd["validation_data"] is None else DataSystems(
                dd["validation_data"], type_map, f"{where}validation_data", sel_type)
            self.numb_btch[h] = (dd["validation_data"] or {}).get("numb_btch", 1)
        self._resolve_auto_sel()
        self.schedule = lr_mod.from_config(config["learning_rate"], self.numb_steps)
        losses = config["loss_dict"] if self.multi else {DEFAULT_HEAD: config["loss"]}
        self.losses = {h: make_loss(losses[h], self.schedule.start_lr, self.section(h))
                       for h in self.heads}

    def section(self, head):
        """The normalized single-task model section of ``head``."""
        m = self.config["model"]
        return m["model_dict"][head] if self.multi else m

    def _resolve_auto_sel(self):
        """``sel: "auto"``: from the training data of every head (one shared descriptor)."""
        data = self.all_train_data()
        sections = {h: resolve_auto_sel(self.section(h), data) for h in self.heads}
        if all(sections[h] == self.section(h) for h in self.heads):
            return
        d = sections[self.heads[0]]["descriptor"]
        log.info("sel \"auto\" from the training data: %s", [x["sel"] for x in d["list"]]
                 if d["type"] == "hybrid" else d["sel"])
        model = {"model_dict": sections} if self.multi else sections[DEFAULT_HEAD]
        self.config = dict(self.config, model=model)

    def all_train_data(self):
        """Every head's training systems as one ``DataSystems`` (descriptor statistics)."""
        if len(self.heads) == 1:
            return self.train_data[self.heads[0]]
        return DataSystems.union([self.train_data[h] for h in self.heads])

    def head_of(self, step):
        return self.heads[head_for_step(self.seed, step, self.probs)]

    # --- setup ------------------------------------------------------------------------------
    def build(self):
        """``(model, optimizer, start_step)``: fresh (statistics from the data), restored
        (``restart``), fine-tuned or initialized from ``init_model``; under the strategy."""
        with self.strategy.scope() if self.strategy else contextlib.nullcontext():
            return self._build()

    def nets(self, model):
        """``{head: single-task model}`` of the model being trained."""
        return dict(model.heads) if self.multi else {DEFAULT_HEAD: model}

    def _build(self):
        cfg = self.config["model"]
        keras.utils.set_random_seed(self.seed)
        low = self.compute_prec()
        with compute_precision(low):   # training.mixed_precision: hidden layers in compute_prec
            model = MultiTaskModel(cfg) if self.multi else build_model(cfg)
        nets = self.nets(model)
        if not self.skip_neighbor_stat:
            report_neighbor_stat(self.all_train_data(), model.descriptor, log)
        for h, net in nets.items():
            apply_trainable(net, self.section(h))
        optimizer = keras.optimizers.Adam(learning_rate=self.schedule, epsilon=1e-8)
        if low == "float16":   # dynamic loss scaling, as DeePMD-kit's graph rewrite does
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        optimizer.build(model.trainable_variables)
        if self.restart:
            # the checkpoint run() accepted (verified once), else check it now
            ckpt, meta = self._accepted or checkpoint.check_restart(self.restart, cfg)
            checkpoint.restore(ckpt, model, optimizer)
            start = int(meta["step"])
            log.info("restarted from %s at step %d", ckpt, start)
            return model, optimizer, start
        first = self.section(self.heads[0])
        if self.finetune is not None:
            self.finetune.initialize(model, self.train_data, self.valid_data,
                                     first["data_bias_nsample"], self.seed)
            return model, optimizer, 0
        if self.init_model:
            fresh = init_from(nets, model, self.init_model)
        else:
            fresh = list(self.heads)
            data = self.all_train_data()
            for leaf in model.descriptor.leaves():   # hybrid: every member has its statistics
                leaf.env_mat.set_stats(*compute_env_stats(
                    data, leaf, first["data_stat_nbatch"], first["data_stat_protect"]))
        for h in fresh:   # energy bias, polar diagonal shift, fparam statistics
            if self.multi:
                log.info("head %s: output statistics from its data", h)
            set_output_stats(nets[h], self.train_data[h], self.section(h))
        return model, optimizer, 0

    def compute_prec(self):
        """``training.mixed_precision.compute_prec`` (``None`` without mixed precision)."""
        mp = self.config["training"].get("mixed_precision")
        return None if mp is None else mp["compute_prec"]

    # --- compiled steps ----------------------------------------------------------------------
    def make_steps(self, model, optimizer):
        """``train_step(head, batch)`` and ``eval_step(head, batch, lr)``: one compiled function
        per ``(head, system composition, neighbor-block widths)`` (batches come from one system,
        atoms sorted by type, so the per-type slices are static; per-type neighbor lists come
        cut by :func:`dpkeras.nlist.trim_type_blocks` where the descriptor takes them)."""
        ntypes, cache, nets = model.get_ntypes(), {}, self.nets(model)
        variables = {h: (model.head_trainable_variables(h) if self.multi
                         else model.trainable_variables) for h in self.heads}
        replicas = 1 if self.strategy is None else self.strategy.num_replicas_in_sync

        def train(batch, head, layout):
            lr = self.schedule(optimizer.iterations)
            with tf.GradientTape() as tape:
                out = nets[head]({k: batch[k] for k in MODEL_INPUTS}, training=True, **layout)
                loss, metrics = self.losses[head](out, batch, lr)
                if replicas > 1:   # the optimizer sums the replicas' gradients
                    loss = loss / replicas
                scaled = optimizer.scale_loss(loss)   # = loss unless float16 loss scaling
            optimizer.apply(tape.gradient(scaled, variables[head]), variables[head])
            return metrics

        def evaluate(batch, lr, head, layout):
            out = nets[head]({k: batch[k] for k in MODEL_INPUTS}, **layout)
            return self.losses[head](out, batch, lr)[1]

        def compiled(kind, head, batch):
            # the static layout of the batch: atoms per type, slots per neighbor-type block
            layout = {"type_counts": tuple(
                np.bincount(batch["atype"][0].numpy(), minlength=ntypes).tolist())}
            if "nlist_widths" in batch:   # dpkeras.nlist.trim_type_blocks
                layout["nlist_widths"] = tuple(batch["nlist_widths"][0].numpy().tolist())
            key = (kind, head) + tuple(layout.values())
            if key not in cache:
                if kind == "train" and self.strategy is not None:
                    cache[key] = tf.function(lambda b: self.strategy.run(
                        train, args=(b, head), kwargs={"layout": layout}))
                else:
                    fn = train if kind == "train" else evaluate
                    cache[key] = tf.function(
                        lambda *args: fn(*args, head=head, layout=layout),
                        jit_compile=self.jit_compile, reduce_retracing=True)
            return cache[key]

        def train_step(head, batch):
            if self.strategy is None:
                return compiled("train", head, batch)(batch)
            out = compiled("train", head, batch)(distribute.split_batch(self.strategy, batch))
            return {k: self.strategy.reduce("MEAN", v, axis=None) for k, v in out.items()}

        def eval_step(head, batch, lr):
            return compiled("eval", head, batch)(batch, tf.cast(lr, tf.float64))

        return train_step, eval_step

    # --- loop ------------------------------------------------------------------------------
    def run(self):
        """Train; returns the model. Nothing in ``output_dir`` changes before the run is
        accepted (a ``--restart`` must match the run's model section, the directory must not
        hold another run, :class:`dpkeras.rundir.RunDir`), and the directory stays locked
        against other writers until the run ends."""
        if self.restart:
            self._accepted = checkpoint.check_restart(self.restart, self.config["model"])
        with RunDir(self.output_dir, self.restart, self.overwrite,
                    self.config["training"]["disp_file"]), _expected_retracing_quiet():
            return self._run()

    def _run(self):
        add_file_log(os.path.join(self.output_dir, "train.log"))
        atomic_write_text(os.path.join(self.output_dir, "out.json"),
                          json.dumps(self.config, indent=2))
        model, optimizer, start = self.build()
        train_step, eval_step = self.make_steps(model, optimizer)
        d = model.descriptor
        names = [(h, k) for h in self.heads for k in self.losses[h].metric_names()]
        label = (lambda hk, kind: f"{hk[1]}_{kind}_{hk[0]}") if self.multi else \
            (lambda hk, kind: f"{hk[1]}_{kind}")
        has_valid = any(v is not None for v in self.valid_data.values())
        lcurve = LCurve(os.path.join(self.output_dir, self.config["training"]["disp_file"]),
                        names, has_valid, start, label=label)
        keep = self.config["training"]["max_ckpt_keep"]
        if start == 0:   # DeePMD-kit's step-0 line: the untrained model
            self._display(lcurve, eval_step, 0, d, None)
        steps = range(start, self.numb_steps)
        order = [head_for_step(self.seed, s, self.probs) for s in steps] \
            if len(self.heads) > 1 else [0] * len(steps)
        batches = {}
        for i, h in enumerate(self.heads):
            mine = [s for s, k in zip(steps, order) if k == i]
            if mine:
                batches[h] = iter(_StepSubset(self.train_data[h], mine).dataset(
                    self.seed, **batch_args(d)))
        counts = {h: 0 for h in self.heads}
        board = TensorBoard(self.output_dir, self.config["training"], label)
        t0, last_t, last_step = time.time(), time.time(), start
        timer = StepTimer(self.disp_freq)
        step = start
        try:
            for i in order:
                h = self.heads[i]
                board.profile(step - start)
                batch = next(batches[h])
                tic = time.time()
                metrics = train_step(h, batch)
                loss = float(metrics["rmse"])
                timer.add(step - start, time.time() - tic)
                counts[h] += 1
                step += 1
                board.step(step, h, metrics, self.schedule.value(step))
                if not np.isfinite(loss):
                    of = f" of head {h}" if self.multi else ""
                    self._diverged(step, f"the training loss{of} is {loss}")
                if step % self.disp_freq == 0 or step == self.numb_steps:
                    trn, val = self._display(lcurve, eval_step, step, d, (h, metrics))
                    board.validation(step, val)
                    now = time.time()
                    rate = (step - last_step) / max(now - last_t, 1e-9)
                    log.info("step %d/%d  %s  lr %.2e  %.2f steps/s  ETA %s", step,
                             self.numb_steps,
                             "  ".join(f"{label(hk, 'trn')} {v:.3e}" for hk, v in trn.items()),
                             self.schedule.value(step), rate,
                             fmt_time((self.numb_steps - step) / max(rate, 1e-9)))
                    last_t, last_step = now, step
                if step % self.save_freq == 0 or step == self.numb_steps:
                    if not all(np.all(np.isfinite(v.numpy())) for v in model.trainable_variables):
                        self._diverged(step, "the weights hold NaN or inf")
                    log.info("saved checkpoint %s", checkpoint.save(
                        self.output_dir, step, model, optimizer, self.config["model"], keep))
            if step == 0:   # numb_steps 0 (e.g. a fine-tuned model with its bias recalibrated only)
                log.info("saved checkpoint %s", checkpoint.save(
                    self.output_dir, 0, model, optimizer, self.config["model"], keep))
        finally:
            lcurve.close()
            board.close()
        log.info("finished %d steps in %s%s", step - start, fmt_time(time.time() - t0),
                 f"; steps per head: {counts}" if self.multi else "")
        if timer.steps:
            log.info("average training time: %.4f s/step (excluding the first %d steps, "
                     "display and checkpoints)", *timer.average())
        if self.finetune is not None:
            self.finetune.report(model, self.train_data, self.valid_data)
        self.step_counts = counts
        return model

    def _diverged(self, step, what):
        """Stop a diverged run: nothing non-finite is ever checkpointed."""
        steps = checkpoint.list_steps(self.output_dir)
        last = (f"the last checkpoint, ckpt-{max(steps)}, is from before; restart from it "
                f"(--restart={self.output_dir}) with a smaller learning_rate.start_lr") if steps \
            else "no checkpoint was written; retrain with a smaller learning_rate.start_lr"
        raise DPKerasError(f"step {step}: {what}; the training diverged and was stopped, {last}, "
                           "or check the training data for bad labels")

    def _display(self, lcurve, eval_step, step, d, trained):
        """Write the ``lcurve.out`` line of ``step``; returns the training
        and validation metrics ``{(head, metric): value}``. ``trained``: ``(head, metrics)``
        of the step just made
        (``None`` at step 0), the training column of a single-task run; a multi-task run
        evaluates every head on a display batch of its own."""
        lr = self.schedule(step)
        trn, val = {}, {}
        for h in self.heads:
            if self.multi:
                stream = _StepSubset(self.train_data[h], [step], _TRAIN_EVAL_STREAM)
                batch = next(stream.batches(self.seed, **batch_args(d)))
                metrics = eval_step(h, batch, lr)
            elif trained is None:    # the first training batch
                batch = next(self.train_data[h].batches(self.seed, 0, 1, **batch_args(d)))
                metrics = eval_step(h, batch, lr)
            else:
                metrics = trained[1]
            trn.update({(h, k): float(v) for k, v in metrics.items()})
            val.update({(h, k): v for k, v in self._valid(eval_step, h, step, d).items()})
        lcurve.write(step, val, trn, self.schedule.value(step))
        return trn, val

    def _valid(self, eval_step, h, step, d):
        """Validation metrics of head ``h`` over ``numb_btch`` batches (RMS over batches);
        ``nan`` without validation data."""
        data, nb = self.valid_data[h], self.numb_btch[h]
        if data is None:
            return {k: float("nan") for k in self.losses[h].metric_names()}
        ds = data.batches(self.seed, step * nb, step * nb + nb, stream=1, **batch_args(d))
        acc = {}
        for batch in ds:
            for k, v in eval_step(h, batch, self.schedule(step)).items():
                acc.setdefault(k, []).append(float(v) ** 2)
        return {k: float(np.sqrt(np.mean(v))) for k, v in acc.items()}


def init_from(nets, model, path):
    """``--init_model``: copy into ``model`` (heads ``nets``) the weights of the model at
    ``path``: every head it has by the same name, whole (its descriptor and fitting), or else
    its descriptor only. Returns the heads left to initialize from data."""
    from dpkeras.load import heads_of, load
    from dpkeras.tabulate import refuse_training

    src, _ = load(path)
    refuse_training(src, path)
    if src.get_type_map() != model.get_type_map():
        raise DPKerasError(f"{path}: type_map {src.get_type_map()} differs from input.json's "
                           f"{model.get_type_map()}")
    src_heads = heads_of(src)
    common = [h for h in nets if h in src_heads]
    if not common:
        _copy(src.descriptor.weights, model.descriptor.weights, path, "descriptor")
    for h in common:
        nets[h].set_variables(src_heads[h].get_variables(), path)
    log.info("initialized the descriptor%s from %s", f" and heads {common}" if common else "",
             path)
    return [h for h in nets if h not in src_heads]


def _copy(src, dst, path, what):
    if len(src) != len(dst) or any(tuple(a.shape) != tuple(b.shape) for a, b in zip(src, dst)):
        raise DPKerasError(f"{path}: the {what} weights do not match this input's "
                           f"({len(src)} vs {len(dst)} arrays, or other shapes); the "
                           "network settings differ")
    for a, b in zip(src, dst):
        b.assign(a)


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
