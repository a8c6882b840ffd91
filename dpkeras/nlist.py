"""The one neighbor-list builder of dpkeras (pure TensorFlow).

It runs in the ``tf.data`` input pipeline during training and inside exported SavedModels, so the
model graph itself only gathers neighbor coordinates and stays differentiable in ``coord`` and
``box``.

Layout (DeePMD-kit's ``sel`` layout): for each local atom ``i`` the ``nnei = sum(sel)`` slots are
grouped by neighbor type (``sel[0]`` slots for type 0, then ``sel[1]`` for type 1, ...), each
group sorted by distance and padded with ``-1``. With ``mixed_types=True`` (attention
descriptors) there is a single group of ``sel`` slots for all types.

Periodic images: a neighbor is ``j`` (local index) plus an integer cell shift ``S`` (3 ints), so
``r_ij = coord[j] + S @ box - coord[i]``. Any cell is handled (triclinic, and boxes thinner than
``2 * rcut``: as many images as needed are taken along each cell vector). Image atoms are
pruned to a skin of width ``rcut`` around the cell, then binned into a cell list of cubes of side
``rcut`` (only occupied cubes are stored, so vacuum costs nothing); each atom's candidates are
the atoms of its 27 surrounding cubes, which are sorted with ``tf.math.top_k``. The cost is
``O(natoms * 27 * max atoms per cube)``.
"""

import numpy as np
import tensorflow as tf


def _image_counts(box, rcut):
    """Number of periodic images needed along each cell vector: ``ceil(rcut / width)``."""
    a, b, c = box[0], box[1], box[2]
    vol = tf.abs(tf.reduce_sum(a * tf.linalg.cross(b, c)))
    widths = tf.stack([
        vol / tf.norm(tf.linalg.cross(b, c)),
        vol / tf.norm(tf.linalg.cross(c, a)),
        vol / tf.norm(tf.linalg.cross(a, b)),
    ])
    return tf.cast(tf.math.ceil(rcut / widths), tf.int32)


def _extend(coord, box, rcut):
    """Periodic images of the wrapped local atoms within ``rcut`` of the cell.

    Returns ``ext_coord [nall, 3]``, ``ext_index [nall]`` (local atom) and ``ext_shift [nall, 3]``
    (integer cell shift relative to the *unwrapped* input coordinate), with the nloc original
    atoms first (shift 0).
    """
    nloc = tf.shape(coord)[0]
    inv = tf.linalg.inv(box)
    frac = tf.matmul(coord, inv)
    wrap = tf.floor(frac)
    frac_w = frac - wrap
    n = _image_counts(box, rcut)
    rng = [tf.range(-n[k], n[k] + 1) for k in range(3)]
    g = tf.meshgrid(rng[0], rng[1], rng[2], indexing="ij")
    cells = tf.cast(tf.reshape(tf.stack(g, -1), [-1, 3]), coord.dtype)
    # put the zero shift first so the original atoms come first
    is_zero = tf.reduce_all(tf.equal(cells, 0), axis=-1)
    cells = tf.concat([tf.boolean_mask(cells, is_zero),
                       tf.boolean_mask(cells, tf.logical_not(is_zero))], 0)
    ncell = tf.shape(cells)[0]
    ext_frac = frac_w[None, :, :] + cells[:, None, :]                     # [ncell, nloc, 3]
    # keep images whose fractional coordinates lie within the skin around [0, 1)
    widths_frac = rcut / (tf.abs(tf.linalg.det(box)) /
                          tf.stack([tf.norm(tf.linalg.cross(box[1], box[2])),
                                    tf.norm(tf.linalg.cross(box[2], box[0])),
                                    tf.norm(tf.linalg.cross(box[0], box[1]))]))
    inside = tf.reduce_all((ext_frac >= -widths_frac) & (ext_frac < 1.0 + widths_frac), -1)
    ext_frac = tf.reshape(ext_frac, [-1, 3])
    inside = tf.reshape(inside, [-1])
    ext_index = tf.tile(tf.range(nloc), [ncell])
    shift = tf.reshape(cells[:, None, :] - wrap[None, :, :], [-1, 3])      # unwrapped shift
    keep = tf.where(inside)[:, 0]
    ext_coord = tf.matmul(tf.gather(ext_frac, keep), box)
    return ext_coord, tf.gather(ext_index, keep), tf.gather(shift, keep)


def _cell_list_candidates(ext_coord, nloc, rcut):
    """Candidate neighbors ``[nloc, K]`` (extended indices, ``-1`` = none) of the first ``nloc``
    extended atoms: every atom in the 27 cubes of side ``rcut`` around each of them."""
    lo = tf.reduce_min(ext_coord, axis=0)
    cell = tf.cast(tf.floor((ext_coord - lo) / rcut), tf.int64)            # [nall, 3]
    dims = tf.reduce_max(cell, axis=0) + 3                                 # room for +-1
    cell = cell + 1
    cid = (cell[:, 0] * dims[1] + cell[:, 1]) * dims[2] + cell[:, 2]
    occupied, slot = tf.unique(cid)                                        # slot: [nall]
    order = tf.argsort(occupied, stable=True)
    occupied = tf.gather(occupied, order)                                  # sorted cube ids
    slot = tf.gather(tf.argsort(order), slot)                              # index in sorted
    nocc = tf.shape(occupied)[0]
    nall = tf.shape(cid)[0]
    per_cube = tf.math.bincount(tf.cast(slot, tf.int32), minlength=nocc)
    by_cube = tf.argsort(slot, stable=True)
    start = tf.cumsum(per_cube, exclusive=True)
    rank = tf.range(nall) - tf.gather(start, tf.gather(slot, by_cube))
    width = tf.reduce_max(per_cube)
    table = tf.scatter_nd(tf.stack([tf.gather(tf.cast(slot, tf.int32), by_cube), rank], 1),
                          by_cube + 1, [nocc, width]) - 1                  # [nocc, width]
    g = tf.constant([[a, b, c] for a in (-1, 0, 1) for b in (-1, 0, 1) for c in (-1, 0, 1)],
                    tf.int64)
    near = cell[:nloc, None, :] + g[None]                                  # [nloc, 27, 3]
    near_id = (near[..., 0] * dims[1] + near[..., 1]) * dims[2] + near[..., 2]
    pos = tf.searchsorted(occupied, tf.reshape(near_id, [-1]))
    pos = tf.minimum(pos, tf.cast(nocc - 1, pos.dtype))
    hit = tf.equal(tf.gather(occupied, pos), tf.reshape(near_id, [-1]))
    cand = tf.where(hit[:, None], tf.gather(table, pos), -1)              # [nloc*27, width]
    return tf.reshape(cand, [nloc, -1])


def build_neighbor_list(coord, atype, box, rcut, sel, mixed_types=False):
    """Neighbor list of one frame.

    Args:
      coord: ``[nloc, 3]`` float, Angstrom.
      atype: ``[nloc]`` int, model type indices (negative = virtual atom, never a neighbor).
      box: ``[3, 3]`` float (rows are cell vectors) or ``None`` for a non-periodic frame.
      rcut: cut-off radius, Angstrom.
      sel: list of ints (per neighbor type), or a one-element list when ``mixed_types``.

    Returns:
      ``nlist [nloc, nnei] int32`` (local index of the neighbor, ``-1`` = padding),
      ``shift [nloc, nnei, 3]`` (integer cell shift as ``coord.dtype``),
      ``count [nloc, len(sel)] int32`` (neighbors within ``rcut`` per group, before truncation to
      ``sel``: compare with ``sel`` to detect overflow).
    """
    coord = tf.convert_to_tensor(coord)
    atype = tf.cast(atype, tf.int32)
    nloc = tf.shape(coord)[0]
    if box is None:
        ext_coord = coord
        ext_index = tf.range(nloc)
        ext_shift = tf.zeros_like(coord)
    else:
        ext_coord, ext_index, ext_shift = _extend(coord, tf.cast(box, coord.dtype), rcut)
        # centers in the wrapped frame; their own shift is -wrap_i
        coord = ext_coord[:nloc]
    center_shift = ext_shift[:nloc]
    ext_type = tf.gather(atype, ext_index)
    cand = _cell_list_candidates(ext_coord, nloc, rcut)                    # [nloc, K]
    safe = tf.maximum(cand, 0)
    dist = tf.norm(tf.gather(ext_coord, safe) - coord[:, None, :], axis=-1)
    cand_type = tf.gather(ext_type, safe)
    not_self = tf.not_equal(cand, tf.range(nloc)[:, None])
    within = (cand >= 0) & (dist < rcut) & not_self & (cand_type >= 0) & (atype[:, None] >= 0)
    ncand = tf.shape(cand)[1]
    groups = [None] if mixed_types else list(range(len(sel)))
    inf = tf.constant(np.inf, dist.dtype)
    nlists, shifts, counts = [], [], []
    for g, nsel in zip(groups, sel):
        mask = within if g is None else within & tf.equal(cand_type, g)
        counts.append(tf.reduce_sum(tf.cast(mask, tf.int32), axis=1))
        d = tf.where(mask, dist, inf)
        k = tf.minimum(nsel, ncand)
        neg, pick = tf.math.top_k(-d, k=k, sorted=True)
        valid = tf.math.is_finite(neg)
        idx = tf.maximum(tf.gather(cand, pick, batch_dims=1), 0)          # extended index
        j = tf.where(valid, tf.gather(ext_index, idx), -1)
        s = tf.gather(ext_shift, idx) - center_shift[:, None, :]
        s = tf.where(valid[..., None], s, tf.zeros_like(s))
        pad = nsel - k
        nlists.append(tf.pad(j, [[0, 0], [0, pad]], constant_values=-1))
        shifts.append(tf.pad(s, [[0, 0], [0, pad], [0, 0]]))
    return (tf.concat(nlists, axis=1), tf.concat(shifts, axis=1),
            tf.stack(counts, axis=1))


def slot_types(sel):
    """``[sum(sel)] int32``: the neighbor type of each slot of the per-type layout (its block's
    type, padded slots too)."""
    return np.repeat(np.arange(len(sel)), sel).astype(np.int32)


def trim_padding(nlist, shift, multiple=8):
    """Cut the padded tail of a mixed-type (distance-sorted) neighbor list.

    ``nlist [..., nnei]`` and ``shift [..., nnei, 3]`` are cut to the first ``w`` slots, ``w``
    the largest neighbor count in the batch rounded up to a multiple of ``multiple`` (so a
    compiled model sees few distinct shapes), at most ``nnei``. Only descriptors that add the
    padded slots back (``trims_padding``, the attention descriptors) take such a list.
    """
    nnei = tf.shape(nlist)[-1]
    used = tf.reduce_max(tf.reduce_sum(tf.cast(nlist >= 0, tf.int32), axis=-1))
    w = tf.minimum(nnei, tf.maximum(1, (used + multiple - 1) // multiple) * multiple)
    return nlist[..., :w], shift[..., :w, :]


def trim_type_blocks(nlist, shift, count, sel, multiple=8):
    """Cut each neighbor-type block of a per-type neighbor list after its last real neighbor.

    ``nlist [nf, nloc, nnei]`` and ``shift [nf, nloc, nnei, 3]`` in the ``sel`` layout; ``count
    [nf, nloc, len(sel)]`` the neighbors of each type within ``rcut``
    (:func:`build_neighbor_list`). Block ``t`` keeps its first ``w_t`` slots, ``w_t`` the
    largest count of type ``t`` in the batch rounded up to a multiple of ``multiple`` (few
    distinct shapes to compile), at least 1 and at most ``sel[t]``. Returns the cut ``nlist``,
    ``shift`` and ``widths [nf, len(sel)]`` int32 (the same row for every frame, so a batch split
    by frames keeps it). Only descriptors that add the cut padded slots back
    (``trims_blocks``) take such a list.
    """
    used = tf.reduce_max(count, axis=[0, 1])                              # [ntypes]
    sel_t = tf.constant(sel, tf.int32)
    widths = tf.minimum(sel_t, tf.maximum(1, (used + multiple - 1) // multiple) * multiple)
    keep = tf.concat([tf.range(lo, lo + widths[t]) for t, lo in enumerate(_block_starts(sel))],
                     axis=0)
    nf = tf.shape(nlist)[0]
    return (tf.gather(nlist, keep, axis=2), tf.gather(shift, keep, axis=2),
            tf.tile(widths[None], [nf, 1]))


def kept_slots(sel, widths):
    """The slots of the full ``sel`` layout a list cut to ``widths`` (one int per block, see
    :func:`trim_type_blocks`) keeps, in order (``np.ndarray`` of ints)."""
    return np.concatenate([np.arange(lo, lo + w) for lo, w in
                           zip(_block_starts(sel), widths)]).astype(np.int32)


def _block_starts(sel):
    """The first slot of each neighbor-type block of the ``sel`` layout (Python ints)."""
    return np.cumsum([0] + list(sel))[:-1].tolist()


def takes_trimmed(descriptor):
    """How ``descriptor`` accepts a list with padding cut: ``"tail"`` (mixed-type list cut by
    :func:`trim_padding`: the attention descriptors), ``"blocks"`` (per-type list cut by
    :func:`trim_type_blocks`: ``se_e2_a``/``se_e2_r`` with per-type nets) or ``None``."""
    if getattr(descriptor, "trims_padding", False):
        return "tail"
    if getattr(descriptor, "trims_blocks", False):
        return "blocks"
    return None


def batch_args(descriptor):
    """The neighbor-list keywords of :meth:`dpkeras.data.pipeline.DataSystems.dataset` for
    training/validation batches of ``descriptor``: its ``rcut`` and ``sel``, mixed types, and
    how the lists are trimmed (:func:`takes_trimmed`)."""
    return {"rcut": descriptor.get_rcut(), "sel": descriptor.get_sel(),
            "mixed_types": descriptor.mixed_types(), "trim": takes_trimmed(descriptor)}
