"""ASE calculator: ``dpkeras.calculator.DP(model_or_name, head=None)``.

Example::

    from ase.io import read
    from dpkeras.calculator import DP
    atoms = read("water.xyz")
    atoms.calc = DP("water-se-e2-a-mini")      # a zoo name, a model path, or a loaded model
    atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress()

Implements ``energy`` (eV), ``free_energy`` (= energy), ``forces`` (eV/A), ``energies``
(per-atom, eV) and, for fully periodic cells, ``stress`` (eV/A^3, Voigt order xx yy zz yz xz
xy, ASE's sign convention: ``-sym(virial) / volume``, as DeePMD-kit's calculator). Elements are
mapped to the model's ``type_map`` by symbol. Partially periodic cells are not supported
(dpkeras models are periodic in all three directions or in none). Needs the optional ``ase``
package (``pip install "dpkeras[ase]"``).
"""

import numpy as np

from dpkeras.errors import DPKerasError

try:
    from ase.calculators.calculator import Calculator, all_changes
except ImportError:  # pragma: no cover - exercised only without ase
    Calculator, all_changes = object, None


class DP(Calculator):
    """An ASE calculator evaluating a dpkeras model.

    Args:
      model_or_name: a zoo name (see ``python -m dpkeras.zoo list``), a path to any model
        :class:`dpkeras.infer.DeepPot` reads, or a loaded ``EnergyModel``.
      head: the fitting head (zoo models; only single-head models so far).
    """

    implemented_properties = ["energy", "free_energy", "forces", "energies", "stress"]

    def __init__(self, model_or_name, head=None, **kwargs):
        if all_changes is None:
            raise DPKerasError("dpkeras.calculator.DP needs the 'ase' package: "
                               "pip install 'dpkeras[ase]' (or pip install ase)")
        from dpkeras.infer import open_deep_pot

        self.dp = open_deep_pot(model_or_name, head=head)
        self.type_map = list(self.dp.get_type_map())
        super().__init__(**kwargs)

    def _types(self, symbols):
        missing = sorted(set(symbols) - set(self.type_map))
        if missing:
            raise DPKerasError(f"element(s) {missing} are not in the model's type_map "
                               f"{self.type_map}")
        return np.array([self.type_map.index(s) for s in symbols], dtype=np.int32)

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        atoms = self.atoms
        pbc = atoms.get_pbc()
        if pbc.any() and not pbc.all():
            raise DPKerasError(f"atoms.pbc is {pbc.tolist()}; dpkeras supports fully periodic or "
                               "non-periodic systems only")
        cell = np.asarray(atoms.get_cell(), dtype=np.float64).reshape(1, 9) if pbc.all() \
            else None
        coord = atoms.get_positions().astype(np.float64).reshape(1, -1, 3)
        # atomic energies (and the per-atom virials that come with them) only when asked for,
        # as DeePMD-kit's calculator: MD asks for forces, and the atomic terms cost ~2x
        atomic = "energies" in properties
        out = self.dp.eval(coord, cell, self._types(atoms.get_chemical_symbols()),
                           atomic=atomic)
        e, f, v = out[:3]
        self.results["energy"] = float(e[0, 0])
        self.results["free_energy"] = float(e[0, 0])
        self.results["forces"] = f[0]
        if atomic:
            self.results["energies"] = out[3][0, :, 0]
        if cell is not None:
            vir = v[0].reshape(3, 3)
            stress = -0.5 * (vir + vir.T) / atoms.get_volume()
            self.results["stress"] = stress.flat[[0, 4, 8, 5, 2, 1]]
        elif "stress" in properties:
            from ase.calculators.calculator import PropertyNotImplementedError

            raise PropertyNotImplementedError("stress needs a periodic cell")
