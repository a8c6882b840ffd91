"""Model compression (dpkeras.compress): tables as DeePMD-kit's `dp compress` builds them,
checked against the original model, and DeePMD-kit's own compressed graphs."""

import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, TESTDATA, WATER, max_rel
from dpkeras.errors import DPKerasError
from dpkeras.infer import DeepPot

LEGACY = os.path.join(TESTDATA, "legacy_v2_2")
KEYS = ("energy", "force", "virial", "atom_energy", "atom_virial")
MIN_NBOR_DIST = 0.892451513761333   # what DeePMD-kit's dp compress used (its stored script)


@pytest.mark.parametrize("kind", ["se_e2_a", "se_e2_r"])
def test_tables_are_deepmd_compress_tables(kind):
    """The same model compressed by dpkeras and by DeePMD-kit 2.2.11 (`dp compress -s 0.04`):
    same intervals and ranges, coefficients within 1e-6 of the largest, and both compressed
    models give DeePMD-kit's compressed outputs."""
    from dpkeras.compress import compress_model
    from dpkeras.load import load_model

    orig, _ = load_model(os.path.join(LEGACY, f"water_{kind}", "frozen_model.pb"))
    theirs, _ = load_model(os.path.join(LEGACY, f"compressed_{kind}", "frozen_model.pb"))
    mine = compress_model(orig, MIN_NBOR_DIST, stride=0.04, extrapolate=5)
    assert mine.descriptor.tabulated == theirs.descriptor.tabulated
    wm, wt = mine.get_variables()["embeddings"], theirs.get_variables()["embeddings"]
    for key in wt:
        a, b = wm[key]["table"], wt[key]["table"]
        assert np.abs(a - b).max() < 1e-6 * np.abs(b).max(), key
    ref = np.load(os.path.join(LEGACY, f"compressed_{kind}", "reference.npz"))
    out = DeepPot.from_model(mine).eval(ref["coord"], ref["box"], ref["atype"], atomic=True)
    for got, key in zip(out, KEYS):
        assert max_rel(got, ref[key]) < 1e-9, key


@pytest.mark.parametrize("name", ["compressed_se_atten_v2", "compressed_dpa1_strip",
                                  "compressed_se_e2_a_exclude"])
def test_deepmd_3_2_compressed_graphs_match_deepmd(name, tmp_path):
    """DeePMD-kit 3.2.0's `dp --tf compress -s 0.04` of strip-mode se_atten graphs (attn_layer
    0): se_atten_v2 (gelu; the switch multiplies the type-pair table) and se_atten with an
    excluded type pair (the TabulateFusionSeAtten table and the type-pair table ``two_embd``),
    and of an se_e2_a with an excluded pair (no table for it: each table's neighbor type is the
    block of the environment matrix its op reads). Read as they are: energies, forces, virials
    and atomic virials within 1e-10 of DeePMD-kit's compressed outputs, PBC and not, also after
    a .keras round trip and with inputs beyond the tables; dpkeras' own compression of the same
    model before `dp compress` builds the same tables and gives the same numbers."""
    from dpkeras.compress import compress_model
    from dpkeras.export import save_model
    from dpkeras.io.deepmd_pb import FrozenGraph
    from dpkeras.load import load_model

    d = os.path.join(TESTDATA, name)
    ref = dict(np.load(os.path.join(d, "reference.npz")))
    theirs, _ = load_model(os.path.join(d, "frozen_model.pb"))
    assert theirs.descriptor.tabulated
    save_model(theirs, str(tmp_path / "m.keras"))
    back, _ = load_model(str(tmp_path / "m.keras"))
    for model in (theirs, back):
        dp = DeepPot.from_model(model)
        for pre, box in (("", ref["box"]), ("nopbc_", None)):
            got = dp.eval(ref[pre + "coord"], box, ref[pre + "atype"], atomic=True)
            for g, key in zip(got, KEYS):
                assert max_rel(g, ref[pre + key]) < 1e-10, pre + key
    # an H atom 0.05 A from an O atom: inputs beyond the tables, continued linearly with the
    # slope at the tables' ends as DeePMD-kit 3.2's kernel does
    b = np.load(os.path.join(d, "reference_beyond.npz"))
    got = DeepPot.from_model(theirs).eval(b["coord"], b["box"], b["atype"])
    for g, key in zip(got, ("energy", "force", "virial")):
        assert max_rel(g, b[key]) < 1e-10, "beyond the tables: " + key
    pb = os.path.join(d, "uncompressed.pb")
    min_dist = float(FrozenGraph(pb).const("train_attr/min_nbor_dist"))
    orig, _ = load_model(pb)
    mine = compress_model(orig, min_dist, stride=0.04, extrapolate=5)
    assert mine.descriptor.tabulated == theirs.descriptor.tabulated
    wm, wt = mine.descriptor.get_variables(), theirs.descriptor.get_variables()
    assert set(wm["embeddings"]) == set(wt["embeddings"])
    pairs = [(wm["embeddings"][k]["table"], wt["embeddings"][k]["table"]) for k in wt["embeddings"]]
    if "embedding_strip" in wt:
        pairs.append((wm["embedding_strip"]["table"], wt["embedding_strip"]["table"]))
    for a, b in pairs:
        assert np.abs(a - b).max() < 1e-6 * np.abs(b).max()
    got = DeepPot.from_model(mine).eval(ref["coord"], ref["box"], ref["atype"], atomic=True)
    for g, key in zip(got, KEYS):
        assert max_rel(g, ref[key]) < 1e-9, key


def _three_frames(tmp_path):
    sysdir = tmp_path / "water3"
    (sysdir / "set.000").mkdir(parents=True)
    for f in ("type.raw", "type_map.raw"):
        (sysdir / f).write_text(open(os.path.join(WATER[3], f)).read())
    for f in ("coord.npy", "box.npy", "energy.npy", "force.npy"):
        np.save(sysdir / "set.000" / f, np.load(os.path.join(WATER[3], "set.000", f))[:3])
    return str(sysdir)


def test_compress_command_writes_a_checked_savedmodel(tmp_path):
    """python -m dpkeras.compress on DeePMD-kit 3.2.0's water se_e2_a graph at the default
    stride: the SavedModel loads anywhere a model does and agrees with the original to 1e-9."""
    system = _three_frames(tmp_path)
    src = os.path.join(TESTDATA, "water_se_e2_a", "frozen_model.pb")
    out = str(tmp_path / "compressed")
    r = subprocess.run([sys.executable, "-m", "dpkeras.compress", f"--model={src}",
                        f"--output={out}", f"--system={system}"], capture_output=True,
                       text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert "max relative difference energy" in r.stdout
    ref = np.load(os.path.join(TESTDATA, "water_se_e2_a", "reference.npz"))
    got = DeepPot(out).eval(ref["coord"], ref["box"], ref["atype"], atomic=True)
    for g, key in zip(got, KEYS):
        assert max_rel(g, ref[key]) < 1e-9, key


def test_compress_refuses_a_model_it_cannot_check_or_tabulate(tmp_path):
    from dpkeras.compress import compress

    system = _three_frames(tmp_path)
    src = os.path.join(TESTDATA, "water_se_e2_a", "frozen_model.pb")
    with pytest.raises(DPKerasError, match="differs from the original .* --force"):
        compress(src, str(tmp_path / "coarse"), [system], stride=0.5)
    assert not os.path.exists(tmp_path / "coarse")
    with pytest.raises(DPKerasError, match="compressing a se_atten descriptor with "
                       "tebd_input_mode 'concat' is not possible.*strip"):
        compress(os.path.join(TESTDATA, "water_dpa1", "frozen_model.pb"),
                 str(tmp_path / "x"), [system])
    with pytest.raises(DPKerasError, match="se_e2_a descriptor with a type embedding .* not "
                       "possible"):
        compress(os.path.join(TESTDATA, "water_se_e2_a_tebd", "frozen_model.pb"),
                 str(tmp_path / "x"), [system])


@pytest.mark.parametrize("kind", ["water_se_e3", "water_hybrid", "water_dpa1_strip",
                                  "water_se_atten_v2"])
def test_compressed_se_e3_hybrid_and_strip_se_atten_give_the_original_numbers(kind):
    """se_e3 (its nets take the angle of two neighbors, tabulated over the bound of
    ``dpkeras.compress.theta_range``), a hybrid, and strip-mode se_atten (with an excluded
    type pair) and se_atten_v2 (gelu, two attention layers: the net of the radial entry is
    tabulated, the attention layers act on its output as before), at the default stride 0.01:
    within 1e-9 of the uncompressed DeePMD-kit 3.2.0 model on DFT water frames."""
    from dpkeras.compress import compress_model
    from dpkeras.load import load_model

    model, _ = load_model(os.path.join(TESTDATA, kind, "frozen_model.pb"))
    small = compress_model(model, MIN_NBOR_DIST, stride=0.01, extrapolate=5)
    assert all(d.tabulated for d in getattr(small.descriptor, "descriptors", [small.descriptor]))
    ref = np.load(os.path.join(TESTDATA, kind, "reference.npz"))
    got = DeepPot.from_model(small).eval(ref["coord"][:2], ref["box"][:2], ref["atype"],
                                         atomic=True)
    want = DeepPot.from_model(model).eval(ref["coord"][:2], ref["box"][:2], ref["atype"],
                                          atomic=True)
    for g, w, key in zip(got, want, KEYS):
        assert max_rel(g, w) < 1e-9, key


def test_inputs_beyond_the_tables_are_counted_and_warned(caplog):
    """check_frequency (dp compress -f): two atoms 0.01 A apart put inputs beyond the tables'
    end; the evaluator warns at the next check, and says nothing on ordinary water frames."""
    import logging

    from dpkeras.compress import compress_model
    from dpkeras.load import load_model
    from dpkeras.tabulate import beyond_table

    model, _ = load_model(os.path.join(TESTDATA, "water_se_e2_a", "frozen_model.pb"))
    small = compress_model(model, MIN_NBOR_DIST, stride=0.04, extrapolate=5, check_frequency=2)
    ref = np.load(os.path.join(TESTDATA, "water_se_e2_a", "reference.npz"))
    coord, box, atype = ref["coord"][:1], ref["box"][:1], ref["atype"]
    dp = DeepPot.from_model(small, "compressed")
    with caplog.at_level(logging.WARNING, logger="dpkeras"):
        dp.eval(coord, box, atype)
        dp.eval(coord, box, atype)
        assert beyond_table(small) == (2, 0) and "outside their tables" not in caplog.text
        close = coord.reshape(-1, 3).copy()
        h = int(np.flatnonzero(atype == 1)[0])
        close[h] = close[0] + [0.01, 0.0, 0.0]
        dp.eval(close.reshape(1, -1), box, atype)
        assert "outside their tables" not in caplog.text        # checked every 2nd evaluation
        dp.eval(close.reshape(1, -1), box, atype)
    assert beyond_table(small)[1] > 0
    assert "compressed: " in caplog.text and "outside their tables" in caplog.text


def test_tables_written_in_deepmd_layout_load_into_the_by_power_weights():
    """A table in DeePMD-kit's layout ``[nspline, 6 M]`` (how ``.keras`` and SavedModel files of
    compressed models stored it before the by-power weights) loads to the same layer: the same
    values and x-derivatives, and ``get_numpy`` gives the table back."""
    import tensorflow as tf

    from dpkeras.tabulate import TabulatedEmbedding

    rng = np.random.default_rng(3)
    table = rng.normal(size=(40, 6 * 5))
    info = [-0.125, 0.25, 0.75, 1 / 64, 0.125, -1]   # 24 fine intervals, then 4 coarse
    a = TabulatedEmbedding(40, 5, info)
    a.set_numpy({"table": table})
    b = TabulatedEmbedding(40, 5, info)
    b.load_own_variables({"0": table})
    np.testing.assert_array_equal(b.get_numpy()["table"], table)
    x = tf.constant(rng.uniform(-0.3, 0.9, (200, 1)))
    # by hand: interval k, offset t, DeePMD-kit's coefficients table[k, 6 m + p]; below /
    # beyond the table the first / last interval's polynomial continued linearly from the
    # table's end (DeePMD-kit 3.2's c1 extrapolation)
    xv = x.numpy()[:, 0]
    fine = xv < 0.25
    k = np.where(fine, np.floor((xv + 0.125) * 64), 24 + np.floor((xv - 0.25) / 0.125))
    t = np.where(fine, xv - (k / 64 - 0.125), xv - ((k - 24) * 0.125 + 0.25))
    below, above = xv < -0.125, xv >= 0.75
    k = np.where(below, 0, np.where(above, 27, k)).astype(int)
    t = np.where(below, 0.0, np.where(above, 0.125, t))
    delta = np.where(below, xv + 0.125, np.where(above, xv - 0.75, 0.0))[:, None]
    assert below.any() and above.any()
    c = table.reshape(40, 5, 6)[k]                                   # [200, M, 6]
    dexpect = sum(p * c[..., p] * t[:, None] ** (p - 1) for p in range(1, 6))
    expect = sum(c[..., p] * t[:, None] ** p for p in range(6)) + dexpect * delta
    for layer in (a, b):
        with tf.GradientTape() as tape:
            tape.watch(x)
            g = layer(x)
            s = tf.reduce_sum(g * tf.constant(np.arange(1.0, 6.0)))
        np.testing.assert_allclose(g.numpy(), expect, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(tape.gradient(s, x).numpy()[:, 0],
                                   dexpect @ np.arange(1.0, 6.0), rtol=1e-10, atol=1e-10)


def test_compressed_se_atten_v2_round_trips_and_refuses_training(tmp_path):
    """A compressed se_atten_v2 saved as .keras and as a SavedModel loads back to the same
    numbers with its table checks; fine-tuning it or initializing a training from it is refused
    by name (its tables are not trainable)."""
    from conftest import small_input
    from dpkeras.compress import compress_model
    from dpkeras.config import normalize
    from dpkeras.export import save_model
    from dpkeras.finetune import Pretrained
    from dpkeras.load import load_model
    from dpkeras.tabulate import beyond_table
    from dpkeras.trainer import Trainer

    model, _ = load_model(os.path.join(TESTDATA, "water_se_atten_v2", "frozen_model.pb"))
    small = compress_model(model, MIN_NBOR_DIST, stride=0.01, extrapolate=5, check_frequency=3)
    ref = np.load(os.path.join(TESTDATA, "water_se_atten_v2", "reference.npz"))
    frame = (ref["coord"][:1], ref["box"][:1], ref["atype"])
    want = DeepPot.from_model(small).eval(*frame)
    for name in ("compressed.keras", "compressed_savedmodel"):
        save_model(small, str(tmp_path / name))
        back, _ = load_model(str(tmp_path / name))
        assert back.descriptor.tabulated == small.descriptor.tabulated
        for g, w in zip(DeepPot.from_model(back).eval(*frame), want):
            assert max_rel(g, w) < 1e-12
        assert beyond_table(back) == (3, 0)
    path = str(tmp_path / "compressed.keras")
    with pytest.raises(DPKerasError, match="compressed model .* cannot be trained"):
        Pretrained(path)
    cfg = small_input(WATER[3:], numb_steps=1)
    cfg["model"] = model.get_config_deepmd()
    with pytest.raises(DPKerasError, match="compressed model .* cannot be trained"):
        Trainer(normalize(cfg), str(tmp_path / "run"), init_model=path,
                skip_neighbor_stat=True).run()
