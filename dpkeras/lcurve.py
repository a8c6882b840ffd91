"""What a training run reports: ``lcurve.out`` (DeePMD-kit's learning-curve file), TensorBoard
logs and a TF profile (DeePMD-kit's ``training.tensorboard`` / ``profiling`` keys), the log."""

import importlib.util
import logging
import os

import numpy as np
import tensorflow as tf

from dpkeras.atomic import atomic_write_text
from dpkeras.errors import DPKerasError

log = logging.getLogger("dpkeras")


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


class StepTimer:
    """DeePMD-kit's ``average training time``: the mean wall time of the training steps alone
    (the compiled step and reading its loss; not the display, validation or checkpoints), the
    first ``skip`` steps left out (tracing, compilation, warm-up) when the run is longer than
    twice that, as DeePMD-kit leaves out its first display interval."""

    def __init__(self, skip):
        self.skip = int(skip)
        self.steps = 0
        self._all = self._late = 0.0

    def add(self, index, seconds):
        """Step ``index`` (0 = the run's first) took ``seconds``."""
        self.steps += 1
        self._all += seconds
        if index >= self.skip:
            self._late += seconds

    def average(self):
        """``(seconds per step, steps left out)``; steps are left out only when more than
        twice ``skip`` ran."""
        if self.steps > 2 * self.skip:
            return self._late / (self.steps - self.skip), self.skip
        return self._all / self.steps, 0


def fmt_time(sec):
    sec = int(sec)
    return f"{sec // 3600:d}:{sec % 3600 // 60:02d}:{sec % 60:02d}"


def add_file_log(path):
    for h in log.handlers:
        if isinstance(h, logging.FileHandler) and h.baseFilename == os.path.abspath(path):
            return
    h = logging.FileHandler(path)
    h.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(h)


class TensorBoard:
    """DeePMD-kit's ``training.tensorboard`` and ``training.profiling``.

    With ``tensorboard``: TensorBoard scalars in ``OUTPUT_DIR/tensorboard_log_dir`` (DeePMD-kit
    writes ``tensorboard_log_dir`` relative to the working directory; dpkeras keeps a run's
    outputs together): every ``tensorboard_freq`` steps the training metrics of the step (per
    head for multi-task, ``rmse_e_trn_HEAD``) and the learning rate, and at every ``disp_freq``
    step the validation metrics. With ``profiling``: a TensorFlow profile of the 10 training
    steps after the first (compilation) in ``OUTPUT_DIR/NAME``, ``NAME`` being
    ``profiling_file`` without its extension (open it in TensorBoard's Profile tab; DeePMD-kit's
    TF1 backend writes a Chrome timeline instead).
    """

    PROFILED_STEPS = 10

    def __init__(self, output_dir, training, label):
        self.label, self.freq = label, int(training["tensorboard_freq"])
        self.writer = None
        if training["tensorboard"]:
            if importlib.util.find_spec("tensorboard") is None:   # tf.summary needs it
                raise DPKerasError("training.tensorboard: true needs the tensorboard package: "
                                   "pip install 'dpkeras[tensorboard]' (or pip install "
                                   "tensorboard)")
            self.writer = tf.summary.create_file_writer(
                os.path.join(output_dir, training["tensorboard_log_dir"]))
        self.profile_dir = None
        if training["profiling"]:
            self.profile_dir = os.path.join(
                output_dir, os.path.splitext(training["profiling_file"])[0])
        self._profiling = False

    def step(self, step, head, metrics, lr):
        if self.writer is None or step % self.freq:
            return
        with self.writer.as_default(step=step):
            for k, v in metrics.items():
                tf.summary.scalar(self.label((head, k), "trn"), float(v))
            tf.summary.scalar("learning_rate", lr)

    def validation(self, step, val):
        if self.writer is None:
            return
        with self.writer.as_default(step=step):
            for hk, v in val.items():
                if np.isfinite(v):
                    tf.summary.scalar(self.label(hk, "val"), v)

    def profile(self, done):
        """Called before each training step, ``done`` steps into this run."""
        if self.profile_dir is None:
            return
        if done == 1 and not self._profiling:
            tf.profiler.experimental.start(self.profile_dir)
            self._profiling = True
        elif done == 1 + self.PROFILED_STEPS and self._profiling:
            self._stop()

    def _stop(self):
        tf.profiler.experimental.stop()
        self._profiling = False
        log.info("wrote a TensorFlow profile of %d steps to %s", self.PROFILED_STEPS,
                 self.profile_dir)

    def close(self):
        if self._profiling:
            self._stop()
        if self.writer is not None:
            self.writer.close()
