"""DeePMD-kit ``.dp`` files of se_atten (dpa1) and hybrid models: written by dpkeras exactly as
DeePMD-kit's TF backend serializes the same model, read back to the same numbers, and the
variants DeePMD-kit cannot take refused clearly. DeePMD-kit itself is not needed (its own
``.dp`` files of the fixtures are the reference; ``tools/check_deepmd_roundtrip.py`` runs the
real converter)."""

import os

import numpy as np
import pytest

from conftest import TESTDATA, max_rel
from dpkeras.errors import DPKerasError
from dpkeras.infer import DeepPot
from dpkeras.export import save_model
from dpkeras.io.dp import load_dict, save_dict
from dpkeras.load import load_model
from dpkeras.model.build import build_model

KEYS = ("energy", "force", "virial", "atom_energy", "atom_virial")
FAMILY = ["water_dpa1_strip", "water_dpa1_attn0", "water_hybrid", "nopbc_dpa1", "water_dipole",
          "water_ener_fparam"]


def _diff(ours, theirs, path=""):
    """Every difference between two serialized dicts (arrays compared exactly)."""
    out = []
    if isinstance(ours, dict) and isinstance(theirs, dict):
        for k in sorted(set(ours) | set(theirs)):
            if k not in ours or k not in theirs:
                out.append(f"{path}/{k}: only in {'ours' if k in ours else 'DeePMD-kit'}")
            else:
                out += _diff(ours[k], theirs[k], f"{path}/{k}")
    elif isinstance(ours, list) and isinstance(theirs, list):
        if len(ours) != len(theirs):
            return [f"{path}: {len(ours)} items vs {len(theirs)}"]
        for i, (a, b) in enumerate(zip(ours, theirs)):
            out += _diff(a, b, f"{path}[{i}]")
    elif isinstance(ours, np.ndarray) or isinstance(theirs, np.ndarray):
        if not (isinstance(ours, np.ndarray) and isinstance(theirs, np.ndarray)
                and ours.shape == theirs.shape and np.array_equal(ours, theirs)):
            out.append(f"{path}: arrays differ")
    elif ours != theirs:
        out.append(f"{path}: {ours!r} vs {theirs!r}")
    return out


@pytest.mark.parametrize("kind", FAMILY)
def test_written_dp_is_what_deepmd_kit_serializes(tmp_path, kind):
    """The .dp dpkeras writes for a model read from DeePMD-kit's frozen graph is DeePMD-kit's
    own ``dp convert-backend`` output of that graph, key for key and bit for bit, except the
    residual flag of the first fitting layer (DeePMD-kit writes true, which its TF backend
    ignores; dpkeras writes what TF does, false, so the numpy backend agrees too)."""
    model, _ = load_model(os.path.join(TESTDATA, kind, "frozen_model.pb"))
    out = str(tmp_path / "model.dp")
    save_model(model, out)
    ours, theirs = load_dict(out)["model"], load_dict(os.path.join(TESTDATA, kind, "model.dp"))
    diff = _diff(ours, theirs["model"])
    nets = theirs["model"]["fitting"]["nets"]["networks"]
    expected = [f"/fitting/nets/networks[{t}]/layers[0]/resnet: False vs True"
                for t, net in enumerate(nets) if net is not None]
    assert diff == expected


@pytest.mark.parametrize("kind", ["water_dpa1_strip", "water_hybrid"])
def test_written_dp_reads_back_to_deepmd_numbers(tmp_path, kind):
    ref = np.load(os.path.join(TESTDATA, kind, "reference.npz"))
    model, _ = load_model(os.path.join(TESTDATA, kind, "frozen_model.pb"))
    out = str(tmp_path / "model.dp")
    save_model(model, out)
    dp = DeepPot(out)
    got = dp.eval(ref["coord"], ref["box"], ref["atype"], atomic=True)
    for g, key in zip(got, KEYS):
        assert max_rel(g, ref[key]) < 5e-10, key


def _se_atten(**desc):
    d = {"type": "se_atten", "sel": 30, "rcut": 4.0, "rcut_smth": 0.5, "neuron": [4, 8, 16],
         "axis_neuron": 4, "attn": 8, "attn_layer": 1, "seed": 3}
    d.update(desc)
    return build_model({"type_map": ["O", "H", "C"], "descriptor": d,
                        "fitting_net": {"neuron": [8, 8], "seed": 4},
                        "type_embedding": {"neuron": [4], "use_tebd_bias": True,
                                           "resnet_dt": True, "seed": 5}})


def test_dpkeras_se_atten_round_trips_every_weight(tmp_path):
    """A dpkeras-built se_atten with the less common switches (type_one_side, attn_mask, no
    attn_dotr, resnet_dt, type-embedding bias and tanh, exclude_types) comes back weight for
    weight and switch for switch."""
    model = _se_atten(type_one_side=True, attn_mask=True, attn_dotr=False, resnet_dt=True,
                      exclude_types=[[0, 2]], ln_eps=1e-5, attn_layer=2)
    rng = np.random.default_rng(0)
    model.descriptor.env_mat.set_stats(rng.normal(size=(3, 30, 4)),
                                       rng.uniform(0.5, 2.0, size=(3, 30, 4)))
    model.fitting.bias_atom_e.assign([-1.0, -2.0, -3.0])
    out = str(tmp_path / "m.dp")
    save_model(model, out)
    back, kind = load_model(out)
    assert kind == "dp"
    d0, d1 = model.descriptor, back.descriptor
    for attr in ("type_one_side", "attn_mask", "attn_dotr", "resnet_dt", "ln_eps", "attn",
                 "attn_layer", "exclude_types", "tebd_input_mode", "nnei"):
        assert getattr(d1, attr) == getattr(d0, attr), attr
    assert d1.type_embedding_config["use_tebd_bias"] and d1.type_embedding_config["resnet_dt"]
    w0, w1 = model.get_variables(), back.get_variables()

    def flat(x):
        if isinstance(x, dict):
            return [a for k in sorted(x, key=str) for a in flat(x[k])]
        if isinstance(x, list):
            return [a for v in x for a in flat(v)]
        return [] if x is None else [np.asarray(x)]

    a0, a1 = flat(w0), flat(w1)
    assert len(a0) == len(a1) and all(np.array_equal(x, y) for x, y in zip(a0, a1))


def test_se_atten_v2_and_smooth_models_are_refused_on_write(tmp_path):
    out = str(tmp_path / "v2.dp")
    for model in (_se_atten(type="se_atten_v2"),
                  _se_atten(tebd_input_mode="strip", smooth_type_embedding=True)):
        with pytest.raises(DPKerasError, match="smooth_type_embedding.*TF backend cannot "
                                               "serialize it either") as exc:
            save_model(model, out)
        assert "v2.dp" in str(exc.value) and "\n" not in str(exc.value)
    with pytest.raises(DPKerasError, match="strip.*type_one_side"):
        save_model(_se_atten(tebd_input_mode="strip", type_one_side=True), out)
    assert not os.path.exists(out)


@pytest.mark.parametrize("change", [
    ("smooth_type_embedding", True, "smooth_type_embedding"),
    ("concat_output_tebd", False, "concat_output_tebd"),
    ("temperature", 2.0, "temperature"),
])
def test_dp_variants_dpkeras_cannot_reproduce_are_refused_on_read(tmp_path, change):
    key, value, msg = change
    data = load_dict(os.path.join(TESTDATA, "water_dpa1_attn0", "model.dp"))
    data["model"]["descriptor"][key] = value
    bad = str(tmp_path / "variant.dp")
    save_dict(bad, data)
    with pytest.raises(DPKerasError, match=msg) as exc:
        load_model(bad)
    assert "variant.dp" in str(exc.value) and "\n" not in str(exc.value)


def test_layer_norm_eps_is_taken_from_the_layers(tmp_path):
    """A null descriptor ln_eps means 1e-3 to DeePMD-kit's TF backend but 1e-5 to its numpy
    backend; the eps stored in the layer norms decides."""
    data = load_dict(os.path.join(TESTDATA, "water_dpa1_strip", "model.dp"))
    d = data["model"]["descriptor"]
    d["ln_eps"] = None
    for layer in d["attention_layers"]["attention_layers"]:
        layer["attn_layer_norm"]["eps"] = 1e-5
    path = str(tmp_path / "eps.dp")
    save_dict(path, data)
    model, _ = load_model(path)
    assert model.descriptor.ln_eps == 1e-5
    assert all(layer.ln_eps == 1e-5 for layer in model.descriptor.attention_layers)
