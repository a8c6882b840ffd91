"""The one ``(coord, atype, box) -> energy, force, virial`` function of dpkeras.

It builds neighbor lists in-graph and calls the model, so it serves from a SavedModel without
dpkeras installed, and :class:`dpkeras.infer.DeepPot` uses it too. A frame whose box is all zeros
is treated as non-periodic.
"""

import tensorflow as tf

from dpkeras.data.pipeline import batch_neighbor_list

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
        return {k: out[k] for k in ("energy", "force", "virial", "atom_energy", "atom_virial")}

    return serve
