"""Tabulated embedding nets: DeePMD-kit's model compression (``dp compress``).

An embedding net ``G(x)`` (``x``: the normalized first column of the environment matrix) is
replaced by a table of piecewise fifth-order polynomials. ``table_info = [lower, upper, max,
stride0, stride1, check_frequency]``: intervals of width ``stride0`` on ``[lower, upper)``, then of
width ``stride1`` on ``[upper, max)``; ``table [nspline, 6 * M]`` holds, for interval ``k`` and
output ``m``, the coefficients ``a_0 .. a_5`` at ``table[k, 6 m + p]``. With ``t`` the offset of
``x`` from its interval's start,

    G_m(x) = a_0 + t (a_1 + t (a_2 + t (a_3 + t (a_4 + t a_5))))

and, as DeePMD-kit 3.2's kernel (``source/lib/src/tabulate.cc``, "c1 extrapolation outside
tables"), outside ``[lower, max)`` the table is continued linearly with the slope at its end:
``G(x) = G(lower) + G'(lower) (x - lower)`` below and ``G(max) + G'(max) (x - max)`` above,
``G(max)`` and ``G'(max)`` from the last interval's polynomial. (DeePMD-kit 2.2's kernel held
the end values constant there.)

Nothing is extrapolated silently: with ``check_frequency > 0`` (``python -m dpkeras.compress
--check_frequency=N``, DeePMD-kit's ``dp compress -f``) the layer counts the inputs outside
``[lower, max)`` in its non-trainable weight ``beyond``, and the evaluators
(:class:`dpkeras.infer.DeepPot` and the ASE calculator, LAMMPS and i-PI drivers built on it) warn
every ``check_frequency`` evaluations when that count grew (:func:`beyond_table`).
"""

import keras
import numpy as np
import tensorflow as tf

from dpkeras.errors import DPKerasError


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
        # by power: coeffs[p, k, m] = a_p of interval k, output m (DeePMD-kit's table[k, 6m+p]),
        # so a lookup reads six contiguous rows of M (measured: 1.8x faster than one row of 6M)
        self.coeffs = self.add_weight(name="coeffs", shape=(6, self.nspline, self.out_dim),
                                      initializer="zeros", trainable=False)
        self.check_frequency = int(self.table_info[5])
        # inputs seen outside the table (only counted with check_frequency > 0)
        self.beyond = self.add_weight(name="beyond", shape=(), initializer="zeros",
                                      trainable=False) if self.check_frequency > 0 else None
        self.built = True

    def call(self, x):
        """``x [..., 1] -> G(x) [..., M]``, differentiable once in ``x`` (forces): ``G`` and
        ``dG/dx`` come from the same six coefficient rows. Not for training: the table itself
        gets no gradient."""
        lower, upper, xmax, s0, s1 = self.table_info[:5]
        first = int((upper - lower) / s0)          # as the C++ kernel: truncation in double
        # the interval that ends at max (the kernel locates the float just below max)
        last = min(first + int((float(np.nextafter(xmax, lower)) - upper) / s1),
                   self.nspline - 1)
        t_end = xmax - ((last - first) * s1 + upper)
        x = tf.cast(x[..., 0], self.coeffs.dtype)
        zero = tf.zeros_like(x)
        k0 = tf.floor((x - lower) / s0)
        k1 = first + tf.floor((x - upper) / s1)
        below, inner, outer = x < lower, x < upper, x < xmax
        if self.beyond is not None:
            out = tf.logical_or(below, tf.logical_not(outer))
            self.beyond.assign_add(tf.reduce_sum(tf.cast(out, self.beyond.dtype)))
        k = tf.where(below, zero, tf.where(inner, k0, tf.where(outer, k1, zero + last)))
        t = tf.where(below, zero, tf.where(inner, x - (k0 * s0 + lower),
                                           tf.where(outer, x - ((k1 - first) * s1 + upper),
                                                    zero + t_end)))
        # beyond the table: continued with the slope at its end
        delta = tf.where(below, x - lower, tf.where(outer, zero, x - xmax))
        k = tf.clip_by_value(tf.cast(k, tf.int32), 0, self.nspline - 1)
        return _polynomial(k, x, t[..., None], delta[..., None],
                           tf.convert_to_tensor(self.coeffs))

    def contract(self, env):
        """``sum_j env[n, j, a] G(env[n, j, 0])_m``: ``env [n, nnei, 4] -> [n, 4, M]``."""
        return tf.einsum("nsa,nsm->nam", env, self.call(env[..., :1]))

    def get_numpy(self):
        """``{"table": [nspline, 6 M]}`` in DeePMD-kit's layout."""
        c = self.coeffs.numpy()
        return {"table": c.transpose(1, 2, 0).reshape(self.nspline, 6 * self.out_dim)}

    def set_numpy(self, weights):
        table = weights["table"]
        if tuple(table.shape) != (self.nspline, 6 * self.out_dim):
            raise ValueError(f"table shape {table.shape} != {(self.nspline, 6 * self.out_dim)}")
        self.coeffs.assign(_by_power(table, self.nspline, self.out_dim))

    def load_own_variables(self, store):
        """``.keras`` files: also those written before the by-power layout (``table``)."""
        old = coefficients_by_power(self.coeffs, store["0"]) if len(store) else None
        if old is not None:
            self.coeffs.assign(old)
            if self.beyond is not None and len(store) > 1:
                self.beyond.assign(store["1"])
            return
        super().load_own_variables(store)

    def get_config(self):
        cfg = super().get_config()
        cfg.update(nspline=self.nspline, out_dim=self.out_dim, table_info=self.table_info)
        return cfg


@keras.saving.register_keras_serializable(package="dpkeras")
class PairTable(keras.layers.Layer):
    """``table [npair, out_dim]``: a type-pair net of a compressed strip-mode
    ``se_atten`` as a constant table, one row per (center, neighbor) type pair (DeePMD-kit's
    ``two_embd``; row ``t_i * (ntypes + 1) + t_j``, the padding type included).

    Args:
      npair: rows, ``(ntypes + 1) ** 2``.
      out_dim: width ``M`` of the net it replaces.
    """

    def __init__(self, npair, out_dim, **kwargs):
        kwargs.setdefault("dtype", "float64")
        kwargs.setdefault("trainable", False)
        super().__init__(**kwargs)
        self.npair, self.out_dim = int(npair), int(out_dim)
        self.table = self.add_weight(name="table", shape=(self.npair, self.out_dim),
                                     initializer="zeros", trainable=False)
        self.built = True

    def get_numpy(self):
        return {"table": self.table.numpy()}

    def set_numpy(self, weights):
        table = np.asarray(weights["table"])
        if table.shape != (self.npair, self.out_dim):
            raise ValueError(f"type-pair table shape {table.shape} != "
                             f"{(self.npair, self.out_dim)}")
        self.table.assign(table)

    def get_config(self):
        cfg = super().get_config()
        cfg.update(npair=self.npair, out_dim=self.out_dim)
        return cfg


def _by_power(table, nspline, out_dim):
    """DeePMD-kit's ``table [nspline, 6 M]`` -> ``[6, nspline, M]``."""
    return np.asarray(table).reshape(nspline, out_dim, 6).transpose(2, 0, 1)


def coefficients_by_power(variable, table):
    """The value for a ``coeffs [6, nspline, M]`` weight from a table stored in DeePMD-kit's
    layout ``[nspline, 6 M]`` (dpkeras' layout before the by-power one); ``None`` if
    ``variable`` is not such a weight or ``table`` has another shape."""
    shape = tuple(variable.shape)
    if len(shape) != 3 or shape[0] != 6 or not variable.path.endswith("coeffs") or \
            tuple(np.shape(table)) != (shape[1], 6 * shape[2]):
        return None
    return _by_power(table, shape[1], shape[2])


@tf.custom_gradient
def _polynomial(k, x, t, delta, coeffs):
    """``G = P(t) + P'(t) delta``, ``P(t) = sum_p a_p t^p`` with ``a_p = coeffs[p, k]``
    (Horner; ``delta`` is 0 inside the table, the distance beyond its end outside), and its
    gradient in ``x``: ``upstream . P'(t)`` (inside, ``t`` moves with ``x``; outside, ``delta``
    does). One gather per power, shared by the value and the derivative."""
    a = [tf.gather(coeffs[p], k) for p in range(6)]
    dg = a[1] + t * (2.0 * a[2] + t * (3.0 * a[3] + t * (4.0 * a[4] + t * 5.0 * a[5])))
    g = a[0] + t * (a[1] + t * (a[2] + t * (a[3] + t * (a[4] + t * a[5])))) + dg * delta

    def grad(upstream):
        return None, tf.reduce_sum(upstream * dg, axis=-1), None, None, None

    return g, grad


def beyond_table(model):
    """``(check_frequency, count)``: the smallest ``check_frequency`` of the model's checked
    tables and the inputs they have seen outside their range so far (``(0, 0)``: no table is
    checked)."""
    layers = [net for d in model.descriptor.leaves()
              for net in d.nets_by_key().values()
              if isinstance(net, TabulatedEmbedding) and net.beyond is not None]
    if not layers:
        return 0, 0
    return (min(x.check_frequency for x in layers),
            int(sum(float(x.beyond.numpy()) for x in layers)))


def refuse_training(model, path):
    """Raise if ``model`` (read from ``path`` to fine-tune or initialize a training) is
    compressed: its tables are not trainable, and training only the rest would not be what
    the user asked for."""
    if any(getattr(d, "tabulated", None) for d in model.descriptor.leaves()):
        raise DPKerasError(f"{path}: a compressed model (tabulated embedding nets, from dp "
                           "compress or python -m dpkeras.compress) cannot be trained: its "
                           "tables are not trainable; fine-tune or initialize from the model "
                           "it was compressed from")
