#!/usr/bin/env python3
"""Convert frozen_model.pb -> model.dp, write structure.json, and check the .dp.

usage: python make_dp.py DIR   (DIR holds frozen_model.pb and reference.npz)
If DeePMD-kit cannot convert the model, say so (exit 0) and leave no model.dp / structure.json.
Checks, for every case of reference.npz (energy, dipole or polar models): .dp -> .pb round trip
with the TF backend, and DeePMD-kit's numpy backend on model.dp (no forces there).
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


def sh(*args, check=True):
    r = subprocess.run(args, capture_output=True, text=True)
    if r.returncode:
        lines = [x for x in (r.stdout + r.stderr).splitlines() if x.strip()]
        print("command failed:", " ".join(map(str, args)))
        print("  " + "\n  ".join(lines[-6:]))
        if check:
            raise SystemExit(1)
    return r.returncode == 0


def convert_numpy_scalars_fixed(src, dst):
    """What `dp convert-backend src dst` does (DeePMD-kit's own serialize/deserialize hooks), with
    numpy scalars in the serialized dict turned into Python numbers first. DeePMD-kit 3.2.0's TF
    se_atten serializer leaves `attention_layers.nnei` as numpy.int64, which json.dumps rejects."""
    from deepmd.backend.backend import Backend

    def fix(x, path=""):
        if isinstance(x, dict):
            return {k: fix(v, f"{path}/{k}") for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return type(x)(fix(v, f"{path}[{i}]") for i, v in enumerate(x))
        if isinstance(x, np.generic):
            print(f"  numpy scalar {type(x).__name__} at {path} = {x!r} -> Python {type(x.item()).__name__}")
            return x.item()
        return x

    data = fix(Backend.detect_backend_by_model(src)().serialize_hook(src))
    Backend.detect_backend_by_model(dst)().deserialize_hook(dst, data)


DP_NOTE = "model.dp written by `dp convert-backend frozen_model.pb model.dp`"
if not sh(DP, "convert-backend", str(d / "frozen_model.pb"), str(d / "model.dp"), check=False):
    for fn in ("model.dp", "structure.json"):
        (d / fn).unlink(missing_ok=True)
    print("`dp convert-backend frozen_model.pb model.dp` FAILS for this model; retrying with the same "
          "DeePMD-kit hooks after turning numpy scalars into Python numbers:")
    try:
        convert_numpy_scalars_fixed(str(d / "frozen_model.pb"), str(d / "model.dp"))
        DP_NOTE = "model.dp written by DeePMD-kit's serialize/deserialize hooks with numpy scalars made Python numbers"
    except Exception as exc:  # noqa: BLE001
        (d / "model.dp").unlink(missing_ok=True)
        print(f"  still fails: {type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:300]}")
        print("NO model.dp for this model")
        raise SystemExit(0)
print(DP_NOTE)


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
cases = list(ref["cases"]) if "cases" in ref.files else ["", "nopbc_"]
tname = str(ref["model_kind"]) if "model_kind" in ref.files else "ener"


def rel(a, b):
    a = np.asarray(a, dtype=np.float64).reshape(np.shape(b))
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-300))


def case_inputs(p):
    kw = {k: ref[p + k] for k in ("fparam", "aparam") if p + k in ref.files}
    return ref[p + "coord"], (ref[p + "box"] if p + "box" in ref.files else None), ref[p + "atype"], kw


def compare(m, label, energies_only=False):
    for p in cases:
        coord, box, atype, kw = case_inputs(p)
        tag = f"{label} case '{p}' ({'PBC' if box is not None else 'no PBC'}) rel.err:"
        if tname == "ener":
            e, f, v, ae, av = m.eval(coord, box, atype, atomic=True, **kw)
            if energies_only:
                print(tag, "energy %.2e atom_energy %.2e" % (rel(e, ref[p + "energy"]), rel(ae, ref[p + "atom_energy"])))
            else:
                print(tag, "energy %.2e force %.2e virial %.2e atom_energy %.2e atom_virial %.2e" % (
                    rel(e, ref[p + "energy"]), rel(f, ref[p + "force"]), rel(v, ref[p + "virial"]),
                    rel(ae, ref[p + "atom_energy"]), rel(av, ref[p + "atom_virial"])))
        else:
            g = m.eval(coord, box, atype, atomic=False, **kw)
            at = m.eval(coord, box, atype, atomic=True, **kw)
            msg = f"{tname} %.2e atom_{tname} %.2e" % (rel(g, ref[p + tname]), rel(at, ref[p + "atom_" + tname]))
            if not energies_only:
                _, ff, vf, _, avf = m.eval_full(coord, box, atype, atomic=True, **kw)
                msg += " force %.2e virial %.2e atom_virial %.2e" % (
                    tuple(rel(np.asarray(x)[:len(ref[p + tname + k])], ref[p + tname + k]) if p + tname + k in ref.files
                          else float("nan") for x, k in ((ff, "_force"), (vf, "_virial"), (avf, "_atom_virial"))))
            print(tag, msg)
        if p + "descriptor" in ref.files:
            try:
                n = len(ref[p + "descriptor"])
                print(f"{label} case '{p}' descriptor rel.err: %.2e" % rel(m.eval_descriptor(
                    coord[:n], None if box is None else box[:n], atype, **{k: x[:n] for k, x in kw.items()}),
                    ref[p + "descriptor"]))
            except Exception as exc:  # noqa: BLE001
                print(f"{label}: eval_descriptor unsupported:", why(exc))


def why(exc):
    return f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:200]}"


from deepmd.infer import DeepEval  # noqa: E402

# 1) round trip .dp -> .pb with the TF backend: must reproduce reference.npz
with tempfile.TemporaryDirectory() as tmp:
    rt = os.path.join(tmp, "roundtrip.pb")
    if sh(DP, "convert-backend", str(d / "model.dp"), rt, check=False):
        compare(DeepEval(rt), "TF roundtrip .dp->.pb")
    else:
        print("`dp convert-backend model.dp roundtrip.pb` FAILS for this model")

# 2) DeePMD-kit's numpy (dpmodel) backend on model.dp (no autodiff: energies/tensors only; may be unsupported)
try:
    compare(DeepEval(str(d / "model.dp")), "dpmodel model.dp", energies_only=True)
except Exception as exc:  # noqa: BLE001
    print("dpmodel backend cannot evaluate model.dp:", why(exc))
