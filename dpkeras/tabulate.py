"""Tabulated embedding nets: DeePMD-kit's model compression (``dp compress``).

An embedding net ``G(x)`` (``x``: the normalized first column of the environment matrix) is
replaced by a table of piecewise fifth-order polynomials. ``table_info = [lower, upper, max,
stride0, stride1, check_frequency]``: intervals of width ``stride0`` on ``[lower, upper)``, then of
width ``stride1`` on ``[upper, max)``; ``table [nspline, 6 * M]`` holds, for interval ``k`` and
output ``m``, the coefficients ``a_0 .. a_5`` at ``table[k, 6 m + p]``. With ``t`` the offset of
``x`` from its interval's start,

    G_m(x) = a_0 + t (a_1 + t (a_2 + t (a_3 + t (a_4 + t a_5))))

and, as DeePMD-kit's kernel (``source/lib/src/tabulate.cc``), ``x < lower`` takes ``a_0`` of the
first interval and ``x >= max`` ``a_0`` of the last (constants, zero derivative).

Nothing is extrapolated silently: with ``check_frequency > 0`` (``python -m dpkeras.compress
--check_frequency=N``, DeePMD-kit's ``dp compress -f``) the layer counts the inputs outside
``[lower, max)`` in its non-trainable weight ``beyond``, and the evaluators
(:class:`dpkeras.infer.DeepPot` and the ASE calculator, LAMMPS and i-PI drivers built on it) warn
every ``check_frequency`` evaluations when that count grew (:func:`beyond_table`).
"""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="dpkeras")
class TabulatedEmbedding(keras.layers.Layer):
    """``[..., 1] -> [..., out_dim]``: an embedding net as DeePMD-kit's compressed tables.

    Args:
      nspline: number of intervals (rows of the table).
      out_dim: width ``M`` of the net it replaces.
      table_info: ``[lower, upper, max, stride0, stride1, check_frequency]``.
    """

    def __init__(self, nspline, out_dim, table_info, **kwargs):
        kwargs.setdefault("dtype", "float64")
        kwargs.setdefault("trainable", False)
        super().__init__(**kwargs)
        self.nspline, self.out_dim = int(nspline), int(out_dim)
        self.table_info = [float(x) for x in table_info]
        if len(self.table_info) != 6:
            raise ValueError(f"table_info needs 6 numbers, got {table_info}")
        self.table = self.add_weight(name="table", shape=(self.nspline, 6 * self.out_dim),
                                     initializer="zeros", trainable=False)
        self.check_frequency = int(self.table_info[5])
        # inputs seen outside the table (only counted with check_frequency > 0)
        self.beyond = self.add_weight(name="beyond", shape=(), initializer="zeros",
                                      trainable=False) if self.check_frequency > 0 else None
        self.built = True

    def call(self, x):
        lower, upper, xmax, s0, s1 = self.table_info[:5]
        first = int((upper - lower) / s0)          # as the C++ kernel: truncation in double
        last = first + int((xmax - upper) / s1) - 1
        x = tf.cast(x[..., 0], self.table.dtype)
        zero = tf.zeros_like(x)
        k0 = tf.floor((x - lower) / s0)
        k1 = first + tf.floor((x - upper) / s1)
        below, inner, outer = x < lower, x < upper, x < xmax
        if self.beyond is not None:
            out = tf.logical_or(below, tf.logical_not(outer))
            self.beyond.assign_add(tf.reduce_sum(tf.cast(out, self.beyond.dtype)))
        k = tf.where(below, zero, tf.where(inner, k0, tf.where(outer, k1, zero + last)))
        t = tf.where(below, zero, tf.where(inner, x - (k0 * s0 + lower),
                                           tf.where(outer, x - ((k1 - first) * s1 + upper), zero)))
        k = tf.clip_by_value(tf.cast(k, tf.int32), 0, self.nspline - 1)
        # coefficient-major [nspline, 6, M]: each power's coefficients are contiguous
        table = tf.transpose(tf.reshape(self.table, [self.nspline, self.out_dim, 6]), [0, 2, 1])
        a = tf.gather(table, k)                          # [..., 6, M]
        t = t[..., None]
        return a[..., 0, :] + t * (a[..., 1, :] + t * (a[..., 2, :] + t * (a[..., 3, :] + t * (
            a[..., 4, :] + t * a[..., 5, :]))))

    def contract(self, env):
        """``sum_j env[n, j, a] G(env[n, j, 0])_m``: ``env [n, nnei, 4] -> [n, 4, M]`` without
        materializing ``G`` (DeePMD-kit's fused ``TabulateFusionSeA``: under XLA the lookup,
        the polynomial and the sum are one loop)."""
        g = self.call(env[..., :1])                                   # [n, nnei, M]
        return tf.reduce_sum(env[..., :, None] * g[..., None, :], axis=1)

    def get_numpy(self):
        return {"table": self.table.numpy()}

    def set_numpy(self, weights):
        table = weights["table"]
        if tuple(table.shape) != (self.nspline, 6 * self.out_dim):
            raise ValueError(f"table shape {table.shape} != {(self.nspline, 6 * self.out_dim)}")
        self.table.assign(table)

    def get_config(self):
        cfg = super().get_config()
        cfg.update(nspline=self.nspline, out_dim=self.out_dim, table_info=self.table_info)
        return cfg


def beyond_table(model):
    """``(check_frequency, count)``: the smallest ``check_frequency`` of the model's checked
    tables and the inputs they have seen outside their range so far (``(0, 0)``: no table is
    checked)."""
    layers = [net for d in model.descriptor.leaves()
              for net in getattr(d, "embedding_nets", {}).values()
              if isinstance(net, TabulatedEmbedding) and net.beyond is not None]
    if not layers:
        return 0, 0
    return (min(x.check_frequency for x in layers),
            int(sum(float(x.beyond.numpy()) for x in layers)))
