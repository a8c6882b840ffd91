#!/usr/bin/env python3
"""Convert frozen_model.pb -> model.dp, write structure.json, and check the .dp.

usage: python make_dp.py DIR   (DIR holds frozen_model.pb and reference.npz)
"""
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import h5py
import numpy as np

d = Path(sys.argv[1]).resolve()
DP = str(Path(sys.executable).parent / "dp")


def sh(*args):
    r = subprocess.run(args, capture_output=True, text=True)
    if r.returncode:
        print(r.stdout[-3000:], r.stderr[-3000:])
        raise SystemExit(f"command failed: {args}")


sh(DP, "convert-backend", str(d / "frozen_model.pb"), str(d / "model.dp"))


def structure(fn):
    with h5py.File(fn, "r") as f:
        tree = json.loads(f.attrs["json"])

        def walk(x):
            if isinstance(x, dict):
                return {k: walk(v) for k, v in x.items()}
            if isinstance(x, list):
                return [walk(v) for v in x]
            if isinstance(x, str) and x.startswith("/variable_"):
                ds = f[x]
                return f"array<{ds.dtype.name}>[{','.join(map(str, ds.shape))}] @{x}"
            return x

        out = walk(tree)
    out["time"] = "<UTC timestamp of writing, varies>"
    return out


(d / "structure.json").write_text(json.dumps(structure(d / "model.dp"), indent=1) + "\n")
print("wrote model.dp and structure.json")

ref = np.load(d / "reference.npz")
nat = ref["atype"].size


def rel(a, b):
    a = np.asarray(a, dtype=np.float64).reshape(np.shape(b))
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-300))


from deepmd.infer import DeepPot  # noqa: E402

# 1) round trip .dp -> .pb with the TF backend: must reproduce reference.npz
with tempfile.TemporaryDirectory() as tmp:
    rt = os.path.join(tmp, "roundtrip.pb")
    sh(DP, "convert-backend", str(d / "model.dp"), rt)
    m = DeepPot(rt)
    e, f, v, ae, av = m.eval(ref["coord"], ref["box"], ref["atype"], atomic=True)
    print("TF roundtrip .dp->.pb (PBC) rel.err: energy %.2e force %.2e virial %.2e atom_energy %.2e atom_virial %.2e" % (
        rel(e, ref["energy"]), rel(f, ref["force"]), rel(v, ref["virial"]),
        rel(ae, ref["atom_energy"]), rel(av, ref["atom_virial"])))
    e, f, v, ae, av = m.eval(ref["nopbc_coord"], None, ref["nopbc_atype"], atomic=True)
    print("TF roundtrip .dp->.pb (no PBC) rel.err: energy %.2e force %.2e virial %.2e atom_energy %.2e atom_virial %.2e" % (
        rel(e, ref["nopbc_energy"]), rel(f, ref["nopbc_force"]), rel(v, ref["nopbc_virial"]),
        rel(ae, ref["nopbc_atom_energy"]), rel(av, ref["nopbc_atom_virial"])))

# 2) DeePMD-kit's numpy (dpmodel) backend on model.dp (energies only; may be unsupported)
def why(exc):
    return f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:200]}"


try:
    m = DeepPot(str(d / "model.dp"))
    e, f, v, ae, av = m.eval(ref["coord"], ref["box"], ref["atype"], atomic=True)
    print("dpmodel model.dp (PBC) rel.err: energy %.2e atom_energy %.2e" % (
        rel(e, ref["energy"]), rel(ae, ref["atom_energy"])))
    e, f, v, ae, av = m.eval(ref["nopbc_coord"], None, ref["nopbc_atype"], atomic=True)
    print("dpmodel model.dp (no PBC) rel.err: energy %.2e atom_energy %.2e" % (
        rel(e, ref["nopbc_energy"]), rel(ae, ref["nopbc_atom_energy"])))
except Exception as exc:  # noqa: BLE001
    print("dpmodel backend cannot evaluate model.dp:", why(exc))
else:
    try:
        ds = m.eval_descriptor(ref["coord"], ref["box"], ref["atype"])
        print("dpmodel model.dp descriptor rel.err: %.2e" % rel(ds, ref["descriptor"]))
    except Exception as exc:  # noqa: BLE001
        print("dpmodel backend: eval_descriptor unsupported:", why(exc))
