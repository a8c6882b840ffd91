"""Structural summary of frozen DeePMD-kit GraphDefs (parsing only, no execution)."""
import json
import os
import sys
from collections import Counter

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np
import tensorflow as tf
from tensorflow.python.framework import op_def_registry, tensor_util

WEIGHT_KEYS = ("matrix", "bias", "idt", "gamma", "beta", "table", "t_avg", "t_std")
ATTR_SCOPES = ("descrpt_attr/", "fitting_attr/", "model_attr/")


def is_attr(name):
    """any path component ending in '_attr' (descrpt_attr, fitting_attr, model_attr, spin_attr, train_attr, ...)"""
    return any(p.endswith("_attr") for p in name.split("/")[:-1])


def fmt_attr(v):
    k = v.WhichOneof("value")
    if k is None:
        return "None"
    if k == "list":
        lst = v.list
        for f in ("i", "f", "s", "b", "type", "shape"):
            vals = list(getattr(lst, f))
            if vals:
                if f == "s":
                    vals = [x.decode() for x in vals]
                if f == "type":
                    vals = [tf.dtypes.as_dtype(x).name for x in vals]
                if f == "shape":
                    vals = [str(tf.TensorShape(x)) for x in vals]
                return repr(vals)
        return "[]"
    if k == "type":
        return tf.dtypes.as_dtype(v.type).name
    if k == "shape":
        return str(tf.TensorShape(v.shape))
    if k == "s":
        return repr(v.s.decode())
    if k == "tensor":
        return "<tensor>"
    return repr(getattr(v, k))


def const_array(node):
    return tensor_util.MakeNdarray(node.attr["value"].tensor)


def fmt_val(a):
    if a.dtype.kind in "SUO":
        return None
    if a.ndim == 0:
        x = a.item()
    else:
        x = a.tolist()
    return json.dumps(x, default=str)


def summarize(path, name):
    g = tf.compat.v1.GraphDef()
    g.ParseFromString(open(path, "rb").read())
    out = []
    w = out.append
    hist = Counter(n.op for n in g.node)
    custom = sorted(o for o in hist if op_def_registry.get(o) is None)
    w(f"## {name}.pb\n")
    w(f"- file size: {os.path.getsize(path)} bytes; nodes: {len(g.node)}")
    w(f"- all op types: " + ", ".join(f"{o}×{c}" for o, c in sorted(hist.items())))
    w("")
    w("### Non-standard (DeePMD-kit custom) ops\n")
    if not custom:
        w("(none)")
    for o in custom:
        w(f"- **{o}** ×{hist[o]}")
        for n in g.node:
            if n.op != o:
                continue
            attrs = ", ".join(f"{k}={fmt_attr(n.attr[k])}" for k in sorted(n.attr))
            w(f"  - `{n.name}` inputs={list(n.input)}; attrs: {attrs}")
    w("")
    w("### Placeholders\n")
    w("| name | dtype | shape |")
    w("|---|---|---|")
    for n in g.node:
        if n.op in ("Placeholder", "PlaceholderWithDefault"):
            dt = tf.dtypes.as_dtype(n.attr["dtype"].type).name
            shp = str(tf.TensorShape(n.attr["shape"].shape)) if "shape" in n.attr else "?"
            extra = " (PlaceholderWithDefault)" if n.op != "Placeholder" else ""
            w(f"| `{n.name}`{extra} | {dt} | {shp} |")
    w("")
    w("### Other `t_*` nodes (last name component starts with `t_`, not placeholders, not Const)\n")
    tn = [n for n in g.node if n.name.split("/")[-1].startswith("t_")
          and n.op not in ("Placeholder", "PlaceholderWithDefault", "Const")
          and not n.name.endswith("/read")]
    w(", ".join(f"`{n.name}` ({n.op})" for n in tn) if tn else "(none)")
    w("")
    w("### Output nodes (last name component starts with `o_`)\n")
    w("| name | op | T |")
    w("|---|---|---|")
    for n in g.node:
        if n.name.split("/")[-1].startswith("o_"):
            t = tf.dtypes.as_dtype(n.attr["T"].type).name if "T" in n.attr else (
                tf.dtypes.as_dtype(n.attr["dtype"].type).name if "dtype" in n.attr else "?")
            w(f"| `{n.name}` | {n.op} | {t} |")
    w("")
    w("### String Const nodes\n")
    has_ts = False
    ts_model = None
    for n in g.node:
        if n.op != "Const":
            continue
        if n.attr["dtype"].type != tf.string.as_datatype_enum:
            continue
        a = const_array(n)
        vals = a.ravel().tolist()
        s = " | ".join(x.decode("utf-8", "replace") if isinstance(x, bytes) else str(x) for x in vals)
        if n.name.endswith("train_attr/training_script"):
            has_ts = True
            try:
                ts_model = json.loads(s).get("model")
            except Exception:  # noqa: BLE001
                ts_model = None
        trunc = s if len(s) <= 300 else s[:300] + f"... [truncated, {len(s)} chars]"
        w(f"- `{n.name}` shape={list(a.shape)}: `{trunc}`" if "`" not in trunc else f"- `{n.name}` shape={list(a.shape)}: {json.dumps(trunc)}")
    w("")
    w(f"- `train_attr/training_script` present: **{'yes' if has_ts else 'no'}**")
    if ts_model is not None:
        w("- `training_script[\"model\"]` (full, compact JSON):")
        w("")
        w("```json")
        w(json.dumps(ts_model, sort_keys=True, separators=(",", ":")))
        w("```")
    w("")
    w("### Numeric Const nodes under any `*_attr/` scope (descrpt_attr/, fitting_attr/, model_attr/, spin_attr/, train_attr/, also prefixed)\n")
    w("| name | dtype | shape | value (if size <= 20) |")
    w("|---|---|---|---|")
    for n in g.node:
        if n.op != "Const" or not is_attr(n.name):
            continue
        if n.attr["dtype"].type == tf.string.as_datatype_enum:
            continue
        a = const_array(n)
        val = fmt_val(a) if a.size <= 20 else "(size %d)" % a.size
        w(f"| `{n.name}` | {a.dtype} | {list(a.shape)} | {val} |")
    w("")
    w("### Weight Const nodes (name contains " + "/".join(WEIGHT_KEYS) + ")\n")
    w("| name | dtype | shape |")
    w("|---|---|---|")
    nw = 0
    for n in g.node:
        if n.op != "Const":
            continue
        if not any(k in n.name for k in WEIGHT_KEYS):
            continue
        a = const_array(n)
        nw += 1
        w(f"| `{n.name}` | {a.dtype} | {list(a.shape)} |")
    w("")
    w(f"({nw} weight consts)\n")
    w("### Float scalar Const nodes outside `*_attr/` and outside gradients (graph arithmetic constants)\n")
    sc = []
    for n in g.node:
        if n.op != "Const" or "gradients" in n.name.split("/")[0] or is_attr(n.name):
            continue
        if any(k in n.name for k in WEIGHT_KEYS) or n.attr["dtype"].type == tf.string.as_datatype_enum:
            continue
        a = const_array(n)
        if a.dtype.kind == "f" and a.size == 1:
            sc.append(f"`{n.name}`={a.dtype}:{a.item()!r}")
    w(", ".join(sc) if sc else "(none)")
    w("")
    return "\n".join(out)


if __name__ == "__main__":
    outpath = sys.argv[1]
    names = sys.argv[2:]
    parts = []
    for nm in names:
        parts.append(summarize(f"/tmp/work/pb/{nm}.pb", nm))
    open(outpath, "w").write("\n".join(parts))
