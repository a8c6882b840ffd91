#!/usr/bin/env python3
"""Reference outputs of a frozen graph, computed by DeePMD-kit 2.2.11 itself (deepmd.infer API).

usage: python eval22.py GRAPH.pb SYSTEM NFRAMES OUT.npz [--nopbc OUT_NOPBC.npz] [--desc-frames N] [--no-descriptor]
                        [--no-tensor-atom-virial] [--lite-nopbc]

Reads the first NFRAMES frames of SYSTEM (DeePMD npy system: type.raw, type_map.raw, set.000/coord.npy,
box.npy), maps the system's type indices to the model's type_map, casts to float64 and evaluates:

* energy model, ``DeepPot(pb).eval(coord, box, atype, atomic=True)``:
  energy (nf, 1), force (nf, nat*3), virial (nf, 9), atom_energy (nf, nat), atom_virial (nf, nat*9);
* dipole / polar model (``DeepDipole`` / ``DeepPolar``; T = dipole | polar, nout = 3 | 9):
  T (nf, nout) = ``eval(..., atomic=False)``; atom_T = ``eval(..., atomic=True)`` as returned by 2.2.11,
  i.e. (nf, n_sel_atoms, nout): one row per atom whose type is in sel_type, in input atom order
  (``sel_atom_index`` gives those atoms' indices); from ``eval_full(..., atomic=True)``:
  T_force (nf, nout, nat, 3), T_virial (nf, nout, 9), T_atom_virial (nf, nout, nat, 9);
* descriptor (ndf, nat, dim) = ``eval_descriptor`` of the first ndf frames when that works (atoms in input
  order; 2.2.11's DeepDipole/DeepPolar have no eval_descriptor).

Size options (keep the fixtures small): --desc-frames N (descriptor of the first N frames only),
--no-descriptor, --no-tensor-atom-virial (no T_atom_virial), --lite-nopbc (OUT_NOPBC.npz without
descriptor and T_atom_virial).

Inputs stored: coord (nf, nat*3), box (nf, 9) (OUT.npz only; OUT_NOPBC.npz is evaluated with box=None and
has no box key), atype (nat,) int32 in the MODEL's type indexing, type_map, pbc (bool),
model_type, dp_version, and sel_type for tensor models. Every consistency check is printed.
"""
import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")  # eval_descriptor of float64 se_atten graphs needs it
import numpy as np  # noqa: E402
import deepmd  # noqa: E402
from deepmd.infer import DeepDipole, DeepPolar, DeepPot  # noqa: E402
from deepmd.infer import DeepPotential  # noqa: E402  (2.2.11 factory: class chosen by model_attr/model_type)

ap = argparse.ArgumentParser()
ap.add_argument("pb")
ap.add_argument("system")
ap.add_argument("nframes", type=int)
ap.add_argument("out")
ap.add_argument("--nopbc", default=None)
ap.add_argument("--desc-frames", type=int, default=0)
ap.add_argument("--no-descriptor", action="store_true")
ap.add_argument("--no-tensor-atom-virial", action="store_true")
ap.add_argument("--lite-nopbc", action="store_true")
args = ap.parse_args()

dp = DeepPotential(args.pb)
assert isinstance(dp, (DeepPot, DeepDipole, DeepPolar)), type(dp)
kind = {DeepPot: "ener", DeepDipole: "dipole", DeepPolar: "polar"}[type(dp)]
type_map = dp.get_type_map()
print(f"DeePMD-kit {deepmd.__version__}: {args.pb}: {type(dp).__name__}, type_map {type_map}, rcut {dp.get_rcut()}"
      + (f", sel_type {list(dp.get_sel_type())}" if kind != "ener" else ""))


def maxabs(a):
    return float(np.max(np.abs(a))) if np.size(a) else 0.0


sysdir, nf = args.system, args.nframes
atype = np.loadtxt(os.path.join(sysdir, "type.raw"), dtype=np.int32).reshape(-1)
sys_tm = open(os.path.join(sysdir, "type_map.raw")).read().split()
atype = np.array([type_map.index(sys_tm[t]) for t in atype], dtype=np.int32)
coord = np.load(os.path.join(sysdir, "set.000", "coord.npy"))[:nf].astype(np.float64).reshape(nf, -1)
box_all = np.load(os.path.join(sysdir, "set.000", "box.npy"))[:nf].astype(np.float64).reshape(nf, 9)
nat = atype.size

for out_path, box in ((args.out, box_all), (args.nopbc, None)):
    if out_path is None:
        continue
    lite = box is None and args.lite_nopbc
    res = dict(coord=coord, atype=atype, type_map=np.array(type_map), pbc=np.array(box is not None),
               model_type=np.array(kind), dp_version=np.array(deepmd.__version__))
    if box is not None:
        res["box"] = box
    print(f"--- {os.path.basename(out_path)}: {sysdir} first {nf} frames, {nat} atoms, "
          f"{'box from box.npy' if box is not None else 'box=None (no PBC)'}")
    if kind == "ener":
        e, f, v, ae, av = dp.eval(coord, box, atype, atomic=True)
        res.update(energy=np.asarray(e).reshape(nf, 1), force=np.asarray(f).reshape(nf, nat * 3),
                   virial=np.asarray(v).reshape(nf, 9), atom_energy=np.asarray(ae).reshape(nf, nat),
                   atom_virial=np.asarray(av).reshape(nf, nat * 9))
        print("  energy:", res["energy"].ravel())
        print("  |sum(atom_energy) - energy|max:", maxabs(res["atom_energy"].sum(1) - res["energy"][:, 0]))
        print("  |sum(atom_virial) - virial|max:", maxabs(res["atom_virial"].reshape(nf, nat, 9).sum(1) - res["virial"]))
        print("  |sum_atoms force|max:", maxabs(res["force"].reshape(nf, nat, 3).sum(1)))
        e1 = np.asarray(dp.eval(coord, box, atype, atomic=False)[0]).reshape(nf, 1)
        print("  |energy(atomic=False) - energy(atomic=True)|max:", maxabs(e1 - res["energy"]))

        def scalar(c):
            return float(np.asarray(dp.eval(c[None], None if box is None else box[:1], atype)[0]).ravel()[0])
        fref = res["force"][0]
    else:
        g = np.asarray(dp.eval(coord, box, atype, atomic=False))
        at = np.asarray(dp.eval(coord, box, atype, atomic=True))
        gf, ff, vf, atf, avf = dp.eval_full(coord, box, atype, atomic=True)
        nout = g.reshape(nf, -1).shape[1]
        sel_idx = np.flatnonzero(np.isin(atype, dp.get_sel_type())).astype(np.int32)
        res.update({kind: g.reshape(nf, nout), "atom_" + kind: at, "sel_type": np.asarray(dp.get_sel_type(), np.int32),
                    "sel_atom_index": sel_idx,
                    kind + "_force": np.asarray(ff).reshape(nf, nout, nat, 3),
                    kind + "_virial": np.asarray(vf).reshape(nf, nout, 9)})
        if not (args.no_tensor_atom_virial or lite):
            res[kind + "_atom_virial"] = np.asarray(avf).reshape(nf, nout, nat, 9)
        print(f"  eval(atomic=False) {g.shape}, eval(atomic=True) {at.shape}, eval_full: {np.shape(gf)} "
              f"{np.shape(ff)} {np.shape(vf)} {np.shape(atf)} {np.shape(avf)}; {sel_idx.size} sel_type atoms")
        print(f"  {kind}[0]:", res[kind][0])
        print("  |eval_full global - eval global|max:", maxabs(np.asarray(gf).reshape(nf, nout) - res[kind]))
        print("  |eval_full atomic - eval atomic|max:", maxabs(np.asarray(atf).reshape(at.shape) - at))
        print("  |sum(atomic) - global|max:", maxabs(at.reshape(nf, -1, nout).sum(1) - res[kind]))
        print("  |sum(T_atom_virial) - T_virial|max:", maxabs(np.asarray(avf).reshape(nf, nout, nat, 9).sum(2)
                                                            - res[kind + "_virial"]))

        def scalar(c):
            return float(np.asarray(dp.eval(c[None], None if box is None else box[:1], atype, atomic=False)).ravel()[0])
        fref = res[kind + "_force"][0, 0].reshape(-1)
    rng = np.random.default_rng(0)
    h, errs = 1e-4, []
    for idx in rng.choice(nat * 3, size=3, replace=False):
        cp, cm = coord[0].copy(), coord[0].copy()
        cp[idx] += h
        cm[idx] -= h
        errs.append(abs(-(scalar(cp) - scalar(cm)) / (2 * h) - fref[idx]))
    print(f"  finite-difference check of 3 force components of frame 0 (h={h}): max|fd - force| = {max(errs):.2e}")
    try:
        if args.no_descriptor or lite:
            raise RuntimeError("not stored (size option)")
        ndf = min(args.desc_frames or nf, nf)
        res["descriptor"] = np.asarray(dp.eval_descriptor(coord[:ndf], None if box is None else box[:ndf], atype))
        print("  descriptor", res["descriptor"].shape)
    except Exception as exc:  # noqa: BLE001
        print(f"  descriptor: {type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}")
    for k, a in res.items():
        assert a.dtype.kind != "f" or a.dtype == np.float64, (k, a.dtype)
        print(f"  {k:20s} {str(a.dtype):8s} {a.shape}")
    np.savez_compressed(out_path, **res)
