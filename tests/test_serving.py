"""Freezing and serving: SavedModels run without dpkeras; dp-test-style error reports."""

import os
import subprocess
import sys

import numpy as np

from conftest import ROOT, TESTDATA, WATER, max_rel
from dpkeras.infer import DeepPot

PB = os.path.join(TESTDATA, "water_se_e2_a", "frozen_model.pb")

NO_DPKERAS = r"""
import sys, json
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] == 'dpkeras':
            raise ImportError('dpkeras must not be needed to serve')
sys.meta_path.insert(0, Block())
import numpy as np, tensorflow as tf
obj = tf.saved_model.load(sys.argv[1])
d = np.load(sys.argv[2])
f = obj.signatures['serving_default']
out = f(coord=tf.constant(d['coord']), atype=tf.constant(d['atype']), box=tf.constant(d['box']))
np.savez(sys.argv[3], type_map=obj.type_map.numpy().astype(str), rcut=obj.rcut.numpy(),
         **{k: v.numpy() for k, v in out.items()})
"""


def _run(module, args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, "-m", module] + args, cwd=ROOT, env=env,
                          capture_output=True, text=True)


def test_frozen_savedmodel_serves_without_dpkeras(tmp_path):
    out_dir = tmp_path / "frozen"
    res = _run("dpkeras.freeze", [f"--checkpoint={PB}", f"--output={out_dir}"])
    assert res.returncode == 0, res.stderr
    ref = np.load(os.path.join(TESTDATA, "water_se_e2_a", "reference.npz"))
    coord = ref["coord"][:2].astype(np.float64).reshape(2, -1, 3)
    box = ref["box"][:2].astype(np.float64).reshape(2, 3, 3)
    atype = np.tile(ref["atype"][None], (2, 1)).astype(np.int32)
    np.savez(tmp_path / "in.npz", coord=coord, box=box, atype=atype)
    script = tmp_path / "serve.py"
    script.write_text(NO_DPKERAS)
    res = subprocess.run([sys.executable, str(script), str(out_dir), str(tmp_path / "in.npz"),
                          str(tmp_path / "out.npz")], cwd=str(tmp_path), capture_output=True,
                         text=True, env=dict(os.environ, PYTHONPATH=""))
    assert res.returncode == 0, res.stderr
    served = np.load(tmp_path / "out.npz")
    assert list(served["type_map"]) == ["O", "H"] and float(served["rcut"]) == 6.0
    e, f, v, ae, av = DeepPot(PB).eval(coord, box, ref["atype"], atomic=True)
    assert max_rel(served["energy"], e) < 1e-12
    assert max_rel(served["force"], f) < 1e-12
    assert max_rel(served["virial"], v) < 1e-12
    assert max_rel(served["atom_energy"], ae) < 1e-12


def test_dp_test_reports_errors_against_labels():
    from dpkeras.test import test_system

    res = _run("dpkeras.test", [f"--model={PB}", f"--system={WATER[3]}", "--numb_test=5"])
    assert res.returncode == 0, res.stderr
    assert "# number of test data : 5" in res.stdout
    expected = test_system(DeepPot(PB), WATER[3], 5)
    line = [ln for ln in res.stdout.splitlines() if ln.startswith("Force RMSE")][0]
    assert np.isclose(float(line.split(":")[1].split()[0]), expected["rmse_f"], rtol=1e-5)
    # a DeePMD-kit-trained model is accurate on its validation data
    assert expected["rmse_f"] < 0.3 and expected["rmse_e_atom"] < 0.01


def test_eval_rejects_unknown_atom_types_clearly():
    import pytest

    from dpkeras.errors import DPKerasError

    dp = DeepPot(PB)
    with pytest.raises(DPKerasError, match=r"atom_types must lie in \[0, 2\)"):
        dp.eval(np.zeros((1, 9)), None, [0, 1, 2])
