"""``se_e2_r``: DeePMD-kit's smooth two-body descriptor with radial information only.

For atom ``i`` with normalized radial environment ``R~_i [nnei, 1]`` (``(s(r)/r - davg) / dstd``)::

    D_i = (1/5) * mean over all nnei slots of embed_{t_i, t_j}(R~_ij)      [M]

(``M = neuron[-1]``; padded slots included in the mean, as in DeePMD-kit's TF backend). An
excluded type pair contributes zeros; with ``type_one_side`` its inputs are zeroed instead.
"""

import keras
import tensorflow as tf

from dpkeras.descriptor.se_base import DescrptSe
from dpkeras.descriptor.registry import register


@keras.saving.register_keras_serializable(package="dpkeras")
@register("se_e2_r", "se_r")
class DescrptSeR(DescrptSe):
    """The ``se_e2_r`` descriptor (alias ``se_r``); output ``[nf, nloc, neuron[-1]]``."""

    SERIALIZED_TYPE = "se_r"

    radial_only = True

    def get_dim_out(self):
        return self.neuron[-1]

    def _atom_descriptor(self, env, center_type, atype):
        """``env [n, nnei, 1]`` -> ``[n, M]``."""
        total = None
        for tj, (lo, hi) in enumerate(self.offsets):
            if self.net(center_type, tj) is None:
                continue   # an excluded pair: zeros
            env_j = env[:, lo:hi, :]
            if self.type_one_side and self.exclude_types:
                env_j = env_j * self.keep_mask(atype, tj)[:, None, None]
            part = tf.reduce_sum(self._embed(env_j, center_type, tj), axis=1)
            total = part if total is None else total + part
        if total is None:
            total = tf.zeros([tf.shape(env)[0], self.neuron[-1]], env.dtype)
        return total / (5.0 * self.nnei)
