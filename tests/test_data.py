"""Reading DeePMD-kit systems (npy and HDF5), type remapping, batch sizes, system sampling."""

import os
import shutil

import h5py
import numpy as np
import pytest

from conftest import NOPBC, WATER
from dpkeras.data.pipeline import DataSystems, parse_batch_size, system_probs
from dpkeras.data.system import DeepmdSystem
from dpkeras.errors import DPKerasError


def test_water_system_reads_all_sets():
    s = DeepmdSystem(WATER[1], ["O", "H"])
    assert s.natoms == 192 and s.nframes == 160 and s.pbc
    assert s.coord.shape == (160, 192, 3) and s.box.shape == (160, 3, 3)
    assert s.labels["energy"].shape == (160,) and s.labels["force"].shape == (160, 192, 3)
    assert (s.atype == 0).sum() == 64


def test_types_are_remapped_by_element_name():
    raw = np.loadtxt(os.path.join(NOPBC[0], "type.raw"), dtype=int)   # file order C, H, O
    s = DeepmdSystem(NOPBC[0], ["H", "O", "C", "N"])
    lookup = np.array([2, 0, 1])
    # atoms come sorted by model type; sort_idx maps back to the file order
    assert list(s.atype) == sorted(s.atype)
    assert np.array_equal(s.atype, lookup[raw][s.sort_idx])
    coord = np.load(os.path.join(NOPBC[0], "set.000", "coord.npy")).reshape(s.nframes, -1, 3)
    assert np.array_equal(s.coord, coord[:, s.sort_idx])
    assert not s.pbc


def test_element_missing_from_type_map_is_named():
    with pytest.raises(DPKerasError, match=r"\['C'\].*not in the model's type_map"):
        DeepmdSystem(NOPBC[0], ["H", "O"])


def test_missing_system_and_wrong_shape_are_clear(tmp_path):
    with pytest.raises(DPKerasError, match="nowhere: data system not found"):
        DeepmdSystem(str(tmp_path / "nowhere"), ["O", "H"])
    bad = tmp_path / "bad"
    shutil.copytree(WATER[0], bad)
    os.chmod(bad / "set.000", 0o755)
    f = bad / "set.000" / "force.npy"
    os.chmod(f, 0o644)
    np.save(f, np.zeros((80, 10)))
    with pytest.raises(DPKerasError, match=r"force.npy: wrong shape \(80, 10\), expected \(80, 576\)"):
        DeepmdSystem(str(bad), ["O", "H"])


def test_hdf5_system_equals_npy_system(tmp_path):
    src = DeepmdSystem(WATER[3], ["O", "H"])
    path = tmp_path / "water.h5"
    with h5py.File(path, "w") as f:
        g = f.create_group("sys/water3")
        g["type.raw"] = np.loadtxt(os.path.join(WATER[3], "type.raw"), dtype=int)
        g["type_map.raw"] = np.array([b"O", b"H"])
        for name in ("coord", "box", "energy", "force"):
            g[f"set.000/{name}.npy"] = np.load(os.path.join(WATER[3], "set.000", name + ".npy"))
    s = DeepmdSystem(f"{path}#/sys/water3", ["H", "O"])   # other type order: H sorted first
    back, src_back = np.argsort(s.sort_idx), np.argsort(src.sort_idx)   # to file order
    assert np.array_equal(s.coord[:, back], src.coord[:, src_back])
    assert np.array_equal(s.labels["force"][:, back], src.labels["force"][:, src_back])
    assert np.array_equal(s.labels["energy"], src.labels["energy"])
    assert np.array_equal(s.atype[back], 1 - src.atype[src_back])


def test_batch_size_auto_rules():
    assert parse_batch_size("auto", 192, "x") == 1
    assert parse_batch_size("auto", 7, "x") == 5
    assert parse_batch_size("auto:64", 10, "x") == 7
    assert parse_batch_size(3, 10, "x") == 3
    with pytest.raises(DPKerasError, match="batch_size"):
        parse_batch_size("big", 10, "x")


def test_system_probabilities_follow_deepmd_definitions():
    nb = [10, 30, 20, 40]
    assert np.allclose(system_probs("prob_uniform", None, nb, "x"), 0.25)
    assert np.allclose(system_probs("prob_sys_size", None, nb, "x"), np.array(nb) / 100)
    p = system_probs("prob_sys_size;0:2:0.5;2:4:0.5", None, nb, "x")
    assert np.allclose(p, [0.125, 0.375, 0.5 * 20 / 60, 0.5 * 40 / 60])
    assert np.allclose(system_probs("prob_uniform", [1, 1, 2, 0], nb, "x"), [.25, .25, .5, 0])


def test_sampling_is_a_pure_function_of_seed_and_step_and_follows_probs():
    data = DataSystems({"systems": NOPBC, "batch_size": 2, "auto_prob": "prob_uniform"},
                       ["C", "H", "O"])
    assert data.sample(3, 17)[0] == data.sample(3, 17)[0]
    assert np.array_equal(data.sample(3, 17)[1], data.sample(3, 17)[1])
    counts = np.bincount([data.sample(3, s)[0] for s in range(3000)], minlength=3)
    assert np.allclose(counts / 3000, 1 / 3, atol=0.03)


def test_pipeline_batches_carry_neighbor_lists():
    data = DataSystems({"systems": WATER[:2], "batch_size": 2}, ["O", "H"])
    batch = next(iter(data.dataset(seed=1, start_step=0, stop_step=1, rcut=6.0, sel=[46, 92])))
    assert batch["coord"].shape == (2, 192, 3)
    assert batch["nlist"].shape == (2, 192, 138) and batch["shift"].shape == (2, 192, 138, 3)
    assert float(batch["find_energy"]) == 1.0 and float(batch["find_virial"]) == 0.0
