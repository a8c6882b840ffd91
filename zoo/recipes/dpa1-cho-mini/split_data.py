"""Split dpkeras' shipped C/H/O molecule systems into training and validation systems.

    python zoo/recipes/dpa1-cho-mini/split_data.py OUT_DIR

writes ``OUT_DIR/train/<system>`` (the first 90 % of each system's frames) and
``OUT_DIR/valid/<system>`` (the last 10 %, at least one frame) as DeePMD-kit npy systems.
``input.json`` next to this file reads them from ``OUT_DIR=split`` in this folder. The split is
deterministic (contiguous frames, no shuffling), and the zoo card records it as
``validation.frames = "last 10%"`` so anyone can rebuild the validation set.
"""

import os
import shutil
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "..", "..", "dpkeras", "examples", "data", "nopbc")
SYSTEMS = ("C1H4O2", "C3H3O4", "C4H3O1")
VALID_FRACTION = 0.1


def n_valid(nframes):
    """Number of validation frames (the last ones) of a system with ``nframes`` frames."""
    return max(1, int(round(nframes * VALID_FRACTION)))


def split(out_dir, data=DATA, systems=SYSTEMS):
    for name in systems:
        src = os.path.join(data, name)
        arrays = {f[:-4]: np.load(os.path.join(src, "set.000", f))
                  for f in sorted(os.listdir(os.path.join(src, "set.000")))}
        nf = len(arrays["coord"])
        cut = nf - n_valid(nf)
        for part, sl in (("train", slice(0, cut)), ("valid", slice(cut, nf))):
            dst = os.path.join(out_dir, part, name)
            os.makedirs(os.path.join(dst, "set.000"), exist_ok=True)
            for f in ("type.raw", "type_map.raw", "nopbc"):
                shutil.copy(os.path.join(src, f), dst)
            for k, v in arrays.items():
                np.save(os.path.join(dst, "set.000", k + ".npy"), v[sl])


if __name__ == "__main__":
    split(sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "split"))
