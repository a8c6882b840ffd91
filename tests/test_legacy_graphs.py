"""Frozen graphs of every DeePMD-kit era load and reproduce DeePMD-kit's own numbers.

* ``tests/data/deepmd_suite``: graphs of DeePMD-kit's own test suite (no training script; the
  architecture is read from the graph) with the expected numbers written in its tests;
* ``tests/data/legacy_v2_2``: graphs made by DeePMD-kit 2.2.11 (2.2 layouts: ``[N]`` biases,
  ``layer_normalization_1``, ``share_<name>`` layers, united multi-task graphs);
* ``shared/fixtures/oc2m_twin_v2.2.7`` (when present): a DeePMD-kit 2.2.7 DPA-1 with the
  56-element OC2M type map.
"""

import glob
import json
import os

import numpy as np
import pytest

from conftest import ROOT, TESTDATA, max_rel
from dpkeras.errors import DPKerasError
from dpkeras.infer import DeepDipole, DeepPolar, DeepPot

SUITE = os.path.join(TESTDATA, "deepmd_suite")
LEGACY = os.path.join(TESTDATA, "legacy_v2_2")
KEYS = ("energy", "force", "virial", "atom_energy", "atom_virial")


def _suite(name):
    return dict(np.load(os.path.join(SUITE, name + ".npz")))


def _box(ref):
    return ref["box"] if bool(ref.get("pbc", "box" in ref)) and "box" in ref else None


@pytest.mark.parametrize("case", ["deeppot-pbc", "deeppot-nopbc", "deeppot-largebox",
                                  "deeppot-r-pbc", "deeppot-r-nopbc", "deeppot-r-largebox"])
def test_deepmd_test_suite_energy_graphs_match_its_expected_numbers(case):
    """DeePMD-kit's test_deeppot_a/_r: assert_almost_equal(..., 10), i.e. |d| < 1.5e-10."""
    ref = _suite(case)
    dp = DeepPot(os.path.join(SUITE, case.rsplit("-", 1)[0] + ".pb"))
    out = dp.eval(ref["coord"], _box(ref), ref["atype"], atomic=True)
    for got, key in zip(out, KEYS):
        np.testing.assert_allclose(np.ravel(got), np.ravel(ref[key]), rtol=0, atol=1.5e-10)


def test_deepmd_test_suite_fparam_aparam_graph():
    """fparam/aparam graph (2.x era, empty model_attr/tmap, rcut 6.0, rcut_smth 1.8): its
    expected numbers to DeePMD-kit's own 1.5e-10 absolute. (The switch divides by the float32
    difference rcut - rcut_smth, as DeePMD-kit's switcher.h: a float64 one is off by 2e-8.)"""
    ref = _suite("fparam_aparam-pbc")
    dp = DeepPot(os.path.join(SUITE, "fparam_aparam.pb"))
    assert dp.get_type_map() == ["O"]   # from the stored script: the graph's tmap is empty
    out = dp.eval(ref["coord"], ref["box"], ref["atype"], atomic=True, fparam=ref["fparam"],
                  aparam=ref["aparam"])
    for got, key in zip(out, KEYS):
        np.testing.assert_allclose(np.ravel(got), np.ravel(ref[key]), rtol=0, atol=1.5e-10)


@pytest.mark.parametrize("case,cls", [
    ("deepdipole-pbc", DeepDipole), ("deepdipole-nopbc", DeepDipole),
    ("deepdipole_new-pbc", DeepDipole), ("deepdipole_fake-pbc", DeepDipole),
    ("deeppolar-pbc", DeepPolar), ("deeppolar-nopbc", DeepPolar),
    ("deeppolar_new-pbc", DeepPolar)])
def test_deepmd_test_suite_tensor_graphs_match_its_expected_numbers(case, cls):
    """test_deepdipole/test_deeppolar: atomic tensors of the sel_type atoms and, for the _new
    graphs, the global tensor and its component-wise forces and virials (1.5e-10 absolute).
    deeppolar_new bakes its diagonal shift into an anonymous constant (pre-3.0.2 layout)."""
    ref = _suite(case)
    dp = cls(os.path.join(SUITE, case.rsplit("-", 1)[0] + ".pb"))
    key = "atom_dipole" if cls is DeepDipole else "atom_polar"
    at = dp.eval(ref["coord"], _box(ref), ref["atype"], atomic=True)
    np.testing.assert_allclose(np.ravel(at[:, ref["sel_mask"].astype(bool)]), ref[key].ravel(),
                               rtol=0, atol=1.5e-10)
    k = key[len("atom_"):]
    if k + "_force" in ref:
        t, f, v = dp.eval_full(ref["coord"], _box(ref), ref["atype"])
        for got, name in ((t, k), (f, k + "_force"), (v, k + "_virial")):
            np.testing.assert_allclose(np.ravel(got), ref[name].ravel(), rtol=0, atol=1.5e-10)


@pytest.mark.parametrize("case,graphs", [
    ("model_devi-deeppot_deeppot-1", ["deeppot", "deeppot-1"]),
    ("model_devi-se_atten_no_atten_1_2", ["se_atten_no_atten_1", "se_atten_no_atten_2"])])
def test_model_devi_matches_deepmd_test_model_devi(case, graphs, tmp_path):
    """test_model_devi(_mix): calc_model_devi on two graphs (the se_atten ones have no
    attention layers and no script), 1.5e-6 as DeePMD-kit; the file has its layout."""
    from dpkeras.model_devi import calc_model_devi, write_model_devi_out

    ref = _suite(case)
    models = [DeepPot(os.path.join(SUITE, g + ".pb")) for g in graphs]
    table = calc_model_devi(ref["coord"][:1], None, ref["atype"], models, frequency=10)
    np.testing.assert_allclose(table[0, 1:], ref["model_devi"][0, 1:], rtol=0, atol=1.5e-6)
    if "atype_mixed" in ref:   # the same graphs with other atom types per frame
        for i in range(2):
            t = calc_model_devi(ref["coord"][i:i + 1], None, ref["atype_mixed"][i], models)
            np.testing.assert_allclose(t[0, 1:], ref["model_devi"][i, 1:], rtol=0, atol=1.5e-6)
    out = tmp_path / "model_devi.out"
    write_model_devi_out([("sys", table, None)], str(out))
    lines = out.read_text().splitlines()
    assert lines[0] == "# sys" and lines[1].split()[1:] == [
        "step", "max_devi_v", "min_devi_v", "avg_devi_v", "max_devi_f", "min_devi_f",
        "avg_devi_f", "devi_e"]
    assert np.allclose(np.loadtxt(str(out)), table, rtol=1e-6)


def _legacy_cases():
    out = []
    for d in sorted(glob.glob(os.path.join(LEGACY, "*", "frozen_model.pb"))):
        for r in sorted(glob.glob(os.path.join(os.path.dirname(d), "reference*.npz"))):
            out.append(os.path.relpath(r, LEGACY))
    return out


@pytest.mark.parametrize("case", _legacy_cases())
def test_deepmd_2_2_graphs_match_deepmd(case):
    """se_e2_a, se_e2_r, se_e3, hybrid, se_atten (layer_normalization_1, type embedding bias),
    a fine-tuned se_atten, compressed se_e2_a/se_e2_r (`dp compress`: the tables evaluated as
    DeePMD-kit's kernel, dpkeras.tabulate), DeePMD-kit 2.1.5 se_e2_a/se_atten, dipole, polar (baked shift), PBC
    and not: 1e-10 (se_atten 1e-9: its attention near the cut-off is defined only to ~1e-9,
    see test_type_embedding)."""
    ref = dict(np.load(os.path.join(LEGACY, case), allow_pickle=True))
    pb = os.path.join(LEGACY, os.path.dirname(case), "frozen_model.pb")
    box = ref["box"] if bool(ref["pbc"]) else None
    if "dipole" in ref or "polar" in ref:
        k = "dipole" if "dipole" in ref else "polar"
        dp = (DeepDipole if k == "dipole" else DeepPolar)(pb)
        assert max_rel(dp.eval(ref["coord"], box, ref["atype"], atomic=False), ref[k]) < 1e-10
        at = dp.eval(ref["coord"], box, ref["atype"], atomic=True)[:, ref["sel_atom_index"]]
        assert max_rel(at, ref["atom_" + k]) < 1e-10
        return
    tol = 1e-9 if "se_atten" in case else 1e-10
    out = DeepPot(pb).eval(ref["coord"], box, ref["atype"], atomic=True)
    for got, key in zip(out, KEYS):
        assert max_rel(got, ref[key]) < tol, key


MT = os.path.join(LEGACY, "multitask")


@pytest.mark.parametrize("head", ["water_a", "water_b"])
@pytest.mark.parametrize("pbc", [True, False])
def test_deepmd_2_2_multitask_head_and_united_graphs_match_deepmd(head, pbc):
    """v2.2 multi-task (two ener heads sharing every fitting layer by layer_name + a dipole
    head): each head's frozen_model_<head>.pb and the united graph's head give DeePMD-kit's
    numbers."""
    ref = dict(np.load(os.path.join(MT, f"reference{'' if pbc else '_nopbc'}_{head}.npz")))
    box = ref["box"] if pbc else None
    for dp in (DeepPot(os.path.join(MT, f"frozen_model_{head}.pb")),
               DeepPot(os.path.join(MT, "united.pb"), head=head)):
        out = dp.eval(ref["coord"], box, ref["atype"], atomic=True)
        for got, key in zip(out, KEYS):
            assert max_rel(got, ref[key]) < 1e-10, key


def test_deepmd_2_2_united_graph_heads_and_dipole_head():
    from dpkeras.show import describe

    ref = dict(np.load(os.path.join(MT, "reference_water_dipole.npz")))
    for dp in (DeepDipole(os.path.join(MT, "frozen_model_water_dipole.pb")),
               DeepDipole(os.path.join(MT, "united.pb"), head="water_dipole")):
        assert max_rel(dp.eval(ref["coord"], ref["box"], ref["atype"], atomic=False),
                       ref["dipole"]) < 1e-10
    lines = describe(os.path.join(MT, "united.pb"), ["model-branch"])
    assert "['water_a', 'water_b', 'water_dipole', 'RANDOM']" in lines[1]
    with pytest.raises(DPKerasError, match="heads.*water_a"):
        DeepPot(os.path.join(MT, "united.pb"))
    with pytest.raises(DPKerasError, match="no head 'nope'"):
        DeepPot(os.path.join(MT, "united.pb"), head="nope")


def _strip_script(src, dst):
    import tensorflow as tf

    g = tf.compat.v1.GraphDef()
    g.ParseFromString(open(src, "rb").read())
    keep = [n for n in g.node if n.name != "train_attr/training_script"]
    del g.node[:]
    g.node.extend(keep)
    with open(dst, "wb") as f:
        f.write(g.SerializeToString())


@pytest.mark.parametrize("kind", ["water_se_e2_a", "water_se_atten_v2", "water_dpa1_attn0",
                                  "water_hybrid_dpa1", "water_se_e2_a_tebd"])
def test_graph_without_training_script_gives_deepmd_numbers(kind, tmp_path):
    """The architecture comes from the graph itself: with train_attr/training_script removed,
    DeePMD-kit 3.2.0 graphs (per-type, strip + smooth attention, hybrid with attention,
    type-embedded se_e2_a with gelu) still reproduce DeePMD-kit. (An se_atten's exclude_types
    is not visible in the graph's names: such graphs need their script.)"""
    pb = str(tmp_path / "noscript.pb")
    _strip_script(os.path.join(TESTDATA, kind, "frozen_model.pb"), pb)
    ref = np.load(os.path.join(TESTDATA, kind, "reference.npz"))
    tol = 1e-9 if "dpa1" in kind else 1e-10
    out = DeepPot(pb).eval(ref["coord"], ref["box"], ref["atype"], atomic=True)
    for got, key in zip(out, KEYS):
        assert max_rel(got, ref[key]) < tol, key


def test_every_graph_architecture_agrees_with_its_training_script():
    """For every committed graph with a script, the architecture read from the graph agrees
    with the script (merge_with_script raises on any disagreement)."""
    from dpkeras.io.deepmd_pb import FrozenGraph, graph_heads

    checked = 0
    for pb in sorted(glob.glob(os.path.join(TESTDATA, "**", "*.pb"), recursive=True)):
        if "saved_model" in pb or "dos" in pb or "mask" in pb:
            continue   # refused by name (test_graphs_dpkeras_cannot_read_...)
        g = FrozenGraph(pb)
        if g.training_script() is None or "spin" in g.training_script()["model"]:
            continue
        for h in graph_heads(g) or [None]:
            g.model_section(f"_{h}" if h else "")
            checked += 1
    assert checked >= 30


def test_graph_disagreeing_with_its_script_is_an_error_naming_both(tmp_path):
    import tensorflow as tf

    src = os.path.join(TESTDATA, "water_se_e2_a", "frozen_model.pb")
    g = tf.compat.v1.GraphDef()
    g.ParseFromString(open(src, "rb").read())
    for n in g.node:
        if n.name == "train_attr/training_script":
            script = json.loads(n.attr["value"].tensor.string_val[0])
            script["model"]["descriptor"]["neuron"] = [10, 20, 30]
            n.attr["value"].tensor.string_val[0] = json.dumps(script).encode()
    pb = tmp_path / "edited.pb"
    pb.write_bytes(g.SerializeToString())
    with pytest.raises(DPKerasError, match=r"descriptor.neuron.*\[10, 20, 30\].*\[10, 20, 40\]"):
        DeepPot(str(pb))


@pytest.mark.parametrize("graph,match", [
    ("deepmd_suite/deepspin.pb", "spin model"),
    ("deepmd_suite/deepdos.pb", "model_type 'dos' is not supported"),
    ("deepmd_suite/dp4mask.pb", "DescrptSeAMask is not supported")])
def test_graphs_dpkeras_cannot_read_are_refused_by_name(graph, match):
    with pytest.raises(DPKerasError, match=match):
        DeepPot(os.path.join(TESTDATA, graph))


OC2M = os.path.join(os.path.dirname(ROOT), "shared", "fixtures", "oc2m_twin_v2.2.7")


@pytest.mark.skipif(not os.path.isdir(OC2M), reason="shared/ fixtures not present")
@pytest.mark.parametrize("pb,ref", [("frozen_model.pb", "reference.npz"),
                                    ("finetuned.pb", "reference_finetuned.npz")])
def test_dpa1_oc2m_era_graph_matches_deepmd_2_2_7(pb, ref):
    """The stand-in for the public DPA-1 OC2M graph (2.2.7, 56 elements)."""
    r = dict(np.load(os.path.join(OC2M, ref)))
    out = DeepPot(os.path.join(OC2M, pb)).eval(r["coord"], r["box"], r["atype_model"],
                                               atomic=True)
    for got, key in zip(out, KEYS):
        assert max_rel(got, r[key]) < 1e-10, key


@pytest.mark.parametrize("fmt", [".keras", ""])
def test_compressed_graph_round_trips_and_refuses_dp(fmt, tmp_path):
    """A compressed graph's tables survive .keras and SavedModel; .dp (which has no tables in
    DeePMD-kit's layout for the TF backend) is refused by name."""
    from dpkeras.export import save_model

    d = os.path.join(LEGACY, "compressed_se_e2_a")
    src = DeepPot(os.path.join(d, "frozen_model.pb"))
    out = str(tmp_path / ("m" + fmt))
    save_model(src.model, out)
    ref = dict(np.load(os.path.join(d, "reference.npz")))
    got = DeepPot(out).eval(ref["coord"], ref["box"], ref["atype"], atomic=True)
    for g, key in zip(got, KEYS):
        assert max_rel(g, ref[key]) < 1e-10, key
    with pytest.raises(DPKerasError, match="compressed"):
        save_model(src.model, str(tmp_path / "m.dp"))


def test_model_devi_command_writes_deepmd_layout(tmp_path):
    """python -m dpkeras.model_devi on 3 frames of DFT water with two DeePMD-kit graphs: one
    line per frame, columns as calc_model_devi, per-atom force deviations with --atomic."""
    import shutil
    import subprocess
    import sys

    from conftest import WATER
    from dpkeras.model_devi import calc_model_devi

    sysdir = tmp_path / "water3"
    (sysdir / "set.000").mkdir(parents=True)
    for f in ("type.raw", "type_map.raw"):
        if os.path.exists(os.path.join(WATER[3], f)):
            shutil.copy(os.path.join(WATER[3], f), sysdir / f)
    for f in ("coord.npy", "box.npy"):
        np.save(sysdir / "set.000" / f, np.load(os.path.join(WATER[3], "set.000", f))[:3])
    graphs = [os.path.join(SUITE, g) for g in ("deeppot.pb", "deeppot-1.pb")]
    out = tmp_path / "model_devi.out"
    r = subprocess.run([sys.executable, "-m", "dpkeras.model_devi", "--models=" + ",".join(graphs),
                        f"--system={sysdir}", f"--output={out}", "--frequency=5", "--atomic"],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    got = np.loadtxt(str(out))
    assert got.shape == (3, 8 + 192) and list(got[:, 0]) == [0, 5, 10]
    coord = np.load(os.path.join(WATER[3], "set.000", "coord.npy"))[:3]
    box = np.load(os.path.join(WATER[3], "set.000", "box.npy"))[:3]
    atype = np.loadtxt(os.path.join(WATER[3], "type.raw"), dtype=int)
    want = calc_model_devi(coord, box, atype, [DeepPot(g) for g in graphs], frequency=5)
    np.testing.assert_allclose(got[:, 1:8], want[:, 1:], rtol=1e-6)


def test_init_frz_model_from_a_deepmd_2_2_united_graph(tmp_path):
    """The seed's workflow: continue multi-task training from DeePMD-kit's united graph, the
    inherited heads `{}` (their fitting and layer_name sharing from the graph), the descriptor
    `{}`; the new run starts with the graph's numbers and trains."""
    from conftest import WATER
    from dpkeras.load import load_input_from_frozen
    from dpkeras.trainer import Trainer

    united = os.path.join(MT, "united.pb")
    cfg = {"model": {"type_map": ["O", "H"], "descriptor": {},
                     "fitting_net_dict": {"water_a": {}, "water_b": {}}},
           "loss_dict": {},
           "learning_rate": {"type": "exp", "start_lr": 1e-3, "decay_steps": 10,
                             "stop_lr": 1e-4},
           "training": {"numb_steps": 2, "seed": 1, "disp_freq": 1, "save_freq": 2,
                        "fitting_weight": {"water_a": 1, "water_b": 1},
                        "data_dict": {"water_a": {"training_data": {"systems": [WATER[0]],
                                                                    "batch_size": 1}},
                                      "water_b": {"training_data": {"systems": [WATER[1]],
                                                                    "batch_size": 1}}}}}
    inp = tmp_path / "input.json"
    inp.write_text(json.dumps(cfg))
    config = load_input_from_frozen(str(inp), united)
    fit = config["model"]["model_dict"]["water_a"]["fitting_net"]
    assert fit["layer_name"] == ["l0", "l1", "out_a"]
    tr = Trainer(config, str(tmp_path / "run"), init_model=united,
                          skip_neighbor_stat=True, jit_compile=False)
    model, _, _ = tr.build()
    ref = dict(np.load(os.path.join(MT, "reference_water_b.npz")))
    e = DeepPot.from_model(model.heads["water_b"]).eval(ref["coord"], ref["box"], ref["atype"])[0]
    assert max_rel(e, ref["energy"]) < 1e-12
    tr.run()
    assert (tmp_path / "run" / "lcurve.out").exists()


def test_united_graph_freezes_to_a_united_savedmodel_and_fine_tunes_a_branch(tmp_path):
    """`freeze --checkpoint united.pb --united_model` carries DeePMD-kit's united graph into
    our SavedModel (every head); `--finetune united.pb --model_branch water_b` starts from that
    branch."""
    from conftest import WATER, small_input
    from dpkeras.finetune import load_finetune_input
    from dpkeras.freeze import freeze
    from dpkeras.trainer import Trainer

    united = os.path.join(MT, "united.pb")
    out = str(tmp_path / "united_sm")
    freeze(united, out, united_model=True)
    ref = dict(np.load(os.path.join(MT, "reference_water_b.npz")))
    e = DeepPot(out, head="water_b").eval(ref["coord"], ref["box"], ref["atype"])[0]
    assert max_rel(e, ref["energy"]) < 1e-12
    cfg = small_input([WATER[2]], [WATER[3]], numb_steps=2, disp_freq=1, save_freq=2)
    cfg["model"] = {"type_map": ["O", "H"], "descriptor": {}, "fitting_net": {}}
    inp = tmp_path / "input.json"
    inp.write_text(json.dumps(cfg))
    config, spec = load_finetune_input(str(inp), united, branch="water_b",
                                       use_pretrain_script=True)
    assert config["model"]["fitting_net"]["layer_name"] == ["l0", "l1", "out_b"]
    Trainer(config, str(tmp_path / "ft"), finetune=spec, jit_compile=False,
            skip_neighbor_stat=True).run()
    assert (tmp_path / "ft" / "lcurve.out").exists()


def _rewrite(src, dst, op_from, op_to, drop=(), bias_2d=False, rename_nodes=False):
    """A copy of graph ``src`` in an older era's layout: op renamed (what `dp convert-from`
    renames the other way; ``rename_nodes``: in node names too, as TF names a node after its
    op), nodes dropped, biases stored as [1, N]."""
    import tensorflow as tf

    g = tf.compat.v1.GraphDef()
    g.ParseFromString(open(src, "rb").read())
    keep = []
    for n in g.node:
        if n.name in drop:
            continue
        if n.op == op_from:
            n.op = op_to
        if rename_nodes:
            n.name = n.name.replace(op_from, op_to)
            inputs = [i.replace(op_from, op_to) for i in n.input]
            del n.input[:]
            n.input.extend(inputs)
        if bias_2d and n.op == "Const" and "/bias" in n.name:
            shape = n.attr["value"].tensor.tensor_shape
            if len(shape.dim) == 1:
                size = shape.dim[0].size
                del shape.dim[:]
                shape.dim.add(size=1)
                shape.dim.add(size=size)
        keep.append(n)
    del g.node[:]
    g.node.extend(keep)
    with open(dst, "wb") as f:
        f.write(g.SerializeToString())


def test_deepmd_1x_layout_descrptsea_op_no_version_2d_biases(tmp_path):
    """The 1.x layout (op DescrptSeA, no model_attr/model_version, [1, N] biases) reads like
    its 2.x conversion: DeePMD-kit's expected numbers of deeppot.pb."""
    pb = str(tmp_path / "v1.pb")
    _rewrite(os.path.join(SUITE, "deeppot.pb"), pb, "ProdEnvMatA", "DescrptSeA",
             drop=("model_attr/model_version",), bias_2d=True)
    ref = _suite("deeppot-pbc")
    out = DeepPot(pb).eval(ref["coord"], ref["box"], ref["atype"], atomic=True)
    for got, key in zip(out, KEYS):
        np.testing.assert_allclose(np.ravel(got), np.ravel(ref[key]), rtol=0, atol=1.5e-10)


def test_deepmd_2_0_compressed_graph_op_tabulate_fusion(tmp_path):
    """DeePMD-kit of 2021 (2.0 era) named the compressed se_e2_a op ``TabulateFusion`` (same
    inputs; renamed ``TabulateFusionSeA`` in October 2021): the 2.2.11 compressed graph in that
    layout reads the same."""
    pb = str(tmp_path / "v20.pb")
    d = os.path.join(LEGACY, "compressed_se_e2_a")
    src = os.path.join(d, "frozen_model.pb")
    for suffix in ("GradGrad", "Grad", ""):   # its gradient ops too
        _rewrite(src, pb, "TabulateFusionSeA" + suffix, "TabulateFusion" + suffix,
                 rename_nodes=True)
        src = pb
    assert b"TabulateFusionSeA" not in open(pb, "rb").read()
    ref = dict(np.load(os.path.join(d, "reference.npz")))
    out = DeepPot(pb).eval(ref["coord"], ref["box"], ref["atype"], atomic=True)
    for got, key in zip(out, KEYS):
        assert max_rel(got, ref[key]) < 1e-10, key


def test_deepmd_0_12_graph_is_refused_with_the_conversion_command(tmp_path):
    pb = str(tmp_path / "v012.pb")
    _rewrite(os.path.join(SUITE, "deeppot.pb"), pb, "ProdEnvMatA", "DescrptNorot")
    with pytest.raises(DPKerasError, match=r"0\.12-era graph.*dp convert-from 0\.12"):
        DeepPot(pb)
