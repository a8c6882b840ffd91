"""What the smooth-edition descriptors share: normalized environment matrix, one embedding net
per (center type, neighbor type) pair (or per neighbor type with ``type_one_side``), excluded
type pairs, per-center-type blocks and the DeePMD-kit getters.

With a type embedding (``se_e2_a`` only, DeePMD-kit's ``se_e2_a_tebd``: the model has a
``type_embedding`` section, or the descriptor is a member of a ``hybrid`` with an attention
descriptor) there is one embedding net for all pairs, fed ``[R~_ij,0, e_{t_j}, e_{t_i}]``
(``[R~_ij,0, e_{t_j}]`` with ``type_one_side``), where ``t_j`` is the type of the slot's block
(padded slots too, as in DeePMD-kit).

A subclass (``se_e2_a``, ``se_e2_r``, ``se_e3``) registers its names
(:func:`dpkeras.descriptor.registry.register`), sets ``radial_only`` and implements
``_atom_descriptor(env, center_type, atype)``, which maps the normalized environment matrices of
a block of atoms ``[n, nnei, ncol]`` to their descriptors ``[n, dim_out]`` (``center_type``:
the block's type, or ``None`` with ``atype [n]`` the atoms' types when all atoms go at once:
``type_one_side`` or a type embedding); the neighbor-type blocks are the slots
``self.offsets[t_j]`` of the list.
"""

import numpy as np
import tensorflow as tf

from dpkeras.descriptor.base import Descriptor
from dpkeras.descriptor.type_embedding import TypeEmbedding, type_embedding_config
from dpkeras.env_mat import EnvMat
from dpkeras.network import EmbeddingNet, child_seed, net_dtype
from dpkeras.typesplit import TypeSplit


class DescrptSe(Descriptor):
    """Base of ``se_e2_a``, ``se_e2_r`` and ``se_e3``.

    ``call(rij [nf, nloc, nnei, 3], mask [nf, nloc, nnei], atype [nf, nloc], type_counts=None)``
    returns ``[nf, nloc, dim_out]`` (``type_counts``: see :class:`dpkeras.typesplit.TypeSplit`).
    """


    def __init__(self, ntypes, rcut, rcut_smth, sel, neuron=(10, 20, 40), resnet_dt=False,
                 activation_function="tanh", type_one_side=False, exclude_types=(),
                 set_davg_zero=False, trainable=True, seed=None, precision="float64",
                 type_embedding=None, shared_type_embedding=None, tabulated=None, **kwargs):
        kwargs.setdefault("dtype", "float64")
        super().__init__(trainable=trainable, **kwargs)
        self.ntypes = int(ntypes)
        self.rcut, self.rcut_smth = float(rcut), float(rcut_smth)
        self.sel = [int(s) for s in sel]
        self.neuron = [int(n) for n in neuron]
        self.resnet_dt = bool(resnet_dt)
        self.activation_function = activation_function
        self.type_one_side = bool(type_one_side)
        self.exclude_types = sorted({tuple(sorted(map(int, p))) for p in exclude_types})
        self.set_davg_zero = bool(set_davg_zero)
        self.seed = seed
        self.precision = precision
        self.net_dtype = net_dtype(precision)
        self.nnei = sum(self.sel)
        self.env_mat = EnvMat(self.ntypes, self.nnei, self.rcut, self.rcut_smth,
                              radial_only=self.radial_only, name="env_mat")
        self.type_embedding_config, self.type_embed = None, None
        if type_embedding is not None or shared_type_embedding is not None:
            if self.descriptor_type != "se_e2_a":
                raise ValueError(f"a type embedding is not supported with {self.descriptor_type}")
            self.type_embedding_config = type_embedding_config(type_embedding, seed)
            # a hybrid passes the one type embedding all its members share
            self.type_embed = shared_type_embedding or TypeEmbedding.from_section(
                self.ntypes, self.type_embedding_config, name="type_embedding")
        # string keys: TF's object tracking (checkpoints, SavedModel) needs them
        self.tabulated = tabulated   # {net key: {"nspline", "table_info"}}: compressed nets
        self.embedding_nets = {
            _net_key(key): self._make_net(key, activation_function, resnet_dt, seed)
            for key in self.embedding_keys()}
        bounds = np.cumsum([0] + self.sel)
        self.offsets = [(int(lo), int(hi)) for lo, hi in zip(bounds[:-1], bounds[1:])]
        self.built = True

    def _make_net(self, key, activation_function, resnet_dt, seed):
        name = "embedding_" + _net_key(key)
        if self.tabulated is not None:   # DeePMD-kit's compressed nets (dpkeras.tabulate)
            from dpkeras.tabulate import TabulatedEmbedding

            spec = self.tabulated[_net_key(key)]
            return TabulatedEmbedding(spec["nspline"], self.neuron[-1], spec["table_info"],
                                      dtype=self.net_dtype, name=name)
        return EmbeddingNet(self._embedding_input_dim(), self.neuron,
                            activation_function=activation_function, resnet_dt=resnet_dt,
                            seed=child_seed(seed, *key), dtype=self.net_dtype, name=name)

    # --- structure -------------------------------------------------------------------------
    def embedding_keys(self):
        """``(t_j,)`` with type_one_side, else ``(t_i, t_j)`` for every non-excluded pair; ``()``
        (one net) with a type embedding."""
        if self.type_embed is not None:
            return [()]
        if self.type_one_side:
            return [(tj,) for tj in range(self.ntypes)]
        return [(ti, tj) for ti in range(self.ntypes) for tj in range(self.ntypes)
                if not self.is_excluded(ti, tj)]

    @property
    def embeddings(self):
        """Embedding nets keyed by ``(t_j,)`` or ``(t_i, t_j)``."""
        return {_key_of(k): net for k, net in self.embedding_nets.items()}

    def _embedding_input_dim(self):
        if self.type_embed is None:
            return 1
        return 1 + self.type_embed.dim() * (1 if self.type_one_side else 2)

    def net(self, center_type, tj):
        """The embedding net for neighbors of type ``tj`` (``None`` if the pair is excluded)."""
        key = str(tj) if self.type_one_side else f"{center_type}_{tj}"
        return self.embedding_nets.get(key)

    def keep_mask(self, atype, tj):
        """``[n]`` 1/0: with type_one_side, whether each center type interacts with ``tj``."""
        keep = tf.constant([not self.is_excluded(ti, tj) for ti in range(self.ntypes)])
        return tf.cast(tf.gather(keep, atype), self.net_dtype)

    def is_excluded(self, ti, tj):
        return tuple(sorted((ti, tj))) in self.exclude_types

    # --- math ------------------------------------------------------------------------------
    def _embed(self, env_j, center_type, tj):
        """Embedding of the neighbors of type ``tj``: ``[n, sel_j, ncol] -> [n, sel_j, M1]``."""
        n, s = tf.shape(env_j)[0], env_j.shape[1]
        g = self.net(center_type, tj)(tf.reshape(env_j[:, :, :1], [-1, 1]))
        return tf.reshape(g, [n, s, self.neuron[-1]])

    def _atom_descriptor(self, env, center_type, atype):
        raise NotImplementedError

    def call(self, rij, mask, atype, type_counts=None):
        return self._per_atom(rij, mask, atype, type_counts, self._atom_descriptor,
                              self.get_dim_out())

    def _per_atom(self, rij, mask, atype, type_counts, fn, dim):
        """Apply ``fn(env [n, nnei, ncol], center_type, atype) -> [n, dim]`` to every atom, per
        center-type block (or to all atoms at once with type_one_side): ``[nf, nloc, dim]``."""
        nf, nloc = tf.shape(atype)[0], tf.shape(atype)[1]
        # float64 environment matrix; the networks (and what follows) in their precision
        env = tf.cast(self.env_mat(rij, mask, atype), self.net_dtype)  # [nf, nloc, nnei, ncol]
        ncol = env.shape[-1]
        if self.type_one_side or self.type_embed is not None:
            flat = tf.reshape(env, [-1, self.nnei, ncol])
            d = fn(flat, None, tf.reshape(atype, [-1]))
            return tf.cast(tf.reshape(d, [nf, nloc, dim]), tf.float64)
        split = TypeSplit(atype, self.ntypes, type_counts)
        parts = [fn(block, ti, None) for ti, block in enumerate(split.split(env))]
        return tf.cast(split.merge(parts), tf.float64)

    def get_config(self):
        cfg = super().get_config()
        cfg.update(ntypes=self.ntypes, rcut=self.rcut, rcut_smth=self.rcut_smth, sel=self.sel,
                   neuron=self.neuron, resnet_dt=self.resnet_dt,
                   activation_function=self.activation_function,
                   type_one_side=self.type_one_side,
                   exclude_types=[list(p) for p in self.exclude_types],
                   set_davg_zero=self.set_davg_zero, seed=self.seed, precision=self.precision)
        if self.type_embedding_config is not None:
            cfg["type_embedding"] = self.type_embedding_config
        if self.tabulated is not None:
            cfg["tabulated"] = self.tabulated
        return cfg


def _net_key(key):
    """``(t_i, t_j)`` -> ``"ti_tj"``; ``()`` (the one net of a type embedding) -> ``"all"``."""
    return "_".join(map(str, key)) if key else "all"


def _key_of(name):
    return () if name == "all" else tuple(int(x) for x in name.split("_"))
