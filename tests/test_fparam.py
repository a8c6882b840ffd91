"""``numb_fparam`` / ``numb_aparam`` energy models: DeePMD-kit parity and input checks."""

import os

import numpy as np
import pytest

from conftest import TESTDATA, max_rel
from dpkeras.errors import DPKerasError
from dpkeras.infer import DeepPot

KEYS = ("energy", "force", "virial", "atom_energy", "atom_virial")
FIXTURE = os.path.join(TESTDATA, "water_ener_fparam")


@pytest.mark.parametrize("case", ["", "nopbc_"])
def test_fparam_aparam_model_matches_deepmd(case):
    dp = DeepPot(os.path.join(FIXTURE, "frozen_model.pb"))
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
