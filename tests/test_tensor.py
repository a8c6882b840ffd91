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


@pytest.mark.parametrize("kind,path", [(k, "frozen_model.pb") for k in sorted(KINDS)] +
                         [("water_dipole", "model.dp")])
@pytest.mark.parametrize("case", ["", "nopbc_"])
def test_tensor_models_match_deepmd(kind, path, case):
    """Global and atomic tensors of DeePMD-kit-trained models (frozen graphs; DeePMD-kit's .dp
    of the dipole model, its polar .dp DeePMD-kit cannot read back itself), with the box and
    without."""
    cls, key, size = KINDS[kind]
    dp = cls(os.path.join(TESTDATA, kind, path))
    ref = np.load(os.path.join(TESTDATA, kind, "reference.npz"))
    coord, atype = ref[case + "coord"], ref[case + "atype"]
    nf, nat = coord.shape[0], atype.size
    box = ref["box"][:nf] if case == "" else None
    glob = dp.eval(coord, box, atype, atomic=False)
    atomic = dp.eval(coord, box, atype)          # DeePMD-kit's default: atomic=True
    assert np.array_equal(atomic, dp.eval(coord, box, atype, atomic=True))
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
    assert max_rel(dp.eval(coord, None, atype, atomic=False), ref["nopbc_dipole"]) < 1e-10
    assert max_rel(atomic[1], ref["nopbc_atom_dipole"][1][perm]) < 1e-10


def test_wrong_inference_class_is_a_clear_error():
    with pytest.raises(DPKerasError, match="DeepDipole"):
        DeepPot(os.path.join(TESTDATA, "water_dipole", "frozen_model.pb"))
    with pytest.raises(DPKerasError, match="DeepPolar"):
        DeepDipole(os.path.join(TESTDATA, "water_polar", "frozen_model.pb"))


@pytest.mark.parametrize("fmt", [".keras", ""])
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_tensor_model_keras_round_trip(tmp_path, kind, fmt):
    """get_config/from_config, a .keras file and a SavedModel keep the DeePMD-kit numbers."""
    from dpkeras.export import save_model
    from dpkeras.model import TensorModel

    dp, key, _ = _load(kind)
    ref = np.load(os.path.join(TESTDATA, kind, "reference.npz"))
    clone = TensorModel.from_config(dp.model.get_config())
    assert clone.get_sel_type() == [0] and clone.get_model_type() == key
    out = str(tmp_path / ("m" + fmt))
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
    mu = dp.eval(coord, None, ref["nopbc_atype"], atomic=False)
    mu_rot = dp.eval(coord @ q.T, None, ref["nopbc_atype"], atomic=False)
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


def _tensor_input(kind, tmp_path):
    """A tiny dipole/polar input on DeePMD-kit's water_tensor example data (written to disk)."""
    root = os.path.join(EXAMPLE_DATA, "water_tensor", kind)
    fit = {"type": kind, "sel_type": [0], "neuron": [16, 16], "resnet_dt": True, "seed": 1}
    systems = ["atomic_system", "global_system"]
    lr = {"type": "exp", "start_lr": 0.01, "stop_lr": 0.001, "decay_steps": 10}
    if kind == "polar":
        # the global polar labels of this example disagree with the atomic ones of the
        # validation set by ~0.1 on the diagonal; train on the atomic labels only
        fit.update(fit_diag=False, shift_diag=True, neuron=[32, 32])
        systems = systems[:1]
        lr.update(start_lr=0.02, stop_lr=0.002)
    cfg = {
        "model": {"type_map": ["O", "H"],
                  "descriptor": {"type": "se_e2_a", "sel": [20, 40], "rcut": 4.0,
                                 "rcut_smth": 3.5, "neuron": [4, 8, 16], "axis_neuron": 4,
                                 "seed": 1},
                  "fitting_net": fit},
        "learning_rate": lr,
        "loss": {"type": "tensor", "pref": 1.0, "pref_atomic": 1.0},
        "training": {
            "training_data": {"systems": [
                os.path.join(root, "training_data_reformat", s) for s in systems],
                "batch_size": "auto"},
            "validation_data": {"systems": [
                os.path.join(root, "validation_data_reformat", "atomic_system")],
                "batch_size": 2, "numb_btch": 2},
            "numb_steps": 100, "seed": 3, "disp_freq": 20, "save_freq": 100},
    }
    path = tmp_path / "input.json"
    path.write_text(json.dumps(cfg))
    return str(path)


def _lcurve(path):
    with open(path) as f:
        head = f.readline().split()[1:]
    return head, np.loadtxt(path, ndmin=2)


def _atomic_rmse(run, kind):
    """RMSE of the atomic tensors of the trained model in ``run`` on the first 10 frames of the
    validation atomic system, over the selected (O) atoms."""
    from dpkeras import checkpoint
    from dpkeras.data.system import DeepmdSystem
    from dpkeras.model.build import build_model

    ckpt, meta = checkpoint.read_meta(run)
    model = build_model(meta["model"])
    checkpoint.restore(ckpt, model)
    dp = KINDS[f"water_{kind}"][0].from_model(model)
    label = "atomic_dipole" if kind == "dipole" else "atomic_polarizability"
    s = DeepmdSystem(os.path.join(EXAMPLE_DATA, "water_tensor", kind, "validation_data_reformat",
                                  "atomic_system"), ["O", "H"])
    pred = dp.eval(s.coord[:10], s.box[:10] if s.pbc else None, s.atype, atomic=True)
    o = s.atype == 0
    return float(np.sqrt(np.mean((pred[:, o] - s.labels[label][:10, o]) ** 2)))


@pytest.mark.parametrize("kind", ["dipole", "polar"])
def test_tensor_model_trains_and_validation_error_falls(tmp_path, kind):
    """``python -m dpkeras.train`` on water_tensor: DeePMD-kit's lcurve columns, and the atomic
    error on held-out frames falls below that of the untrained model (with its statistics)."""
    import subprocess
    import sys

    from conftest import ROOT

    inp = _tensor_input(kind, tmp_path)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    for out, steps in (("run0", 0), ("run", 100)):
        proc = subprocess.run([sys.executable, "-m", "dpkeras.train", f"--input={inp}",
                               f"--output_dir={tmp_path / out}", f"--numb_steps={steps}",
                               "--skip_neighbor_stat"], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
    head, lc = _lcurve(tmp_path / "run" / "lcurve.out")
    assert head == ["step", "rmse_val", "rmse_trn", "rmse_lc_val", "rmse_lc_trn", "rmse_gl_val",
                    "rmse_gl_trn", "lr"]
    assert lc[-1, 0] == 100 and np.all(np.isfinite(lc[:, 1:3]))
    before, after = _atomic_rmse(tmp_path / "run0", kind), _atomic_rmse(tmp_path / "run", kind)
    print(f"{kind}: held-out atomic RMSE {before:.4f} -> {after:.4f}")
    assert after < 0.95 * before, (before, after)


def test_dp_test_reports_tensor_errors():
    """``dpkeras.test`` on a dipole model: global RMSE (and /sqrtN, /N with N the O atoms) on a
    global system, the atomic RMSE over O atoms on an atomic system."""
    from dpkeras.test import report, test_system

    dp, _, _ = _load("water_dipole")
    root = os.path.join(EXAMPLE_DATA, "water_tensor", "dipole", "validation_data_reformat")
    res = test_system(dp, os.path.join(root, "global_system"), 2)
    assert res["rmse_t_n"] == pytest.approx(res["rmse_t"] / 64)
    assert "Dipole  RMSE/sqrtN" in report(res)
    res = test_system(dp, os.path.join(root, "atomic_system"), 2)
    ref = np.load(os.path.join(TESTDATA, "water_dipole", "reference.npz"))
    label = np.load(os.path.join(root, "atomic_system", "set.000", "atomic_dipole.npy"))
    d = (ref["nopbc_atom_dipole"] - label[:2].reshape(2, -1, 3))[:, ref["nopbc_atype"] == 0]
    assert res["rmse_t"] == pytest.approx(np.sqrt(np.mean(d * d)), rel=1e-10)


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("case", ["", "nopbc_"])
def test_eval_full_matches_deepmd(kind, case):
    """Component-wise forces -dT_k/dr and virials (DeePMD-kit's eval_full), PBC and not."""
    dp, key, size = _load(kind)
    ref = np.load(os.path.join(TESTDATA, kind, "reference.npz"))
    n = ref[case + key + "_force"].shape[0]
    coord, atype = ref[case + "coord"][:n], ref[case + "atype"]
    box = ref["box"][:n] if case == "" else None
    t, f, v, at, av = dp.eval_full(coord, box, atype, atomic=True)
    assert f.shape == (n, size, atype.size, 3) and av.shape == (n, size, atype.size, 9)
    assert max_rel(t, ref[case + key][:n]) < 1e-10
    assert max_rel(at, ref[case + "atom_" + key][:n]) < 1e-10
    assert max_rel(f, ref[case + key + "_force"]) < 1e-10
    assert max_rel(v, ref[case + key + "_virial"]) < 1e-10
    if case + key + "_atom_virial" in ref:
        assert max_rel(av, ref[case + key + "_atom_virial"]) < 1e-10


def test_atomic_labels_of_the_sel_type_atoms_only_are_read(tmp_path):
    """DeePMD-kit 2.x stores atomic tensor labels for the sel_type atoms only
    (``atomic_dipole.npy [nf, nsel * 3]``, as v2.2's examples/water_multi_task/ener_dipole); the
    same labels in that layout load to the same arrays as in the all-atom layout."""
    import shutil

    from dpkeras.data.system import DeepmdSystem

    src = os.path.join(EXAMPLE_DATA, "water_tensor", "dipole", "training_data_reformat",
                       "atomic_system")
    dst = tmp_path / "sel_only"
    shutil.copytree(src, dst)
    full = DeepmdSystem(src, ["O", "H"], sel_type=[0])
    types = np.loadtxt(os.path.join(src, "type.raw"), dtype=int)
    lab = np.load(dst / "set.000" / "atomic_dipole.npy")
    np.save(dst / "set.000" / "atomic_dipole.npy",
            lab.reshape(len(lab), -1, 3)[:, types == 0].reshape(len(lab), -1))
    assert np.load(dst / "set.000" / "atomic_dipole.npy").shape == (80, 64 * 3)
    sel_only = DeepmdSystem(str(dst), ["O", "H"], sel_type=[0])
    np.testing.assert_array_equal(sel_only.labels["atomic_dipole"],
                                  full.labels["atomic_dipole"])
    with pytest.raises(DPKerasError, match="labels of the sel_type atoms only can be read for a "
                                           "model with a sel_type"):
        DeepmdSystem(str(dst), ["O", "H"])
