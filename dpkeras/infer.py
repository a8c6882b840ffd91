"""``DeepPot``: DeePMD-kit's inference API on any model dpkeras can load.

Example::

    from dpkeras.infer import DeepPot
    dp = DeepPot("frozen_model.pb")            # or a SavedModel dir, .keras, .dp, run dir
    e, f, v = dp.eval(coords, cells, atom_types)
    e, f, v, ae, av = dp.eval(coords, None, atom_types, atomic=True)   # no PBC
"""

import numpy as np

from dpkeras.errors import DPKerasError
from dpkeras.model.load import load_model
from dpkeras.serving import SortedEvaluator, make_serving_fn


class DeepPot:
    """A loaded energy model. ``path``: any format accepted by :func:`dpkeras.model.load.load_model`."""

    def __init__(self, path):
        self.path = path
        self.model, self.kind = load_model(path)
        self._serve = make_serving_fn(self.model)
        self._sorted = SortedEvaluator(self.model)

    @classmethod
    def from_model(cls, model, name="model"):
        """A ``DeepPot`` around an already loaded ``EnergyModel`` (e.g. ``dpkeras.zoo.load``)."""
        self = cls.__new__(cls)
        self.path, self.model, self.kind = name, model, "model"
        self._serve = make_serving_fn(model)
        self._sorted = SortedEvaluator(model)
        return self

    def get_type_map(self):
        return self.model.get_type_map()

    def get_rcut(self):
        return self.model.get_rcut()

    def get_ntypes(self):
        return self.model.get_ntypes()

    def get_sel(self):
        return self.model.get_sel()

    def eval(self, coords, cells, atom_types, atomic=False):
        """Evaluate energies, forces and virials.

        Args:
          coords: ``[nframes, natoms * 3]`` (or ``[nframes, natoms, 3]``), Angstrom.
          cells: ``[nframes, 9]`` cell vectors as rows, or ``None`` for no PBC.
          atom_types: ``[natoms]`` (or ``[nframes, natoms]``) in the model's type indices.
          atomic: also return atomic energies and virials.

        Returns ``energy [nf, 1]``, ``force [nf, natoms, 3]``, ``virial [nf, 9]`` and, with
        ``atomic``, ``atom_energy [nf, natoms, 1]`` and ``atom_virial [nf, natoms, 9]``.
        """
        atype = np.asarray(atom_types, dtype=np.int32)
        natoms = atype.shape[-1]
        coord = np.asarray(coords, dtype=np.float64)
        if coord.size % (natoms * 3):
            raise DPKerasError(f"coords has {coord.size} values, not a multiple of natoms*3 = "
                               f"{natoms * 3}")
        coord = coord.reshape(-1, natoms, 3)
        nf = coord.shape[0]
        if atype.ndim == 1:
            atype = np.tile(atype[None], (nf, 1))
        if atype.shape != (nf, natoms):
            raise DPKerasError(f"atom_types has shape {atype.shape}, expected ({natoms},) or "
                               f"({nf}, {natoms})")
        if atype.min() < 0 or atype.max() >= self.get_ntypes():
            raise DPKerasError(f"atom_types must lie in [0, {self.get_ntypes()}) for type_map "
                               f"{self.get_type_map()}")
        if cells is None:
            box = np.zeros((nf, 3, 3))
        else:
            box = np.asarray(cells, dtype=np.float64)
            if box.size != nf * 9:
                raise DPKerasError(f"cells has {box.size} values, expected nframes*9 = {nf * 9}")
            box = box.reshape(nf, 3, 3)
        if np.all(atype == atype[:1]):   # one composition for all frames: the compiled path
            out = self._sorted(coord, atype[0], box, cells is not None, atomic)
        else:
            out = {k: v.numpy() for k, v in self._serve(coord, atype, box).items()}
        res = (out["energy"], out["force"], out["virial"])
        if atomic:
            res += (out["atom_energy"][..., None], out["atom_virial"])
        return res
