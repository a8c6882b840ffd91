"""The one ``(coord, atype, box) -> energy, force, virial`` function of dpkeras.

It builds neighbor lists in-graph and calls the model, so it serves from a SavedModel without
dpkeras installed, and :class:`dpkeras.infer.DeepPot` uses it too. A frame whose box is all zeros
is treated as non-periodic.
"""

import numpy as np
import tensorflow as tf

from dpkeras.data.pipeline import batch_neighbor_list

OUTPUT_KEYS = ("energy", "force", "virial", "atom_energy", "atom_virial")

SERVING_SPEC = (
    tf.TensorSpec([None, None, 3], tf.float64, name="coord"),
    tf.TensorSpec([None, None], tf.int32, name="atype"),
    tf.TensorSpec([None, 3, 3], tf.float64, name="box"),
)


def make_serving_fn(model):
    """A ``tf.function`` ``f(coord [nf, nat, 3], atype [nf, nat], box [nf, 3, 3])`` returning
    ``energy [nf, 1]``, ``force [nf, nat, 3]``, ``virial [nf, 9]``, ``atom_energy [nf, nat]`` and
    ``atom_virial [nf, nat, 9]``."""
    rcut, sel, mixed = model.get_rcut(), model.get_sel(), model.mixed_types()
    ntypes = model.get_ntypes()

    @tf.function(input_signature=SERVING_SPEC)
    def serve(coord, atype, box):
        tf.debugging.assert_less(atype, ntypes, message=f"atype must be < ntypes={ntypes}")
        tf.debugging.assert_non_negative(atype, message="atype must be >= 0")
        pbc = tf.reduce_any(tf.not_equal(box, 0.0))
        nlist, shift, _ = batch_neighbor_list(coord, atype, box, pbc, rcut, sel, mixed)
        out = model({"coord": coord, "box": box, "atype": atype, "nlist": nlist,
                     "shift": shift})
        return {k: out[k] for k in OUTPUT_KEYS}

    return serve


class SortedEvaluator:
    """Fast in-process evaluation: atoms are sorted by type, the neighbor list is built by the
    same in-graph builder, and the model runs with static per-type slices compiled by XLA (one
    compilation per frame count and composition). Results come back in the caller's atom order.
    """

    def __init__(self, model, jit_compile=True):
        self.model, self.jit_compile = model, jit_compile
        rcut, sel, mixed = model.get_rcut(), model.get_sel(), model.mixed_types()
        self._nlist = tf.function(
            lambda c, t, b, pbc: batch_neighbor_list(c, t, b, pbc, rcut, sel, mixed)[:2],
            reduce_retracing=True)
        self._cache = {}

    def __call__(self, coord, atype, box, pbc, atomic=True):
        """``coord [nf, nat, 3]``, ``atype [nat]`` (shared by all frames), ``box [nf, 3, 3]``.

        Without ``atomic`` only energy, force and virial are computed."""
        order = np.argsort(atype, kind="stable")
        inverse = np.argsort(order)
        st = np.asarray(atype)[order]
        nf = coord.shape[0]
        sc = np.ascontiguousarray(coord[:, order])
        types = np.tile(st[None], (nf, 1)).astype(np.int32)
        nlist, shift = self._nlist(sc, types, box, tf.constant(pbc))
        counts = tuple(np.bincount(st, minlength=self.model.get_ntypes()).tolist())
        keys = OUTPUT_KEYS if atomic else OUTPUT_KEYS[:3]
        if (counts, keys) not in self._cache:
            model = self.model
            self._cache[counts, keys] = tf.function(
                lambda c, t, b, n, s: {k: v for k, v in model(
                    {"coord": c, "box": b, "atype": t, "nlist": n, "shift": s},
                    type_counts=counts).items() if k in keys},
                jit_compile=self.jit_compile, reduce_retracing=True)
        out = self._cache[counts, keys](sc, types, box, nlist, shift)
        res = {k: v.numpy() for k, v in out.items()}
        for k in ("force", "atom_energy", "atom_virial"):
            if k in res:
                res[k] = res[k][:, inverse]
        return res
