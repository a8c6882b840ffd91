"""The base of every descriptor: the fields every kind has and DeePMD-kit's getters.

A descriptor is a Keras layer ``call(rij [nf, nloc, nnei, 3], mask [nf, nloc, nnei], atype
[nf, nloc], type_counts=None, ...) -> [nf, nloc, get_dim_out()]``. A kind subclasses
:class:`Descriptor`, sets the fields ``ntypes``, ``rcut``, ``rcut_smth``, ``sel`` (a list: one
count per neighbor type, or one for all types when ``MIXED_TYPES``) and ``type_embed`` (a
:class:`dpkeras.descriptor.type_embedding.TypeEmbedding` or ``None``), implements
``get_dim_out`` and ``call``, and declares its ``input.json`` names with
:func:`dpkeras.descriptor.registry.register`.

Every kind speaks DeePMD-kit's versioned ``serialize()`` dict (``@class``, ``@version``,
``@variables``; the layout of ``docs/deepmd_serialize.md``): :meth:`Descriptor.serialize` writes
it and the class method ``from_serialized(data, ntypes, source)`` reads it back as the kind's
``input.json`` section, its variables and (dpa1) the model's ``type_embedding`` section. The variables are :meth:`Descriptor.get_variables`'s
dict of numpy arrays::

    {"davg": [ntypes, nnei, ncol], "dstd": [ntypes, nnei, ncol],
     "embeddings": {(t_i, t_j) or (t_j,) or (): net arrays},          # see DenseStack.get_numpy
     "type_embedding": net arrays,                                     # with a type embedding
     "attention": [{"wq", "bq", "wk", "bk", "wv", "bv", "wo", "bo", "gamma", "beta"}],
     "embedding_strip": net arrays}                                    # attention, strip mode

(a ``hybrid`` has ``{"hybrid": [variables of each member]}``); frozen graphs are read into the
same dict (:mod:`dpkeras.io.deepmd_pb`).
"""

import keras

from dpkeras.errors import DPKerasError


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

    # --- variables and DeePMD-kit's serialized dict ------------------------------------------
    def nets_by_key(self):
        """``{key: net}``: the embedding nets by neighbor-type key (``()``: the one net of a
        type-embedded descriptor)."""
        if self.mixed_types():
            return {(): self.embedding_net}
        return self.embeddings

    def get_variables(self):
        """The descriptor's weights as numpy arrays (the layout of the module docstring)."""
        out = {"davg": self.env_mat.davg.numpy(), "dstd": self.env_mat.dstd.numpy(),
               "embeddings": {k: net.get_numpy() for k, net in self.nets_by_key().items()}}
        if self.type_embed is not None:
            out["type_embedding"] = self.type_embed.get_numpy()
        if self.mixed_types():
            out["attention"] = [layer.get_numpy() for layer in self.attention_layers]
            if self.embedding_strip is not None:
                out["embedding_strip"] = self.embedding_strip.get_numpy()
        return out

    def set_variables(self, variables, source):
        """Assign :meth:`get_variables`'s dict; a mismatch (kind, sizes, type_map) is an error
        naming ``source``."""
        if "hybrid" in variables:
            raise DPKerasError(f"{source}: a hybrid descriptor, the model has "
                               f"{self.descriptor_type}")
        nets = self.nets_by_key()
        if set(variables["embeddings"]) != set(nets):
            raise DPKerasError(f"{source}: embedding nets {sorted(variables['embeddings'])} do "
                               f"not match the model's {sorted(nets)} (descriptor type / "
                               "type_one_side / exclude_types / type_map differ)")
        if self.mixed_types():
            att = variables.get("attention", [])
            if len(att) != len(self.attention_layers):
                raise DPKerasError(f"{source}: {len(att)} attention layers, the model has "
                                   f"{len(self.attention_layers)}")
            if (self.embedding_strip is None) != ("embedding_strip" not in variables):
                raise DPKerasError(f"{source}: tebd_input_mode differs from the model's "
                                   f"{self.tebd_input_mode!r} (strip-mode type-pair net present "
                                   "in only one of them)")
        davg = variables["davg"]
        if davg.shape != tuple(self.env_mat.davg.shape):
            raise DPKerasError(f"{source}: descriptor statistics have shape {davg.shape}, the "
                               f"model expects {tuple(self.env_mat.davg.shape)} (sel or type_map "
                               "differ)")
        self.env_mat.set_stats(davg, variables["dstd"])
        for k, net in nets.items():
            net.set_numpy(variables["embeddings"][k])
        if self.type_embed is not None:
            if "type_embedding" not in variables:
                raise DPKerasError(f"{source}: no type embedding, the model's "
                                   f"{self.descriptor_type} descriptor has one "
                                   "(model.type_embedding differs)")
            self.type_embed.set_numpy(variables["type_embedding"])
        elif "type_embedding" in variables:
            raise DPKerasError(f"{source}: a type-embedded {self.descriptor_type} descriptor, "
                               "the model has none (add the source's model.type_embedding "
                               "section)")
        if self.mixed_types():
            for layer, w in zip(self.attention_layers, variables["attention"]):
                layer.set_numpy(w)
            if self.embedding_strip is not None:
                self.embedding_strip.set_numpy(variables["embedding_strip"])

    def serialize(self, type_map=None):
        """DeePMD-kit's versioned dict of this descriptor (``type_map``: the model's)."""
        raise DPKerasError(f"a {self.descriptor_type} descriptor has no DeePMD-kit serialized "
                           "form; save the model as .keras or a SavedModel directory")

    @classmethod
    def from_serialized(cls, data, ntypes, source):
        """``(input.json descriptor section, variables, type_embedding section or None)`` of
        a serialized dict of this kind."""
        raise DPKerasError(f"{source}: descriptor {data.get('type')!r} cannot be read from "
                           "DeePMD-kit's serialized form")
