"""se_atten (DPA-1): a DeePMD-kit-trained frozen graph reproduces DeePMD-kit's numbers, round
trips through dpkeras' formats, and the descriptor trains from input.json."""

import os

import numpy as np
import pytest
import tensorflow as tf

from conftest import TESTDATA, WATER, max_rel, small_input
from dpkeras.config import normalize
from dpkeras.env_mat import pair_vectors
from dpkeras.errors import DPKerasError
from dpkeras.infer import DeepPot
from dpkeras.model.ener import neighbor_types

KEYS = ("energy", "force", "virial", "atom_energy", "atom_virial")
DPA1 = os.path.join(TESTDATA, "water_dpa1")


@pytest.fixture(scope="module")
def ref():
    return np.load(os.path.join(DPA1, "reference.npz"))


@pytest.fixture(scope="module")
def dp():
    return DeepPot(os.path.join(DPA1, "frozen_model.pb"))


def _check(dp, ref, tol=1e-10):
    out = dp.eval(ref["coord"], ref["box"], ref["atype"], atomic=True)
    errs = {key: max_rel(got, ref[key]) for got, key in zip(out, KEYS)}
    assert all(e < tol for e in errs.values()), errs


def test_dpa1_pb_matches_deepmd(dp, ref):
    assert dp.model.mixed_types() and dp.get_sel() == [120]
    _check(dp, ref)


def test_dpa1_unsorted_atoms_match_deepmd(dp, ref):
    """Atoms in a shuffled order (the dynamic-type path) give the permuted DeePMD numbers."""
    perm = np.random.default_rng(0).permutation(len(ref["atype"]))
    coord = ref["coord"].reshape(4, -1, 3)[:, perm]
    atype = np.tile(ref["atype"][perm][None], (4, 1))
    atype[1] = atype[0]   # same types per frame, but not type-sorted
    e, f, v, ae, av = dp.eval(coord, ref["box"], atype, atomic=True)
    assert max_rel(e, ref["energy"]) < 1e-10
    assert max_rel(f, ref["force"].reshape(4, -1, 3)[:, perm]) < 1e-10
    assert max_rel(v, ref["virial"]) < 1e-10
    assert max_rel(av, ref["atom_virial"].reshape(4, -1, 9)[:, perm]) < 1e-10


def test_dpa1_descriptor_matches_deepmd_eval_descriptor(dp, ref):
    from dpkeras.data.pipeline import batch_neighbor_list

    coord = ref["coord"].astype(np.float64).reshape(4, -1, 3)
    box = ref["box"].astype(np.float64).reshape(4, 3, 3)
    atype = tf.constant(np.tile(ref["atype"][None], (4, 1)).astype(np.int32))
    nlist, shift, _ = batch_neighbor_list(tf.constant(coord), atype, tf.constant(box),
                                          tf.constant(True), dp.get_rcut(), dp.get_sel(),
                                          mixed_types=True)
    rij, mask = pair_vectors(tf.constant(coord), tf.constant(box), nlist, shift)
    nei_type = neighbor_types(atype, nlist, dp.get_ntypes())
    desc = dp.model.descriptor(rij, mask, atype, nei_type=nei_type).numpy()
    assert desc.shape == ref["descriptor"].shape
    assert max_rel(desc, ref["descriptor"]) < 1e-10


@pytest.mark.parametrize("fmt", [".keras", "", ".dp"])
def test_dpa1_written_model_round_trips_exactly(tmp_path, dp, ref, fmt):
    from dpkeras.export import save_model

    out = str(tmp_path / ("model" + fmt))
    save_model(dp.model, out)
    _check(DeepPot(out), ref)


def test_se_atten_v2_as_dp_file_is_a_clear_error(tmp_path):
    """DeePMD-kit's TF backend cannot serialize the smooth type embedding either."""
    from dpkeras.export import save_model

    v2 = DeepPot(os.path.join(TESTDATA, "water_se_atten_v2", "frozen_model.pb"))
    with pytest.raises(DPKerasError, match="smooth"):
        save_model(v2.model, str(tmp_path / "model.dp"))


def test_dpa1_fixture_input_is_accepted(dp):
    import json

    cfg = json.load(open(os.path.join(DPA1, "input.json")))
    m = normalize(cfg)["model"]
    assert m["descriptor"]["type"] == "se_atten" and m["descriptor"]["set_davg_zero"]
    # the full effective DeePMD-kit model section stored in the graph is accepted too
    from dpkeras.io.deepmd_pb import FrozenGraph

    script = FrozenGraph(os.path.join(DPA1, "frozen_model.pb")).training_script()
    from dpkeras.config import normalize_model

    assert normalize_model(script["model"])["descriptor"]["attn"] == 64


@pytest.mark.parametrize("key,value", [("scaling_factor", 2.0), ("temperature", 1.5),
                                       ("sel", "automatic")])
def test_dpa1_unsupported_keys_are_clear_errors(key, value):
    cfg = small_input(WATER[:1])
    cfg["model"]["descriptor"] = {"type": "se_atten", "sel": 60, key: value}
    with pytest.raises(DPKerasError, match=key):
        normalize(cfg)


def test_type_embedding_section_only_for_descriptors_that_take_it():
    """se_e2_a takes it (DeePMD-kit's se_e2_a_tebd, tests/test_type_embedding.py); se_e2_r not."""
    cfg = small_input(WATER[:1])
    cfg["model"]["type_embedding"] = {"neuron": [4]}
    assert normalize(cfg)["model"]["type_embedding"]["neuron"] == [4]
    cfg["model"]["descriptor"] = {"type": "se_e2_r", "sel": [46, 92], "rcut_smth": 0.5,
                                  "rcut": 6.0, "neuron": [4]}
    with pytest.raises(DPKerasError, match="type_embedding"):
        normalize(cfg)


def test_se_atten_trains_on_water(tmp_path):
    from dpkeras.trainer import Trainer

    cfg = small_input(WATER[:3], WATER[3:], numb_steps=200, disp_freq=100, save_freq=200)
    cfg["model"]["descriptor"] = {"type": "se_atten", "sel": 100, "rcut_smth": 0.5,
                                  "rcut": 5.0, "neuron": [8, 16, 32], "axis_neuron": 4,
                                  "attn": 16, "attn_layer": 1, "seed": 1}
    cfg["model"]["type_embedding"] = {"neuron": [4], "seed": 1}
    Trainer(normalize(cfg), str(tmp_path), jit_compile=True).run()   # 200 steps: XLA pays
    lc = np.loadtxt(tmp_path / "lcurve.out", ndmin=2)
    assert list(lc[:, 0]) == [0, 100, 200]
    # as with DeePMD-kit (its 300-step fixture run ends at rmse_f 0.76), the force error of a
    # short DPA-1 run moves little; the loss and the energy error fall clearly
    assert lc[-1, 1] < 0.5 * lc[0, 1], lc          # rmse_val
    assert lc[-1, 3] < 0.1 * lc[0, 3], lc          # rmse_e_val
    assert lc[-1, 5] < 1.01 * lc[0, 5], lc         # rmse_f_val does not grow
    # the trained run loads back and evaluates
    dp = DeepPot(str(tmp_path))
    assert dp.model.get_config_deepmd()["type_embedding"]["neuron"] == [4]


def test_deepmd_water_se_atten_example_input_is_accepted():
    """DeePMD-kit's examples/water/se_atten/input.json model section, verbatim."""
    from dpkeras.config import normalize_model

    model = {"type_map": ["O", "H"],
             "descriptor": {"type": "se_atten", "compressible": False, "sel": 120,
                            "rcut_smth": 0.50, "rcut": 6.00, "neuron": [25, 50, 100],
                            "resnet_dt": False, "axis_neuron": 16, "seed": 1, "attn": 128,
                            "attn_layer": 2, "attn_dotr": True, "attn_mask": False,
                            "_comment": " that's all"},
             "fitting_net": {"neuron": [240, 240, 240], "resnet_dt": True, "seed": 1,
                             "_comment": " that's all"}}
    m = normalize_model(model)
    assert m["descriptor"]["sel"] == 120 and m["descriptor"]["attn"] == 128


@pytest.mark.parametrize("fixture", ["water_se_atten_v2", "water_dpa1_strip"])
def test_trimmed_neighbor_list_gives_the_same_numbers_and_gradients(fixture):
    """A neighbor list cut after its last real neighbor (what training and DeepPot feed the
    attention descriptors) gives the same energies, forces, virials and weight gradients as the
    full ``sel`` slots: the smooth softmax keeps the cut padded keys, and the padded slots'
    constant contribution (nonzero davg here; exclude_types in the strip fixture) is added back."""
    from dpkeras.data.pipeline import batch_neighbor_list
    from dpkeras.nlist import trim_padding

    model = DeepPot(os.path.join(TESTDATA, fixture, "frozen_model.pb")).model
    ref = np.load(os.path.join(TESTDATA, fixture, "reference.npz"))
    nf = len(ref["energy"])
    coord = tf.constant(ref["coord"].reshape(nf, -1, 3))
    box = tf.constant(ref["box"].reshape(nf, 3, 3))
    atype = tf.constant(np.tile(ref["atype"][None], (nf, 1)).astype(np.int32))
    nlist, shift, _ = batch_neighbor_list(coord, atype, box, tf.constant(True),
                                          model.get_rcut(), model.get_sel(), mixed_types=True)
    cut = trim_padding(nlist, shift)
    assert cut[0].shape[-1] < nlist.shape[-1]

    def run(nl, sh):
        with tf.GradientTape() as tape:
            out = model(dict(coord=coord, box=box, atype=atype, nlist=nl, shift=sh))
            loss = tf.reduce_sum(out["energy"]) + tf.reduce_sum(out["force"] ** 2)
        grads = tape.gradient(loss, model.trainable_variables)
        return out, [g for g in grads if g is not None]

    full, g_full = run(nlist, shift)
    trimmed, g_trim = run(*cut)
    for key in KEYS:
        assert max_rel(trimmed[key], full[key]) < 1e-12, key
    assert len(g_full) == len(g_trim) > 0
    for a, b in zip(g_trim, g_full):
        assert max_rel(a, b) < 1e-10
