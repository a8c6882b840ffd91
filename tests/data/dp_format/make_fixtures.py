#!/usr/bin/env python3
"""Regenerate the `.dp` fixtures in this directory with the REAL DeePMD-kit.

Run with the side venv built by /work/shared/tools/deepmd-venv.sh (deepmd-kit 3.2.0,
tensorflow-cpu 2.21.0, Python 3.11); see make_fixtures.sh. It is never imported by
dpkeras or its tests.

What it does (all outputs in this directory unless noted):
  1. water_se_e2_a.dp  <- `dp convert-backend frozen_model.pb water_se_e2_a.dp`
     (frozen_model.pb = /work/shared/fixtures/water_se_e2_a/frozen_model.pb)
  2. structure.json    <- JSON tree of water_se_e2_a.dp, arrays as "array<dtype>[shape]"
  3. checks the .dp with DeePMD-kit's numpy (dpmodel) DeepPot against reference.npz
     (energy / atom energy; the numpy backend returns NaN for forces/virials), then
     `dp convert-backend water_se_e2_a.dp <tmp>/roundtrip.pb` and checks the round-trip
     .pb with the TF DeepPot (energy, force, virial, atom energy, atom virial).
  4. tiny_se_e2_a_tos.dp + tiny_se_e2_a_tos_reference.npz: a tiny random-weight
     se_e2_a model written by DeePMD-kit's dpmodel (type_one_side=true, resnet_dt=true,
     embedding neuron [4,8,8] -> exercises the "doubling" resnet and idt, non-zero
     out_bias, per-slot davg/dstd), with reference outputs from the TF backend after
     `dp convert-backend tiny.dp tiny.pb` (PBC 192-atom water frame and a 6-atom
     non-PBC cluster).
  5. atom-virial convention check by finite differences (printed, see README.md).
Results are printed; check_log.txt keeps the last run's output.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("DP_INTRA_OP_PARALLELISM_THREADS", "1")
os.environ.setdefault("DP_INTER_OP_PARALLELISM_THREADS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import h5py  # noqa: E402
import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
SHARED = Path(os.environ.get("DPKERAS_SHARED", "/work/shared"))
SRC_PB = SHARED / "fixtures/water_se_e2_a/frozen_model.pb"
REF = SHARED / "fixtures/water_se_e2_a/reference.npz"
DP = str(Path(sys.executable).parent / "dp")


def sh(*args: str) -> None:
    print("$", " ".join(args), flush=True)
    r = subprocess.run(args, capture_output=True, text=True)
    if r.returncode != 0:
        print(r.stdout[-4000:], r.stderr[-4000:])
        raise SystemExit(f"command failed: {args}")


def structure(fn: Path) -> dict:
    """The JSON tree of a .dp file with each HDF5 dataset replaced by its dtype/shape."""
    with h5py.File(fn, "r") as f:
        tree = json.loads(f.attrs["json"])

        def walk(x):
            if isinstance(x, dict):
                return {k: walk(v) for k, v in x.items()}
            if isinstance(x, list):
                return [walk(v) for v in x]
            if isinstance(x, str) and x.startswith("/variable_"):
                d = f[x]
                return f"array<{d.dtype.name}>[{','.join(map(str, d.shape))}] @{x}"
            return x

        out = walk(tree)
    out["time"] = "<UTC timestamp of writing, varies>"
    return out


def rel(a, b) -> float:
    a = np.asarray(a, dtype=np.float64).reshape(np.shape(b))
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-300))


def eval_all(model: str, coord, box, atype):
    from deepmd.infer import DeepPot

    dp = DeepPot(model)
    e, f, v, ae, av = dp.eval(coord, box, atype, atomic=True)
    return dict(energy=e, force=f, virial=v, atom_energy=ae, atom_virial=av)


def step_water(tmp: Path) -> None:
    out = HERE / "water_se_e2_a.dp"
    sh(DP, "convert-backend", str(SRC_PB), str(out))
    (HERE / "structure.json").write_text(json.dumps(structure(out), indent=1) + "\n")
    print("wrote", out, "and structure.json")

    ref = np.load(REF)
    # NOTE: cast to float64 first; the numpy backend keeps float32 input in float32
    # for per-atom outputs (reference.npz stores coord/box as float32).
    coord = ref["coord"].astype(np.float64)
    box = ref["box"].astype(np.float64)
    atype = ref["atype"]
    r = eval_all(str(out), coord, box, atype)
    print("[dpmodel .dp vs reference.npz]")
    for k in ("energy", "atom_energy"):
        print(f"  {k:12s} max rel diff = {rel(r[k], ref[k]):.3e}")
    print(f"  force        all NaN in numpy backend: {bool(np.isnan(r['force']).all())}")

    rt = tmp / "roundtrip.pb"
    sh(DP, "convert-backend", str(out), str(rt))
    r = eval_all(str(rt), coord, box, atype)
    print("[TF round-trip .dp -> .pb vs reference.npz]")
    for k in ("energy", "force", "virial", "atom_energy", "atom_virial"):
        print(f"  {k:12s} max rel diff = {rel(r[k], ref[k]):.3e}")


def tiny_model_dict(seed: int = 20240601) -> tuple[dict, dict]:
    from deepmd.dpmodel.model.model import get_model

    model_def = {
        "type_map": ["O", "H"],
        "descriptor": {
            "type": "se_e2_a",
            "sel": [20, 40],
            "rcut": 4.0,
            "rcut_smth": 0.5,
            "neuron": [4, 8, 8],
            "axis_neuron": 4,
            "resnet_dt": True,
            "type_one_side": True,
            "precision": "float64",
            "seed": 1,
        },
        "fitting_net": {
            "neuron": [8, 8],
            "resnet_dt": True,
            "precision": "float64",
            "seed": 1,
        },
    }
    model = get_model(json.loads(json.dumps(model_def)))
    d = model.serialize()
    rng = np.random.default_rng(seed)
    desc = d["descriptor"]["@variables"]
    nt, nnei, _ = desc["davg"].shape
    # TF-like statistics per centre type: davg = [avg_r, 0, 0, 0], dstd = [s_r, s_a, s_a, s_a]
    davg = np.zeros((nt, nnei, 4))
    dstd = np.ones((nt, nnei, 4))
    for t in range(nt):
        davg[t, :, 0] = 0.05 + 0.1 * rng.random()
        dstd[t, :, 0] = 0.1 + 0.1 * rng.random()
        dstd[t, :, 1:] = 0.05 + 0.05 * rng.random()
    desc["davg"], desc["dstd"] = davg, dstd
    d["fitting"]["@variables"]["bias_atom_e"] = np.array([[-93.5], [-187.1]])
    d["@variables"]["out_bias"] = np.array([[[0.25], [-0.5]]])
    return d, model_def


def step_tiny(tmp: Path) -> None:
    from deepmd.dpmodel.utils.serialization import save_dp_model

    d, model_def = tiny_model_dict()
    fn = HERE / "tiny_se_e2_a_tos.dp"
    save_dp_model(str(fn), {"model": d, "model_def_script": model_def, "backend": "dpmodel"})
    (HERE / "tiny_structure.json").write_text(json.dumps(structure(fn), indent=1) + "\n")
    pb = tmp / "tiny.pb"
    sh(DP, "convert-backend", str(fn), str(pb))

    ref = np.load(REF)
    cases = {}
    # case A: PBC, first 2 frames of water/data_3 (192 atoms, O=0, H=1)
    cases["pbc"] = (ref["coord"][:2].astype(np.float64), ref["box"][:2].astype(np.float64), ref["atype"])
    # case B: non-PBC 6-atom cluster (two water molecules), atoms deliberately NOT type-sorted
    c6 = np.array(
        [[0.0, 0.0, 0.0], [0.96, 0.0, 0.0], [2.9, 0.1, 0.2], [-0.24, 0.93, 0.0], [3.2, 0.9, -0.3], [3.5, -0.6, 0.4]]
    ).reshape(1, -1)
    cases["nopbc"] = (c6, None, np.array([0, 1, 0, 1, 1, 1]))
    save = {}
    for name, (c, b, t) in cases.items():
        r_tf = eval_all(str(pb), c, b, t)
        r_np = eval_all(str(fn), c, b, t)
        print(f"[tiny {name}] dpmodel vs TF: energy rel {rel(r_np['energy'], r_tf['energy']):.2e}, "
              f"atom_energy rel {rel(r_np['atom_energy'], r_tf['atom_energy']):.2e}")
        save[f"{name}_coord"] = c
        if b is not None:
            save[f"{name}_box"] = b
        save[f"{name}_atype"] = t
        for k, v in r_tf.items():
            save[f"{name}_{k}"] = np.asarray(v, dtype=np.float64)
    np.savez(HERE / "tiny_se_e2_a_tos_reference.npz", **save)
    print("wrote", fn, "and tiny_se_e2_a_tos_reference.npz")
    atom_virial_convention(fn, pb, cases["nopbc"])


def atom_virial_convention(dp_file: Path, pb: Path, case) -> None:
    """Finite-difference check of which atom receives a pair's virial in the TF backend."""
    from deepmd.infer import DeepPot

    c, _, t = case
    n = len(t)
    dp = DeepPot(str(dp_file))
    x = c.reshape(n, 3)
    h = 1e-5
    # dEi_drj[i, j, a] = d E_i / d r_{j,a}
    dEi_drj = np.zeros((n, n, 3))
    for j in range(n):
        for a in range(3):
            xp, xm = x.copy(), x.copy()
            xp[j, a] += h
            xm[j, a] -= h
            ep = dp.eval(xp.reshape(1, -1), None, t, atomic=True)[3].reshape(n)
            em = dp.eval(xm.reshape(1, -1), None, t, atomic=True)[3].reshape(n)
            dEi_drj[:, j, a] = (ep - em) / (2 * h)
    # candidate "to neighbour j": W_j[a,b] = -sum_{i!=j} dE_i/dr_j[a] * (r_j - r_i)[b]
    to_j = np.zeros((n, 3, 3))
    to_i = np.zeros((n, 3, 3))
    for i in range(n):
        for j in range(n):
            if i == j:
                continue
            w = -np.outer(dEi_drj[i, j], x[j] - x[i])
            to_j[j] += w
            to_i[i] += w
    r = eval_all(str(pb), c, None, t)
    av = r["atom_virial"].reshape(n, 3, 3)
    print("[atom virial convention, TF .pb vs finite differences]")
    print(f"  pair virial -> neighbour j : max|diff| = {np.abs(av - to_j).max():.2e}")
    print(f"  pair virial -> centre i    : max|diff| = {np.abs(av - to_i).max():.2e}")
    print(f"  (transposed 3x3, to j)     : max|diff| = {np.abs(av - to_j.transpose(0, 2, 1)).max():.2e}")
    print(f"  total virial = sum atom virial: {np.abs(r['virial'].reshape(3, 3) - av.sum(0)).max():.2e}")
    f_fd = -dEi_drj.sum(0)
    print(f"  force vs -dE/dr (FD)       : max|diff| = {np.abs(r['force'].reshape(n, 3) - f_fd).max():.2e}")


def main() -> None:
    import deepmd

    print("deepmd-kit", deepmd.__version__)
    with tempfile.TemporaryDirectory() as tmp:
        step_water(Path(tmp))
        step_tiny(Path(tmp))


if __name__ == "__main__":
    main()
