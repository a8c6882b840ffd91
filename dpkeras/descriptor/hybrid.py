"""``hybrid``: several descriptors side by side, each with its own ``rcut`` and ``sel``.

The model builds one neighbor list with the largest cut-off and, per neighbor type, the largest
``sel`` of the sub-descriptors (DeePMD-kit's layout: one block per type, sorted by distance,
padded). Sub-descriptor ``k`` takes the first ``sel_k[t]`` slots of every type block and drops
the neighbors beyond its own ``rcut_k``. Because the blocks are sorted by distance, this is
exactly the list DeePMD-kit builds for it: the dropped neighbors are the tail of each block,
which becomes padding. The output is the concatenation ``[D_1, D_2, ...]`` on the last axis.

Sub-descriptors must be per-type ones (``se_e2_a``, ``se_e2_r``, ``se_e3``); attention
descriptors need a mixed-type list and are rejected by the config check.
"""

import keras
import numpy as np
import tensorflow as tf


@keras.saving.register_keras_serializable(package="dpkeras")
class DescrptHybrid(keras.layers.Layer):
    """``call(rij [nf, nloc, nnei, 3], mask [nf, nloc, nnei], atype [nf, nloc],
    type_counts=None)`` -> ``[nf, nloc, sum_k dim_out_k]``.

    Args:
      ntypes: number of atom types.
      list: the sub-descriptor configs (``{"type": ..., ...}``), as DeePMD-kit names the key.
    """

    descriptor_type = "hybrid"
    radial_only = False

    def __init__(self, ntypes, list, trainable=True, **kwargs):  # noqa: A002 (DeePMD's key)
        from dpkeras.descriptor import DESCRIPTORS

        kwargs.setdefault("dtype", "float64")
        super().__init__(trainable=trainable, **kwargs)
        self.ntypes = int(ntypes)
        self.configs = [dict(c) for c in list]
        self.descriptors = []
        for k, c in enumerate(self.configs):
            c = dict(c)
            kind = c.pop("type")
            # a name scope keeps the weight paths of same-named sub-layers unique
            with keras.name_scope(f"hybrid_{k}"):
                self.descriptors.append(DESCRIPTORS[kind](ntypes=self.ntypes,
                                                          name=f"descriptor_{k}", **c))
        if any(d.mixed_types() for d in self.descriptors):
            raise ValueError("hybrid: attention (mixed-type) sub-descriptors are not supported")
        self.rcut = max(d.get_rcut() for d in self.descriptors)
        self.sel = [max(d.get_sel()[t] for d in self.descriptors) for t in range(self.ntypes)]
        self.nnei = sum(self.sel)
        starts = np.cumsum([0] + self.sel)[:-1]
        # slots of the shared list each sub-descriptor reads: the head of every type block
        self.slots = [[int(starts[t]) + i for t in range(self.ntypes)
                       for i in range(d.get_sel()[t])] for d in self.descriptors]
        self.built = True

    def get_rcut(self):
        return self.rcut

    def get_sel(self):
        return list(self.sel)

    def mixed_types(self):
        return False

    def get_dim_out(self):
        return sum(d.get_dim_out() for d in self.descriptors)

    def leaves(self):
        """The sub-descriptors (each owns its environment-matrix statistics)."""
        return list(self.descriptors)

    def call(self, rij, mask, atype, type_counts=None):
        r2 = tf.reduce_sum(rij * rij, axis=-1)
        out = []
        for d, slots in zip(self.descriptors, self.slots):
            rij_k = tf.gather(rij, slots, axis=2)
            mask_k = tf.logical_and(tf.gather(mask, slots, axis=2),
                                    tf.gather(r2, slots, axis=2) < d.get_rcut() ** 2)
            out.append(d(rij_k, mask_k, atype, type_counts=type_counts))
        return tf.concat(out, axis=-1)

    def get_config(self):
        cfg = super().get_config()
        cfg.update(ntypes=self.ntypes, list=self.configs)
        return cfg
