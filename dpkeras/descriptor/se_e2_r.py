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
    _adds_cut_blocks = True

    def get_dim_out(self):
        return self.neuron[-1]

    def _atom_descriptor(self, env, center_type, atype, blocks):
        """``env [n, w, 1]`` -> ``[n, M]`` (the mean over all ``nnei`` slots: cut padded slots
        added back)."""
        total = None
        masked = self.type_one_side and self.exclude_types
        for tj, block in enumerate(blocks):
            if self.net(center_type, tj) is None:
                continue   # an excluded pair: zeros
            env_j = env[:, block.lo:block.hi, :]
            if masked:
                env_j = env_j * self.keep_mask(atype, tj)[:, None, None]
            part = tf.reduce_sum(self._embed(env_j, center_type, tj), axis=1)
            if block.cut[0] < block.cut[1]:   # sum_s G(R~_s) over the cut padded slots
                rows = self.padded_rows(block, center_type)              # [k, ncut, 1]
                if masked:   # per center type: zeroed inputs where the pair is excluded
                    rows = rows * self.keep_mask(tf.range(self.ntypes), tj)[:, None, None]
                tail = tf.reduce_sum(self._embed(rows, center_type, tj), axis=1)   # [k, M]
                part = part + (tail if center_type is not None else tf.gather(tail, atype))
            total = part if total is None else total + part
        if total is None:
            total = tf.zeros([tf.shape(env)[0], self.neuron[-1]], env.dtype)
        return total / (5.0 * self.nnei)
