"""Fine-tuning against DeePMD-kit's own ``dp --tf train --finetune`` (tests/data/finetune_dpa1*)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from dpkeras import finetune
from dpkeras.change_bias import predict, recalibrate, samples_from_data
from dpkeras.data.pipeline import DataSystems
from dpkeras.errors import DPKerasError
from dpkeras.model.build import build_model
from dpkeras.model.type_map import remap_variables

HERE = os.path.dirname(__file__)
FT = os.path.join(HERE, "data", "finetune_dpa1")
MIXED = os.path.join(HERE, "data", "finetune_dpa1_mixed")
PRETRAINED = os.path.join(FT, "pretrained.pb")
NOPBC = os.path.join(HERE, "..", "dpkeras", "examples", "data", "nopbc")


def rel(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


@pytest.fixture(scope="module")
def pretrained():
    return finetune.Pretrained(PRETRAINED)


def write_input(tmp_path, base, systems, **model_changes):
    with open(base) as f:
        j = json.load(f)
    j["model"].update(model_changes)
    j["training"]["training_data"]["systems"] = systems
    j["training"]["validation_data"]["systems"] = systems[:1]
    path = os.path.join(tmp_path, "input.json")
    with open(path, "w") as f:
        json.dump(j, f)
    return path


def to_model_types(atype, from_map, model):
    return np.array([model.get_type_map().index(from_map[t]) for t in atype], np.int32)


def test_bias_and_outputs_match_deepmd_given_its_frames(pretrained):
    """DeePMD-kit's frames (bias_trace.npz) -> the same predictions, new bias and fine-tuned
    energies/forces to 1e-10; the model carries the user's type_map ['O', 'C', 'H']."""
    with open(os.path.join(FT, "finetune_input.json")) as f:
        raw = json.load(f)
    section, branch, random_fitting, idx = finetune.model_section(raw["model"], pretrained)
    model = build_model(section)
    finetune.load_weights(model, finetune.FinetuneSpec(pretrained, branch, random_fitting, idx))
    assert model.get_type_map() == ["O", "C", "H"]
    tr = np.load(os.path.join(FT, "bias_trace.npz"))
    # DeePMD-kit's data types are in the pretrained (full) type_map
    atype = to_model_types(tr["sys0_type"], list(tr["full_type_map"]), model)
    sample = {"coord": tr["sys0_coord"].reshape(10, -1, 3), "box": None, "atype": atype,
              "energy": tr["sys0_energy"].reshape(-1)}
    pred = predict(model, sample["coord"], None, atype)["energy"].reshape(-1)
    assert rel(pred, tr["sys0_energy_pred_pretrained"]) < 1e-10
    old, new, _ = recalibrate(model, [sample])
    full = list(tr["full_type_map"])
    assert rel(old, tr["old_bias_full"][[full.index(e) for e in model.get_type_map()]]) < 1e-12
    want = tr["new_bias_full"][[full.index(e) for e in model.get_type_map()]]
    assert rel(new, want) < 1e-10
    ref = np.load(os.path.join(FT, "reference.npz"))
    out = predict(model, ref["coord"].astype(float).reshape(4, -1, 3), None,
                  to_model_types(ref["atype"], list(ref["type_map"]), model))
    assert rel(out["energy"], ref["energy"]) < 1e-10
    assert rel(out["force"].reshape(4, -1), ref["force"]) < 1e-10


def run_finetune(tmp_path, input_path, pretrained, **kw):
    from dpkeras.train import resolve_systems
    from dpkeras.trainer import Trainer

    config, spec = finetune.load_finetune_input(input_path, pretrained, **kw)
    config = resolve_systems(config, input_path)
    model = Trainer(config, os.path.join(tmp_path, "run"), finetune=spec,
                    jit_compile=False, skip_neighbor_stat=True).run()
    return model, config


def test_end_to_end_own_frames(tmp_path, pretrained):
    """0 steps, dpkeras' own seeded choice of 10 of the 15 frames: forces exact, energies
    within the frame-sampling noise (the residual after the fit is ~0.36 eV/atom here; before
    the recalibration the error is ~1.5e3 eV/atom)."""
    inp = write_input(tmp_path, os.path.join(FT, "finetune_input.json"),
                      [os.path.join(NOPBC, "C4H3O1")])
    model, _ = run_finetune(tmp_path, inp, pretrained)
    ref = np.load(os.path.join(FT, "reference.npz"))
    ref0 = np.load(os.path.join(FT, "reference_pretrained.npz"))
    atype = to_model_types(ref["atype"], list(ref["type_map"]), model)
    out = predict(model, ref["coord"].astype(float).reshape(4, -1, 3), None, atype)
    assert rel(out["force"].reshape(4, -1), ref["force"]) < 1e-10
    nat = len(atype)
    de = np.abs(out["energy"] - ref["energy"]).max() / nat
    assert de < 0.1
    assert np.abs(ref0["energy"] - ref["energy"]).max() / nat > 1e3


def test_mixed_compositions_other_order_exact(tmp_path, pretrained):
    """Three compositions (full-rank least squares), type_map ['O', 'H', 'C'] (another order
    than the pretrained ['H', 'C', 'N', 'O']), every frame used: DeePMD-kit's bias and outputs
    to 1e-10 end to end; the run directory then fine-tunes again (checkpoint as PRETRAINED)."""
    with open(os.path.join(MIXED, "bias.json")) as f:
        meta = json.load(f)
    model, _ = run_finetune(tmp_path, os.path.join(MIXED, "input.json"), pretrained)
    assert model.get_type_map() == ["O", "H", "C"]
    full = meta["finetuned_type_map"]
    want = np.array(meta["finetuned_bias_atom_e"])[[full.index(e) for e in ["O", "H", "C"]]]
    assert rel(model.fitting.bias_atom_e.numpy(), want) < 1e-10
    ref = np.load(os.path.join(MIXED, "reference.npz"))
    for case in ref["cases"]:
        atype = to_model_types(ref[case + "atype"], list(ref["type_map"]), model)
        out = predict(model, ref[case + "coord"].reshape(6, -1, 3), None, atype)
        assert rel(out["energy"], ref[case + "energy"]) < 1e-10
        assert rel(out["force"].reshape(6, -1), ref[case + "force"]) < 1e-10
    # a dpkeras run directory is a valid PRETRAINED: its bias is already calibrated
    again = finetune.Pretrained(os.path.join(tmp_path, "run"))
    assert again.kind == "checkpoint"
    data = DataSystems({"systems": [os.path.join(MIXED, "data", s) for s in
                                    ("C4H3O1", "C1H4O2", "C3H3O4")], "batch_size": 1},
                       ["O", "H", "C"])
    m2 = build_model(again.branches["Default"])
    finetune.load_weights(m2, finetune.FinetuneSpec(again, "Default", False, [0, 1, 2]))
    _, new, _ = recalibrate(m2, samples_from_data(data, 10, 0))
    assert rel(new, want) < 1e-9


def test_missing_element_and_differing_section(tmp_path, pretrained):
    with open(os.path.join(FT, "finetune_input.json")) as f:
        raw = json.load(f)
    with pytest.raises(DPKerasError, match=r"\['Si'\] are not in the type_map"):
        finetune.model_section(dict(raw["model"], type_map=["O", "Si"]), pretrained)
    bad = json.loads(json.dumps(raw["model"]))
    bad["descriptor"]["neuron"] = [8, 16, 32]
    bad["fitting_net"]["neuron"] = [30, 30, 30]
    with pytest.raises(DPKerasError, match=r"model\.descriptor\.neuron: input\.json \[8, 16, "
                       r"32\] vs pretrained \[10, 20, 40\].*model\.fitting_net\.neuron"):
        finetune.model_section(bad, pretrained)
    with pytest.raises(DPKerasError, match="Default.*RANDOM"):
        finetune.model_section(raw["model"], pretrained, branch="water")
    # the simplified script of DeePMD-kit's docs, with --use_pretrain_script
    simple = {"type_map": ["H", "O"], "type_embedding": {"trainable": False},
              "descriptor": {"trainable": False}, "fitting_net": {}}
    with pytest.raises(DPKerasError, match="--use_pretrain_script"):
        finetune.model_section(simple, pretrained)
    sec, _, _, idx = finetune.model_section(simple, pretrained, use_pretrain_script=True)
    assert idx == [0, 3] and sec["descriptor"]["neuron"] == [10, 20, 40]
    assert sec["descriptor"]["trainable"] is False and sec["type_embedding"]["trainable"] is False
    assert sec["type_embedding"]["activation_function"] == "linear"


def test_random_branch_keeps_descriptor(pretrained):
    with open(os.path.join(FT, "finetune_input.json")) as f:
        raw = json.load(f)
    sec, name, random_fitting, idx = finetune.model_section(raw["model"], pretrained, "RANDOM")
    assert random_fitting and name == "Default"
    model = build_model(sec)
    finetune.load_weights(model, finetune.FinetuneSpec(pretrained, name, True, idx))
    w, p = model.get_variables(), pretrained.heads["Default"].get_variables()
    np.testing.assert_array_equal(w["attention"][0]["wq"], p["attention"][0]["wq"])
    assert not np.allclose(w["fitting"][0]["w"][0], p["fitting"][0]["w"][0])
    data = DataSystems({"systems": [os.path.join(NOPBC, "C4H3O1")], "batch_size": 1},
                       sec["type_map"])
    _, new, _ = recalibrate(model, samples_from_data(data, 0, 0), "set-by-statistic")
    s = data.systems[0]
    counts = np.tile(s.type_counts(3)[None], (s.nframes, 1))
    np.testing.assert_allclose(new, np.linalg.lstsq(counts.astype(float),
                                                    s.labels["energy"], rcond=None)[0], 1e-12)


def test_trainable_flags_freeze_weights(tmp_path, pretrained):
    """descriptor + type embedding frozen, fitting hidden layers frozen, output layer trained:
    the frozen weights stay bit-identical after training steps."""
    with open(os.path.join(FT, "finetune_input.json")) as f:
        j = json.load(f)
    j["model"]["descriptor"]["trainable"] = False
    j["model"]["type_embedding"] = {"trainable": False, "activation_function": "linear"}
    j["model"]["fitting_net"]["trainable"] = [False, False, False, True]
    j["training"].update(numb_steps=3, disp_freq=3, save_freq=3)
    j["training"]["training_data"]["systems"] = [os.path.join(NOPBC, "C4H3O1")]
    j["training"]["validation_data"]["systems"] = [os.path.join(NOPBC, "C4H3O1")]
    inp = os.path.join(tmp_path, "in.json")
    with open(inp, "w") as f:
        json.dump(j, f)
    model, _ = run_finetune(tmp_path, inp, pretrained)
    w, p = model.get_variables(), remap_variables(
        pretrained.heads["Default"].get_variables(), pretrained.branches["Default"], [3, 1, 0])
    for key in ("davg", "dstd"):
        np.testing.assert_array_equal(w[key], p[key])
    np.testing.assert_array_equal(w["embeddings"][()]["w"][1], p["embeddings"][()]["w"][1])
    np.testing.assert_array_equal(w["attention"][1]["wk"], p["attention"][1]["wk"])
    np.testing.assert_array_equal(w["type_embedding"]["w"][0], p["type_embedding"]["w"][0])
    for k in range(3):
        np.testing.assert_array_equal(w["fitting"][0]["w"][k], p["fitting"][0]["w"][k])
    assert not np.array_equal(w["fitting"][0]["w_out"], p["fitting"][0]["w_out"])


def run_cli(*args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, env=env,
                          timeout=300)


def test_change_bias_and_show_cli(tmp_path):
    out = os.path.join(tmp_path, "changed.keras")
    r = run_cli("dpkeras.change_bias", PRETRAINED, "-s", os.path.join(MIXED, "data"), "-m",
                "change", "-o", out)
    assert r.returncode == 0, r.stderr
    with open(os.path.join(MIXED, "bias.json")) as f:
        meta = json.load(f)
    r = run_cli("dpkeras.show", out, "model-branch", "type-map", "descriptor", "size")
    assert r.returncode == 0, r.stderr
    assert "['Default', 'RANDOM']" in r.stdout and "['H', 'C', 'N', 'O']" in r.stdout
    assert '"attn": 64' in r.stdout and "Parameters in total" in r.stdout
    from dpkeras.load import load_model

    model, _ = load_model(out)   # all frames of every system: DeePMD-kit's numbers exactly
    assert rel(model.fitting.bias_atom_e.numpy(), meta["finetuned_bias_atom_e"]) < 1e-10
    from dpkeras.change_bias import change_bias

    with pytest.raises(DPKerasError, match="does not write TensorFlow frozen graphs"):
        change_bias(PRETRAINED, [os.path.join(MIXED, "data")], output="x.pb")
