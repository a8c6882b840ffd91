#!/usr/bin/env python3
"""Copy a water_tensor atomic_system into the layout DeePMD-kit 2.2.11 expects for atomic labels.

usage: python make_tensor_data.py SRC_SYSTEM DST_SYSTEM SEL_TYPE[,SEL_TYPE...]

The shared data store atomic_dipole.npy / atomic_polarizability.npy for ALL atoms
([nf, natoms*3] / [nf, natoms*9], zero on H). DeePMD-kit 2.2.11 (deepmd_utils/utils/data.py,
DeepmdData._load_data with type_sel) reshapes an atomic label to [nf, n_sel_atoms, -1], i.e. it wants
the rows of the sel_type atoms only, in the system's atom order. This script keeps every other file
(type.raw, type_map.raw, box.npy, coord.npy, the `nopbc` marker) verbatim and replaces the atomic
label by the rows of the atoms whose type.raw index is in SEL_TYPE (the system's own indexing, here
identical to the model's: type_map O,H).
"""
import glob
import os
import shutil
import sys

import numpy as np

src, dst, sel = sys.argv[1], sys.argv[2], [int(x) for x in sys.argv[3].split(",")]
if os.path.exists(dst):
    shutil.rmtree(dst)
shutil.copytree(src, dst)
atype = np.loadtxt(os.path.join(dst, "type.raw"), dtype=int).reshape(-1)
mask = np.isin(atype, sel)
for s in sorted(glob.glob(os.path.join(dst, "set.*"))):
    for key in ("atomic_dipole", "atomic_polarizability"):
        f = os.path.join(s, key + ".npy")
        if not os.path.exists(f):
            continue
        a = np.load(f)
        nf = a.shape[0]
        a3 = a.reshape(nf, atype.size, -1)
        dropped = np.abs(a3[:, ~mask]).max() if (~mask).any() else 0.0
        out = np.ascontiguousarray(a3[:, mask].reshape(nf, -1))
        np.save(f, out)
        print(f"{f}: {a.shape} -> {out.shape} (max |label| on dropped atoms: {dropped})")
