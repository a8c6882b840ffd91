"""Per-type neighbor lists cut after each type block's last real neighbor
(:func:`dpkeras.nlist.trim_type_blocks`, what training feeds ``se_e2_a``/``se_e2_r``) give the
numbers and weight gradients of the full ``sel`` slots."""

import os

import numpy as np
import pytest
import tensorflow as tf

from conftest import TESTDATA, max_rel

from dpkeras.data.pipeline import batch_neighbor_list
from dpkeras.infer import DeepDipole, DeepPot
from dpkeras.model.build import build_model
from dpkeras.nlist import kept_slots, takes_trimmed, trim_type_blocks


def _frames(fixture, n=3):
    ref = np.load(os.path.join(TESTDATA, fixture, "reference.npz"))
    nf = min(n, len(ref["box"]))
    coord = tf.constant(ref["coord"][:nf].reshape(nf, -1, 3))
    box = tf.constant(ref["box"][:nf].reshape(nf, 3, 3))
    atype = tf.constant(np.tile(ref["atype"][None], (nf, 1)).astype(np.int32))
    return coord, box, atype


def _compare(model, coord, box, atype, keys, call=None):
    """Outputs and gradients of ``model`` on full and on block-trimmed lists agree."""
    assert takes_trimmed(model.descriptor) == "blocks"
    sel = model.get_sel()
    nlist, shift, count = batch_neighbor_list(coord, atype, box, tf.constant(True),
                                              model.get_rcut(), sel)
    cut_nlist, cut_shift, widths = trim_type_blocks(nlist, shift, count, sel)
    widths = tuple(widths[0].numpy().tolist())
    assert sum(widths) < sum(sel) and widths[0] < sel[0] and widths[1] < sel[1], widths
    # the cut slots were all padding, the kept ones are the full list's
    keep = kept_slots(sel, widths)
    np.testing.assert_array_equal(tf.gather(nlist, keep, axis=2).numpy(), cut_nlist.numpy())
    assert int(tf.reduce_sum(tf.cast(nlist >= 0, tf.int32))) == \
        int(tf.reduce_sum(tf.cast(cut_nlist >= 0, tf.int32)))

    def run(nl, sh, **kw):
        with tf.GradientTape() as tape:
            out = model(dict(coord=coord, box=box, atype=atype, nlist=nl, shift=sh), **kw)
            loss = sum(tf.reduce_sum(out[k] ** 2) for k in keys)
        grads = tape.gradient(loss, model.trainable_variables)
        return out, [g for g in grads if g is not None]

    full, g_full = run(nlist, shift)
    trimmed, g_trim = run(cut_nlist, cut_shift, nlist_widths=widths)
    for key in keys:
        assert max_rel(trimmed[key], full[key]) < 1e-12, key
    assert len(g_full) == len(g_trim) > 0
    for a, b in zip(g_trim, g_full):
        assert max_rel(a, b) < 1e-10


@pytest.mark.parametrize("fixture", ["water_se_e2_a", "water_se_e2_r"])
def test_block_trimmed_lists_give_the_same_energies_forces_and_gradients(fixture):
    """DeePMD-kit-trained se_e2_a / se_e2_r models (nonzero davg: the cut padded slots
    contribute): energies, forces, virials and weight gradients equal on both lists."""
    model = DeepPot(os.path.join(TESTDATA, fixture, "frozen_model.pb")).model
    _compare(model, *_frames(fixture), ("energy", "force", "virial", "atom_energy"))


@pytest.mark.parametrize("kind", ["se_e2_a", "se_e2_r"])
def test_block_trimmed_lists_with_type_one_side_and_excluded_pairs(kind):
    """``type_one_side`` with ``exclude_types`` (the padded rows of an excluded center type are
    masked as the real ones) and per-pair nets with an excluded pair."""
    coord, box, atype = _frames("water_se_e2_a")
    for one_side in (True, False):
        section = {"type_map": ["O", "H"], "descriptor": {
            "type": kind, "sel": [46, 92], "rcut": 6.0, "rcut_smth": 0.5,
            "neuron": [8, 16], "type_one_side": one_side, "exclude_types": [[0, 1]],
            "seed": 1}, "fitting_net": {"neuron": [16, 16], "seed": 2}}
        model = build_model(section)
        env = model.descriptor.env_mat
        rng = np.random.default_rng(0)
        env.set_stats(rng.uniform(-0.3, 0.3, env.davg.shape),
                      rng.uniform(0.5, 1.5, env.dstd.shape))
        _compare(model, coord, box, atype, ("energy", "force", "virial"))


def test_block_trimmed_lists_for_a_dipole_model():
    """The tensor models' path (the rotation matrix) takes the cut lists too."""
    model = DeepDipole(os.path.join(TESTDATA, "water_dipole", "frozen_model.pb")).model
    _compare(model, *_frames("water_dipole"), ("tensor", "atom_tensor"))
