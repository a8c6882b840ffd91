"""Training data: several systems, DeePMD-kit's batch sizes and system probabilities, and the
``tf.data`` pipeline that builds neighbor lists while the previous step runs.

Sampling is a pure function of ``(seed, step)``: the batch of step ``s`` is the same whether the
run started at 0 or was restarted from a checkpoint, which makes restarts exact.
"""

import functools
import math

import numpy as np
import tensorflow as tf

from dpkeras.data.system import LABELS, DeepmdSystem, label_shape
from dpkeras.errors import DPKerasError
from dpkeras.nlist import build_neighbor_list, trim_padding, trim_type_blocks


def parse_batch_size(batch_size, natoms, path):
    """DeePMD-kit's ``batch_size``: an int, ``"auto"`` (= ``"auto:32"``) or ``"auto:N"``,
    i.e. the smallest batch with at least N atoms."""
    if isinstance(batch_size, int) and batch_size > 0:
        return batch_size
    if isinstance(batch_size, str) and (batch_size == "auto" or batch_size.startswith("auto:")):
        target = 32 if batch_size == "auto" else batch_size.split(":", 1)[1]
        try:
            target = int(target)
        except ValueError:
            target = -1
        if target > 0:
            return max(1, math.ceil(target / natoms))
    raise DPKerasError(f"{path}: batch_size {batch_size!r} is not a positive int, 'auto' or "
                       "'auto:N'")


def system_probs(auto_prob, sys_probs, nbatches, path):
    """Probability of drawing each system, as DeePMD-kit defines ``sys_probs``/``auto_prob``.

    ``prob_uniform``: equal; ``prob_sys_size``: proportional to the number of batches;
    ``prob_sys_size;b0:e0:w0;b1:e1:w1...``: systems ``[b, e)`` share weight ``w``, split
    within the block by size.
    """
    n = len(nbatches)
    nb = np.asarray(nbatches, dtype=float)
    if sys_probs is not None:
        p = np.asarray(sys_probs, dtype=float)
        if p.shape != (n,) or np.any(p < 0) or p.sum() <= 0:
            raise DPKerasError(f"{path}.sys_probs: need {n} non-negative numbers (one per "
                               f"system), got {sys_probs}")
        return p / p.sum()
    if auto_prob == "prob_uniform":
        return np.full(n, 1.0 / n)
    if auto_prob == "prob_sys_size":
        return nb / nb.sum()
    if isinstance(auto_prob, str) and auto_prob.startswith("prob_sys_size;"):
        p = np.zeros(n)
        for block in auto_prob.split(";")[1:]:
            try:
                b, e, w = block.split(":")
                b, e, w = int(b), int(e), float(w)
            except ValueError:
                raise DPKerasError(f"{path}.auto_prob: bad block {block!r}; expected "
                                   "'start:end:weight'") from None
            if not 0 <= b < e <= n:
                raise DPKerasError(f"{path}.auto_prob: block {block!r} is outside the "
                                   f"{n} systems")
            p[b:e] = w * nb[b:e] / nb[b:e].sum()
        if p.sum() <= 0:
            raise DPKerasError(f"{path}.auto_prob: {auto_prob!r} gives every system weight 0")
        return p / p.sum()
    raise DPKerasError(f"{path}.auto_prob: unknown value {auto_prob!r}; use prob_uniform, "
                       "prob_sys_size or 'prob_sys_size;start:end:weight;...'")


class DataSystems:
    """The systems of a ``training_data``/``validation_data`` section.

    Args:
      section: normalized data section (``systems``, ``batch_size``, ``auto_prob``, ...).
      type_map: the model's element names.
      path: where the section is in input.json (for messages).
      sel_type: a tensor model's ``sel_type`` (see :class:`dpkeras.data.system.DeepmdSystem`).
    """

    def __init__(self, section, type_map, path="training.training_data", sel_type=None):
        self.type_map = list(type_map)
        systems = section["systems"]
        if not systems:
            raise DPKerasError(f"{path}.systems: empty list")
        self.systems = [DeepmdSystem(p, type_map, section.get("set_prefix", "set"), sel_type)
                        for p in systems]
        bs = section["batch_size"]
        if isinstance(bs, list):
            if len(bs) != len(self.systems):
                raise DPKerasError(f"{path}.batch_size: {len(bs)} values for "
                                   f"{len(self.systems)} systems")
            self.batch_sizes = [parse_batch_size(b, s.natoms, path) for b, s in
                                zip(bs, self.systems)]
        else:
            self.batch_sizes = [parse_batch_size(bs, s.natoms, path) for s in self.systems]
        nbatches = [max(1, s.nframes // b) for s, b in zip(self.systems, self.batch_sizes)]
        self.probs = system_probs(section.get("auto_prob", "prob_sys_size"),
                                  section.get("sys_probs"), nbatches, path)
        self.label_names = sorted(set().union(*[s.labels for s in self.systems]))

    @classmethod
    def union(cls, parts):
        """The systems of several ``DataSystems`` (already loaded) as one, drawn uniformly:
        what the statistics of a descriptor shared by several heads are taken over."""
        self = cls.__new__(cls)
        self.type_map = list(parts[0].type_map)
        self.systems = [s for p in parts for s in p.systems]
        self.batch_sizes = [b for p in parts for b in p.batch_sizes]
        self.probs = np.full(len(self.systems), 1.0 / len(self.systems))
        self.label_names = sorted(set().union(*[s.labels for s in self.systems]))
        return self

    # --- sampling ---------------------------------------------------------------------------
    def sample(self, seed, step, stream=0):
        """``(system index, frame indices)`` of the batch drawn at ``step``."""
        rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, int(step), int(stream)])
        k = int(rng.choice(len(self.systems), p=self.probs))
        s, b = self.systems[k], self.batch_sizes[k]
        frames = rng.choice(s.nframes, size=b, replace=s.nframes < b)
        return k, np.sort(frames)

    def batch(self, k, frames):
        """Numpy batch of frames of system ``k`` (labels absent from it are zeros + find=0)."""
        s = self.systems[k]
        nf = len(frames)
        out = {
            "coord": s.coord[frames],
            "box": s.box[frames],
            "atype": np.tile(s.atype[None, :], (nf, 1)),
            "pbc": np.bool_(s.pbc),
        }
        for name in LABELS:
            shape = label_shape(name, nf, s.natoms, 0)
            if name in s.labels:
                out[name] = s.labels[name][frames]
                out["find_" + name] = np.float64(1.0)
            else:
                out[name] = np.zeros(shape)
                out["find_" + name] = np.float64(0.0)
        return out

    # --- tf.data ----------------------------------------------------------------------------
    def dataset(self, seed, start_step, stop_step, rcut, sel, mixed_types=False, stream=0,
                trim=None):
        """Batches of steps ``[start_step, stop_step)`` with neighbor lists, prefetched
        (``trim``: ``"tail"`` cuts the padded tail, :func:`dpkeras.nlist.trim_padding`;
        ``"blocks"`` each type block's padding, :func:`dpkeras.nlist.trim_type_blocks`, and adds
        ``nlist_widths``)."""

        ds = tf.data.Dataset.from_generator(
            lambda: _numpy_batches(self, seed, start_step, stop_step, stream),
            output_signature=SIGNATURE)
        return ds.map(tf.autograph.experimental.do_not_convert(
            lambda b: _add_nlist(b, rcut, sel, mixed_types, trim)),
                      num_parallel_calls=tf.data.AUTOTUNE,
                      deterministic=True).prefetch(tf.data.AUTOTUNE)

    def batches(self, seed, start_step, stop_step, rcut, sel, mixed_types=False, stream=0,
                trim=None):
        """The batches of :meth:`dataset`, made one at a time in the caller's thread: for a
        few batches (a validation pass, a display line), where starting a dataset (about a
        second) costs more than its prefetching saves."""
        for b in _numpy_batches(self, seed, start_step, stop_step, stream):
            yield with_nlist(b, rcut, sel, mixed_types, trim)

    def frames(self, rcut, sel, mixed_types=False, max_frames=None, batch=None):
        """Every system's frames in order (at most ``max_frames`` per system), as
        ``(system index, first frame index, batch)``, ``batch`` frames at a time (default: the
        system's batch size), with full (untrimmed) neighbor lists as statistics need."""
        for k, s in enumerate(self.systems):
            n = s.nframes if max_frames is None else min(s.nframes, max_frames)
            b = batch or self.batch_sizes[k]
            for lo in range(0, n, b):
                yield k, lo, with_nlist(self.batch(k, np.arange(lo, min(n, lo + b))), rcut,
                                        sel, mixed_types)


SIGNATURE = {
    "coord": tf.TensorSpec([None, None, 3], tf.float64),
    "box": tf.TensorSpec([None, 3, 3], tf.float64),
    "atype": tf.TensorSpec([None, None], tf.int32),
    "pbc": tf.TensorSpec([], tf.bool),
    "energy": tf.TensorSpec([None], tf.float64),
    "force": tf.TensorSpec([None, None, 3], tf.float64),
    "virial": tf.TensorSpec([None, 9], tf.float64),
    "atom_ener": tf.TensorSpec([None, None], tf.float64),
    "dipole": tf.TensorSpec([None, 3], tf.float64),
    "atomic_dipole": tf.TensorSpec([None, None, 3], tf.float64),
    "polarizability": tf.TensorSpec([None, 9], tf.float64),
    "atomic_polarizability": tf.TensorSpec([None, None, 9], tf.float64),
    "fparam": tf.TensorSpec([None, None], tf.float64),
    "aparam": tf.TensorSpec([None, None, None], tf.float64),
}
SIGNATURE.update({"find_" + name: tf.TensorSpec([], tf.float64) for name in LABELS})


def batch_neighbor_list(coord, atype, box, pbc, rcut, sel, mixed_types=False):
    """Neighbor lists of a batch of frames: ``nlist [nf, nloc, nnei]``, ``shift`` and
    ``count [nf, nloc, len(sel)]`` (see :func:`dpkeras.nlist.build_neighbor_list`)."""
    nnei = sum(sel)

    def one(args):
        c, t, b = args
        return tf.cond(pbc,
                       lambda: build_neighbor_list(c, t, b, rcut, sel, mixed_types),
                       lambda: build_neighbor_list(c, t, None, rcut, sel, mixed_types))

    return tf.map_fn(one, (coord, atype, box), fn_output_signature=(
        tf.TensorSpec([None, nnei], tf.int32), tf.TensorSpec([None, nnei, 3], coord.dtype),
        tf.TensorSpec([None, len(sel)], tf.int32)))


def _numpy_batches(data, seed, start_step, stop_step, stream):
    """The numpy batches of steps ``[start_step, stop_step)`` of ``data`` (a
    :class:`DataSystems`, or a view that redefines ``sample``, as the trainer's per-head step
    subsets do: a plain function, so their ``sample`` is the one called)."""
    for step in range(start_step, stop_step):
        yield data.batch(*data.sample(seed, step, stream))


def with_nlist(batch, rcut, sel, mixed_types=False, trim=None):
    """A numpy batch (:meth:`DataSystems.batch`) as tensors, with its neighbor lists."""
    return _add_nlist({k: tf.constant(v, SIGNATURE[k].dtype) for k, v in batch.items()}, rcut,
                      sel, mixed_types, trim)


def _add_nlist(b, rcut, sel, mixed_types, trim=None):
    return dict(b, **_nlist_fn(float(rcut), tuple(int(n) for n in sel), bool(mixed_types), trim)(
        b["coord"], b["atype"], b["box"], b["pbc"]))


@functools.lru_cache(maxsize=None)
def _nlist_fn(rcut, sel, mixed_types, trim):
    """The neighbor-list step of every dataset with these settings, traced once per process:
    tracing it takes seconds, and each dataset (a validation pass at every ``disp_freq``
    included) would trace its ``map`` again. Returns ``{nlist, shift, nbor_count[,
    nlist_widths]}``."""
    if trim not in ("tail", "blocks", None):
        raise ValueError(f"trim must be \"tail\", \"blocks\" or None, not {trim!r}")

    def fn(coord, atype, box, pbc):
        nlist, shift, count = batch_neighbor_list(coord, atype, box, pbc, rcut, sel,
                                                  mixed_types)
        extra = {}
        if trim == "tail":
            nlist, shift = trim_padding(nlist, shift)
        elif trim == "blocks":
            nlist, shift, extra["nlist_widths"] = trim_type_blocks(nlist, shift, count, sel)
        return dict(nlist=nlist, shift=shift, nbor_count=count, **extra)

    # plain TensorFlow ops (its branches are tf.cond and tf.map_fn): autograph, which would
    # rewrite the Python source on every trace, is not needed
    return tf.function(fn, autograph=False, input_signature=[
        SIGNATURE[k] for k in ("coord", "atype", "box", "pbc")])
