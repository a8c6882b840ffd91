"""input.json validation: DeePMD-kit keys and defaults, one clear error per mistake."""

import json
import os

import pytest

from conftest import TESTDATA, WATER, small_input
from dpkeras.config import load_input, normalize
from dpkeras.errors import DPKerasError


def test_defaults_are_filled_with_deepmd_values():
    cfg = normalize(small_input(WATER[:1]))
    assert cfg["model"]["descriptor"]["activation_function"] == "tanh"
    assert cfg["model"]["descriptor"]["type_one_side"] is False
    assert cfg["model"]["fitting_net"]["resnet_dt"] is True
    assert cfg["training"]["training_data"]["auto_prob"] == "prob_sys_size"
    assert cfg["loss"]["start_pref_ae"] == 0.0


def test_misspelled_key_names_the_path_and_suggests_the_fix():
    cfg = small_input(WATER[:1])
    cfg["model"]["descriptor"]["rcut_smoth"] = 0.5
    with pytest.raises(DPKerasError, match=r"model\.descriptor\.rcut_smoth.*did you mean 'rcut_smth'"):
        normalize(cfg)


def test_unsupported_option_is_rejected_by_name():
    cfg = small_input(WATER[:1])
    cfg["model"]["fitting_net"]["use_aparam_as_mask"] = True
    with pytest.raises(DPKerasError, match=r"model\.fitting_net\.use_aparam_as_mask"):
        normalize(cfg)


def test_unimplemented_descriptor_is_a_clear_error():
    cfg = small_input(WATER[:1])
    cfg["model"]["descriptor"]["type"] = "dpa2"
    with pytest.raises(DPKerasError, match="dpa2.*not implemented"):
        normalize(cfg)


def test_hybrid_sub_descriptors_are_validated_by_path():
    cfg = small_input(WATER[:1])
    sub = dict(cfg["model"]["descriptor"])
    cfg["model"]["descriptor"] = {"type": "hybrid", "list": [sub, dict(sub, rcutt=5.0)]}
    with pytest.raises(DPKerasError, match=r"model\.descriptor\.list\[1\]\.rcutt.*did you mean"):
        normalize(cfg)
    cfg["model"]["descriptor"]["list"][1] = {"type": "se_atten", "sel": 40, "attnn": 8}
    with pytest.raises(DPKerasError, match=r"list\[1\]\.attnn.*did you mean 'attn'"):
        normalize(cfg)


def test_stripped_type_embedding_is_the_old_name_of_strip_mode():
    cfg = small_input(WATER[:1])
    cfg["model"]["descriptor"] = {"type": "se_atten", "sel": 40, "stripped_type_embedding": True}
    d = normalize(cfg)["model"]["descriptor"]
    assert d["tebd_input_mode"] == "strip" and "stripped_type_embedding" not in d
    cfg["model"]["descriptor"]["tebd_input_mode"] = "stripp"
    del cfg["model"]["descriptor"]["stripped_type_embedding"]
    with pytest.raises(DPKerasError, match=r"model\.descriptor\.tebd_input_mode"):
        normalize(cfg)


def test_sel_must_have_one_entry_per_type():
    cfg = small_input(WATER[:1])
    cfg["model"]["descriptor"]["sel"] = [46]
    with pytest.raises(DPKerasError, match=r"model\.descriptor\.sel"):
        normalize(cfg)


def test_file_errors_name_the_file(tmp_path):
    with pytest.raises(DPKerasError, match="nope.json: input file not found"):
        load_input(str(tmp_path / "nope.json"))
    bad = tmp_path / "bad.json"
    bad.write_text("{ not json")
    with pytest.raises(DPKerasError, match="bad.json: not valid JSON"):
        load_input(str(bad))
    cfg = small_input(WATER[:1])
    cfg["training"]["numb_step"] = 5
    p = tmp_path / "in.json"
    p.write_text(json.dumps(cfg))
    with pytest.raises(DPKerasError, match=r"in.json: training\.numb_step.*did you mean 'numb_steps'"):
        load_input(str(p))


# DeePMD-kit's TF example inputs (tests/data/deepmd_examples): None = accepted, else the key that
# refuses it and why (docs/deepmd_examples.md lists the same)
DEEPMD_EXAMPLES = {
    "dos_train_input.json": r"model\.fitting_net\.type: unknown fitting_net type 'dos'",
    "dprc_generalized_force_input.json": r"model\.fitting_net\.atom_ener: .* not implemented",
    "dprc_normal_input.json": r"model\.fitting_net\.atom_ener: .* not implemented",
    "dprc_pairwise_input.json": r"model\.type: \"pairwise_dprc\" models .* not implemented",
    "fparam_train_input.json": None,
    "fparam_train_input_aparam.json": r"model\.type_map: required by dpkeras",
    "nopbc_mixed_input.json": None,
    "nopbc_train_input.json": None,
    "nvnmd_train_train_cnn.json": r"\.nvnmd: .* not implemented",
    "nvnmd_train_train_qnn.json": r"\.nvnmd: .* not implemented",
    "spin_se_e2_a_input_tf.json": r"model\.spin: .* not implemented",
    "water_d3_input.json": r"model\.type: \"linear_ener\" models",
    "water_dplr_train_dw.json": None,
    "water_dplr_train_ener.json": r"model\.modifier: .* not implemented",
    "water_hybrid_input.json": None,
    "water_linear_input.json": r"model\.type: \"linear_ener\" models",
    "water_se_atten_compressible_input.json": None,
    "water_se_atten_dpa1_compat_input.json": None,
    "water_se_atten_input.json": None,
    "water_se_e2_a_input.json": None,
    "water_se_e2_a_mixed_prec_input.json": r"training\.mixed_precision: unsupported option "
                                           r"\[output_prec, compute_prec\]: \[float64, float16\]",
    "water_se_e2_a_tebd_input.json": None,
    "water_se_e2_r_input.json": None,
    "water_se_e3_input.json": None,
    "water_tensor_dipole_dipole_input.json": None,
    "water_tensor_polar_polar_input.json": None,
    "water_zbl_input.json": r"model\.use_srtab: .* not implemented",
    "zinc_protein_zinc_se_a_mask.json": r"descriptor 'se_a_mask' is not implemented",
}


@pytest.mark.parametrize("name", sorted(DEEPMD_EXAMPLES))
def test_deepmd_tf_example_inputs_are_accepted_or_refused_by_name(name):
    folder = os.path.join(TESTDATA, "deepmd_examples")
    assert sorted(f for f in os.listdir(folder) if f.endswith(".json")) == sorted(DEEPMD_EXAMPLES)
    with open(os.path.join(folder, name)) as f:
        raw = json.load(f)
    if DEEPMD_EXAMPLES[name] is None:
        normalize(raw)
    else:
        with pytest.raises(DPKerasError, match=DEEPMD_EXAMPLES[name]) as err:
            normalize(raw)
        assert "\n" not in str(err.value)


def test_se_a_ebd_v2_is_se_e2_a_on_deepmds_default_type_embedding():
    """DeePMD-kit's examples/water/se_e2_a_tebd names the descriptor se_a_ebd_v2; without a
    type_embedding section its TF backend builds the default one with a linear activation."""
    with open(os.path.join(TESTDATA, "deepmd_examples", "water_se_e2_a_tebd_input.json")) as f:
        raw = json.load(f)
    m = normalize(raw)["model"]
    assert m["descriptor"]["type"] == "se_e2_a" and m["type_embedding"]["neuron"] == [2, 4, 8]
    raw["model"].pop("type_embedding")
    assert normalize(raw)["model"]["type_embedding"]["activation_function"] == "linear"


def test_stop_batch_is_numb_steps():
    with open(os.path.join(TESTDATA, "deepmd_examples", "fparam_train_input.json")) as f:
        raw = json.load(f)
    assert normalize(raw)["training"]["numb_steps"] == raw["training"]["stop_batch"]
    raw["training"]["numb_steps"] = raw["training"]["stop_batch"] + 1
    with pytest.raises(DPKerasError, match="training.stop_batch: .* differs from "
                                           "training.numb_steps"):
        normalize(raw)


def test_every_accepted_key_is_used_or_refused_at_other_values():
    """No input.json key is silently ignored: every key of every schema table is either
    ``Unsupported`` (accepted only at its default) or read by the code outside the schema (as a
    quoted name, an attribute, a keyword argument, or the f-string of the loss prefactors)."""
    import glob
    import re

    from dpkeras.config import schema

    root = os.path.join(os.path.dirname(TESTDATA), "..", "dpkeras")
    code = "".join(open(p).read() for p in glob.glob(os.path.join(root, "**", "*.py"),
                                                      recursive=True)
                   if not p.endswith(os.path.join("config", "schema.py")))
    tables = {name: t for name, t in vars(schema).items() if name.isupper() and isinstance(
        t, dict) and any(isinstance(v, schema.Unsupported) for v in t.values())}
    assert {"TRAINING", "MODEL", "LOSS_ENER", "DESCRIPTOR_SE_ATTEN", "FITTING_ENER"} <= set(tables)
    unused = []
    for name, table in tables.items():
        for key, spec in table.items():
            if isinstance(spec, schema.Unsupported) or key == "type":
                continue
            prefix = re.sub(r"_(e|f|v|ae)$", "_{", key)
            if not re.search(rf"[\"']{key}[\"']|\.{key}\b|\b{key}=|{re.escape(prefix)}", code):
                unused.append(f"{name}.{key}")
    assert not unused, f"accepted but never read: {unused}"


def test_jit_compile_default_comes_from_the_environment(monkeypatch):
    from dpkeras import xla

    monkeypatch.delenv("DPKERAS_JIT_COMPILE", raising=False)
    assert xla.jit_compile() is True and xla.jit_compile(False) is False
    monkeypatch.setenv("DPKERAS_JIT_COMPILE", "0")
    assert xla.jit_compile() is False and xla.jit_compile(True) is True
    monkeypatch.setenv("DPKERAS_JIT_COMPILE", "maybe")
    with pytest.raises(DPKerasError, match="DPKERAS_JIT_COMPILE='maybe': expected 1"):
        xla.jit_compile()
