"""The one ``(coord, atype, box) -> energy, force, virial`` function of dpkeras.

It builds neighbor lists in-graph and calls the model, so it serves from a SavedModel without
dpkeras installed, and :class:`dpkeras.infer.DeepPot` uses it too. A frame whose box is all zeros
is treated as non-periodic.
"""

import logging
import os

import numpy as np
import tensorflow as tf

from dpkeras import xla
from dpkeras.data.pipeline import batch_neighbor_list
from dpkeras.errors import DPKerasError
from dpkeras.nlist import takes_trimmed, trim_padding, trim_type_blocks

log = logging.getLogger("dpkeras")
OUTPUT_KEYS = ("energy", "force", "virial", "atom_energy", "atom_virial")

SERVING_SPEC = (
    tf.TensorSpec([None, None, 3], tf.float64, name="coord"),
    tf.TensorSpec([None, None], tf.int32, name="atype"),
    tf.TensorSpec([None, 3, 3], tf.float64, name="box"),
)


def make_serving_fn(model):
    """A ``tf.function`` ``f(coord [nf, nat, 3], atype [nf, nat], box [nf, 3, 3])`` returning
    ``energy [nf, 1]``, ``force [nf, nat, 3]``, ``virial [nf, 9]``, ``atom_energy [nf, nat]`` and
    ``atom_virial [nf, nat, 9]`` (eV, eV/A; coordinates and box in Angstrom)."""
    ntypes = model.get_ntypes()

    @tf.function(input_signature=SERVING_SPEC)
    def serve(coord, atype, box):
        return _evaluate(model, coord, _check_types(atype, ntypes), box)

    return serve


def model_neighbor_list(model, coord, atype, box, pbc, with_count=False, cut_blocks=False,
                        trim=True):
    """``(nlist, shift)`` of a batch of frames as ``model`` takes them: its cut-off and ``sel``,
    one distance-sorted group for attention descriptors, cut after the last real neighbor
    where the descriptor accepts that (:func:`dpkeras.nlist.trim_padding`). ``with_count``:
    also the largest neighbor count within the cut-off per ``sel`` group, ``[len(sel)]``
    (counted before the list is cut at ``sel``). ``cut_blocks``: also the slots kept per type
    block ``[len(sel)]``, each block cut (:func:`dpkeras.nlist.trim_type_blocks`) where the
    descriptor takes that (``sel`` otherwise); the model must then be called with these as
    Python ints (``nlist_widths``), so not in a graph that serves any input. ``trim=False``:
    no cut at all (every ``sel`` slot, as DeePMD-kit computes them; benchmarks)."""
    sel = model.get_sel()
    nlist, shift, count = batch_neighbor_list(coord, atype, box, pbc, model.get_rcut(),
                                              sel, model.mixed_types())
    out = []
    how = takes_trimmed(model.descriptor) if trim else None
    if how == "tail":
        nlist, shift = trim_padding(nlist, shift)
    if with_count:
        out.append(tf.reduce_max(count, axis=[0, 1]))
    if cut_blocks:
        widths = tf.constant(sel, tf.int32)
        if how == "blocks":
            nlist, shift, widths = trim_type_blocks(nlist, shift, count, sel)
            widths = widths[0]
        out.append(widths)
    return (nlist, shift, *out)


def _check_types(atype, ntypes):
    checks = [tf.debugging.assert_non_negative(atype, message="atype must be >= 0"),
              tf.debugging.assert_less(atype, ntypes, message=f"atype must be < ntypes={ntypes} "
                                       "(an index into the model's type_map)")]
    with tf.control_dependencies(checks):
        return tf.identity(atype)


def _evaluate(model, coord, atype, box, extra=None):
    """``extra``: further model inputs (``fparam [nf, nfp]``, ``aparam [nf, nat, nap]``)."""
    pbc = tf.reduce_any(tf.not_equal(box, 0.0))
    nlist, shift = model_neighbor_list(model, coord, atype, box, pbc)
    out = model(dict(extra or {}, coord=coord, box=box, atype=atype, nlist=nlist, shift=shift))
    return {k: out[k] for k in getattr(model, "output_keys", OUTPUT_KEYS)}


def _check_inputs(coord, atype, box, ntypes):
    """In-graph checks of the public signature's inputs (a loaded signature does not check
    shapes against its specs); returns ``coord``, ``atype [nf, nat]`` and ``box [nf, 3, 3]``
    (zeros when ``box`` is None)."""
    # on the data path, so nothing downstream runs on a wrongly shaped input; the error reads
    # "Shape of tensor coord [192,3] is not compatible with expected shape [?,?,3]"
    coord = tf.ensure_shape(coord, [None, None, 3], name="check_coord_shape")
    if box is not None:
        box = tf.ensure_shape(box, [None, 3, 3], name="check_box_shape")
    nf, nat = tf.shape(coord)[0], tf.shape(coord)[1]
    rank = tf.rank(atype)
    ok_rank = tf.debugging.Assert(
        tf.logical_or(tf.equal(rank, 1), tf.equal(rank, 2)),
        ["atype must have shape [natoms] or [nframes, natoms]; got rank", rank])
    with tf.control_dependencies([ok_rank]):
        shape = tf.shape(atype)
        ok_nat = tf.debugging.Assert(
            tf.equal(shape[-1], nat),
            ["atype has", shape[-1], "atoms but coord [nframes, natoms, 3] has", nat])
        ok_nf = tf.debugging.Assert(
            tf.logical_or(tf.equal(rank, 1), tf.equal(shape[0], nf)),
            ["atype [nframes, natoms] has", shape[0], "frames but coord has", nf])
    with tf.control_dependencies([ok_nat, ok_nf]):
        atype = tf.broadcast_to(tf.reshape(atype, [-1, nat]), [nf, nat])
    if box is None:
        box = tf.zeros([nf, 3, 3], tf.float64)
    else:
        ok_box = tf.debugging.Assert(tf.equal(tf.shape(box)[0], nf),
                                     ["box [nframes, 3, 3] has", tf.shape(box)[0],
                                      "frames but coord has", nf])
        with tf.control_dependencies([ok_box]):
            box = tf.identity(box)
    return coord, _check_types(atype, ntypes), box


def make_signatures(model):
    """The SavedModel's public signatures (one pair per head; one head, ``default``, for now):

    ``serving_default(coord [nf, nat, 3] float64, atype [nat] or [nf, nat] int32,
    box [nf, 3, 3] float64)`` and ``serving_nopbc(coord, atype)``, both returning
    ``energy [nf, 1]``, ``force [nf, nat, 3]``, ``virial [nf, 9]``, ``atom_energy [nf, nat]``,
    ``atom_virial [nf, nat, 9]``. Units: Angstrom, eV. A box of zeros also means no PBC. Wrong
    ranks, atom counts or atom types fail with an ``InvalidArgumentError`` saying which.
    """
    ntypes = model.get_ntypes()
    coord_spec = tf.TensorSpec([None, None, 3], tf.float64, name="coord")
    atype_spec = tf.TensorSpec(None, tf.int32, name="atype")
    box_spec = tf.TensorSpec([None, 3, 3], tf.float64, name="box")

    @tf.function(input_signature=(coord_spec, atype_spec, box_spec))
    def serve(coord, atype, box):
        coord, atype, box = _check_inputs(coord, atype, box, ntypes)
        return _evaluate(model, coord, atype, box)

    @tf.function(input_signature=(coord_spec, atype_spec))
    def serve_nopbc(coord, atype):
        coord, atype, box = _check_inputs(coord, atype, None, ntypes)
        return _evaluate(model, coord, atype, box)

    return {"serving_default": serve.get_concrete_function(),
            "serving_nopbc": serve_nopbc.get_concrete_function()}


def infer_batch_size():
    """Atoms (frames x atoms per frame) evaluated at once: ``$DP_INFER_BATCH_SIZE``, DeePMD-kit's
    variable, else DeePMD-kit's default of 1024."""
    raw = os.environ.get("DP_INFER_BATCH_SIZE", "0")
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 0:
        raise DPKerasError(f"environment variable DP_INFER_BATCH_SIZE={raw!r}: expected a "
                           "positive number of atoms")
    return value or 1024


class SortedEvaluator:
    """Fast in-process evaluation: atoms are sorted by type, the neighbor list is built by the
    same in-graph builder, and the model runs with static per-type slices compiled by XLA (one
    compilation per frame count and composition; ``jit_compile=None``: the default of
    :func:`dpkeras.xla.jit_compile`). Results come back in the caller's atom order. The
    neighbor lists are cut after their last real neighbors where the descriptor takes that
    (``trim=False``: full lists, for benchmarks).
    """

    def __init__(self, model, jit_compile=None, trim=True):
        self.model, self.jit_compile = model, xla.jit_compile(jit_compile)
        self._nlist = tf.function(lambda c, t, b, pbc: model_neighbor_list(
            model, c, t, b, pbc, with_count=True, cut_blocks=True, trim=trim),
            reduce_retracing=True)
        self._cut_blocks = trim and takes_trimmed(model.descriptor) == "blocks"
        self._cache = {}
        self._warned = False

    def __call__(self, coord, atype, box, pbc, atomic=True, extra=None):
        """``coord [nf, nat, 3]``, ``atype [nat]`` (shared by all frames), ``box [nf, 3, 3]``;
        ``extra``: further inputs (``fparam [nf, nfp]``, ``aparam [nf, nat, nap]``).

        Without ``atomic`` only energy, force and virial are computed (a tensor model always
        gives its frame and atomic tensors). Frames go through the model in chunks of at most
        :func:`infer_batch_size` atoms (at least one frame), as DeePMD-kit evaluates on CPU."""
        nf = coord.shape[0]
        step = max(1, infer_batch_size() // max(1, coord.shape[1]))
        if nf > step:
            parts = [self(coord[i:i + step], atype, box[i:i + step], pbc, atomic,
                          {k: v[i:i + step] for k, v in (extra or {}).items()})
                     for i in range(0, nf, step)]
            return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        order = np.argsort(atype, kind="stable")
        inverse = np.argsort(order)
        st = np.asarray(atype)[order]
        sc = np.ascontiguousarray(coord[:, order])
        types = np.tile(st[None], (nf, 1)).astype(np.int32)
        nlist, shift, count, widths = self._nlist(sc, types, box, tf.constant(pbc))
        self._check_sel(count.numpy())
        # the static layout: atoms per type (and slots per neighbor-type block)
        layout = {"type_counts": tuple(np.bincount(st, minlength=self.model.get_ntypes()).tolist())}
        if self._cut_blocks:
            layout["nlist_widths"] = tuple(widths.numpy().tolist())
        keys = getattr(self.model, "output_keys", OUTPUT_KEYS)
        if not atomic and keys == OUTPUT_KEYS:
            keys = OUTPUT_KEYS[:3]
        extra = {k: (v[:, order] if k == "aparam" else v) for k, v in (extra or {}).items()}
        key = tuple(layout.values()) + (keys,)
        if key not in self._cache:
            model = self.model
            self._cache[key] = tf.function(
                lambda c, t, b, n, s, x: {k: v for k, v in model(
                    dict(x, coord=c, box=b, atype=t, nlist=n, shift=s),
                    **layout).items() if k in keys},
                jit_compile=self.jit_compile, reduce_retracing=True)
        out = self._cache[key](sc, types, box, nlist, shift, extra)
        res = {k: v.numpy() for k, v in out.items()}
        for k in getattr(self.model, "atomic_keys", ("force", "atom_energy", "atom_virial")):
            if k in res:
                res[k] = res[k][:, inverse]
        return res

    def _check_sel(self, count):
        """Neighbors beyond ``sel`` are dropped (the nearest ``sel`` kept), as DeePMD-kit does
        silently; say so, once per model."""
        sel = np.asarray(self.model.get_sel())
        over = np.nonzero(count > sel)[0]
        if not over.size or self._warned:
            return
        self._warned = True
        g = int(over[0])
        what = "neighbors of any type" if self.model.mixed_types() else \
            f"neighbors of type {self.model.get_type_map()[g]}"
        log.warning("an atom has %d %s within rcut=%g, more than the model's sel[%d]=%d: the "
                    "farthest are dropped, so energies and forces are approximate (DeePMD-kit "
                    "drops them silently); is the box too small or the structure too dense for "
                    "this model?", int(count[g]), what, self.model.get_rcut(), g, int(sel[g]))
