#!/usr/bin/env python3
"""Evaluate a frozen DeePMD-kit model (energy, dipole or polar) and write reference.npz (+ graph_info.json).

usage: python eval_reference.py frozen_model.pb SYSTEM reference.npz graph_info.json [--case PREFIX:SYSDIR:NF:pbc|nopbc ...]

Without --case: the water-fixture default, i.e. ``--case :SYSTEM:4:pbc --case nopbc_:SYSTEM:2:nopbc``
(first 4 frames of SYSTEM with their box, first 2 frames without PBC, cells=None); SYSTEM may be
"-" when --case is given. For every case the keys are PREFIX + name:

* inputs: coord (nf, nat*3) float64, box (nf, 9) (pbc cases only), atype (nat,) int32, and, when
  the model has numb_fparam / numb_aparam > 0, fparam (nf, nfp) and aparam (nf, nat*nap) read from
  SYSDIR/set.000/{fparam,aparam}.npy (first nf frames);
* energy model (``DeepPot.eval(..., atomic=True)``): energy (nf,1), force (nf, nat*3), virial (nf,9),
  atom_energy (nf, nat), atom_virial (nf, nat*9);
* dipole / polar model (``DeepDipole`` / ``DeepPolar``, T = dipole or polar, nout = 3 or 9):
  T (nf, nout) = ``eval(..., atomic=False)``; atom_T = ``eval(..., atomic=True)`` exactly as returned
  (see the fixture README for its shape); and from ``eval_full(..., atomic=True)``:
  T_force (nf, nout, nat, 3), T_virial (nf, nout, 9), T_atom_virial (nf, nout, nat, 9) (not with
  --no-tensor-atom-virial);
* descriptor (ndf, nat, dim) = ``eval_descriptor`` (atoms in input order) of the first ndf frames
  (--desc-frames; all by default), when it works. --deriv-frames likewise limits T_force/T_virial/
  T_atom_virial of tensor models to the first frames (keeps the fixtures small).

Global keys: type_map, cases (the prefixes, in order), model_kind, plus sel_type for tensor models.
Every check is printed (they end up in check_log.txt).
"""
import argparse
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np
from deepmd.infer import DeepEval

ap = argparse.ArgumentParser()
ap.add_argument("pb")
ap.add_argument("system")
ap.add_argument("out_npz")
ap.add_argument("out_graph")
ap.add_argument("--case", action="append", default=[],
                help="PREFIX:SYSDIR:NFRAMES:pbc|nopbc (repeatable; PREFIX may be empty)")
ap.add_argument("--desc-frames", type=int, default=0,
                help="store the descriptor for only the first N frames of each case (0: all)")
ap.add_argument("--deriv-frames", type=int, default=0,
                help="tensor models: store T_force/T_virial/T_atom_virial for only the first N frames (0: all)")
ap.add_argument("--no-tensor-atom-virial", action="store_true",
                help="tensor models: do not store T_atom_virial (only checked; keeps the fixture small)")
ap.add_argument("--fd-components", type=int, default=3,
                help="force components checked by central finite differences per case (frame 0)")
args = ap.parse_args()
cases = args.case or [f":{args.system}:4:pbc", f"nopbc_:{args.system}:2:nopbc"]

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../.."))
dp = DeepEval(args.pb)
kind = type(dp).__name__  # DeepPot / DeepDipole / DeepPolar
tname = {"DeepPot": None, "DeepDipole": "dipole", "DeepPolar": "polar"}[kind]
type_map = dp.get_type_map()
nfp, nap = dp.get_dim_fparam(), dp.get_dim_aparam()
print(f"model: {kind}, type_map {type_map}, rcut {dp.get_rcut()}, dim_fparam {nfp}, dim_aparam {nap}"
      + (f", sel_type {list(dp.get_sel_type())}" if tname else ""))

res = dict(type_map=np.array(type_map), model_kind=np.array(tname or "ener"))
if tname:
    res["sel_type"] = np.asarray(dp.get_sel_type(), dtype=np.int32)
prefixes = []


def maxabs(a):
    return float(np.max(np.abs(a))) if np.size(a) else 0.0


def load_system(sysdir, nf):
    tm_file = os.path.join(sysdir, "type_map.raw")
    atype = np.loadtxt(os.path.join(sysdir, "type.raw"), dtype=np.int32).reshape(-1)
    if os.path.exists(tm_file):  # remap the system's own type indices to the model's type_map
        sys_tm = open(tm_file).read().split()
        atype = np.array([type_map.index(sys_tm[t]) for t in atype], dtype=np.int32)
    s = os.path.join(sysdir, "set.000")
    coord = np.load(os.path.join(s, "coord.npy"))[:nf].astype(np.float64)
    box = np.load(os.path.join(s, "box.npy"))[:nf].astype(np.float64) if os.path.exists(os.path.join(s, "box.npy")) else None
    extra = {}
    if nfp:
        extra["fparam"] = np.load(os.path.join(s, "fparam.npy"))[:nf].astype(np.float64).reshape(nf, nfp)
    if nap:
        extra["aparam"] = np.load(os.path.join(s, "aparam.npy"))[:nf].astype(np.float64).reshape(nf, atype.size * nap)
    return atype, np.ascontiguousarray(coord.reshape(nf, -1)), box, extra


for spec in cases:
    prefix, sysdir, nf, mode = spec.split(":")
    nf = int(nf)
    assert mode in ("pbc", "nopbc"), spec
    atype, coord, box, extra = load_system(sysdir, nf)
    nat = atype.size
    cells = np.ascontiguousarray(box.reshape(nf, 9)) if mode == "pbc" else None
    out = dict(coord=coord, atype=atype)
    if cells is not None:
        out["box"] = cells
    out.update(extra)
    kw = dict(extra)
    print(f"--- case '{prefix}': {os.path.relpath(sysdir, ROOT)} first {nf} frames, {mode}, {nat} atoms, "
          f"atype counts {np.bincount(atype, minlength=len(type_map)).tolist()}")
    if tname is None:
        e, f, v, ae, av = dp.eval(coord, cells, atype, atomic=True, **kw)
        out.update(energy=np.asarray(e).reshape(nf, 1), force=np.asarray(f).reshape(nf, nat * 3),
                   virial=np.asarray(v).reshape(nf, 9), atom_energy=np.asarray(ae).reshape(nf, nat),
                   atom_virial=np.asarray(av).reshape(nf, nat * 9))
        print("  |sum(atom_energy) - energy|max:", maxabs(out["atom_energy"].sum(1) - out["energy"][:, 0]))
        print("  |sum(atom_virial) - virial|max:", maxabs(out["atom_virial"].reshape(nf, nat, 9).sum(1) - out["virial"]))
        print("  |sum_atoms force|max (translation invariance):", maxabs(out["force"].reshape(nf, nat, 3).sum(1)))
        if cells is None:  # no PBC: virial = sum_i r_i (x) f_i
            vv = np.einsum("fia,fib->fab", coord.reshape(nf, nat, 3), out["force"].reshape(nf, nat, 3)).reshape(nf, 9)
            print("  |virial - sum_i r_i (x) f_i|max:", maxabs(vv - out["virial"]))
        print("  energy:", out["energy"].ravel())

        def scalar(c):
            return float(np.asarray(dp.eval(c[None], None if cells is None else cells[:1], atype,
                                            **{k: x[:1] for k, x in kw.items()})[0]).ravel()[0])
    else:
        g = np.asarray(dp.eval(coord, cells, atype, atomic=False, **kw))
        at = np.asarray(dp.eval(coord, cells, atype, atomic=True, **kw))
        gf, ff, vf, atf, avf = dp.eval_full(coord, cells, atype, atomic=True, **kw)
        nout = g.reshape(nf, -1).shape[1]
        out[tname] = g.reshape(nf, nout)
        out["atom_" + tname] = at
        ndv = min(args.deriv_frames or nf, nf)
        out[tname + "_force"] = np.asarray(ff).reshape(nf, nout, nat, 3)[:ndv]
        out[tname + "_virial"] = np.asarray(vf).reshape(nf, nout, 9)[:ndv]
        if not args.no_tensor_atom_virial:
            out[tname + "_atom_virial"] = np.asarray(avf).reshape(nf, nout, nat, 9)[:ndv]
        sel = np.isin(atype, res["sel_type"])
        print(f"  eval(atomic=True) shape {at.shape}; eval_full atom tensor shape {np.shape(atf)}; "
              f"{sel.sum()} atoms of sel_type")
        print("  |eval_full global - eval global|max:", maxabs(np.asarray(gf).reshape(nf, nout) - out[tname]))
        print("  |eval_full atomic - eval atomic|max:", maxabs(np.asarray(atf).reshape(at.shape) - at))
        at_sel = at.reshape(nf, -1, nout)
        if at_sel.shape[1] == nat:
            print("  |atomic tensor on non-sel atoms|max:", maxabs(at_sel[:, ~sel]))
        print("  |sum(atomic) - global|max:", maxabs(at_sel.sum(1) - out[tname]))
        print("  |sum(T_atom_virial) - T_virial|max:", maxabs(np.asarray(avf).reshape(nf, nout, nat, 9).sum(2)
                                                            - np.asarray(vf).reshape(nf, nout, 9)))
        print("  |sum_atoms T_force|max:", maxabs(np.asarray(ff).reshape(nf, nout, nat, 3).sum(2)))
        if cells is None:  # no PBC: T_virial[k, a, b] = sum_i T_force[k, i, a] r[i, b]  (this order: T is not a scalar)
            vv = np.einsum("fkia,fib->fkab", np.asarray(ff).reshape(nf, nout, nat, 3), coord.reshape(nf, nat, 3))
            print("  |T_virial[k,a,b] - sum_i T_force[k,i,a] r[i,b]|max:", maxabs(vv.reshape(nf, nout, 9) - np.asarray(vf).reshape(nf, nout, 9)))
            print("  (transposed order, sum_i r[i,a] T_force[k,i,b], differs by", maxabs(
                np.einsum("fkab->fkba", vv).reshape(nf, nout, 9) - np.asarray(vf).reshape(nf, nout, 9)), ")")
        print(f"  {tname}[0]:", out[tname][0])

        def scalar(c):  # component 0 of the global tensor
            return float(np.asarray(dp.eval(c[None], None if cells is None else cells[:1], atype,
                                            atomic=False)).ravel()[0])
    # finite-difference check of a few force components on frame 0 (force = -d/dr)
    rng = np.random.default_rng(0)
    h, errs = 1e-4, []
    fref = out["force"][0] if tname is None else out[tname + "_force"][0, 0].reshape(-1)
    for idx in rng.choice(nat * 3, size=min(args.fd_components, nat * 3), replace=False):
        cp, cm = coord[0].copy(), coord[0].copy()
        cp[idx] += h
        cm[idx] -= h
        fd = -(scalar(cp) - scalar(cm)) / (2 * h)
        errs.append(abs(fd - fref[idx]))
    print(f"  finite-difference force check ({len(errs)} components, h={h}): max|fd - force| = {max(errs):.2e}")
    try:
        ndf = min(args.desc_frames or nf, nf)
        out["descriptor"] = np.asarray(dp.eval_descriptor(coord[:ndf], None if cells is None else cells[:ndf], atype,
                                                          **{k: x[:ndf] for k, x in kw.items()}))
        print("  descriptor shape", out["descriptor"].shape)
    except Exception as exc:  # noqa: BLE001
        print(f"  eval_descriptor failed: {type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}")
    for k, a in out.items():
        res[prefix + k] = a
    prefixes.append(prefix)

res["cases"] = np.array(prefixes)
for k, a in res.items():
    assert a.dtype.kind != "f" or a.dtype == np.float64, (k, a.dtype)
    print(f"{k:28s} {str(a.dtype):8s} {a.shape}")
np.savez_compressed(args.out_npz, **res)

# --- graph info: every Const node except those of the gradients* scopes
import tensorflow as tf  # noqa: E402
from tensorflow.python.framework import tensor_util  # noqa: E402

gd = tf.compat.v1.GraphDef()
with open(args.pb, "rb") as fh:
    gd.ParseFromString(fh.read())
nodes, omitted = [], 0
op_types = sorted({n.op for n in gd.node})
for n in gd.node:
    if n.op != "Const":
        continue
    if n.name.startswith("gradients"):  # shape bookkeeping of the autodiff subgraphs: not model data
        omitted += 1
        continue
    t = n.attr["value"].tensor
    arr = tensor_util.MakeNdarray(t)
    item = {"name": n.name, "dtype": tf.dtypes.as_dtype(t.dtype).name, "shape": list(arr.shape)}
    if arr.dtype.kind in "SOU":
        vals = [x.decode() if isinstance(x, bytes) else str(x) for x in np.asarray(arr).ravel()]
        if n.name == "train_attr/training_script" or n.name.startswith("model_attr/") or arr.size == 1:
            item["value"] = vals[0] if arr.ndim == 0 else vals
            if n.name == "train_attr/training_script":
                item["value"] = json.loads(item["value"])
    elif arr.size <= 16 and (n.name.endswith("_attr") or "_attr/" in n.name):
        item["value"] = arr.tolist()
    nodes.append(item)
json.dump({"source": os.path.basename(args.pb), "n_nodes": len(gd.node), "op_types": op_types,
           "n_gradient_consts_omitted": omitted, "const_nodes": nodes}, open(args.out_graph, "w"), indent=1)
print("const nodes:", len(nodes), f"(+ {omitted} under gradients*/ not listed)")
