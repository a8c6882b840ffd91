"""Tensor models: ``se_e2_a`` descriptor + ``dipole``/``polar`` fitting (DeePMD-kit's
``DipoleModel``/``PolarModel``).

Inputs: the dict of :mod:`dpkeras.model.ener` (``coord``, ``box``, ``atype``, ``nlist``,
``shift``). Outputs:

============  ===========================  ==================================================
key           shape                        meaning
============  ===========================  ==================================================
tensor        ``[nf, size]``               frame tensor = sum of the atomic tensors
atom_tensor   ``[nf, nloc, size]``         atomic tensors, zeros on types not in ``sel_type``
============  ===========================  ==================================================

``size`` is 3 (dipole) or 9 (polarizability, row-major 3x3). :meth:`TensorModel.call_with_derivatives`
adds DeePMD-kit's ``eval_full`` outputs: per component ``k`` of the frame tensor the force
``-dT_k/dr_i`` (``force [nf, size, nloc, 3]``), virial (``virial [nf, size, 9]``) and atomic
virials (``atom_virial [nf, size, nloc, 9]``), with the energy model's conventions.
"""

import keras
import tensorflow as tf

from dpkeras.errors import DPKerasError
from dpkeras.fitting import FITTINGS, TENSOR_FITTINGS
from dpkeras.model.ener import DeepmdModel, pair_derivatives


@keras.saving.register_keras_serializable(package="dpkeras")
class TensorModel(DeepmdModel):
    """A DeePMD-style dipole or polarizability model.

    Args:
      type_map: element names, index = atom type.
      descriptor: descriptor config (``{"type": "se_e2_a", ...}``).
      fitting_net: fitting config (``{"type": "dipole" | "polar", ...}``).
    """

    output_keys = ("tensor", "atom_tensor")
    atomic_keys = ("atom_tensor",)

    def __init__(self, type_map, descriptor, fitting_net, **kwargs):
        kwargs.setdefault("dtype", "float64")
        super().__init__(**kwargs)
        # === Layers ===
        dkind, fkind = descriptor.get("type"), fitting_net.get("type")
        if fkind not in TENSOR_FITTINGS:
            raise DPKerasError(f"model.fitting_net.type: {fkind!r} is not a tensor fitting "
                               f"({', '.join(TENSOR_FITTINGS)})")
        if dkind != "se_e2_a":
            raise DPKerasError(f"model.descriptor.type: the {fkind} fitting needs the se_e2_a "
                               f"descriptor (its rotation matrix), not {dkind!r}")
        _, fcfg = self._init_layers(type_map, descriptor, fitting_net)
        self.fitting = FITTINGS[fkind](
            ntypes=len(self.type_map), dim_descrpt=self.descriptor.get_dim_out(),
            embedding_width=self.descriptor.get_dim_rot_mat_1(), name="fitting", **fcfg)
        self.built = True

    def get_sel_type(self):
        return self.fitting.get_sel_type()

    def get_model_type(self):
        """``"dipole"`` or ``"polar"``."""
        return self.fitting.fitting_type

    def get_config_deepmd(self):
        return {"type_map": list(self.type_map), "descriptor": dict(self.descriptor_config),
                "fitting_net": dict(self.fitting_config)}

    # --- forward ---------------------------------------------------------------------------
    def call(self, inputs, training=False, type_counts=None, nlist_widths=None):
        """Frame and atomic tensors (see the module docstring; ``type_counts``,
        ``nlist_widths``: see :meth:`dpkeras.model.ener.EnergyModel.call`)."""
        rij, mask, atype, _ = self._pairs(inputs)
        return self._tensors(rij, mask, atype, type_counts, nlist_widths)

    def call_with_derivatives(self, inputs, type_counts=None):
        """:meth:`call` plus ``force``, ``virial`` and ``atom_virial`` of every component of
        the frame tensor (see the module docstring)."""
        rij, mask, atype, nlist = self._pairs(inputs)
        with tf.GradientTape(persistent=True, watch_accessed_variables=False) as tape:
            tape.watch(rij)
            out = self._tensors(rij, mask, atype, type_counts)
            comps = [out["tensor"][:, k] for k in range(self.fitting.tensor_size)]
        derivs = [pair_derivatives(tape.gradient(c, rij), rij, mask, nlist) for c in comps]
        del tape
        out["force"], out["virial"], out["atom_virial"] = (
            tf.stack([d[i] for d in derivs], axis=1) for i in range(3))
        return out

    def _tensors(self, rij, mask, atype, type_counts, nlist_widths=None):
        d, rot = self.descriptor.call_with_rot_mat(rij, mask, atype, type_counts=type_counts,
                                                   nlist_widths=nlist_widths)
        atom_tensor = self.fitting(d, rot, atype, type_counts=type_counts)
        return {"tensor": tf.reduce_sum(atom_tensor, axis=1), "atom_tensor": atom_tensor}

    def get_config(self):
        cfg = super().get_config()
        cfg.update(type_map=self.type_map, descriptor=self.descriptor_config,
                   fitting_net=self.fitting_config)
        return cfg

    @classmethod
    def from_config(cls, config):
        return cls(**config)
