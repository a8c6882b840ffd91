"""The base of every fitting: its variables as numpy arrays and DeePMD-kit's serialized form.

A fitting's variables (:meth:`Fitting.get_variables`)::

    {"fitting": [net arrays per net (see dpkeras.network.DenseStack.get_numpy)],
     "bias_atom_e": [ntypes],                         # ener
     "fparam_avg", "fparam_inv_std": [numb_fparam],   # ener with numb_fparam
     "aparam_avg", "aparam_inv_std": [numb_aparam],   # ener with numb_aparam
     "constant_matrix": [ntypes]}                     # polar

The ``fitting`` list holds one net per type (``ener``), per type of ``sel_type`` in that order
(``dipole``/``polar``), or the one net shared by all types (``ener`` with a type embedding).
"""

import keras
import numpy as np

from dpkeras.errors import DPKerasError

#: the non-network weights a fitting may have
EXTRAS = ("bias_atom_e", "constant_matrix", "fparam_avg", "fparam_inv_std", "aparam_avg",
          "aparam_inv_std")


class Fitting(keras.layers.Layer):
    """Subclasses set ``fitting_type`` and the list ``nets``."""

    fitting_type = None

    def extras(self):
        """``{name: numpy array}`` of the non-network weights this fitting has."""
        return {n: getattr(self, n).numpy() for n in EXTRAS
                if getattr(self, n, None) is not None}

    def get_variables(self):
        return dict({"fitting": [net.get_numpy() for net in self.nets]}, **self.extras())

    def set_variables(self, variables, source):
        """Assign :meth:`get_variables`'s dict; a mismatch is an error naming ``source``."""
        nets = variables["fitting"]
        if len(nets) != len(self.nets):
            raise DPKerasError(f"{source}: {len(nets)} fitting nets, the model has "
                               f"{len(self.nets)}")
        for net, w in zip(self.nets, nets):
            net.set_numpy(w)
        for key, value in self.extras().items():
            if key not in variables:
                raise DPKerasError(f"{source}: no {key} for the {self.fitting_type} fitting "
                                   "(the source is a model of another kind)")
            w = np.asarray(variables[key], np.float64)
            if w.shape != value.shape:
                raise DPKerasError(f"{source}: {key} has shape {w.shape}, the model expects "
                                   f"{value.shape} (numb_fparam/numb_aparam or type_map "
                                   "differ)")
            getattr(self, key).assign(w)

    def _trainable_list(self):
        return [bool(self.trainable)] * (len(self.neuron) + 1)

    def serialize(self, type_map=None):
        raise DPKerasError(f"a {self.fitting_type} fitting has no DeePMD-kit serialized form "
                           "dpkeras writes; save the model as .keras or a SavedModel directory")
