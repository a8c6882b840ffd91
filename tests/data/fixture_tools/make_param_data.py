#!/usr/bin/env python3
"""Copy a DeePMD npy system and add frame and atomic parameters (for numb_fparam/numb_aparam = 1).

usage: python make_param_data.py SRC_SYSTEM DST_SYSTEM
fparam.npy (nf, 1): a temperature-like column, 300 + 10*sin(frame index) (K-ish, deterministic);
aparam.npy (nf, natoms): uniform random in [0, 1) from numpy default_rng(seed = 2024 + set index),
seeded per set so every copy of the same source gives the same numbers.
"""
import glob
import os
import shutil
import sys

import numpy as np

src, dst = sys.argv[1:3]
if os.path.exists(dst):
    shutil.rmtree(dst)
shutil.copytree(src, dst)
nat = np.loadtxt(os.path.join(dst, "type.raw"), dtype=int).size
for k, s in enumerate(sorted(glob.glob(os.path.join(dst, "set.*")))):
    nf = np.load(os.path.join(s, "coord.npy")).shape[0]
    fparam = (300.0 + 10.0 * np.sin(np.arange(nf, dtype=np.float64))).reshape(nf, 1)
    aparam = np.random.default_rng(2024 + k).random((nf, nat))
    np.save(os.path.join(s, "fparam.npy"), fparam)
    np.save(os.path.join(s, "aparam.npy"), aparam)
    print(f"{dst}/{os.path.basename(s)}: fparam {fparam.shape} aparam {aparam.shape}")
