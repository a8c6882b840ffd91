"""``numb_fparam`` / ``numb_aparam`` energy models: DeePMD-kit parity and input checks."""

import os

import numpy as np
import pytest

from conftest import TESTDATA, max_rel
from dpkeras.errors import DPKerasError
from dpkeras.infer import DeepPot

KEYS = ("energy", "force", "virial", "atom_energy", "atom_virial")
FIXTURE = os.path.join(TESTDATA, "water_ener_fparam")


@pytest.mark.parametrize("path", ["frozen_model.pb", "model.dp"])
@pytest.mark.parametrize("case", ["", "nopbc_"])
def test_fparam_aparam_model_matches_deepmd(case, path):
    dp = DeepPot(os.path.join(FIXTURE, path))
    assert (dp.get_dim_fparam(), dp.get_dim_aparam()) == (1, 1)
    ref = np.load(os.path.join(FIXTURE, "reference.npz"))
    box = ref["box"][: ref[case + "coord"].shape[0]] if case == "" else None
    out = dp.eval(ref[case + "coord"], box, ref[case + "atype"], atomic=True,
                  fparam=ref[case + "fparam"], aparam=ref[case + "aparam"])
    for got, key in zip(out, KEYS):
        assert max_rel(got, ref[case + key]) < 1e-10, key


def test_fparam_changes_the_energy_and_is_checked():
    dp = DeepPot(os.path.join(FIXTURE, "frozen_model.pb"))
    ref = np.load(os.path.join(FIXTURE, "reference.npz"))
    coord, atype = ref["nopbc_coord"][:1], ref["nopbc_atype"]
    aparam = ref["nopbc_aparam"][:1]
    e1 = dp.eval(coord, None, atype, fparam=[300.0], aparam=aparam)[0]
    e2 = dp.eval(coord, None, atype, fparam=[310.0], aparam=aparam)[0]
    assert abs(e1 - e2).max() > 1e-6
    with pytest.raises(DPKerasError, match="fparam"):
        dp.eval(coord, None, atype, aparam=aparam)
    with pytest.raises(DPKerasError, match="aparam"):
        dp.eval(coord, None, atype, fparam=[300.0], aparam=np.zeros(5))


def test_fparam_keras_round_trip(tmp_path):
    """The parameter statistics travel with the model (.keras)."""
    from dpkeras.export import save_model

    dp = DeepPot(os.path.join(FIXTURE, "frozen_model.pb"))
    out = str(tmp_path / "m.keras")
    save_model(dp.model, out)
    ref = np.load(os.path.join(FIXTURE, "reference.npz"))
    e = DeepPot(out).eval(ref["coord"], ref["box"], ref["atype"], fparam=ref["fparam"],
                          aparam=ref["aparam"])[0]
    assert max_rel(e, ref["energy"]) < 1e-10


def test_fparam_aparam_training_reads_labels_and_sets_statistics(tmp_path):
    """fparam.npy / aparam.npy are read, normalized with DeePMD-kit's statistics and fed to the
    fitting during training; a system without fparam.npy is a clear error."""
    import shutil

    from conftest import WATER, small_input
    from dpkeras.config import normalize
    from dpkeras.trainer import Trainer

    sysdir = tmp_path / "sys"
    shutil.copytree(WATER[0], sysdir)
    coord = np.load(sysdir / "set.000" / "coord.npy")
    nf, nat = coord.shape[0], coord.shape[1] // 3
    fparam = 300.0 + 10.0 * np.sin(np.arange(nf))[:, None]
    aparam = np.random.default_rng(0).random((nf, nat))
    np.save(sysdir / "set.000" / "fparam.npy", fparam)
    np.save(sysdir / "set.000" / "aparam.npy", aparam)
    cfg = small_input([str(sysdir)], numb_steps=2)
    cfg["model"]["fitting_net"].update(numb_fparam=1, numb_aparam=1)
    cfg["model"]["data_stat_nbatch"] = 1000
    model = Trainer(normalize(cfg), str(tmp_path / "run"), skip_neighbor_stat=True,
                    jit_compile=False).run()
    f = model.fitting
    assert np.allclose(f.fparam_avg.numpy(), fparam.mean())
    assert np.allclose(f.fparam_inv_std.numpy(), 1.0 / fparam.std())
    assert np.allclose(f.aparam_avg.numpy(), aparam.mean())
    os.remove(sysdir / "set.000" / "fparam.npy")
    with pytest.raises(DPKerasError, match="fparam.npy"):
        Trainer(normalize(cfg), str(tmp_path / "run2"), skip_neighbor_stat=True,
                jit_compile=False).run()
