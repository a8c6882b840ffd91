"""Multi-task training: both input styles, head sampling, shared descriptor and layers, restart,
freeze --head / --united_model, show, DeepPot(head=...), --init_frz_model."""

import copy
import json
import os
import shutil

import numpy as np
import pytest

from conftest import WATER
from dpkeras.config import normalize
from dpkeras.errors import DPKerasError

NEURON = [8, 8, 8]
LAYER_NAME = ["l0", None, "l2", None]
DESCRIPTOR = {"type": "se_e2_a", "sel": [46, 92], "rcut": 6.0, "rcut_smth": 0.5,
              "neuron": [4, 8], "axis_neuron": 2, "seed": 1}


def tf_style(numb_steps=4, layer_name=LAYER_NAME):
    """DeePMD-kit's TensorFlow multi-task style: two energy heads sharing l0 and l2."""
    fit = {"neuron": list(NEURON), "resnet_dt": True, "seed": 2}
    if layer_name:
        fit["layer_name"] = list(layer_name)
    return {
        "model": {"type_map": ["O", "H"], "descriptor": dict(DESCRIPTOR),
                  "fitting_net_dict": {"ener_a": dict(fit), "ener_b": dict(fit, seed=3)}},
        "learning_rate": {"start_lr": 1e-3, "stop_lr": 1e-4, "decay_steps": 2},
        "loss_dict": {"ener_a": {}, "ener_b": {"start_pref_e": 1.0}},
        "training": {
            "numb_steps": numb_steps, "seed": 5, "disp_freq": 2, "save_freq": 2,
            "fitting_weight": {"ener_a": 1.0, "ener_b": 3.0},
            "data_dict": {
                "ener_a": {"training_data": {"systems": [WATER[0]], "batch_size": 1}},
                "ener_b": {"training_data": {"systems": [WATER[1]], "batch_size": 1},
                           "validation_data": {"systems": [WATER[3]], "batch_size": 1}}}},
    }


def pt_style():
    """The same input in DeePMD-kit's newer style (shared_dict + model_dict + model_prob)."""
    tf = tf_style()
    fits = tf["model"]["fitting_net_dict"]
    out = copy.deepcopy(tf)
    out["model"] = {
        "shared_dict": {"my_type_map": ["O", "H"], "my_descriptor": dict(DESCRIPTOR)},
        "model_dict": {h: {"type_map": "my_type_map", "descriptor": "my_descriptor",
                           "fitting_net": fits[h]} for h in fits}}
    out["training"]["model_prob"] = out["training"].pop("fitting_weight")
    return out


def _error(config):
    with pytest.raises(DPKerasError) as exc:
        normalize(config)
    return str(exc.value)


# --- config ---------------------------------------------------------------------------------
def test_both_styles_parse_to_the_same_model():
    a, b = normalize(tf_style()), normalize(pt_style())
    assert a == b
    assert list(a["model"]["model_dict"]) == ["ener_a", "ener_b"]
    assert a["training"]["model_prob"] == {"ener_a": 0.25, "ener_b": 0.75}
    assert a["model"]["model_dict"]["ener_b"]["fitting_net"]["layer_name"] == LAYER_NAME
    assert a["loss_dict"]["ener_b"]["start_pref_e"] == 1.0
    assert a["loss_dict"]["ener_a"]["start_pref_e"] == 0.02   # default loss
    assert "training_data" not in a["training"]


def test_key_mismatches_name_the_keys():
    cfg = tf_style()
    del cfg["training"]["data_dict"]["ener_b"]
    assert "training.data_dict: missing keys ['ener_b']" in _error(cfg)
    cfg = tf_style()
    cfg["loss_dict"]["ener_c"] = {}
    assert "loss_dict: keys ['ener_c'] are not heads" in _error(cfg)
    cfg = pt_style()
    cfg["training"]["model_prob"]["ener_x"] = 1.0
    assert "training.model_prob: keys ['ener_x']" in _error(cfg)
    cfg = pt_style()
    cfg["model"]["model_dict"]["ener_b"]["descriptor"] = "nope"
    assert "model.model_dict.ener_b.descriptor: 'nope' is not a key of model.shared_dict" \
        in _error(cfg)
    cfg = tf_style()
    cfg["model"]["fitting_net_dict"]["ener_b"]["neuron"] = "x"
    assert "model.fitting_net_dict.ener_b" in _error(cfg)


def test_single_and_multi_task_keys_do_not_mix():
    cfg = tf_style()
    cfg["loss"] = {}
    assert "loss: single-task key in a multi-task input" in _error(cfg)
    cfg = tf_style()
    cfg["model"]["fitting_net"] = {}
    assert "model.fitting_net: single-task key" in _error(cfg)
    cfg = tf_style()
    cfg["training"]["training_data"] = [WATER[0]]
    assert "training.training_data: single-task key" in _error(cfg)
    cfg = pt_style()
    cfg["model"]["descriptor"] = dict(DESCRIPTOR)
    assert "model.descriptor: with model.model_dict" in _error(cfg)
    single = {"model": {"type_map": ["O", "H"], "descriptor": dict(DESCRIPTOR),
                        "fitting_net": {}},
              "training": {"training_data": [WATER[0]], "numb_steps": 1,
                           "data_dict": {"a": {}}}}
    assert "training.data_dict" in _error(single) and "multi-task key" in _error(single)
    from dpkeras.config import is_multitask

    del single["training"]["data_dict"]
    assert not is_multitask(normalize(single)) and is_multitask(normalize(tf_style()))


def test_heads_must_share_the_descriptor_and_weights_are_checked(caplog):
    cfg = pt_style()
    cfg["model"]["model_dict"]["ener_b"]["descriptor"] = dict(DESCRIPTOR, rcut=5.0)
    assert "model.model_dict.ener_b.descriptor: differs from head 'ener_a'" in _error(cfg)
    cfg = tf_style()
    cfg["training"]["fitting_weight"] = {"ener_a": 2.0}
    with caplog.at_level("WARNING", logger="dpkeras"):
        out = normalize(cfg)
    assert out["training"]["model_prob"] == {"ener_a": 1.0, "ener_b": 0.0}
    assert "'ener_b' has no positive weight" in caplog.text
    cfg["training"]["fitting_weight"] = {"ener_a": 0, "ener_b": -1}
    assert "no head has a positive weight" in _error(cfg)


def test_layer_name_shape_mismatch_names_the_layer():
    from dpkeras.multitask import MultiTaskModel

    cfg = tf_style()
    cfg["model"]["fitting_net_dict"]["ener_b"]["neuron"] = [8, 16, 8]
    with pytest.raises(DPKerasError, match="layer_name 'l2_type_0'"):
        MultiTaskModel(normalize(cfg)["model"])
    cfg["model"]["fitting_net_dict"]["ener_b"]["layer_name"] = ["l0", None]
    assert "ener_b.layer_name: expected a list of 4 names" in _error(cfg)


# --- sampling ---------------------------------------------------------------------------------
def test_head_frequencies_follow_the_weights():
    from dpkeras.trainer import head_for_step

    probs = np.array([0.2, 0.5, 0.3])
    n = 20000
    heads = np.array([head_for_step(11, s, probs) for s in range(n)])
    counts = np.bincount(heads, minlength=3)
    sigma = np.sqrt(n * probs * (1 - probs))
    assert np.all(np.abs(counts - n * probs) < 4.5 * sigma), counts
    # a pure function of (seed, step): the same again, and another seed gives another order
    assert all(head_for_step(11, s, probs) == heads[s] for s in range(0, n, 997))
    other = np.array([head_for_step(12, s, probs) for s in range(200)])
    assert not np.array_equal(other, heads[:200])


# --- model and training -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A 4-step two-head run (checkpoints at 2 and 4)."""
    from dpkeras.trainer import Trainer

    out = str(tmp_path_factory.mktemp("mt") / "run")
    tr = Trainer(normalize(tf_style()), out, jit_compile=False,
                          skip_neighbor_stat=True)
    tr.run()
    tr.out = out
    return tr


def _snapshot(variables):
    return [np.array(v.numpy()) for v in variables]


def _changed(before, variables):
    return [not np.array_equal(b, v.numpy()) for b, v in zip(before, variables)]


def test_one_step_updates_the_descriptor_and_only_the_chosen_head():
    from dpkeras.trainer import Trainer, _StepSubset
    from dpkeras.nlist import batch_args

    tr = Trainer(normalize(tf_style()), "unused", jit_compile=False,
                          skip_neighbor_stat=True)
    model, optimizer, _ = tr.build()
    train_step, _ = tr.make_steps(model, optimizer)
    a, b = model.heads["ener_a"], model.heads["ener_b"]
    # one descriptor layer object; l0 and l2 one SharedDense object per type; the rest private
    assert a.descriptor is b.descriptor is model.descriptor
    for t in range(2):
        na, nb = a.fitting.nets[t], b.fitting.nets[t]
        assert na.ws[0] is nb.ws[0] and na.bs[0] is nb.bs[0]
        assert na.ws[2] is nb.ws[2] and na.idts[2] is nb.idts[2]
        assert na.ws[1] is not nb.ws[1] and na.w_out is not nb.w_out
        assert model.shared_layers[f"l0_type_{t}"].w is na.ws[0]
    desc = [v for v in model.descriptor.trainable_variables]
    shared = [v for layer in model.shared_layers.values() for v in layer.trainable_variables]
    ids = {id(v) for v in shared}
    own = {h: [v for v in m.fitting.trainable_variables if id(v) not in ids]
           for h, m in model.heads.items()}
    d = model.descriptor
    for step, head in enumerate(["ener_a", "ener_b", "ener_b", "ener_a"]):
        batch = next(iter(_StepSubset(tr.train_data[head], [step]).dataset(
            tr.seed, **batch_args(d))))
        other = "ener_b" if head == "ener_a" else "ener_a"
        before = {k: _snapshot(v) for k, v in
                  (("desc", desc), ("shared", shared), (head, own[head]), (other, own[other]))}
        seen_by_other = np.array(model.heads[other].fitting.nets[0].ws[0].numpy())
        train_step(head, batch)
        assert all(_changed(before["desc"], desc)), step
        assert all(_changed(before["shared"], shared)), step
        assert all(_changed(before[head], own[head])), step
        assert not any(_changed(before[other], own[other])), step
        # training one head moves the shared layer the other head sees
        assert not np.array_equal(seen_by_other, model.heads[other].fitting.nets[0].ws[0])
    assert int(optimizer.iterations) == 4


def test_lcurve_checkpoint_and_exact_restart(run_dir, tmp_path):
    from dpkeras import checkpoint
    from dpkeras.load import load
    from dpkeras.trainer import Trainer

    lines = open(os.path.join(run_dir.out, "lcurve.out")).read().splitlines()
    header = lines[0].split()[2:]
    assert header[:6] == ["rmse_val_ener_a", "rmse_trn_ener_a", "rmse_e_val_ener_a",
                          "rmse_e_trn_ener_a", "rmse_f_val_ener_a", "rmse_f_trn_ener_a"]
    assert header[6] == "rmse_val_ener_b" and header[-1] == "lr"
    rows = np.array([[float(x) for x in ln.split()] for ln in lines[2:]])
    assert rows[:, 0].tolist() == [0, 2, 4]
    assert np.all(np.isnan(rows[:, 1])) and np.all(np.isfinite(rows[:, 7]))   # a: no valid
    assert sum(run_dir.step_counts.values()) == 4
    assert sorted(checkpoint.list_steps(run_dir.out)) == [2, 4]
    # restart from step 2 in another directory: the same heads, batches and weights
    again = str(tmp_path / "again")
    tr = Trainer(normalize(tf_style()), again, jit_compile=False,
                          skip_neighbor_stat=True,
                          restart=os.path.join(run_dir.out, "checkpoints", "ckpt-2"))
    tr.run()
    full, cont = load(run_dir.out)[0], load(again)[0]
    assert len(full.weights) == len(cont.weights) > 20
    for x, y in zip(full.weights, cont.weights):
        assert x.path == y.path and np.array_equal(x.numpy(), y.numpy()), x.path
    with pytest.raises(DPKerasError,
                       match=r"it differs: model\.model_dict\.ener_b\.fitting_net\.seed: run"):
        cfg = tf_style()
        cfg["model"]["fitting_net_dict"]["ener_b"]["seed"] = 9
        Trainer(normalize(cfg), str(tmp_path / "x"), restart=run_dir.out,
                         skip_neighbor_stat=True).build()


def test_freeze_show_deeppot_and_init_frz_model(run_dir, tmp_path):
    from dpkeras.data.system import DeepmdSystem
    from dpkeras.freeze import freeze
    from dpkeras.infer import DeepPot
    from dpkeras.load import load_input_from_frozen
    from dpkeras.trainer import Trainer
    from dpkeras.show import describe

    s = DeepmdSystem(WATER[3], ["O", "H"])
    coord, box = s.coord[:2], s.box[:2]
    ref = {h: DeepPot(run_dir.out, head=h).eval(coord, box, s.atype) for h in ("ener_a", "ener_b")}
    assert not np.allclose(ref["ener_a"][0], ref["ener_b"][0])
    with pytest.raises(DPKerasError, match=r"heads \['ener_a', 'ener_b'\]; choose one"):
        DeepPot(run_dir.out)
    with pytest.raises(DPKerasError, match="--head NAME, or all with --united_model"):
        freeze(run_dir.out, str(tmp_path / "x"))
    # one head -> a single-task SavedModel
    one = str(tmp_path / "ener_b_model")
    freeze(run_dir.out, one, head="ener_b")
    e, f, v = DeepPot(one).eval(coord, box, s.atype)
    np.testing.assert_allclose(e, ref["ener_b"][0], rtol=1e-12)
    np.testing.assert_allclose(f, ref["ener_b"][1], rtol=1e-12, atol=1e-12)
    assert "single-task" in describe(one, ["model-branch"])[0]
    # every head -> a united SavedModel
    united = str(tmp_path / "united")
    freeze(run_dir.out, united, united_model=True)
    lines = describe(united, ["model-branch", "type-map"])
    assert "Available model branches are ['ener_a', 'ener_b', 'RANDOM']" in lines[1]
    for h in ("ener_a", "ener_b"):
        np.testing.assert_allclose(DeepPot(united, head=h).eval(coord, box, s.atype)[0],
                                   ref[h][0], rtol=1e-12)
    import tensorflow as tf

    sm = tf.saved_model.load(united)
    assert [x.decode() for x in sm.heads.numpy()] == ["ener_a", "ener_b"]
    out = sm.signatures["ener_b_serving_default"](
        coord=tf.constant(coord.reshape(2, -1, 3)), atype=tf.constant(s.atype, tf.int32),
        box=tf.constant(box.reshape(2, 3, 3)))
    np.testing.assert_allclose(out["energy"].numpy(), ref["ener_b"][0], rtol=1e-12)
    # --init_frz_model: an old head and the descriptor from the united model, a new head
    cfg = tf_style()
    cfg["model"]["descriptor"] = {}
    cfg["model"]["fitting_net_dict"] = {"ener_b": {}, "ener_c": {"neuron": [8, 8],
                                                                   "seed": 4}}
    cfg["training"]["data_dict"] = {"ener_b": cfg["training"]["data_dict"]["ener_b"],
                                    "ener_c": {"training_data": [WATER[2]]}}
    cfg["training"]["fitting_weight"] = {"ener_b": 1, "ener_c": 1}
    cfg["loss_dict"] = {}
    inp = tmp_path / "input.json"
    inp.write_text(json.dumps(cfg))
    with pytest.raises(DPKerasError, match="loss_dict.ener_c: missing: 'ener_c' is a new head"):
        load_input_from_frozen(str(inp), united)
    cfg["loss_dict"] = {"ener_c": {}}
    inp.write_text(json.dumps(cfg))
    config = load_input_from_frozen(str(inp), united)
    assert config["model"]["model_dict"]["ener_b"]["fitting_net"]["layer_name"] == LAYER_NAME
    assert config["model"]["model_dict"]["ener_c"]["descriptor"] == \
        normalize(tf_style())["model"]["model_dict"]["ener_a"]["descriptor"]
    tr = Trainer(config, str(tmp_path / "next"), init_model=united,
                          skip_neighbor_stat=True)
    model, _, _ = tr.build()
    e2 = DeepPot.from_model(model.heads["ener_b"]).eval(coord, box, s.atype)[0]
    np.testing.assert_allclose(e2, ref["ener_b"][0], rtol=1e-12)
    shutil.rmtree(united)


# --- energy + dipole (DeePMD-kit's examples/water_multi_task/ener_dipole, tiny nets) ------------
def test_energy_and_dipole_heads(tmp_path):
    from conftest import EXAMPLE_DATA
    from dpkeras.freeze import freeze
    from dpkeras.load import load_model
    from dpkeras.load import load
    from dpkeras.trainer import Trainer, head_for_step

    dip = os.path.join(EXAMPLE_DATA, "water_tensor", "dipole")
    cfg = tf_style(numb_steps=4, layer_name=None)
    cfg["model"]["fitting_net_dict"] = {
        "water_dipole": {"type": "dipole", "sel_type": [0], "neuron": [8, 8],
                         "resnet_dt": True, "seed": 1},
        "water_ener": {"neuron": [8, 8], "resnet_dt": True, "seed": 1}}
    cfg["loss_dict"] = {"water_dipole": {"type": "tensor", "pref": 1.0, "pref_atomic": 1.0},
                        "water_ener": {}}
    cfg["training"].update(fitting_weight={"water_dipole": 1, "water_ener": 1}, disp_freq=4,
                           save_freq=4, seed=1)
    cfg["training"]["data_dict"] = {
        "water_dipole": {
            "training_data": {"systems": [f"{dip}/training_data_reformat/atomic_system",
                                          f"{dip}/training_data_reformat/global_system"],
                              "batch_size": 1},
            "validation_data": {"systems": [f"{dip}/validation_data_reformat/global_system"],
                                "batch_size": 1}},
        "water_ener": {"training_data": {"systems": [WATER[0]], "batch_size": 1}}}
    config = normalize(cfg)
    assert {head_for_step(1, s, [0.5, 0.5]) for s in range(4)} == {0, 1}   # both heads train
    out = str(tmp_path / "run")
    tr = Trainer(config, out, jit_compile=False, skip_neighbor_stat=True)
    tr.run()
    assert min(tr.step_counts.values()) > 0
    header = open(os.path.join(out, "lcurve.out")).readline().split()
    assert {"rmse_lc_val_water_dipole", "rmse_gl_trn_water_dipole", "rmse_e_trn_water_ener",
            "rmse_f_val_water_ener"} <= set(header)
    model = load(out)[0]
    assert model.heads["water_dipole"].descriptor is model.heads["water_ener"].descriptor
    one = str(tmp_path / "dipole.keras")
    freeze(out, one, head="water_dipole")
    frozen, _ = load_model(one)
    assert frozen.fitting.fitting_type == "dipole"
    a, b = frozen.get_variables(), model.heads["water_dipole"].get_variables()
    np.testing.assert_array_equal(a["fitting"][0]["w_out"], b["fitting"][0]["w_out"])
    np.testing.assert_array_equal(a["embeddings"][(0, 1)]["w"][0],
                                  b["embeddings"][(0, 1)]["w"][0])



def test_finetune_from_a_multitask_model_picks_a_branch(run_dir, tmp_path):
    """``--finetune RUN --model_branch HEAD`` starts from that head (forces unchanged by the
    bias recalibration); no branch keeps only the shared descriptor, as DeePMD-kit."""
    from dpkeras.data.system import DeepmdSystem
    from dpkeras.finetune import load_finetune_input
    from dpkeras.infer import DeepPot
    from dpkeras.load import load
    from dpkeras.trainer import Trainer

    raw = {"model": {"type_map": ["O", "H"], "descriptor": {}, "fitting_net": {}},
           "learning_rate": {"start_lr": 1e-3, "stop_lr": 1e-4, "decay_steps": 2},
           "loss": {},
           "training": {"numb_steps": 0, "seed": 1,
                        "training_data": {"systems": [WATER[2]], "batch_size": 1}}}
    path = tmp_path / "input.json"
    path.write_text(json.dumps(raw))
    s = DeepmdSystem(WATER[3], ["O", "H"])
    ref_b = DeepPot(run_dir.out, head="ener_b").eval(s.coord[:1], s.box[:1], s.atype)
    with pytest.raises(DPKerasError, match=r"no such branch.*ener_a.*ener_b.*RANDOM"):
        load_finetune_input(str(path), run_dir.out, "ener_c", True)
    for branch, out in (("ener_b", "ft_b"), (None, "ft_random")):
        config, spec = load_finetune_input(str(path), run_dir.out, branch, True)
        model = Trainer(config, str(tmp_path / out), finetune=spec,
                        skip_neighbor_stat=True).run()
        f = DeepPot.from_model(model, "ft").eval(s.coord[:1], s.box[:1], s.atype)[1]
        same = np.allclose(f, ref_b[1], rtol=0, atol=1e-10)
        assert same == (branch == "ener_b"), branch
        shared = load(run_dir.out)[0].descriptor
        assert len(model.descriptor.weights) == len(shared.weights)
        for a, b in zip(model.descriptor.weights, shared.weights):
            np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_multitask_finetuning_takes_empty_sections_from_the_pretrained_model(run_dir,
                                                                           tmp_path):
    """--use_pretrain_script: a {} shared descriptor and the {} or absent fitting nets of heads
    that start from a branch come from the pretrained model; without it, a clear error."""
    from dpkeras.finetune import Pretrained, load_finetune_input

    raw = pt_style()
    raw["model"]["shared_dict"]["my_descriptor"] = {}
    raw["model"]["model_dict"] = {
        "ener_b": {"type_map": "my_type_map", "descriptor": "my_descriptor", "fitting_net": {}},
        "water2": {"type_map": "my_type_map", "descriptor": "my_descriptor",
                   "finetune_head": "ener_a"}}
    raw["loss_dict"] = {"ener_b": {}, "water2": {}}
    raw["training"]["model_prob"] = {"ener_b": 1.0, "water2": 1.0}
    raw["training"]["data_dict"] = {
        h: {"training_data": {"systems": [WATER[i]], "batch_size": 1}}
        for h, i in (("ener_b", 1), ("water2", 2))}
    path = tmp_path / "input.json"
    path.write_text(json.dumps(raw))
    config, plan = load_finetune_input(str(path), run_dir.out, None, True)
    pre = Pretrained(run_dir.out).branches
    heads = config["model"]["model_dict"]
    assert heads["ener_b"]["descriptor"] == pre["ener_b"]["descriptor"]
    assert heads["water2"]["fitting_net"] == pre["ener_a"]["fitting_net"]
    assert heads["ener_b"]["fitting_net"] == pre["ener_b"]["fitting_net"]
    assert plan.modes == {"ener_b": None, "water2": "change-by-statistic"}
    with pytest.raises(DPKerasError, match="descriptor"):
        load_finetune_input(str(path), run_dir.out, None, False)


def test_multitask_finetuning_keeps_retained_heads_and_starts_new_ones(run_dir, tmp_path):
    """finetune_head: a new head starts from the named pretrained head (bias recalibrated on
    its data: forces unchanged, energies shifted); a head named like a pretrained one
    continues from it unchanged; any other head gets a new fitting net (RANDOM)."""
    from dpkeras.data.system import DeepmdSystem
    from dpkeras.finetune import load_finetune_input
    from dpkeras.infer import DeepPot
    from dpkeras.trainer import Trainer

    raw = pt_style()
    fit = dict(raw["model"]["model_dict"]["ener_a"]["fitting_net"])
    raw["model"]["model_dict"] = {
        "ener_b": {"type_map": "my_type_map", "descriptor": "my_descriptor",
                   "fitting_net": dict(fit)},
        "water2": {"type_map": "my_type_map", "descriptor": "my_descriptor",
                   "fitting_net": dict(fit), "finetune_head": "ener_a"},
        "fresh": {"type_map": "my_type_map", "descriptor": "my_descriptor",
                  "fitting_net": {"neuron": [8, 8], "seed": 9}}}
    raw["loss_dict"] = {"ener_b": {}, "water2": {}, "fresh": {}}
    t = raw["training"]
    t["numb_steps"] = 0
    t["model_prob"] = {"ener_b": 1.0, "water2": 2.0, "fresh": 1.0}
    t["data_dict"] = {h: {"training_data": {"systems": [WATER[i]], "batch_size": 1}}
                      for h, i in (("ener_b", 1), ("water2", 2), ("fresh", 0))}
    path = tmp_path / "input.json"
    path.write_text(json.dumps(raw))
    config, plan = load_finetune_input(str(path), run_dir.out, None, True)
    assert plan.modes == {"ener_b": None, "water2": "change-by-statistic",
                          "fresh": "set-by-statistic"}
    out = str(tmp_path / "ft")
    Trainer(config, out, finetune=plan, skip_neighbor_stat=True,
                     jit_compile=False).run()
    s = DeepmdSystem(WATER[3], ["O", "H"])
    c, b = s.coord[:1], s.box[:1]
    pre = {h: DeepPot(run_dir.out, head=h).eval(c, b, s.atype) for h in ("ener_a", "ener_b")}
    new = {h: DeepPot(out, head=h).eval(c, b, s.atype) for h in ("ener_b", "water2", "fresh")}
    np.testing.assert_allclose(new["ener_b"][0], pre["ener_b"][0], rtol=1e-12)
    np.testing.assert_allclose(new["water2"][1], pre["ener_a"][1], rtol=0, atol=1e-10)
    assert np.abs(new["water2"][0] - pre["ener_a"][0]).max() > 1e-6   # the recalibrated bias
    assert not np.allclose(new["fresh"][1], pre["ener_a"][1], atol=1e-6)
