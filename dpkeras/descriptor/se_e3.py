"""``se_e3`` (alias ``se_t``): DeePMD-kit's smooth three-body descriptor.

With ``v_ij = R~_ij[1:4]`` the vector part of the normalized environment matrix and
``theta_ijk = v_ij . v_ik`` (all slot pairs, ``j = k`` and both orders included)::

    D_i = sum over neighbor-type blocks a <= b of
          1 / (sel_a sel_b) * sum_{j in a, k in b} theta_ijk * embed_{a,b}(theta_ijk)     [M]

The nets depend on the two neighbor types only (shared by all center types); padded slots have
``v = 0`` and contribute nothing.
"""

import keras
import tensorflow as tf

from dpkeras.descriptor.se_base import DescrptSe
from dpkeras.descriptor.registry import register


@keras.saving.register_keras_serializable(package="dpkeras")
@register("se_e3", "se_t", "se_a_3be")
class DescrptSeT(DescrptSe):
    """The ``se_e3`` descriptor; output ``[nf, nloc, neuron[-1]]``."""

    SERIALIZED_TYPE = "se_e3"

    def __init__(self, ntypes, rcut, rcut_smth, sel, **kwargs):
        kwargs["type_one_side"] = True   # nets are shared by every center type
        if kwargs.get("exclude_types"):
            from dpkeras.errors import DPKerasError

            raise DPKerasError("se_e3: exclude_types is not supported yet")
        super().__init__(ntypes, rcut, rcut_smth, sel, **kwargs)

    def embedding_keys(self):
        return [(a, b) for a in range(self.ntypes) for b in range(a, self.ntypes)]

    def get_dim_out(self):
        return self.neuron[-1]

    def _atom_descriptor(self, env, center_type, atype, blocks):
        """``env [n, nnei, 4]`` -> ``[n, M]`` (full lists only: no ``trims_blocks``)."""
        n = tf.shape(env)[0]
        v = env[:, :, 1:]
        total = None
        for a, b in self.embedding_keys():
            (la, ha, _), (lb, hb, _) = blocks[a], blocks[b]
            theta = tf.einsum("njd,nkd->njk", v[:, la:ha], v[:, lb:hb])   # [n, sel_a, sel_b]
            g = self.embedding_nets[f"{a}_{b}"](tf.reshape(theta, [-1, 1]))
            g = tf.reshape(g, [n, ha - la, hb - lb, self.neuron[-1]])
            part = tf.einsum("njk,njkm->nm", theta, g) / float((ha - la) * (hb - lb))
            total = part if total is None else total + part
        return total
