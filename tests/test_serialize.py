"""DeePMD-kit's versioned model dict (``@class``/``@version``/``@variables``), the form every
kind of model speaks: ``model.serialize()`` and ``dpkeras.model.build.deserialize`` rebuild the
same model; ``change_type_map`` keeps the numbers on the same atoms; ``load_dict`` gives the
same dict from every file format. The models are DeePMD-kit 3.2.0 frozen graphs trained on the
DFT water and molecule data (tests/data/*/README.md)."""

import os

import numpy as np
import pytest

from conftest import TESTDATA, max_rel
from dpkeras.errors import DPKerasError
from dpkeras.export import save_model
from dpkeras.infer import DeepDipole, DeepPot
from dpkeras.load import load_dict, load_model
from dpkeras.model.build import deserialize

KINDS = ["water_se_e2_a", "water_se_e2_r", "water_se_e3", "water_dpa1", "water_dpa1_strip",
         "water_hybrid", "water_ener_fparam", "water_dipole", "nopbc_dpa1"]


def _flat(x):
    if isinstance(x, dict):
        return [a for k in sorted(x, key=str) for a in _flat(x[k])]
    if isinstance(x, list):
        return [a for v in x for a in _flat(v)]
    return [] if x is None else [np.asarray(x)]


def _model(kind):
    return load_model(os.path.join(TESTDATA, kind, "frozen_model.pb"))[0]


def _frames(kind, n=2):
    r = np.load(os.path.join(TESTDATA, kind, "reference.npz"))
    box = r["box"][:n] if r["box"].size else None
    return r["coord"][:n], box, r["atype"], r


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_is_rebuilt_from_its_serialized_dict(kind):
    """``deserialize(model.serialize())``: the same variables, bit for bit, and the dict says
    what it is (``@class``, ``@version``, the kind's DeePMD-kit type name)."""
    model = _model(kind)
    data = model.serialize()
    assert data["@class"] == "Model" and data["@version"] == 2
    assert data["descriptor"]["@class"] == "Descriptor" and "@version" in data["descriptor"]
    assert data["fitting"]["type"] == model.fitting.fitting_type
    back = deserialize(data, kind)
    assert type(back) is type(model) and back.get_type_map() == model.get_type_map()
    a, b = _flat(model.get_variables()), _flat(back.get_variables())
    assert len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))


@pytest.mark.parametrize("fmt", ["model.dp", "model.keras", "saved"])
def test_load_dict_is_the_same_dict_from_every_format(tmp_path, fmt):
    """A frozen graph, its ``.dp``, ``.keras`` and SavedModel: one and the same model dict."""
    pb = os.path.join(TESTDATA, "water_dpa1", "frozen_model.pb")
    ref = load_dict(pb)
    out = str(tmp_path / fmt)
    save_model(load_model(pb)[0], out)
    got = load_dict(out)
    a, b = _flat(ref), _flat(got)
    assert len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))
    assert got["descriptor"]["type"] == "dpa1" and got["type_map"] == ref["type_map"]


def test_load_dict_refuses_a_kind_deepmd_kit_cannot_serialize():
    with pytest.raises(DPKerasError, match="water_se_atten_v2.*smooth_type_embedding") as exc:
        load_dict(os.path.join(TESTDATA, "water_se_atten_v2", "frozen_model.pb"))
    assert "\n" not in str(exc.value)


@pytest.mark.parametrize("kind", ["water_se_e2_a", "water_se_e3", "water_hybrid"])
def test_change_type_map_reorders_a_per_type_model_to_the_same_numbers(kind):
    """[O, H] -> [H, O]: the same frames with the atom types renamed give the same energies,
    forces and virials (1e-12)."""
    model = _model(kind)
    swapped = model.change_type_map(["H", "O"])
    assert swapped.get_type_map() == ["H", "O"]
    coord, box, atype, _ = _frames(kind)
    e0 = DeepPot.from_model(model).eval(coord, box, atype)
    e1 = DeepPot.from_model(swapped).eval(coord, box, 1 - atype)
    for x, y in zip(e0, e1):
        assert max_rel(y, x) < 1e-12


def test_change_type_map_takes_a_subset_of_an_attention_model():
    """A DPA-1 pretrained on [H, C, N, O] as an [O, C, H] model: the same numbers on a
    molecule of those elements (the fine-tuning case of DeePMD-kit's docs)."""
    pb = os.path.join(TESTDATA, "finetune_dpa1", "pretrained.pb")
    model = load_model(pb)[0]
    sub = model.change_type_map(["O", "C", "H"])
    assert sub.get_type_map() == ["O", "C", "H"] and sub.get_ntypes() == 3
    r = np.load(os.path.join(TESTDATA, "finetune_dpa1", "reference_pretrained.npz"))
    coord, atype = r["coord"][:2], r["atype"]                     # H C N O indexing
    new = np.array([{0: 2, 1: 1, 3: 0}[int(t)] for t in atype])
    e0 = DeepPot.from_model(model).eval(coord, None, atype)
    e1 = DeepPot.from_model(sub).eval(coord, None, new)
    for x, y in zip(e0, e1):
        assert max_rel(y, x) < 1e-12


def test_change_type_map_of_a_dipole_model():
    model = _model("water_dipole")
    swapped = model.change_type_map(["H", "O"])
    coord, box, atype, _ = _frames("water_dipole")
    d0 = DeepDipole.from_model(model).eval(coord, box, atype)
    d1 = DeepDipole.from_model(swapped).eval(coord, box, 1 - atype)
    assert swapped.get_sel_type() == [1] and max_rel(d1, d0) < 1e-12


def test_change_type_map_errors_name_the_element_and_the_rule():
    model = _model("water_se_e2_a")
    with pytest.raises(DPKerasError, match=r"\['C'\].*not in the type_map"):
        model.change_type_map(["O", "H", "C"])
    with pytest.raises(DPKerasError, match="cannot be dropped"):
        model.change_type_map(["O"])
