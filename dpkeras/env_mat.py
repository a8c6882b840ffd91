"""Environment matrix with DeePMD-kit's smooth switch.

For a neighbor at ``r_ij = r_j - r_i`` with ``r = |r_ij|``::

    s(r) = 1                                   r < rcut_smth
         = u^3 (-6 u^2 + 15 u - 10) + 1       rcut_smth <= r < rcut,  u = (r - rcut_smth)/(rcut - rcut_smth)
         = 0                                   r >= rcut
    R_ij = [s/r, s x/r^2, s y/r^2, s z/r^2]    (radial_only: [s/r])

Padded slots give a zero row. The matrix is then normalized per center type:
``(R - davg[type_i]) / dstd[type_i]`` (padded rows included, as in DeePMD-kit).
"""

import keras
import numpy as np
import tensorflow as tf


def smooth_switch(r, rcut_smth, rcut):
    """DeePMD-kit's C2-smooth switching function ``s(r)`` (see module docstring).

    ``rcut_smth`` and ``rcut`` are rounded to float32 first: DeePMD-kit's environment-matrix ops
    take them as ``float`` attributes (a cut-off like 3.8 differs from its float32 value by 5e-8,
    which moves every switched neighbor's row by ~1e-8 relative).
    """
    # and the width rcut - rcut_smth is a float32 difference (switcher.h subtracts the two
    # float arguments before dividing): 6.0 - 1.8 is 4.1999998093 in float32 against
    # 4.2000000477 in float64, a 6e-8 relative change of every switched row
    width = float(np.float32(rcut) - np.float32(rcut_smth))
    rcut_smth, rcut = float(np.float32(rcut_smth)), float(np.float32(rcut))
    u = (r - rcut_smth) / width
    mid = u * u * u * (-6.0 * u * u + 15.0 * u - 10.0) + 1.0
    return tf.where(r < rcut_smth, tf.ones_like(r), tf.where(r < rcut, mid, tf.zeros_like(r)))


def pair_vectors(coord, box, nlist, shift):
    """``r_ij = coord[j] + shift_ij @ box - coord[i]``.

    Args:
      coord: ``[nf, nloc, 3]``; box: ``[nf, 3, 3]``; nlist: ``[nf, nloc, nnei]`` (``-1`` = pad);
      shift: ``[nf, nloc, nnei, 3]`` integer cell shifts.
    Returns ``rij [nf, nloc, nnei, 3]`` and ``mask [nf, nloc, nnei]`` (bool, real neighbor).
    """
    mask = nlist >= 0
    j = tf.where(mask, nlist, tf.zeros_like(nlist))
    coord_j = tf.gather(coord, j, batch_dims=1)                        # [nf, nloc, nnei, 3]
    offset = tf.einsum("flnk,fkd->flnd", shift, box)
    rij = coord_j + offset - coord[:, :, None, :]
    return rij, mask


def env_matrix(rij, mask, rcut_smth, rcut, radial_only=False):
    """Raw environment matrix ``[..., 4]`` (or ``[..., 1]``) and the switch ``s(r)``.

    Padded slots are moved beyond ``rcut`` before any division, so values and all derivatives
    stay finite; their rows are exactly zero.
    """
    far = tf.constant([rcut + 1.0, 0.0, 0.0], dtype=rij.dtype)
    rij = tf.where(mask[..., None], rij, far)
    r2 = tf.reduce_sum(rij * rij, axis=-1, keepdims=True)
    r = tf.sqrt(r2)
    sw = smooth_switch(r, rcut_smth, rcut)
    fmask = tf.cast(mask[..., None], rij.dtype)
    if radial_only:
        return sw / r * fmask
    return tf.concat([sw / r, sw * rij / r2], axis=-1) * fmask


@keras.saving.register_keras_serializable(package="dpkeras")
class EnvMat(keras.layers.Layer):
    """Normalized environment matrix.

    ``call(rij [nf, nloc, w, 3], mask [nf, nloc, w], atype [nf, nloc])`` returns ``env [nf,
    nloc, w, ncol]`` (``ncol`` 4, or 1 with ``radial_only``) with ``env = (R - davg[atype]) /
    dstd[atype]`` over the first ``w <= nnei`` neighbor slots. ``davg``/``dstd`` are
    non-trainable weights of shape ``[ntypes, nnei, ncol]`` filled from data statistics
    (:mod:`dpkeras.stat`).
    """

    def __init__(self, ntypes, nnei, rcut, rcut_smth, radial_only=False, **kwargs):
        kwargs.setdefault("dtype", "float64")
        super().__init__(**kwargs)
        self.ntypes, self.nnei = int(ntypes), int(nnei)
        self.rcut, self.rcut_smth, self.radial_only = float(rcut), float(rcut_smth), radial_only
        ncol = 1 if radial_only else 4
        self.davg = self.add_weight(name="davg", shape=(self.ntypes, self.nnei, ncol),
                                    initializer="zeros", trainable=False)
        self.dstd = self.add_weight(name="dstd", shape=(self.ntypes, self.nnei, ncol),
                                    initializer="ones", trainable=False)
        self.built = True

    def call(self, rij, mask, atype, slots=None):
        """``rij [nf, nloc, w, 3]`` may cover only the first ``w <= nnei`` slots, or the slots
        ``slots`` (``w`` ints, a list cut by :func:`dpkeras.nlist.trim_type_blocks`)."""
        raw = env_matrix(rij, mask, self.rcut_smth, self.rcut, self.radial_only)
        if slots is None:
            w = tf.shape(raw)[-2]
            avg, std = self.davg[:, :w], self.dstd[:, :w]
        else:
            avg, std = tf.gather(self.davg, slots, axis=1), tf.gather(self.dstd, slots, axis=1)
        return (raw - tf.gather(avg, atype)) / tf.gather(std, atype)

    def padded_rows(self, lo, hi):
        """``[ntypes, hi - lo, ncol]``: the rows of padded slots ``lo .. hi-1`` for a center of
        each type, ``(0 - davg) / dstd``."""
        return -self.davg[:, lo:hi] / self.dstd[:, lo:hi]

    def set_stats(self, davg, dstd):
        self.davg.assign(np.asarray(davg, dtype=np.float64).reshape(self.davg.shape))
        self.dstd.assign(np.asarray(dstd, dtype=np.float64).reshape(self.dstd.shape))

    def get_config(self):
        cfg = super().get_config()
        cfg.update(ntypes=self.ntypes, nnei=self.nnei, rcut=self.rcut, rcut_smth=self.rcut_smth,
                   radial_only=self.radial_only)
        return cfg
