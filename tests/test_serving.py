"""Freezing and serving: SavedModels run without dpkeras; dp-test-style error reports."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import dpkeras

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
coord, atype, box = (tf.constant(d[k]) for k in ('coord', 'atype', 'box'))
f = obj.signatures['serving_default']
res = {k: v.numpy() for k, v in f(coord=coord, atype=atype, box=box).items()}
res.update({'rank1_' + k: v.numpy() for k, v in f(coord=coord, atype=atype[0], box=box).items()})
res.update({'nopbc_' + k: v.numpy()
            for k, v in obj.signatures['serving_nopbc'](coord=coord, atype=atype[0]).items()})
errors = {}
bad_type = np.array(d['atype'][0]); bad_type[-1] = 7
for name, kw in [('bad_type', dict(coord=coord, atype=tf.constant(bad_type), box=box)),
                 ('bad_rank', dict(coord=coord, atype=atype[None], box=box)),
                 ('bad_coord', dict(coord=coord[0], atype=atype[0], box=box)),
                 ('bad_natoms', dict(coord=coord, atype=atype[0, :-1], box=box))]:
    try:
        f(**kw)
        errors[name] = 'no error'
    except tf.errors.InvalidArgumentError as exc:
        errors[name] = exc.message
meta = {'type_map': obj.type_map.numpy().astype(str).tolist(), 'rcut': float(obj.rcut.numpy()),
        'heads': obj.heads.numpy().astype(str).tolist(),
        'descriptor': obj.descriptor.numpy().decode(),
        'version': obj.dpkeras_version.numpy().decode(), 'errors': errors,
        'signatures': sorted(obj.signatures)}
np.savez(sys.argv[3], **res)
print(json.dumps(meta))
"""


def _run(module, args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, "-m", module] + args, cwd=ROOT, env=env,
                          capture_output=True, text=True)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The water se_e2_a graph frozen by ``python -m dpkeras.freeze``, two input frames and
    DeepPot's outputs on them."""
    tmp = tmp_path_factory.mktemp("serving")
    out_dir = tmp / "frozen"
    res = _run("dpkeras.freeze", [f"--checkpoint={PB}", f"--output={out_dir}"])
    assert res.returncode == 0, res.stderr
    ref = np.load(os.path.join(TESTDATA, "water_se_e2_a", "reference.npz"))
    coord = ref["coord"][:2].astype(np.float64).reshape(2, -1, 3)
    box = ref["box"][:2].astype(np.float64).reshape(2, 3, 3)
    atype = np.tile(ref["atype"][None], (2, 1)).astype(np.int32)
    np.savez(tmp / "in.npz", coord=coord, box=box, atype=atype)
    dp = DeepPot(PB)
    expect = dict(zip(("energy", "force", "virial", "atom_energy"),
                      dp.eval(coord, box, ref["atype"], atomic=True)))
    expect_nopbc = dict(zip(("energy", "force", "virial"), dp.eval(coord, None, ref["atype"])))
    return tmp, out_dir, expect, expect_nopbc


def test_frozen_savedmodel_serves_without_dpkeras(served):
    tmp, out_dir, expect, expect_nopbc = served
    script = tmp / "serve.py"
    script.write_text(NO_DPKERAS)
    res = subprocess.run([sys.executable, str(script), str(out_dir), str(tmp / "in.npz"),
                          str(tmp / "out.npz")], cwd=str(tmp), capture_output=True,
                         text=True, env=dict(os.environ, PYTHONPATH="", TF_CPP_MIN_LOG_LEVEL="3"))
    assert res.returncode == 0, res.stderr
    meta = json.loads(res.stdout.strip().splitlines()[-1])
    assert meta["type_map"] == ["O", "H"] and meta["rcut"] == 6.0
    assert meta["heads"] == ["Default"] and meta["descriptor"] == "se_e2_a"
    assert meta["version"] == dpkeras.__version__
    assert meta["signatures"] == ["serving_default", "serving_nopbc"]
    out = np.load(tmp / "out.npz")
    for k, v in expect.items():   # atom_energy: DeepPot [nf, nat, 1], served [nf, nat]
        assert max_rel(out[k], v) < 1e-12, k
        assert max_rel(out["rank1_" + k], v) < 1e-12, k
    for k, v in expect_nopbc.items():
        assert max_rel(out["nopbc_" + k], v) < 1e-12, k
    errors = meta["errors"]
    assert "atype must be < ntypes=2" in errors["bad_type"]
    assert "atype must have shape [natoms] or [nframes, natoms]" in errors["bad_rank"]
    assert "Shape of tensor coord [192,3] is not compatible with expected shape [?,?,3]" \
        in errors["bad_coord"]
    assert "atype has] [191] [atoms but coord" in errors["bad_natoms"]


def test_saved_model_cli_runs_the_signature(served):
    tmp, out_dir, expect, _ = served
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    cmd = [cli] if os.path.exists(cli) else [sys.executable, "-m",
                                             "tensorflow.python.tools.saved_model_cli"]
    inputs = ";".join(f"{k}={tmp / 'in.npz'}[{k}]" for k in ("coord", "atype", "box"))
    res = subprocess.run(cmd + ["run", "--dir", str(out_dir), "--tag_set", "serve",
                                "--signature_def", "serving_default", "--inputs", inputs,
                                "--outdir", str(tmp / "cli_out")],
                         capture_output=True, text=True,
                         env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert res.returncode == 0, res.stderr[-2000:]
    for k, v in expect.items():
        assert max_rel(np.load(tmp / "cli_out" / f"{k}.npy"), v) < 1e-12, k


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
