"""DeePMD-kit's Python inference API surface: ``DeepEval`` picks the class, ``DeepTensor.eval``
defaults to ``atomic=True``, ``DeepPot.eval_descriptor`` gives DeePMD-kit's descriptors, and the
getters answer as DeePMD-kit's."""

import os

import numpy as np
import pytest

from conftest import TESTDATA, max_rel
from dpkeras.errors import DPKerasError
from dpkeras.infer import DeepDipole, DeepEval, DeepPolar, DeepPot

ENERGY = ["water_se_e2_a", "water_se_e2_r", "water_se_e3", "water_dpa1", "water_dpa1_attn0",
          "water_dpa1_strip", "water_se_atten_v2", "water_se_e2_a_tebd", "water_hybrid",
          "water_hybrid_dpa1", "water_ener_fparam"]


@pytest.mark.parametrize("kind", ENERGY)
def test_eval_descriptor_matches_deepmd(kind):
    """DeePMD-kit 3.2's ``DeepPot.eval_descriptor`` on the fixture frames (float64 models)."""
    ref = np.load(os.path.join(TESTDATA, kind, "reference.npz"))
    dp = DeepPot(os.path.join(TESTDATA, kind, "frozen_model.pb"))
    n = ref["descriptor"].shape[0]
    box = ref["box"][:n] if "pbc" not in ref or bool(ref["pbc"]) else None
    desc = dp.eval_descriptor(ref["coord"][:n], box, ref["atype"])
    assert desc.shape == ref["descriptor"].shape
    assert max_rel(desc, ref["descriptor"]) < 1e-10


@pytest.mark.parametrize("kind,cls", [("water_se_e2_a", DeepPot), ("water_dipole", DeepDipole),
                                      ("water_polar", DeepPolar)])
def test_deep_eval_returns_the_class_of_the_model(kind, cls):
    dp = DeepEval(os.path.join(TESTDATA, kind, "frozen_model.pb"))
    assert type(dp) is cls and dp.kind == "pb"
    assert dp.get_dim_fparam() == 0 and dp.get_dim_aparam() == 0
    assert dp.get_sel_type() == ([] if cls is DeepPot else [0])


def test_deep_tensor_eval_defaults_to_atomic_like_deepmd():
    dp = DeepDipole(os.path.join(TESTDATA, "water_dipole", "frozen_model.pb"))
    ref = np.load(os.path.join(TESTDATA, "water_dipole", "reference.npz"))
    coord, box, atype = ref["coord"][:1], ref["box"][:1], ref["atype"]
    atomic = dp.eval(coord, box, atype)
    assert atomic.shape == (1, atype.size, 3)
    assert max_rel(atomic, ref["atom_dipole"][:1]) < 1e-10
    assert max_rel(dp.eval(coord, box, atype, atomic=False), ref["dipole"][:1]) < 1e-10
    with pytest.raises(DPKerasError, match="takes no fparam"):
        dp.eval(coord, box, atype, fparam=np.zeros((1, 1)))


def test_commands_hide_tensorflows_cpp_startup_noise():
    """``failed call to cuInit: ... CUDA error`` and the other C++ start-up lines read like
    failures to a new user on a CPU machine: hidden unless TF_CPP_MIN_LOG_LEVEL is set."""
    import subprocess
    import sys

    from conftest import ROOT

    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    pb = os.path.join(TESTDATA, "water_se_e2_a", "frozen_model.pb")
    res = subprocess.run([sys.executable, "-m", "dpkeras.show", pb, "type-map"], cwd=ROOT,
                         env=env, capture_output=True, text=True)
    assert res.returncode == 0 and "['O', 'H']" in res.stdout
    for noise in ("cuInit", "I0000", "absl::InitializeLog", "cuda drivers", "oneDNN"):
        assert noise not in res.stderr, res.stderr


def test_neighbor_stat_equals_dp_neighbor_stat():
    """``python -m dpkeras.neighbor_stat`` against ``dp --tf neighbor-stat`` (DeePMD-kit 3.2.0)
    on the shipped water and C/H/O systems (tests/data/neighbor_stat)."""
    import json
    import subprocess
    import sys

    from conftest import EXAMPLE_DATA, ROOT
    from dpkeras.neighbor_stat import neighbor_stat

    with open(os.path.join(TESTDATA, "neighbor_stat", "deepmd_3.2.0.json")) as f:
        cases = json.load(f)["cases"]
    for c in cases:
        d, count = neighbor_stat([os.path.join(EXAMPLE_DATA, c["systems"])], c["rcut"],
                                 c["type_map"], c["mixed_type"])
        assert round(d, 6) == c["min_nbor_dist"] and count.tolist() == c["max_nbor_size"]
    c = cases[0]
    res = subprocess.run([sys.executable, "-m", "dpkeras.neighbor_stat",
                          f"--system={os.path.join(EXAMPLE_DATA, c['systems'])}",
                          f"--rcut={c['rcut']}", "--type_map=O,H"], cwd=ROOT,
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "min_nbor_dist: 0.876301\nmax_nbor_size: [38 72]" in res.stdout


@pytest.mark.parametrize("extra,ref", [([], "dp_model_devi.out"),
                                       (["--relative=1.0", "--atomic"],
                                        "dp_model_devi_relative_atomic.out")])
def test_model_devi_writes_dp_model_devis_file_byte_for_byte(extra, ref, tmp_path):
    """Three DeePMD-kit models on 6 water frames: the same file as ``dp --tf model-devi``
    (DeePMD-kit 3.2.0, tests/data/model_devi)."""
    import shutil
    import subprocess
    import sys

    from conftest import ROOT

    folder = os.path.join(TESTDATA, "model_devi")
    shutil.copytree(os.path.join(folder, "sys"), tmp_path / "sys")
    models = ",".join(os.path.join(TESTDATA, m, "frozen_model.pb")
                      for m in ("water_se_e2_a", "water_se_e2_r", "water_se_e3"))
    env = dict(os.environ, PYTHONPATH=ROOT)
    res = subprocess.run([sys.executable, "-m", "dpkeras.model_devi", f"--models={models}",
                          "--system=sys", "--output=out.txt", "--frequency=10"] + extra,
                         cwd=tmp_path, env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    with open(os.path.join(folder, ref)) as f:
        assert (tmp_path / "out.txt").read_text() == f.read()
