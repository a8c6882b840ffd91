"""``se_e2_a``: DeePMD-kit's smooth two-body descriptor with angular information.

For atom ``i`` with normalized environment matrix ``R~_i [nnei, 4]``::

    G_i   = embed_{t_i, t_j}(R~_i[:, 0])            [nnei, M1]   (one net per type pair, or per
                                                               neighbor type with type_one_side)
    T_i   = R~_i^T G_i / nnei                        [4, M1]
    D_i   = T_i^T T_i[:, :M2]                        [M1, M2]  -> flattened to M1 * M2

``nnei = sum(sel)``, ``M1 = neuron[-1]``, ``M2 = axis_neuron``. Neighbors of an excluded type pair
contribute nothing.
"""

import keras
import numpy as np
import tensorflow as tf

from dpkeras.env_mat import EnvMat
from dpkeras.network import EmbeddingNet, child_seed
from dpkeras.typesplit import TypeSplit


@keras.saving.register_keras_serializable(package="dpkeras")
class DescrptSeA(keras.layers.Layer):
    """The ``se_e2_a`` descriptor (aliases ``se_a``).

    ``call(rij [nf, nloc, nnei, 3], mask [nf, nloc, nnei], atype [nf, nloc], type_counts=None)``
    returns ``[nf, nloc, neuron[-1] * axis_neuron]`` (``type_counts``: see
    :class:`dpkeras.typesplit.TypeSplit`).
    """

    descriptor_type = "se_e2_a"

    def __init__(self, ntypes, rcut, rcut_smth, sel, neuron=(10, 20, 40), axis_neuron=4,
                 resnet_dt=False, activation_function="tanh", type_one_side=False,
                 exclude_types=(), set_davg_zero=False, trainable=True, seed=None,
                 precision="float64", **kwargs):
        kwargs.setdefault("dtype", "float64")
        super().__init__(trainable=trainable, **kwargs)
        self.ntypes = int(ntypes)
        self.rcut, self.rcut_smth = float(rcut), float(rcut_smth)
        self.sel = [int(s) for s in sel]
        self.neuron = [int(n) for n in neuron]
        self.axis_neuron = int(axis_neuron)
        self.resnet_dt = bool(resnet_dt)
        self.activation_function = activation_function
        self.type_one_side = bool(type_one_side)
        self.exclude_types = sorted({tuple(sorted(map(int, p))) for p in exclude_types})
        self.set_davg_zero = bool(set_davg_zero)
        self.seed = seed
        self.precision = precision
        self.nnei = sum(self.sel)
        self.env_mat = EnvMat(self.ntypes, self.nnei, self.rcut, self.rcut_smth, name="env_mat")
        # string keys: TF's object tracking (checkpoints, SavedModel) needs them
        self.embedding_nets = {
            "_".join(map(str, key)): EmbeddingNet(
                1, self.neuron, activation_function=activation_function, resnet_dt=resnet_dt,
                seed=child_seed(seed, *key), name="embedding_" + "_".join(map(str, key)))
            for key in self.embedding_keys()}
        self.built = True

    @property
    def embeddings(self):
        """Embedding nets keyed by ``(t_j,)`` or ``(t_i, t_j)``."""
        return {tuple(int(x) for x in k.split("_")): net for k, net in self.embedding_nets.items()}

    # --- structure -------------------------------------------------------------------------
    def embedding_keys(self):
        """``(t_j,)`` with type_one_side, else ``(t_i, t_j)`` for every non-excluded pair."""
        if self.type_one_side:
            return [(tj,) for tj in range(self.ntypes)]
        return [(ti, tj) for ti in range(self.ntypes) for tj in range(self.ntypes)
                if not self.is_excluded(ti, tj)]

    def is_excluded(self, ti, tj):
        return tuple(sorted((ti, tj))) in self.exclude_types

    def get_dim_out(self):
        return self.neuron[-1] * self.axis_neuron

    def get_rcut(self):
        return self.rcut

    def get_sel(self):
        return list(self.sel)

    def mixed_types(self):
        return False

    # --- math ------------------------------------------------------------------------------
    def _t_matrix(self, env, offsets, center_type=None, atype=None):
        """``T = R~^T G / nnei`` for a block of atoms ``env [n, nnei, 4]`` -> ``[n, 4, M1]``."""
        n = tf.shape(env)[0]
        out = None
        for tj, (lo, hi) in enumerate(offsets):
            key = str(tj) if self.type_one_side else f"{center_type}_{tj}"
            if key not in self.embedding_nets:
                continue
            env_j = env[:, lo:hi, :]
            s = tf.reshape(env_j[:, :, :1], [-1, 1])
            g = tf.reshape(self.embedding_nets[key](s), [n, hi - lo, self.neuron[-1]])
            if self.type_one_side and self.exclude_types:
                keep = tf.constant([not self.is_excluded(ti, tj) for ti in range(self.ntypes)])
                env_j = env_j * tf.cast(tf.gather(keep, atype), env.dtype)[:, None, None]
            t = tf.einsum("nsa,nsm->nam", env_j, g)
            out = t if out is None else out + t
        if out is None:
            out = tf.zeros([n, 4, self.neuron[-1]], env.dtype)
        return out / float(self.nnei)

    def _descriptor(self, t):
        return tf.reshape(tf.einsum("nam,nak->nmk", t, t[:, :, : self.axis_neuron]),
                          [-1, self.get_dim_out()])

    def call(self, rij, mask, atype, type_counts=None):
        nf, nloc = tf.shape(atype)[0], tf.shape(atype)[1]
        env = self.env_mat(rij, mask, atype)                       # [nf, nloc, nnei, 4]
        bounds = np.cumsum([0] + self.sel)
        offsets = list(zip(bounds[:-1], bounds[1:]))
        if self.type_one_side:
            flat = tf.reshape(env, [-1, self.nnei, 4])
            d = self._descriptor(self._t_matrix(flat, offsets, atype=tf.reshape(atype, [-1])))
            return tf.reshape(d, [nf, nloc, self.get_dim_out()])
        split = TypeSplit(atype, self.ntypes, type_counts)
        parts = [self._descriptor(self._t_matrix(block, offsets, ti))
                 for ti, block in enumerate(split.split(env))]
        return split.merge(parts)

    def get_config(self):
        cfg = super().get_config()
        cfg.update(ntypes=self.ntypes, rcut=self.rcut, rcut_smth=self.rcut_smth, sel=self.sel,
                   neuron=self.neuron, axis_neuron=self.axis_neuron, resnet_dt=self.resnet_dt,
                   activation_function=self.activation_function,
                   type_one_side=self.type_one_side,
                   exclude_types=[list(p) for p in self.exclude_types],
                   set_davg_zero=self.set_davg_zero, seed=self.seed, precision=self.precision)
        return cfg
