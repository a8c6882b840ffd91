#!/usr/bin/env python3
"""Evaluate a compressed DeePMD-kit graph on a frame whose inputs fall outside its tables.

usage: python eval_beyond.py frozen_model.pb reference.npz reference_beyond.npz

The frame: frame 0 of reference.npz (``coord``, ``box``, ``atype``) with its first H atom (type 1)
moved to 0.05 A from its first O atom (type 0), so 1/r is far beyond every table's range.
Writes coord, box, atype, energy, force, virial (``DeepPot.eval``) to reference_beyond.npz.
"""
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np
from deepmd.infer import DeepPot

pb, ref, out = sys.argv[1:4]
r = np.load(ref)
coord = r["coord"][:1].reshape(-1, 3).copy()
atype = r["atype"]
h = int(np.flatnonzero(atype == 1)[0])
coord[h] = coord[0] + [0.05, 0.0, 0.0]
e, f, v = DeepPot(pb).eval(coord.reshape(1, -1), r["box"][:1], atype)
np.savez(out, coord=coord.reshape(1, -1), box=r["box"][:1], atype=atype, energy=e, force=f,
         virial=v)
print(f"beyond the tables (H at 0.05 A from O): energy {float(np.ravel(e)[0]):.10f}, "
      f"max |force| {np.abs(f).max():.4f}")
