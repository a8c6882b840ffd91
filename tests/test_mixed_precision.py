"""DeePMD-kit's ``training.mixed_precision`` (TF backend): networks stored in float32, hidden
layers computed in float16/bfloat16, float16 with dynamic loss scaling; on real water data."""

import json
import os

import keras
import numpy as np
import pytest

from conftest import TESTDATA, WATER, small_input
from dpkeras.config import normalize
from dpkeras.data.system import DeepmdSystem
from dpkeras.errors import DPKerasError
from dpkeras.model.build import build_model
from dpkeras.network import DenseStack
from dpkeras.trainer import Trainer


def _stacks(model):
    return [layer for layer in model._flatten_layers() if isinstance(layer, DenseStack)]


def test_options_are_checked_as_deepmd_kit_does():
    """DeePMD-kit's TF trainer accepts [float32, float16|bfloat16] only, so it refuses its own
    example water/se_e2_a_mixed_prec (output_prec float64); so do we, with its reason."""
    example = json.load(open(os.path.join(TESTDATA, "deepmd_examples",
                                          "water_se_e2_a_mixed_prec_input.json")))
    with pytest.raises(DPKerasError, match=r"training\.mixed_precision: unsupported option "
                                           r"\[output_prec, compute_prec\]: \[float64, float16\]"):
        normalize(example)
    cfg = small_input(WATER[:1])
    cfg["training"]["mixed_precision"] = {"compute_prec": "float8", "output_prec": "float32"}
    with pytest.raises(DPKerasError, match=r"\[float32, float8\]"):
        normalize(cfg)
    cfg["training"]["mixed_precision"] = {"compute_prec": "bfloat16"}
    with pytest.raises(DPKerasError, match=r"training\.mixed_precision: expected"):
        normalize(cfg)
    example["training"]["mixed_precision"]["output_prec"] = "float32"
    norm = normalize(example)
    assert norm["model"]["descriptor"]["precision"] == "float32"
    assert norm["model"]["fitting_net"]["precision"] == "float32"


def _mixed(numb_steps, compute_prec):
    cfg = small_input(WATER[:2], WATER[3:], numb_steps=numb_steps, disp_freq=numb_steps // 3,
                      save_freq=numb_steps)
    cfg["training"]["mixed_precision"] = {"output_prec": "float32",
                                          "compute_prec": compute_prec}
    return cfg


def test_float16_trains_with_dynamic_loss_scaling(tmp_path):
    """float16: Keras' LossScaleOptimizer around Adam (DeePMD-kit: TF's mixed-precision graph
    rewrite); 21 steps stay finite."""
    trainer = Trainer(normalize(_mixed(21, "float16")), str(tmp_path))
    _, optimizer, _ = trainer.build()
    assert isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
    model = Trainer(normalize(_mixed(21, "float16")), str(tmp_path / "run")).run()
    assert all(s.compute_prec == "float16" for s in _stacks(model))
    lc = np.loadtxt(tmp_path / "run" / "lcurve.out", ndmin=2)
    assert np.all(np.isfinite(lc[:, 1:])), lc


def test_bfloat16_trains_water_and_saves_float32_networks(tmp_path):
    compute_prec = "bfloat16"
    """60 steps: the loss falls and stays finite; every network computes its hidden layers in
    bfloat16 (the same weights in a float32 model give energies that differ by more than
    float32 rounding and less than bfloat16's); no loss scaling; the saved model is the float32
    networks and evaluates in float32."""
    cfg = _mixed(60, compute_prec)
    trainer = Trainer(normalize(cfg), str(tmp_path))
    model = trainer.run()
    lc = np.loadtxt(tmp_path / "lcurve.out", ndmin=2)
    assert np.all(np.isfinite(lc[:, 1:])) and lc[-1, 1] < lc[0, 1], lc[:, 1]
    stacks = _stacks(model)
    assert stacks and all(s.compute_prec == compute_prec for s in stacks)
    assert all(v.dtype == "float32" for s in stacks for v in s.weights)
    twin = build_model(normalize(cfg)["model"])          # no mixed precision: float32 compute
    assert all(s.compute_prec is None for s in _stacks(twin))
    twin.set_variables(model.get_variables(), "the trained model")
    s = DeepmdSystem(WATER[3], ["O", "H"])
    from dpkeras.infer import DeepPot

    e_low = DeepPot.from_model(model).eval(s.coord[:1], s.box[:1], s.atype)[0]
    e_32 = DeepPot.from_model(twin).eval(s.coord[:1], s.box[:1], s.atype)[0]
    rel = abs(float(e_low[0, 0] - e_32[0, 0])) / abs(float(e_32[0, 0]))
    assert 1e-7 < rel < 30 * 2 ** -8, rel
    # a saved model is its float32 networks: it evaluates in float32 (as the twin)
    path = str(tmp_path / "m.keras")
    model.save(path)
    again = keras.saving.load_model(path)
    assert all(s.compute_prec is None for s in _stacks(again))
    e_saved = DeepPot.from_model(again).eval(s.coord[:1], s.box[:1], s.atype)[0]
    assert e_saved[0, 0] == pytest.approx(e_32[0, 0], rel=1e-12)
    _, optimizer, _ = Trainer(normalize(cfg), str(tmp_path / "again")).build()
    assert not isinstance(optimizer, keras.optimizers.LossScaleOptimizer)


def test_deepmd_kit_float16_graph_reads_and_evaluates_in_float16():
    """A graph DeePMD-kit 3.2.0 trained with ``mixed_precision`` float16 (weights stored float32,
    read through the ``Cast`` to float16 before each product; its script says ``precision``
    "default" for the float32 weights) loads with its hidden layers computed in float16, and
    gives DeePMD-kit's numbers to float16's precision (the two codes' float16 kernels round
    differently: ~1e-3 of the largest force, measured 1.0e-3)."""
    from dpkeras.infer import DeepPot

    fixture = os.path.join(TESTDATA, "water_mixed_prec")
    ref = np.load(os.path.join(fixture, "reference.npz"))
    dp = DeepPot(os.path.join(fixture, "frozen_model.pb"))
    stacks = _stacks(dp.model)
    assert stacks and {s.compute_prec for s in stacks} == {"float16"}
    assert {w.dtype for s in stacks for w in s.weights} == {"float32"}
    for pre, box in (("", ref["box"]), ("nopbc_", None)):
        e, f, v = dp.eval(ref[pre + "coord"], box, ref[pre + "atype"])[:3]
        rel = lambda a, k: np.abs(a.ravel() - ref[pre + k].ravel()).max() / \
            np.abs(ref[pre + k]).max()  # noqa: E731
        assert rel(e, "energy") < 1e-6
        assert rel(f, "force") < 3e-3
        assert rel(v, "virial") < 3e-3
