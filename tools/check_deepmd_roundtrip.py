"""Check that a dpkeras model written as ``.dp`` gives the same numbers in the real DeePMD-kit.

    python tools/check_deepmd_roundtrip.py MODEL SYSTEM --deepmd-python /path/to/venv/bin/python
    python tools/check_deepmd_roundtrip.py MODEL --reference reference.npz --deepmd-python ...

MODEL is anything dpkeras loads (a training run directory, a SavedModel, a DeePMD-kit ``.pb``
or ``.dp`` ...). The script writes MODEL as ``.dp``, converts it with ``dp convert-backend`` to a
TF frozen graph, evaluates it with DeePMD-kit's ``DeepPot`` and with dpkeras, and prints the
largest relative differences (energy, force, virial, atomic energy, atomic virial). The inputs
are the first frames of SYSTEM, or every case of a parity fixture ``reference.npz`` (keys
``[prefix]coord/box/atype`` with the prefixes of its ``cases`` array, default ``""`` and
``nopbc_``); with a reference the converted model is also compared with the reference's own
DeePMD-kit numbers (``[prefix]energy`` ...) unless ``--inputs-only`` (MODEL is another model
and only the coordinates are borrowed). Not part of the test suite: DeePMD-kit is never a
dependency of dpkeras.
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
NAMES = ["e", "f", "v", "ae", "av"]
REF_KEYS = ["energy", "force", "virial", "atom_energy", "atom_virial"]


def _rel(got, ref):
    ref = np.asarray(ref)
    return np.max(np.abs(np.reshape(got, ref.shape) - ref)) / np.max(np.abs(ref))


def _inputs(a, type_map):
    """``[(label, coord, box or None, atype, reference dict or None)]``."""
    if a.reference:
        ref = np.load(a.reference)
        cases = [str(c) for c in ref["cases"]] if "cases" in ref else ["", "nopbc_"]
        out = []
        for p in cases:
            if p + "coord" not in ref:
                continue
            box = ref[p + "box"] if p + "box" in ref else None
            out.append((p.rstrip("_") or "pbc", ref[p + "coord"], box, ref[p + "atype"],
                        {k: ref[p + k] for k in REF_KEYS}))
        return out
    from dpkeras.data.system import DeepmdSystem

    s = DeepmdSystem(a.system, type_map)
    n = min(a.frames, s.nframes)
    return [("system", s.coord[:n].reshape(n, -1), s.box[:n].reshape(n, 9) if s.pbc else None,
             s.atype, None)]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model")
    p.add_argument("system", nargs="?")
    p.add_argument("--reference", help="a parity fixture reference.npz instead of SYSTEM")
    p.add_argument("--inputs-only", action="store_true",
                   help="take only the coordinates of --reference (MODEL is another model)")
    p.add_argument("--deepmd-python", required=True)
    p.add_argument("--frames", type=int, default=4)
    a = p.parse_args()
    if (a.system is None) == (a.reference is None):
        p.error("give either SYSTEM or --reference")
    from dpkeras.export import save_model
    from dpkeras.infer import DeepPot

    work = tempfile.mkdtemp(prefix="dp-roundtrip-")
    ours = DeepPot(a.model)
    save_model(ours.model, os.path.join(work, "model.dp"))
    dp = os.path.join(os.path.dirname(a.deepmd_python), "dp")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    subprocess.run([dp, "convert-backend", "model.dp", "model.pb"], cwd=work, env=env,
                   check=True, capture_output=True)
    with open(os.path.join(work, "eval.py"), "w") as f:
        f.write(EVAL)
    back = DeepPot(os.path.join(work, "model.dp"))   # dpkeras reading its own file
    print(f"model {a.model} -> {work}/model.dp -> model.pb (dp convert-backend)")
    print(f"{'max relative difference':40s} " + " ".join(f"{n:>8s}" for n in NAMES))
    for label, coord, box, atype, refd in _inputs(a, ours.get_type_map()):
        coord = np.asarray(coord, np.float64)
        box = None if box is None else np.asarray(box, np.float64)
        np.savez(os.path.join(work, "in.npz"), coord=coord,
                 box=np.zeros(9) if box is None else box, atype=atype, pbc=box is not None)
        subprocess.run([a.deepmd_python, "eval.py", "model.pb", "in.npz", "ref.npz"], cwd=work,
                       env=env, check=True, capture_output=True)
        deepmd = np.load(os.path.join(work, "ref.npz"))
        rows = [("dpkeras vs DeePMD-kit(.dp->.pb)", ours.eval(coord, box, atype, atomic=True)),
                ("dpkeras re-read .dp vs DeePMD", back.eval(coord, box, atype, atomic=True))]
        for title, got in rows:
            rel = [_rel(g, deepmd[n]) for g, n in zip(got, NAMES)]
            print(f"{'[' + label + ']':8s} {title:31s} " + " ".join(f"{r:8.1e}" for r in rel))
        if refd is not None and not a.inputs_only:
            rel = [_rel(deepmd[n], refd[k]) for n, k in zip(NAMES, REF_KEYS)]
            print(f"{'[' + label + ']':8s} {'DeePMD(.dp->.pb) vs reference':31s} "
                  + " ".join(f"{r:8.1e}" for r in rel))


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    main()
