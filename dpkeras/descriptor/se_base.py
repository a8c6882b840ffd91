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
``_atom_descriptor(env, center_type, atype, blocks)``, which maps the normalized environment
matrices of a block of atoms ``[n, w, ncol]`` to their descriptors ``[n, dim_out]``
(``center_type``: the block's type, or ``None`` with ``atype [n]`` the atoms' types when all
atoms go at once: ``type_one_side`` or a type embedding); ``blocks[t_j]`` (:class:`Block`) says
which slots of ``env`` hold the neighbors of type ``t_j`` and which padded slots of the full
``sel`` layout were cut off (a list cut by :func:`dpkeras.nlist.trim_type_blocks`, for kinds
with ``trims_blocks``: they add the cut slots' constant contribution back,
:meth:`DescrptSe.padded_rows`).
"""

import collections

import numpy as np
import tensorflow as tf

from dpkeras import nlist
from dpkeras.descriptor.base import Descriptor
from dpkeras.descriptor.type_embedding import TypeEmbedding, type_embedding_config
from dpkeras.env_mat import EnvMat
from dpkeras.errors import DPKerasError
from dpkeras.network import EmbeddingNet, child_seed, embedding_net_dict, net_dtype, \
    net_variables
from dpkeras.typesplit import TypeSplit


#: the neighbors of one type in ``env``: slots ``lo .. hi-1``; ``cut``: the padded slots
#: ``(start, stop)`` of the full ``sel`` layout cut off after them (``start == stop``: none)
Block = collections.namedtuple("Block", "lo hi cut")


class DescrptSe(Descriptor):
    """Base of ``se_e2_a``, ``se_e2_r`` and ``se_e3``.

    ``call(rij [nf, nloc, w, 3], mask [nf, nloc, w], atype [nf, nloc], type_counts=None,
    nlist_widths=None)`` returns ``[nf, nloc, dim_out]`` (``type_counts``: see
    :class:`dpkeras.typesplit.TypeSplit`; ``nlist_widths``: Python ints, the slots kept of each
    type block by :func:`dpkeras.nlist.trim_type_blocks`, ``None`` for the full ``w = nnei``).
    """

    #: whether the kind adds back the padded slots of a list cut by ``trim_type_blocks``
    _adds_cut_blocks = False


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
            net_key(key): self._make_net(key, activation_function, resnet_dt, seed)
            for key in self.embedding_keys()}
        bounds = np.cumsum([0] + self.sel)
        self.offsets = [(int(lo), int(hi)) for lo, hi in zip(bounds[:-1], bounds[1:])]
        self.built = True

    def _make_net(self, key, activation_function, resnet_dt, seed):
        name = "embedding_" + net_key(key)
        if self.tabulated is not None:   # DeePMD-kit's compressed nets (dpkeras.tabulate)
            from dpkeras.tabulate import TabulatedEmbedding

            spec = self.tabulated[net_key(key)]
            return TabulatedEmbedding(spec["nspline"], self.neuron[-1], spec["table_info"],
                                      dtype=self.net_dtype, name=name)
        return EmbeddingNet(self._embedding_input_dim(), self.neuron,
                            activation_function=activation_function, resnet_dt=resnet_dt,
                            seed=child_seed(seed, *key), dtype=self.net_dtype, name=name)

    @property
    def trims_blocks(self):
        """Whether the descriptor takes lists cut by :func:`dpkeras.nlist.trim_type_blocks`
        (per-type nets; the one net of a type embedding sees every slot's block type)."""
        return self._adds_cut_blocks and self.type_embed is None

    # --- structure -------------------------------------------------------------------------
    def blocks(self, widths=None):
        """``[Block]`` per neighbor type of a list cut to ``widths`` (or the full list)."""
        if widths is None:
            return [Block(lo, hi, (hi, hi)) for lo, hi in self.offsets]
        out, lo = [], 0
        for (start, stop), w in zip(self.offsets, widths):
            out.append(Block(lo, lo + int(w), (start + int(w), stop)))
            lo += int(w)
        return out

    def padded_rows(self, block, center_type):
        """The environment rows of ``block``'s cut padded slots in the network precision:
        ``[1, ncut, ncol]`` for a center of ``center_type``, or ``[ntypes, ncut, ncol]`` (one
        row block per center type) when ``center_type`` is ``None``."""
        rows = self.env_mat.padded_rows(*block.cut)
        if center_type is not None:
            rows = rows[center_type:center_type + 1]
        return tf.cast(rows, self.net_dtype)

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

    def _atom_descriptor(self, env, center_type, atype, blocks):
        raise NotImplementedError

    def call(self, rij, mask, atype, type_counts=None, nlist_widths=None):
        return self._per_atom(rij, mask, atype, type_counts, self._atom_descriptor,
                              self.get_dim_out(), nlist_widths)

    def _per_atom(self, rij, mask, atype, type_counts, fn, dim, widths=None):
        """Apply ``fn(env [n, w, ncol], center_type, atype, blocks) -> [n, dim]`` to every
        atom, per center-type block (or to all atoms at once with type_one_side): ``[nf, nloc,
        dim]``; ``widths``: see :meth:`call`."""
        if widths is not None and not self.trims_blocks:
            raise ValueError(f"{self.descriptor_type}: this descriptor takes full neighbor "
                             "lists (no nlist_widths)")
        nf, nloc = tf.shape(atype)[0], tf.shape(atype)[1]
        blocks = self.blocks(widths)
        slots = None if widths is None else nlist.kept_slots(self.sel, widths)
        # float64 environment matrix; the networks (and what follows) in their precision
        env = tf.cast(self.env_mat(rij, mask, atype, slots), self.net_dtype)  # [nf, nloc, w, ncol]
        ncol, w = env.shape[-1], blocks[-1].hi
        if self.type_one_side or self.type_embed is not None:
            flat = tf.reshape(env, [-1, w, ncol])
            d = fn(flat, None, tf.reshape(atype, [-1]), blocks)
            return tf.cast(tf.reshape(d, [nf, nloc, dim]), tf.float64)
        split = TypeSplit(atype, self.ntypes, type_counts)
        parts = [fn(block, ti, None, blocks) for ti, block in enumerate(split.split(env))]
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

    # --- DeePMD-kit's serialized dict --------------------------------------------------------
    #: the name DeePMD-kit's dict gives the kind
    SERIALIZED_TYPE = None

    def serialize(self, type_map=None):
        """DeePMD-kit's ``se_e2_a``/``se_r``/``se_e3`` dict (``@version`` 2), as its TF backend
        writes it: excluded or unused type pairs get zeroed full-size nets."""
        if self.type_embed is not None or self.tabulated is not None:
            what = "type-embedded" if self.type_embed is not None else "compressed (tabulated)"
            raise DPKerasError(f"a {what} {self.descriptor_type} descriptor has no DeePMD-kit "
                               "serialized form (DeePMD-kit's TF backend cannot serialize it "
                               "either); save the model as .keras or a SavedModel directory")
        w = self.get_variables()
        three_body = self.descriptor_type == "se_e3"
        ntypes = self.ntypes
        nd = 1 if self.type_one_side and not three_body else 2
        networks = [None] * (ntypes ** nd)

        def net(arrays):
            return embedding_net_dict(arrays, self.neuron, self.activation_function,
                                      self.resnet_dt)

        for key, arrays in w["embeddings"].items():
            networks[key[0] if nd == 1 else key[0] + ntypes * key[1]] = net(arrays)
        if nd == 2:   # DeePMD-kit expects full-shape nets for excluded/unused pairs, zeroed
            ref = next(iter(w["embeddings"].values()))
            zero = {"w": [np.zeros_like(a) for a in ref["w"]],
                    "b": [np.zeros_like(a) for a in ref["b"]],
                    "idt": [None if a is None else np.zeros_like(a) for a in ref["idt"]]}
            networks = [net(zero) if n is None else n for n in networks]
        out = {
            "@class": "Descriptor", "@version": 2, "type": self.SERIALIZED_TYPE,
            "rcut": self.rcut, "rcut_smth": self.rcut_smth, "sel": self.sel,
            "neuron": self.neuron, "resnet_dt": self.resnet_dt, "trainable": self.trainable,
            "type_one_side": self.type_one_side,
            "exclude_types": [list(p) for p in self.exclude_types], "env_protection": 0.0,
            "set_davg_zero": self.set_davg_zero,
            "activation_function": self.activation_function, "precision": self.net_dtype,
            "embeddings": {"@class": "NetworkCollection", "@version": 1, "ndim": nd,
                           "ntypes": ntypes, "network_type": "embedding_network",
                           "networks": networks},
            "env_mat": {"rcut": self.rcut, "rcut_smth": self.rcut_smth, "protection": 0.0,
                        "use_exp_switch": False},
            "@variables": {"davg": w["davg"], "dstd": w["dstd"]},
            "type_map": type_map, "spin": None,
        }
        if self.descriptor_type == "se_e2_a":
            out["axis_neuron"] = self.axis_neuron
        if three_body:   # DeePMD-kit's se_e3 takes neither key
            del out["type_one_side"], out["spin"]
        return out

    @classmethod
    def from_serialized(cls, data, ntypes, source):
        """``(section, variables, None)`` of an ``se_e2_a``/``se_r``/``se_e3`` dict."""
        if data.get("env_protection", 0.0):
            raise DPKerasError(f"{source}: descriptor.env_protection is not supported yet")
        radial, three_body = cls.radial_only, cls.descriptor_type == "se_e3"
        ncol = 1 if radial else 4
        sel = [int(x) for x in data["sel"]]
        nnei = sum(sel)
        emb = data["embeddings"]
        embeddings = {}
        for idx, net in enumerate(emb["networks"]):
            if net is None:
                continue
            key = (idx,) if emb["ndim"] == 1 else (idx % ntypes, idx // ntypes)
            if three_body and key[0] > key[1]:
                continue   # placeholder: se_e3 has nets for neighbor-type pairs a <= b only
            embeddings[key] = net_variables(net, source, "embedding")
        excl = {tuple(sorted(p)) for p in data.get("exclude_types", [])}
        if emb["ndim"] == 2 and not three_body:
            embeddings = {k: v for k, v in embeddings.items() if tuple(sorted(k)) not in excl}
        section = {
            "type": cls.descriptor_type, "sel": sel, "rcut": float(data["rcut"]),
            "rcut_smth": float(data["rcut_smth"]), "neuron": list(data["neuron"]),
            "resnet_dt": bool(data["resnet_dt"]),
            "exclude_types": [list(p) for p in data.get("exclude_types", [])],
            "set_davg_zero": bool(data.get("set_davg_zero", False)),
            "activation_function": data.get("activation_function", "tanh"),
            "trainable": bool(data.get("trainable", True)),
        }
        if data.get("precision") == "float32":
            section["precision"] = "float32"
        if not three_body:
            section["type_one_side"] = bool(data["type_one_side"])
        if not radial and not three_body:
            section["axis_neuron"] = int(data["axis_neuron"])
        variables = {
            "davg": np.asarray(data["@variables"]["davg"], np.float64).reshape(ntypes, nnei,
                                                                                ncol),
            "dstd": np.asarray(data["@variables"]["dstd"], np.float64).reshape(ntypes, nnei,
                                                                                ncol),
            "embeddings": embeddings,
        }
        return section, variables, None


def net_key(key):
    """``(t_i, t_j)`` -> ``"ti_tj"``; ``()`` (the one net of a type embedding) -> ``"all"``."""
    return "_".join(map(str, key)) if key else "all"


def _key_of(name):
    return () if name == "all" else tuple(int(x) for x in name.split("_"))
