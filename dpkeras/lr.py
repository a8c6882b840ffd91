"""DeePMD-kit's exponential learning-rate schedule as a Keras ``LearningRateSchedule``."""

import math

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="dpkeras")
class ExpDecay(keras.optimizers.schedules.LearningRateSchedule):
    """``lr(step) = max(start_lr * decay_rate ** floor(step / decay_steps), stop_lr)``.

    Unless given, ``decay_rate = exp(log(stop_lr / start_lr) / (numb_steps / decay_steps))`` so
    that ``lr`` reaches ``stop_lr`` at ``numb_steps``. As in DeePMD-kit, a ``decay_steps`` not
    smaller than ``numb_steps`` is replaced by ``100`` (or ``numb_steps // 100 + 1`` for short
    runs).
    """

    def __init__(self, start_lr, stop_lr, decay_steps, numb_steps, decay_rate=None):
        self.start_lr, self.stop_lr = float(start_lr), float(stop_lr)
        self.numb_steps = int(numb_steps)
        decay_steps = int(decay_steps)
        if decay_steps >= self.numb_steps:
            decay_steps = 100 if self.numb_steps // 10 > 100 else self.numb_steps // 100 + 1
        self.decay_steps = decay_steps
        if decay_rate is None:
            decay_rate = math.exp(math.log(self.stop_lr / self.start_lr)
                                  / (max(self.numb_steps, 1) / self.decay_steps))
        self.decay_rate = float(decay_rate)

    def value(self, step):
        """Learning rate at an integer step, in Python (for logs)."""
        lr = self.start_lr * self.decay_rate ** (int(step) // self.decay_steps)
        return max(lr, self.stop_lr)

    def __call__(self, step):
        step = tf.cast(step, tf.float64)
        lr = self.start_lr * tf.pow(tf.constant(self.decay_rate, tf.float64),
                                    tf.floor(step / self.decay_steps))
        return tf.cast(tf.maximum(lr, self.stop_lr), tf.float32)

    def get_config(self):
        return {"start_lr": self.start_lr, "stop_lr": self.stop_lr,
                "decay_steps": self.decay_steps, "numb_steps": self.numb_steps,
                "decay_rate": self.decay_rate}


def from_config(section, numb_steps):
    """Schedule from a normalized ``learning_rate`` section."""
    return ExpDecay(section["start_lr"], section["stop_lr"], section["decay_steps"], numb_steps,
                    section.get("decay_rate"))
