"""``hybrid``: several descriptors side by side, each with its own ``rcut`` and ``sel``.

The model builds one neighbor list with the largest cut-off and, per neighbor type, the largest
``sel`` of the sub-descriptors (DeePMD-kit's layout: one block per type, sorted by distance,
padded). A per-type sub-descriptor ``k`` takes the first ``sel_k[t]`` slots of every type block
and drops the neighbors beyond its own ``rcut_k``. Because the blocks are sorted by distance,
this is exactly the list DeePMD-kit builds for it: the dropped neighbors are the tail of each
block, which becomes padding. The output is the concatenation ``[D_1, D_2, ...]`` on the last
axis.

An attention sub-descriptor (``se_atten``, ``se_atten_v2``: one distance-sorted list of ``sel``
neighbors of any type) reads the ``sel`` nearest neighbors within its ``rcut`` from all blocks.
Every block then holds at least ``sel`` slots, so no neighbor it needs is cut off: a neighbor of
type ``t`` beyond the first ``sel`` of its block has ``sel`` nearer ones. As in DeePMD-kit's TF
backend, such a hybrid has one type embedding (the model's ``type_embedding`` section), shared by
its attention members, its ``se_e2_a`` members (which then embed ``[s, e_{t_j}, e_{t_i}]``, see
:mod:`dpkeras.descriptor.se_base`) and the fitting net (one net for all types).
"""

import keras
import numpy as np
import tensorflow as tf

from dpkeras.descriptor.base import Descriptor
from dpkeras.errors import DPKerasError
from dpkeras.descriptor.type_embedding import TypeEmbedding, type_embedding_config
from dpkeras.nlist import slot_types
from dpkeras.descriptor.registry import DESCRIPTORS, register


@keras.saving.register_keras_serializable(package="dpkeras")
@register("hybrid")
class DescrptHybrid(Descriptor):
    """``call(rij [nf, nloc, nnei, 3], mask [nf, nloc, nnei], atype [nf, nloc],
    type_counts=None)`` -> ``[nf, nloc, sum_k dim_out_k]``.

    Args:
      ntypes: number of atom types.
      list: the sub-descriptor configs (``{"type": ..., ...}``), as DeePMD-kit names the key.
      type_embedding: the model's ``type_embedding`` section; with an attention member the
        default section is used when it is ``None``.
    """

    def __init__(self, ntypes, list, trainable=True,  # noqa: A002 (DeePMD's key)
                 type_embedding=None, **kwargs):
        kwargs.setdefault("dtype", "float64")
        super().__init__(trainable=trainable, **kwargs)
        self.ntypes = int(ntypes)
        self.configs = [dict(c) for c in list]
        attention = any(DESCRIPTORS[c["type"]].MIXED_TYPES for c in self.configs)
        self.type_embedding_config = None
        self.type_embed = None
        if attention or type_embedding is not None:
            self.type_embedding_config = type_embedding_config(type_embedding)
            self.type_embed = TypeEmbedding.from_section(self.ntypes, self.type_embedding_config,
                                                         name="type_embedding")
        self.descriptors = []
        for k, c in enumerate(self.configs):
            c = dict(c)
            kind = c.pop("type")
            if self.type_embed is not None:
                c.update(type_embedding=self.type_embedding_config,
                         shared_type_embedding=self.type_embed)
            # a name scope keeps the weight paths of same-named sub-layers unique
            with keras.name_scope(f"hybrid_{k}"):
                self.descriptors.append(DESCRIPTORS[kind](ntypes=self.ntypes,
                                                          name=f"descriptor_{k}", **c))
        self.rcut = max(d.get_rcut() for d in self.descriptors)
        # an attention member needs its whole sel in every type block (see the module docstring)
        self.sel = [max(d.get_sel()[0] if d.mixed_types() else d.get_sel()[t]
                        for d in self.descriptors) for t in range(self.ntypes)]
        self.nnei = sum(self.sel)
        starts = np.cumsum([0] + self.sel)[:-1]
        # slots of the shared list each per-type member reads: the head of every type block
        self.slots = [None if d.mixed_types() else
                      [int(starts[t]) + i for t in range(self.ntypes)
                       for i in range(d.get_sel()[t])] for d in self.descriptors]
        self.built = True

    def get_rcut_smth(self):
        """The smallest ``rcut_smth`` of the members (DeePMD-kit's hybrid)."""
        return min(d.get_rcut_smth() for d in self.descriptors)

    def get_dim_out(self):
        return sum(d.get_dim_out() for d in self.descriptors)

    def leaves(self):
        """The sub-descriptors (each owns its environment-matrix statistics)."""
        return list(self.descriptors)

    def call(self, rij, mask, atype, type_counts=None):
        r2 = tf.reduce_sum(rij * rij, axis=-1)
        out = []
        for d, slots in zip(self.descriptors, self.slots):
            if slots is None:
                out.append(self._mixed_member(d, rij, mask, r2, atype))
                continue
            rij_k = tf.gather(rij, slots, axis=2)
            mask_k = tf.logical_and(tf.gather(mask, slots, axis=2),
                                    tf.gather(r2, slots, axis=2) < d.get_rcut() ** 2)
            out.append(d(rij_k, mask_k, atype, type_counts=type_counts))
        return tf.concat(out, axis=-1)

    def _mixed_member(self, d, rij, mask, r2, atype):
        """An attention member on its ``sel`` nearest neighbors within its ``rcut``, sorted by
        distance; ``nei_type`` from the blocks the slots come from (``ntypes`` on padding)."""
        nnei = d.get_sel()[0]
        inside = tf.logical_and(mask, r2 < d.get_rcut() ** 2)
        key = tf.where(inside, r2, tf.constant(np.inf, r2.dtype))
        _, idx = tf.math.top_k(-tf.stop_gradient(key), k=nnei, sorted=True)
        rij_k = tf.gather(rij, idx, batch_dims=2)
        mask_k = tf.gather(inside, idx, batch_dims=2)
        nei_type = tf.where(mask_k, tf.gather(slot_types(self.sel), idx),
                            tf.constant(self.ntypes, tf.int32))
        return d(rij_k, mask_k, atype, nei_type=nei_type)

    # --- variables and DeePMD-kit's serialized dict ------------------------------------------
    def get_variables(self):
        return {"hybrid": [d.get_variables() for d in self.descriptors]}

    def set_variables(self, variables, source):
        subs = variables.get("hybrid")
        if subs is None:
            raise DPKerasError(f"{source}: not a hybrid descriptor, the model has a hybrid one")
        if len(subs) != len(self.descriptors):
            raise DPKerasError(f"{source}: {len(subs)} hybrid sub-descriptors, the model has "
                               f"{len(self.descriptors)}")
        for d, v in zip(self.descriptors, subs):
            d.set_variables(v, source)

    def serialize(self, type_map=None):
        """DeePMD-kit's ``hybrid`` dict (``@version`` 1); as its TF backend, the members carry
        no type_map, and a hybrid with a type embedding has no serialized form."""
        if self.type_embed is not None:
            raise DPKerasError("a type-embedded hybrid (an attention member, or "
                               "model.type_embedding) has no DeePMD-kit serialized form: "
                               "DeePMD-kit's TF backend cannot serialize it either; save it as "
                               ".keras or a SavedModel directory")
        return {"@class": "Descriptor", "type": "hybrid", "@version": 1,
                "list": [d.serialize(None) for d in self.descriptors]}

    @classmethod
    def from_serialized(cls, data, ntypes, source):
        """``(section, variables, None)`` of a ``hybrid`` dict of per-type members."""
        subs = data.get("list", [])
        kinds = [DESCRIPTORS.get(s.get("type")) for s in subs]
        bad = [s.get("type") for s, k in zip(subs, kinds) if k is None or k.MIXED_TYPES
               or k is cls]
        if bad or not subs:
            raise DPKerasError(f"{source}: hybrid of {bad or 'nothing'} is not supported (only "
                               "se_e2_a, se_e2_r and se_e3 can be combined)")
        parsed = [k.from_serialized(s, ntypes, source) for s, k in zip(subs, kinds)]
        return ({"type": "hybrid", "list": [sec for sec, _, _ in parsed]},
                {"hybrid": [v for _, v, _ in parsed]}, None)

    def get_config(self):
        cfg = super().get_config()
        cfg.update(ntypes=self.ntypes, list=self.configs,
                   type_embedding=self.type_embedding_config)
        return cfg
