"""input.json validation: DeePMD-kit keys and defaults, one clear error per mistake."""

import json

import pytest

from conftest import WATER, small_input
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
