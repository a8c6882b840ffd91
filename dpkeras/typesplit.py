"""Per-type blocks of per-atom tensors: the one place that groups atoms by type.

Descriptors with per-center-type networks and fitting nets with per-type networks apply a
different network to the atoms of each type. Two ways to find them:

* ``type_counts`` given (a tuple of Python ints): the atoms of every frame are sorted by type
  with these counts (as the training pipeline delivers them), so the blocks are static slices;
  shapes are static and the step compiles with XLA.
* otherwise the atoms may come in any order and the blocks are gathered by ``tf.where``.
"""

import numpy as np
import tensorflow as tf


class TypeSplit:
    """Split ``[nf, nloc, ...]`` tensors into per-type blocks ``[n_t, ...]`` and merge back.

    Args:
      atype: ``[nf, nloc]`` int32 atom types.
      ntypes: number of types.
      type_counts: atoms per type in each (type-sorted) frame, or ``None``.
    """

    def __init__(self, atype, ntypes, type_counts=None):
        self.ntypes = ntypes
        self.type_counts = None if type_counts is None else tuple(int(c) for c in type_counts)
        self.nf, self.nloc = tf.shape(atype)[0], tf.shape(atype)[1]
        if self.type_counts is None:
            flat = tf.reshape(atype, [-1])
            self.index = [tf.cast(tf.where(tf.equal(flat, t))[:, 0], tf.int32)
                          for t in range(ntypes)]
        else:
            self.bounds = np.cumsum((0,) + self.type_counts)

    def split(self, x):
        """``x [nf, nloc, *rest]`` -> list over types of ``[n_t_total, *rest]``."""
        rest = tf.shape(x)[2:]
        if self.type_counts is None:
            flat = tf.reshape(x, tf.concat([[-1], rest], 0))
            return [tf.gather(flat, idx) for idx in self.index]
        return [tf.reshape(x[:, lo:hi], tf.concat([[-1], rest], 0))
                for lo, hi in zip(self.bounds[:-1], self.bounds[1:])]

    def merge(self, parts):
        """Inverse of :meth:`split`: list of ``[n_t_total, *rest]`` -> ``[nf, nloc, *rest]``."""
        rest = tf.shape(parts[0])[1:]
        if self.type_counts is None:
            flat = tf.dynamic_stitch(self.index, parts)
            return tf.reshape(flat, tf.concat([[self.nf, self.nloc], rest], 0))
        blocks = [tf.reshape(p, tf.concat([[self.nf, c], rest], 0))
                  for p, c in zip(parts, self.type_counts)]
        return tf.concat(blocks, axis=1)
