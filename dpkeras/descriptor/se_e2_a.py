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

from dpkeras import nlist
from dpkeras.descriptor.se_base import DescrptSe
from dpkeras.descriptor.registry import register


@keras.saving.register_keras_serializable(package="dpkeras")
@register("se_e2_a", "se_a")
class DescrptSeA(DescrptSe):
    """The ``se_e2_a`` descriptor (alias ``se_a``); output ``[nf, nloc, neuron[-1] * axis_neuron]``."""

    SERIALIZED_TYPE = "se_e2_a"
    _adds_cut_blocks = True

    def __init__(self, ntypes, rcut, rcut_smth, sel, axis_neuron=4, **kwargs):
        self.axis_neuron = int(axis_neuron)
        super().__init__(ntypes, rcut, rcut_smth, sel, **kwargs)

    def get_dim_out(self):
        return self.neuron[-1] * self.axis_neuron

    def _atom_descriptor(self, env, center_type, atype, blocks):
        """``env [n, w, 4]`` -> ``[n, M1 * M2]``."""
        return self._descriptor_of(self._t_matrix(env, center_type, atype, blocks))

    def _descriptor_of(self, t):
        """``T [n, 4, M1]`` -> ``D = T^T T[:, :M2]`` flattened, ``[n, M1 * M2]``."""
        return tf.reshape(tf.einsum("nam,nak->nmk", t, t[:, :, : self.axis_neuron]),
                          [-1, self.get_dim_out()])

    def get_dim_rot_mat_1(self):
        """``M1``: rows of the rotation matrix (DeePMD-kit's ``get_dim_rot_mat_1``)."""
        return self.neuron[-1]

    def call_with_rot_mat(self, rij, mask, atype, type_counts=None, nlist_widths=None):
        """Descriptor ``[nf, nloc, M1 * M2]`` and rotation matrix ``[nf, nloc, M1, 3]`` (the
        arguments of :meth:`call`).

        The rotation matrix is DeePMD-kit's ``get_rot_mat``: the three Cartesian rows of ``T``,
        transposed, ``R = T[:, 1:4, :]^T``; it rotates with the frame, so a fitting output
        ``a [M1]`` gives the equivariant vector ``a R [3]`` (dipole) and ``A [M1, M1]`` the
        tensor ``R^T A R [3, 3]`` (polarizability).
        """
        m1, dim = self.neuron[-1], self.get_dim_out()

        def both(env, center_type, at, blocks):
            t = self._t_matrix(env, center_type, at, blocks)
            rot = tf.reshape(tf.transpose(t[:, 1:4, :], [0, 2, 1]), [-1, m1 * 3])
            return tf.concat([self._descriptor_of(t), rot], axis=-1)

        out = self._per_atom(rij, mask, atype, type_counts, both, dim + m1 * 3, nlist_widths)
        nf, nloc = tf.shape(atype)[0], tf.shape(atype)[1]
        return out[..., :dim], tf.reshape(out[..., dim:], [nf, nloc, m1, 3])

    def _t_matrix(self, env, center_type, atype, blocks):
        """``env [n, w, 4]`` -> ``T = R~^T G / nnei``, ``[n, 4, M1]`` (the sum over all
        ``nnei`` slots: cut padded slots added back)."""
        if self.type_embed is not None:
            return self._t_matrix_tebd(env, atype)
        t = None
        masked = self.type_one_side and self.exclude_types
        for tj, block in enumerate(blocks):
            net = self.net(center_type, tj)
            if net is None:
                continue
            env_j = env[:, block.lo:block.hi, :]
            if hasattr(net, "contract") and not masked:
                tj_part = net.contract(env_j)   # a compressed net: the fused lookup and sum
            else:
                g = self._embed(env_j, center_type, tj)
                if masked:
                    env_j = env_j * self.keep_mask(atype, tj)[:, None, None]
                tj_part = tf.einsum("nsa,nsm->nam", env_j, g)
            if block.cut[0] < block.cut[1]:   # sum_s R~_s^T G_s over the cut padded slots
                rows = self.padded_rows(block, center_type)              # [k, ncut, 4]
                tail = tf.einsum("ksa,ksm->kam", rows, self._embed(rows, center_type, tj))
                if center_type is None:   # per center type, then per atom
                    tail = tf.gather(tail, atype)
                    if masked:
                        tail = tail * self.keep_mask(atype, tj)[:, None, None]
                tj_part = tj_part + tail
            t = tj_part if t is None else t + tj_part
        if t is None:
            t = tf.zeros([tf.shape(env)[0], 4, self.neuron[-1]], env.dtype)
        return t / float(self.nnei)

    def _t_matrix_tebd(self, env, atype):
        """With a type embedding (see :mod:`dpkeras.descriptor.se_base`): all atoms at once,
        ``atype [n]`` their types."""
        n, nnei = tf.shape(env)[0], self.nnei
        tebd = tf.cast(self.type_embed.table(), self.net_dtype)          # [ntypes + 1, T]
        slot_types = nlist.slot_types(self.sel)
        parts = [env[:, :, :1], tf.tile(tf.gather(tebd, slot_types)[None], [n, 1, 1])]
        if not self.type_one_side:
            parts.append(tf.tile(tf.gather(tebd, atype)[:, None, :], [1, nnei, 1]))
        x = tf.concat(parts, axis=-1)
        g = self.embedding_nets["all"](tf.reshape(x, [-1, x.shape[-1]]))
        g = tf.reshape(g, [n, nnei, self.neuron[-1]])
        if self.exclude_types:
            keep = tf.constant([[0.0 if self.is_excluded(ti, tj) else 1.0 for tj in slot_types]
                                for ti in range(self.ntypes)], env.dtype)
            env = env * tf.gather(keep, atype)[:, :, None]
        return tf.einsum("nsa,nsm->nam", env, g) / float(nnei)

    def get_config(self):
        cfg = super().get_config()
        cfg["axis_neuron"] = self.axis_neuron
        return cfg
