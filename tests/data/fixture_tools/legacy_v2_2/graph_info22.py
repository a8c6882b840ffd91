#!/usr/bin/env python3
"""Describe a frozen DeePMD-kit graph by parsing its GraphDef with plain TensorFlow (DeePMD-kit NOT imported).

usage: python graph_info22.py GRAPH.pb OUT.json

OUT.json:
* n_nodes, op_histogram {op: count};
* custom_ops: the op types that stock TensorFlow does not register (DeePMD-kit's op library), and
  custom_op_nodes: every node of those types with its inputs and attrs (attrs decoded: ints, floats,
  lists, dtypes, strings);
* placeholders: name, dtype, shape (t_coord, t_type, t_box, t_natoms, t_mesh, t_fparam, ...);
* output_nodes: the top-level nodes whose name starts with "o_" (the graph's outputs) and their ops;
* string_consts: every string Const with its value (train_attr/training_script decoded as JSON);
* consts: every other Const outside the gradients* scopes: name, dtype, shape, and the value when it
  has at most 16 elements (attributes like descrpt_attr/rcut, fitting_attr/t_bias_atom_e, small weights);
  n_gradient_consts_omitted counts the Consts under gradients*/ (autodiff bookkeeping, not model data).
"""
import collections
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow.python.framework import op_def_registry, tensor_util  # noqa: E402

pb, out = sys.argv[1:3]
gd = tf.compat.v1.GraphDef()
with open(pb, "rb") as fh:
    gd.ParseFromString(fh.read())


def dtype_name(enum):
    try:
        return tf.dtypes.as_dtype(enum).name
    except TypeError:
        return str(enum)


def attr_value(a):
    kind = a.WhichOneof("value")
    if kind == "s":
        return a.s.decode(errors="replace")
    if kind == "i":
        return int(a.i)
    if kind == "f":
        return float(a.f)
    if kind == "b":
        return bool(a.b)
    if kind == "type":
        return dtype_name(a.type)
    if kind == "shape":
        return None if a.shape.unknown_rank else [int(d.size) for d in a.shape.dim]
    if kind == "list":
        lst = a.list
        for field in ("s", "i", "f", "b", "type"):
            vals = list(getattr(lst, field))
            if vals:
                if field == "s":
                    return [v.decode(errors="replace") for v in vals]
                if field == "type":
                    return [dtype_name(v) for v in vals]
                return [int(v) if field == "i" else float(v) if field == "f" else bool(v) for v in vals]
        return []
    if kind == "tensor":
        return "<tensor>"
    return None if kind is None else f"<{kind}>"


hist = collections.Counter(n.op for n in gd.node)
custom = sorted(op for op in hist if op_def_registry.get(op) is None)
info = {"source": os.path.basename(pb), "bytes": os.path.getsize(pb), "n_nodes": len(gd.node),
        "op_histogram": dict(sorted(hist.items())), "custom_ops": custom, "custom_op_nodes": [],
        "placeholders": [], "output_nodes": [], "string_consts": [], "consts": []}
omitted = 0
for n in gd.node:
    if n.op in custom:
        info["custom_op_nodes"].append({"name": n.name, "op": n.op, "inputs": list(n.input),
                                        "attrs": {k: attr_value(v) for k, v in sorted(n.attr.items())}})
    elif n.op == "Placeholder":
        info["placeholders"].append({"name": n.name, "dtype": dtype_name(n.attr["dtype"].type),
                                     "shape": attr_value(n.attr["shape"]) if "shape" in n.attr else None})
    if n.name.startswith("o_") and "/" not in n.name:
        info["output_nodes"].append({"name": n.name, "op": n.op})
    if n.op != "Const":
        continue
    if n.name.startswith("gradients"):
        omitted += 1
        continue
    t = n.attr["value"].tensor
    arr = tensor_util.MakeNdarray(t)
    item = {"name": n.name, "dtype": dtype_name(t.dtype), "shape": list(arr.shape)}
    if arr.dtype.kind in "SOU":
        vals = [x.decode(errors="replace") if isinstance(x, bytes) else str(x) for x in np.asarray(arr).ravel()]
        item["value"] = vals[0] if arr.ndim == 0 else vals
        if n.name.endswith("train_attr/training_script"):
            item["value"] = json.loads(item["value"])
        info["string_consts"].append(item)
    else:
        if arr.size <= 16:
            item["value"] = arr.tolist()
        info["consts"].append(item)
info["n_gradient_consts_omitted"] = omitted
with open(out, "w") as fh:
    json.dump(info, fh, indent=1)
print(f"{pb}: {len(gd.node)} nodes, custom ops {custom}, {len(info['consts'])} numeric + "
      f"{len(info['string_consts'])} string Consts (+{omitted} under gradients*)")
