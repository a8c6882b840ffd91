"""The base of every descriptor: the fields every kind has and DeePMD-kit's getters.

A descriptor is a Keras layer ``call(rij [nf, nloc, nnei, 3], mask [nf, nloc, nnei], atype
[nf, nloc], type_counts=None, ...) -> [nf, nloc, get_dim_out()]``. A kind subclasses
:class:`Descriptor`, sets the fields ``ntypes``, ``rcut``, ``rcut_smth``, ``sel`` (a list: one
count per neighbor type, or one for all types when ``MIXED_TYPES``) and ``type_embed`` (a
:class:`dpkeras.descriptor.type_embedding.TypeEmbedding` or ``None``), implements
``get_dim_out`` and ``call``, and declares its ``input.json`` names with
:func:`dpkeras.descriptor.registry.register`.
"""

import keras


class Descriptor(keras.layers.Layer):
    """Class traits: ``descriptor_type`` (set by ``register``), ``MIXED_TYPES`` (one network
    for all types, types entering through the type embedding), ``radial_only`` (the
    environment matrix has the radial column only)."""

    descriptor_type = None
    MIXED_TYPES = False
    radial_only = False
    type_embed = None

    def get_ntypes(self):
        return self.ntypes

    def get_rcut(self):
        return self.rcut

    def get_rcut_smth(self):
        return self.rcut_smth

    def get_sel(self):
        return list(self.sel)

    def get_nnei(self):
        """Neighbor slots per atom, ``sum(sel)``."""
        return sum(self.sel)

    def mixed_types(self):
        return self.MIXED_TYPES

    def leaves(self):
        """The descriptors owning environment-matrix statistics (``hybrid`` has several)."""
        return [self]

    def get_dim_tebd(self):
        """Width of the type embedding the fitting net takes (0: per-type fitting nets)."""
        return 0 if self.type_embed is None else self.type_embed.dim()

    def atom_type_embedding(self, atype):
        """``[nf, nloc, T]``: the type embedding of each atom (with a type embedding only)."""
        return self.type_embed.atom_embedding(atype)
