#!/usr/bin/env python3
"""Evaluate a frozen DeePMD-kit model on water/data_3 and write reference.npz (+ graph_info.json).

usage: python eval_reference.py frozen_model.pb DATA_3_DIR reference.npz graph_info.json
"""
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np
from deepmd.infer import DeepPot

pb, data3, out_npz, out_graph = sys.argv[1:5]
dp = DeepPot(pb)
assert dp.get_type_map() == ["O", "H"], dp.get_type_map()

coord_all = np.load(os.path.join(data3, "set.000/coord.npy")).astype(np.float64)
box_all = np.load(os.path.join(data3, "set.000/box.npy")).astype(np.float64)
atype = np.loadtxt(os.path.join(data3, "type.raw"), dtype=np.int32).reshape(-1)
nat = atype.size

# --- periodic, 4 frames
coord = np.ascontiguousarray(coord_all[:4].reshape(4, nat * 3))
box = np.ascontiguousarray(box_all[:4].reshape(4, 9))
e, f, v, ae, av = dp.eval(coord, box, atype, atomic=True)
desc = dp.eval_descriptor(coord, box, atype)
res = dict(
    coord=coord, box=box, atype=atype.astype(np.int32), type_map=np.array(["O", "H"]),
    energy=np.asarray(e).reshape(4, 1), force=np.asarray(f).reshape(4, nat * 3),
    virial=np.asarray(v).reshape(4, 9), atom_energy=np.asarray(ae).reshape(4, nat),
    atom_virial=np.asarray(av).reshape(4, nat * 9), descriptor=np.asarray(desc),
)
# --- non-periodic (cells=None), 2 frames, same atoms
ncoord = np.ascontiguousarray(coord_all[:2].reshape(2, nat * 3))
e, f, v, ae, av = dp.eval(ncoord, None, atype, atomic=True)
ndesc = dp.eval_descriptor(ncoord, None, atype)
res.update(
    nopbc_coord=ncoord, nopbc_atype=atype.astype(np.int32),
    nopbc_energy=np.asarray(e).reshape(2, 1), nopbc_force=np.asarray(f).reshape(2, nat * 3),
    nopbc_virial=np.asarray(v).reshape(2, 9), nopbc_atom_energy=np.asarray(ae).reshape(2, nat),
    nopbc_atom_virial=np.asarray(av).reshape(2, nat * 9), nopbc_descriptor=np.asarray(ndesc),
)
for k, a in res.items():
    assert a.dtype.kind not in "f" or a.dtype == np.float64, (k, a.dtype)
    print(f"{k:20s} {str(a.dtype):8s} {a.shape}")
# consistency checks
print("sum(atom_energy) - energy:", np.abs(res["atom_energy"].sum(1) - res["energy"][:, 0]).max())
print("sum(atom_virial) - virial:", np.abs(res["atom_virial"].reshape(4, nat, 9).sum(1) - res["virial"]).max())
print("nopbc sum(atom_virial) - virial:",
      np.abs(res["nopbc_atom_virial"].reshape(2, nat, 9).sum(1) - res["nopbc_virial"]).max())
print("energy:", res["energy"].ravel(), " nopbc_energy:", res["nopbc_energy"].ravel())
print("ref energy (data):", np.load(os.path.join(data3, "set.000/energy.npy"))[:4])
np.savez_compressed(out_npz, **res)

# --- graph info: every Const node
import tensorflow as tf  # noqa: E402
from tensorflow.python.framework import tensor_util  # noqa: E402

gd = tf.compat.v1.GraphDef()
with open(pb, "rb") as fh:
    gd.ParseFromString(fh.read())
nodes = []
op_types = sorted({n.op for n in gd.node})
for n in gd.node:
    if n.op != "Const":
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
json.dump({"source": os.path.basename(pb), "n_nodes": len(gd.node), "op_types": op_types,
           "const_nodes": nodes}, open(out_graph, "w"), indent=1)
print("const nodes:", len(nodes))
