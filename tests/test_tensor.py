"""Dipole and polarizability models: DeePMD-kit parity, Keras round trips, training."""

import json
import os

import numpy as np
import pytest

from conftest import EXAMPLE_DATA, TESTDATA, max_rel
from dpkeras.errors import DPKerasError
from dpkeras.infer import DeepDipole, DeepPolar, DeepPot

KINDS = {"water_dipole": (DeepDipole, "dipole", 3), "water_polar": (DeepPolar, "polar", 9)}


def _load(kind):
    cls, key, size = KINDS[kind]
    return cls(os.path.join(TESTDATA, kind, "frozen_model.pb")), key, size


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("case", ["", "nopbc_"])
def test_tensor_models_match_deepmd(kind, case):
    """Global and atomic tensors of DeePMD-kit-trained models, with the box and without."""
    dp, key, size = _load(kind)
    ref = np.load(os.path.join(TESTDATA, kind, "reference.npz"))
    coord, atype = ref[case + "coord"], ref[case + "atype"]
    nf, nat = coord.shape[0], atype.size
    box = ref["box"][:nf] if case == "" else None
    glob = dp.eval(coord, box, atype)
    atomic = dp.eval(coord, box, atype, atomic=True)
    assert glob.shape == (nf, size) and atomic.shape == (nf, nat, size)
    assert max_rel(glob, ref[case + key]) < 1e-10
    assert max_rel(atomic, ref[case + "atom_" + key]) < 1e-10
    assert np.all(atomic[:, atype == 1] == 0.0)   # H is not in sel_type


def test_tensor_frames_of_different_composition():
    """Frames with different atom orders go through the generic (unsorted) path."""
    dp, key, _ = _load("water_dipole")
    ref = np.load(os.path.join(TESTDATA, "water_dipole", "reference.npz"))
    coord = ref["nopbc_coord"].reshape(2, -1, 3)
    perm = np.random.default_rng(0).permutation(coord.shape[1])
    atype = np.stack([ref["nopbc_atype"], ref["nopbc_atype"][perm]])
    coord = np.stack([coord[0], coord[1][perm]])
    atomic = dp.eval(coord, None, atype, atomic=True)
    assert max_rel(dp.eval(coord, None, atype), ref["nopbc_dipole"]) < 1e-10
    assert max_rel(atomic[1], ref["nopbc_atom_dipole"][1][perm]) < 1e-10


def test_wrong_inference_class_is_a_clear_error():
    with pytest.raises(DPKerasError, match="DeepDipole"):
        DeepPot(os.path.join(TESTDATA, "water_dipole", "frozen_model.pb"))
    with pytest.raises(DPKerasError, match="DeepPolar"):
        DeepDipole(os.path.join(TESTDATA, "water_polar", "frozen_model.pb"))


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_tensor_model_keras_round_trip(tmp_path, kind):
    """get_config/from_config and a .keras file keep the DeePMD-kit numbers."""
    from dpkeras.export import save_model
    from dpkeras.model import TensorModel

    dp, key, _ = _load(kind)
    ref = np.load(os.path.join(TESTDATA, kind, "reference.npz"))
    clone = TensorModel.from_config(dp.model.get_config())
    assert clone.get_sel_type() == [0] and clone.get_model_type() == key
    out = str(tmp_path / "m.keras")
    save_model(dp.model, out)
    back = type(dp)(out)
    assert max_rel(back.eval(ref["coord"], ref["box"], ref["atype"], atomic=True),
                   ref["atom_" + key]) < 1e-10


def test_rotation_matrix_rotates_with_the_frame():
    """Rotating the coordinates rotates the dipole: mu(Q r) = Q mu(r)."""
    dp, _, _ = _load("water_dipole")
    ref = np.load(os.path.join(TESTDATA, "water_dipole", "reference.npz"))
    coord = ref["nopbc_coord"][:1].reshape(-1, 3)
    q, _ = np.linalg.qr(np.random.default_rng(1).normal(size=(3, 3)))
    mu = dp.eval(coord, None, ref["nopbc_atype"])
    mu_rot = dp.eval(coord @ q.T, None, ref["nopbc_atype"])
    assert max_rel(mu_rot, mu @ q.T) < 1e-12


def test_tensor_config_checks():
    from dpkeras.config import normalize_model

    base = {"type_map": ["O", "H"],
            "descriptor": {"type": "se_e2_a", "sel": [4, 8], "rcut": 4.0, "rcut_smth": 3.5}}
    m = normalize_model(dict(base, fitting_net={"type": "polar", "pol_type": 0, "scale": 2.0}))
    assert m["fitting_net"]["sel_type"] == [0] and m["fitting_net"]["scale"] == [2.0, 2.0]
    assert m["fitting_net"]["fit_diag"] is True and m["fitting_net"]["shift_diag"] is True
    with pytest.raises(DPKerasError, match="sel_type"):
        normalize_model(dict(base, fitting_net={"type": "dipole", "sel_type": [2]}))
    with pytest.raises(DPKerasError, match="se_e2_a"):
        normalize_model(dict(base, descriptor={"type": "se_e2_r", "sel": [4, 8]},
                             fitting_net={"type": "dipole"}))
    with pytest.raises(DPKerasError, match="numb_fparam"):
        normalize_model(dict(base, fitting_net={"type": "dipole", "numb_fparam": 1}))


def test_tensor_labels_are_read():
    from dpkeras.data.system import DeepmdSystem

    root = os.path.join(EXAMPLE_DATA, "water_tensor")
    s = DeepmdSystem(os.path.join(root, "polar", "training_data_reformat", "atomic_system"),
                     ["O", "H"])
    assert s.labels["atomic_polarizability"].shape == (s.nframes, s.natoms, 9)
    assert np.all(s.labels["atomic_polarizability"][:, s.atype == 1] == 0.0)
    s = DeepmdSystem(os.path.join(root, "dipole", "training_data_reformat", "global_system"),
                     ["O", "H"])
    assert s.labels["dipole"].shape == (s.nframes, 3) and not s.pbc
