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
import tensorflow as tf

from dpkeras.descriptor.se_base import DescrptSe


@keras.saving.register_keras_serializable(package="dpkeras")
class DescrptSeA(DescrptSe):
    """The ``se_e2_a`` descriptor (alias ``se_a``); output ``[nf, nloc, neuron[-1] * axis_neuron]``."""

    descriptor_type = "se_e2_a"

    def __init__(self, ntypes, rcut, rcut_smth, sel, axis_neuron=4, **kwargs):
        self.axis_neuron = int(axis_neuron)
        super().__init__(ntypes, rcut, rcut_smth, sel, **kwargs)

    def get_dim_out(self):
        return self.neuron[-1] * self.axis_neuron

    def _atom_descriptor(self, env, center_type, atype):
        """``env [n, nnei, 4]`` -> ``[n, M1 * M2]``."""
        t = None
        for tj, (lo, hi) in enumerate(self.offsets):
            if self.net(center_type, tj) is None:
                continue
            env_j = env[:, lo:hi, :]
            g = self._embed(env_j, center_type, tj)
            if self.type_one_side and self.exclude_types:
                env_j = env_j * self.keep_mask(atype, tj)[:, None, None]
            tj_part = tf.einsum("nsa,nsm->nam", env_j, g)
            t = tj_part if t is None else t + tj_part
        if t is None:
            t = tf.zeros([tf.shape(env)[0], 4, self.neuron[-1]], env.dtype)
        t = t / float(self.nnei)
        return tf.reshape(tf.einsum("nam,nak->nmk", t, t[:, :, : self.axis_neuron]),
                          [-1, self.get_dim_out()])

    def get_config(self):
        cfg = super().get_config()
        cfg["axis_neuron"] = self.axis_neuron
        return cfg
