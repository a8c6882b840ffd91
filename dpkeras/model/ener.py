"""Energy model: descriptor + ``ener`` fitting, with forces and virials by autodiff.

Inputs (a dict, as produced by :mod:`dpkeras.data.pipeline` or :mod:`dpkeras.infer`):

==========  =========================  ==============================================
key         shape                      meaning
==========  =========================  ==============================================
coord       ``[nf, nloc, 3]`` float64  Cartesian coordinates, Angstrom
box         ``[nf, 3, 3]`` float64     cell vectors as rows (anything for no PBC)
atype       ``[nf, nloc]`` int32       atom types in the model's ``type_map``
nlist       ``[nf, nloc, nnei]`` int32 neighbor list (:mod:`dpkeras.nlist`)
shift       ``[nf, nloc, nnei, 3]``    integer cell shifts of the neighbors
fparam      ``[nf, numb_fparam]``      frame parameters (only with ``numb_fparam``)
aparam      ``[nf, nloc, numb_aparam]`` atomic parameters (only with ``numb_aparam``)
==========  =========================  ==============================================

Outputs: ``energy [nf, 1]`` eV, ``atom_energy [nf, nloc]``, ``force [nf, nloc, 3]`` eV/A,
``virial [nf, 9]`` eV and ``atom_virial [nf, nloc, 9]``.

With ``g_ij = dE/dr_ij``: ``F_i = sum_j g_ij - sum_{k: j(k)=i} g_kj`` and the pair virial
``W_ab = -g_ij,a r_ij,b`` is credited to the neighbor atom ``j`` (DeePMD-kit's convention).
"""

import keras
import numpy as np
import tensorflow as tf

from dpkeras.config import model_kwargs, normalize_model
from dpkeras.descriptor import DESCRIPTORS
from dpkeras.env_mat import pair_vectors
from dpkeras.fitting import FITTINGS
from dpkeras.model.type_map import remap_section, remap_variables, type_index

INPUT_KEYS = ("coord", "box", "atype", "nlist", "shift")


def neighbor_types(atype, nlist, ntypes):
    """``[nf, nloc, nnei]`` type of each neighbor slot; ``ntypes`` for padded slots."""
    nlist = tf.cast(nlist, tf.int32)
    j = tf.where(nlist >= 0, nlist, tf.zeros_like(nlist))
    t = tf.gather(tf.cast(atype, tf.int32), j, batch_dims=1)
    return tf.where(nlist >= 0, t, tf.fill(tf.shape(t), tf.constant(ntypes, tf.int32)))


def pair_derivatives(g, rij, mask, nlist):
    """Forces ``[nf, nloc, 3]``, virial ``[nf, 9]`` and atomic virials ``[nf, nloc, 9]`` of a
    scalar from its gradient ``g = dX/dr_ij [nf, nloc, nnei, 3]`` (see the module docstring:
    ``F = -dX/dr``, the pair virial credited to the neighbor atom)."""
    nf, nloc = tf.shape(g)[0], tf.shape(g)[1]
    # segment ids of the neighbors in the flattened frame-major atom index; pads go to a
    # dump segment at the end
    frame_offset = (tf.range(nf) * nloc)[:, None, None]
    seg = tf.where(mask, nlist + frame_offset, nf * nloc)
    seg = tf.reshape(seg, [-1])
    nseg = nf * nloc + 1
    force = tf.reduce_sum(g, axis=2) - tf.reshape(
        tf.math.unsorted_segment_sum(tf.reshape(g, [-1, 3]), seg, nseg)[:-1], [nf, nloc, 3])
    # W = -sum_pairs g (x) r; the per-atom split credits each pair to its neighbor atom
    virial = -tf.reshape(tf.einsum("flna,flnb->fab", g, rij), [nf, 9])
    pair_virial = -tf.reshape(g[..., :, None] * rij[..., None, :], [-1, 9])
    atom_virial = tf.reshape(
        tf.math.unsorted_segment_sum(pair_virial, seg, nseg)[:-1], [nf, nloc, 9])
    return force, virial, atom_virial


def _strip_type(cfg):
    cfg = dict(cfg)
    kind = cfg.pop("type")
    return kind, cfg


class DeepmdModel(keras.Model):
    """What the energy and tensor models share: DeePMD-kit's getters and the unpacking of the
    input dict into pair vectors. Subclasses set ``type_map``, ``descriptor`` and ``fitting``
    (every weight exists after ``__init__``)."""

    def _init_layers(self, type_map, descriptor, fitting_net, type_embedding=None):
        """Set ``type_map``, the descriptor layer and the configs; returns the fitting's kind
        and its arguments (without ``type``), for the subclass to build."""
        self.type_map = list(type_map)
        dkind, dcfg = _strip_type(descriptor)
        if type_embedding is not None:
            dcfg["type_embedding"] = dict(type_embedding)
        self.descriptor = DESCRIPTORS[dkind](ntypes=len(self.type_map), name="descriptor",
                                             **dcfg)
        self.descriptor_config = dict(descriptor)
        self.fitting_config = dict(fitting_net)
        return _strip_type(fitting_net)

    def build_from_config(self, config):
        """Nothing to build: the weights exist after ``__init__`` (Keras ``.keras`` loading)."""
        self.built = True

    def get_type_map(self):
        return list(self.type_map)

    def get_rcut(self):
        return self.descriptor.get_rcut()

    def get_sel(self):
        return self.descriptor.get_sel()

    def get_ntypes(self):
        return len(self.type_map)

    def mixed_types(self):
        return self.descriptor.mixed_types()

    # --- variables, DeePMD-kit's serialized dict, type_map ---------------------------------
    def get_variables(self):
        """Every weight as numpy arrays: the descriptor's and the fitting's variables in one
        dict (:mod:`dpkeras.descriptor.base`, :mod:`dpkeras.fitting.base`); what frozen graphs
        are read into and what fine-tuning and ``--init_model`` copy."""
        return dict(self.fitting.get_variables(), **self.descriptor.get_variables())

    def set_variables(self, variables, source="the source model"):
        """Assign :meth:`get_variables`'s dict; any mismatch is one error naming ``source``."""
        self.descriptor.set_variables(variables, source)
        self.fitting.set_variables(variables, source)

    def serialize(self):
        """DeePMD-kit's versioned model dict (``@class`` Model, ``standard``, ``@version`` 2),
        what its ``.dp`` files hold and its TF backend writes for the same model;
        :func:`dpkeras.model.build.deserialize` reads it back."""
        tmap, ntypes = self.get_type_map(), self.get_ntypes()
        nout = 1 if self.fitting.fitting_type == "ener" else self.fitting.get_dim_out()
        return {
            "@class": "Model", "type": "standard", "@version": 2, "type_map": tmap,
            "descriptor": self.descriptor.serialize(tmap),
            "fitting": self.fitting.serialize(tmap), "atom_exclude_types": [],
            "pair_exclude_types": [], "rcond": None, "preset_out_bias": None,
            "@variables": {"out_bias": np.zeros((1, ntypes, nout)),
                           "out_std": np.ones((1, ntypes, nout))},
        }

    def change_type_map(self, type_map, source="the model"):
        """This model for the elements ``type_map`` (DeePMD-kit's ``change_type_map``): a new
        model of the same kind whose every per-type weight is selected/reordered by element
        name (:mod:`dpkeras.model.type_map`), giving the same numbers on the same atoms. An
        element the model lacks, or a change the kind cannot take, is an error."""
        section = normalize_model(self.get_config_deepmd())
        idx = type_index(self.type_map, type_map, source)
        out = type(self)(**model_kwargs(normalize_model(
            remap_section(section, idx, type_map, source))))
        out.set_variables(remap_variables(self.get_variables(), section, idx, source), source)
        return out

    def _pairs(self, inputs):
        """``(rij [nf, nloc, nnei, 3], mask, atype [nf, nloc], nlist)`` of an input dict."""
        coord = tf.convert_to_tensor(inputs["coord"], self.compute_dtype)
        box = tf.convert_to_tensor(inputs["box"], self.compute_dtype)
        atype = tf.cast(inputs["atype"], tf.int32)
        nlist = tf.cast(inputs["nlist"], tf.int32)
        shift = tf.cast(inputs["shift"], self.compute_dtype)
        rij, mask = pair_vectors(coord, box, nlist, shift)
        return rij, mask, atype, nlist


@keras.saving.register_keras_serializable(package="dpkeras")
class EnergyModel(DeepmdModel):
    """A DeePMD-style energy model.

    Args:
      type_map: element names, index = atom type.
      descriptor: descriptor config (``{"type": "se_e2_a", ...}``, validated keys only).
      fitting_net: fitting config (``{"type": "ener", ...}``).
    """

    output_keys = ("energy", "force", "virial", "atom_energy", "atom_virial")
    atomic_keys = ("force", "atom_energy", "atom_virial")

    def __init__(self, type_map, descriptor, fitting_net, type_embedding=None, **kwargs):
        kwargs.setdefault("dtype", "float64")
        super().__init__(**kwargs)
        # === Layers ===
        self.type_embedding_config = None if type_embedding is None else dict(type_embedding)
        fkind, fcfg = self._init_layers(type_map, descriptor, fitting_net,
                                        self.type_embedding_config)
        ntypes = len(self.type_map)
        if self.descriptor.get_dim_tebd():   # one fitting net fed [D, type embedding]
            fcfg["tebd_dim"] = self.descriptor.get_dim_tebd()
        self.fitting = FITTINGS[fkind](ntypes=ntypes, dim_descrpt=self.descriptor.get_dim_out(),
                                       name="fitting", **fcfg)
        self.built = True  # every weight is created above

    def get_config_deepmd(self):
        """The model as a DeePMD-kit ``input.json`` model section."""
        out = {"type_map": list(self.type_map), "descriptor": dict(self.descriptor_config),
               "fitting_net": dict(self.fitting_config)}
        if self.type_embedding_config is not None:
            out["type_embedding"] = dict(self.type_embedding_config)
        return out

    # --- forward ---------------------------------------------------------------------------
    def descriptor_of(self, rij, mask, atype, type_counts=None, nlist=None, nlist_widths=None):
        """The descriptor of every atom, ``[nf, nloc, dim_out]`` (DeePMD-kit's
        ``eval_descriptor``; ``nlist_widths``: see :meth:`call`)."""
        if self.descriptor.mixed_types():
            nei_type = neighbor_types(atype, nlist, self.get_ntypes())
            return self.descriptor(rij, mask, atype, type_counts=type_counts, nei_type=nei_type)
        if nlist_widths is not None:
            return self.descriptor(rij, mask, atype, type_counts=type_counts,
                                   nlist_widths=nlist_widths)
        return self.descriptor(rij, mask, atype, type_counts=type_counts)

    def eval_descriptor(self, inputs, type_counts=None):
        """The descriptor of every atom ``[nf, nloc, dim_out]`` from the model inputs."""
        rij, mask, atype, nlist = self._pairs(inputs)
        return self.descriptor_of(rij, mask, atype, type_counts, nlist)

    def atomic_energy(self, rij, mask, atype, type_counts=None, nlist=None, fparam=None,
                      aparam=None, nlist_widths=None):
        """Atomic energies ``[nf, nloc]`` from pair vectors (``nlist``: needed by mixed-type
        descriptors, which look up the neighbor types; ``fparam [nf, numb_fparam]`` and
        ``aparam [nf, nloc, numb_aparam]``: needed when the fitting has them)."""
        params = {"fparam": fparam, "aparam": aparam}
        d = self.descriptor_of(rij, mask, atype, type_counts, nlist, nlist_widths)
        if self.fitting.tebd_dim:   # one fitting net for all types, fed the type embedding
            params["type_embedding"] = self.descriptor.atom_type_embedding(atype)
        return self.fitting(d, atype, type_counts=type_counts, **params)

    def call(self, inputs, training=False, type_counts=None, nlist_widths=None):
        """Energies, forces and virials (see the module docstring).

        ``type_counts``: when the atoms of every frame are sorted by type, their counts per type
        as Python ints; the per-type blocks are then static slices (XLA-compilable).
        ``nlist_widths``: Python ints, when each type block of the neighbor list was cut to that
        many slots (:func:`dpkeras.nlist.trim_type_blocks`; descriptors with ``trims_blocks``).
        """
        rij, mask, atype, nlist = self._pairs(inputs)
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(rij)
            atom_energy = self.atomic_energy(rij, mask, atype, type_counts, nlist,
                                             inputs.get("fparam"), inputs.get("aparam"),
                                             nlist_widths)
            energy = tf.reduce_sum(atom_energy, axis=1, keepdims=True)
        g = tape.gradient(energy, rij)                                     # [nf, nloc, nnei, 3]
        force, virial, atom_virial = pair_derivatives(g, rij, mask, nlist)
        return {"energy": energy, "atom_energy": atom_energy, "force": force,
                "virial": virial, "atom_virial": atom_virial}

    def get_config(self):
        cfg = super().get_config()
        cfg.update(type_map=self.type_map, descriptor=self.descriptor_config,
                   fitting_net=self.fitting_config, type_embedding=self.type_embedding_config)
        return cfg

    @classmethod
    def from_config(cls, config):
        return cls(**config)
