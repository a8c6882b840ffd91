"""ASE calculator on the embedded water model: derivatives, stress, and NVE energy conservation."""

import numpy as np
import pytest

from conftest import WATER
from dpkeras.data.system import DeepmdSystem
from dpkeras.errors import DPKerasError

ase = pytest.importorskip("ase")  # ase is in the 'test' extra, so CI always runs these

from ase import Atoms, units  # noqa: E402
from ase.md.verlet import VelocityVerlet  # noqa: E402

from dpkeras.calculator import DP  # noqa: E402

# NVE bound: 100 velocity-Verlet steps of 0.5 fs from a DFT water frame with 300 K velocities.
# Measured max |E(t) - E(0)| = 8.3e-5 eV/atom; the bound leaves a factor 6. Inconsistent forces
# or a discontinuity at the cutoff give drifts of 1e-3 eV/atom and more.
DRIFT_BOUND_EV_PER_ATOM = 5e-4


@pytest.fixture(scope="module")
def calc():
    return DP("water-se-e2-a-mini")


@pytest.fixture
def water():
    s = DeepmdSystem(WATER[3], ["O", "H"])
    return Atoms(symbols=[("O", "H")[t] for t in s.atype], positions=s.coord[0],
                 cell=s.box[0], pbc=True)


def test_forces_stress_and_atomic_energies_are_consistent(calc, water):
    water.calc = calc
    e = water.get_potential_energy()
    f = water.get_forces()
    assert abs(water.get_potential_energies().sum() - e) < 1e-9 * abs(e)
    h = 1e-4
    for atom, comp in ((0, 0), (100, 2)):   # an O and an H atom
        p = water.get_positions()
        p[atom, comp] += h
        water.set_positions(p)
        ep = water.get_potential_energy()
        p[atom, comp] -= 2 * h
        water.set_positions(p)
        em = water.get_potential_energy()
        p[atom, comp] += h
        water.set_positions(p)
        assert abs(-(ep - em) / (2 * h) - f[atom, comp]) < 1e-5
    stress = water.get_stress()          # Voigt xx yy zz yz xz xy
    cell0, vol = np.array(water.get_cell()), water.get_volume()
    for voigt, (i, j) in ((0, (0, 0)), (3, (1, 2))):
        es = []
        eps = np.zeros((3, 3))
        eps[i, j] = eps[j, i] = 1.0 if i == j else 0.5    # symmetric strain, d(eps_ij) = h
        for sign in (1, -1):
            water.set_cell(cell0 @ (np.eye(3) + sign * h * eps), scale_atoms=True)
            es.append(water.get_potential_energy())
        water.set_cell(cell0, scale_atoms=True)
        assert abs((es[0] - es[1]) / (2 * h) / vol - stress[voigt]) < 1e-6


def test_nve_md_conserves_energy(calc, water):
    water.calc = calc
    masses = water.get_masses()[:, None]
    p = np.random.default_rng(0).normal(size=(len(water), 3)) * np.sqrt(
        masses * units.kB * 300)
    water.set_momenta(p - p.sum(0) * masses / masses.sum())    # 300 K, no drift of the centre
    dyn = VelocityVerlet(water, timestep=0.5 * units.fs)
    etot = []
    dyn.attach(lambda: etot.append(water.get_total_energy()), interval=1)
    dyn.run(100)
    etot = np.array(etot)
    drift = np.max(np.abs(etot - etot[0])) / len(water)
    print(f"NVE 100 x 0.5 fs: max |E(t) - E(0)| = {drift:.3e} eV/atom")
    assert drift < DRIFT_BOUND_EV_PER_ATOM
    assert water.get_temperature() > 50       # the atoms did move


def test_clear_errors(calc):
    with pytest.raises(DPKerasError, match=r"element\(s\) \['C'\] are not in the model's type_map"):
        Atoms("CO", positions=[[0, 0, 0], [1.2, 0, 0]], calculator=calc).get_potential_energy()
    with pytest.raises(DPKerasError, match="no head 'other'"):
        DP("water-se-e2-a-mini", head="other")
