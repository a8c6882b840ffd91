"""Check that a dpkeras model written as ``.dp`` gives the same numbers in the real DeePMD-kit.

    python tools/check_deepmd_roundtrip.py MODEL SYSTEM --deepmd-python /path/to/venv/bin/python

MODEL is anything dpkeras loads (a training run directory, a SavedModel, ...). The script writes
MODEL as ``.dp``, converts it with ``dp convert-backend`` to a TF frozen graph, evaluates the
first frames of SYSTEM with DeePMD-kit's ``DeepPot`` and with dpkeras, and prints the largest
relative differences (energy, force, virial, atomic energy, atomic virial). Not part of the test
suite: DeePMD-kit is never a dependency of dpkeras.
"""

import argparse
import os
import subprocess
import tempfile

import numpy as np

EVAL = r"""
import sys, numpy as np
from deepmd.infer import DeepPot
d = np.load(sys.argv[2])
box = d["box"] if d["pbc"] else None
out = DeepPot(sys.argv[1]).eval(d["coord"], box, d["atype"], atomic=True)
np.savez(sys.argv[3], **dict(zip(["e", "f", "v", "ae", "av"], out)))
"""


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model")
    p.add_argument("system")
    p.add_argument("--deepmd-python", required=True)
    p.add_argument("--frames", type=int, default=4)
    a = p.parse_args()
    from dpkeras.data.system import DeepmdSystem
    from dpkeras.export import save_model
    from dpkeras.infer import DeepPot

    work = tempfile.mkdtemp(prefix="dp-roundtrip-")
    ours = DeepPot(a.model)
    save_model(ours.model, os.path.join(work, "model.dp"))
    dp = os.path.join(os.path.dirname(a.deepmd_python), "dp")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    subprocess.run([dp, "convert-backend", "model.dp", "model.pb"], cwd=work, env=env,
                   check=True, capture_output=True)
    s = DeepmdSystem(a.system, ours.get_type_map())
    n = min(a.frames, s.nframes)
    coord, box = s.coord[:n].reshape(n, -1), s.box[:n].reshape(n, 9)
    np.savez(os.path.join(work, "in.npz"), coord=coord, box=box, atype=s.atype, pbc=s.pbc)
    with open(os.path.join(work, "eval.py"), "w") as f:
        f.write(EVAL)
    subprocess.run([a.deepmd_python, "eval.py", "model.pb", "in.npz", "ref.npz"], cwd=work,
                   env=env, check=True, capture_output=True)
    ref = np.load(os.path.join(work, "ref.npz"))
    got = ours.eval(coord, box if s.pbc else None, s.atype, atomic=True)
    for name, g in zip(["e", "f", "v", "ae", "av"], got):
        r = ref[name]
        rel = np.max(np.abs(g.reshape(r.shape) - r)) / np.max(np.abs(r))
        print(f"{name:3s} max rel diff dpkeras vs DeePMD-kit: {rel:.2e}")


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    main()
