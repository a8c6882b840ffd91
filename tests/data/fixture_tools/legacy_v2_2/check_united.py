#!/usr/bin/env python3
"""Check that every weight of the per-head graphs of a 2.2.11 multi-task model is in the united graph.

usage: python check_united.py united.pb HEAD=frozen_model_HEAD.pb [HEAD=...]

Name mapping (measured on these graphs): a per-head graph drops the head suffix, i.e.
united `layer_{m}_type_{t}_{HEAD}/...` / `final_layer_type_{t}_{HEAD}/...` -> per-head `layer_{m}_type_{t}/...`,
united `fitting_attr_{HEAD}/...` -> `fitting_attr/...`; layers shared via layer_name, `share_{name}_type_{t}/...`,
and the descriptor keep their names. Plain TensorFlow only (DeePMD-kit is not imported).
"""
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow.python.framework import tensor_util  # noqa: E402


def consts(path):
    gd = tf.compat.v1.GraphDef()
    with open(path, "rb") as fh:
        gd.ParseFromString(fh.read())
    return {n.name: tensor_util.MakeNdarray(n.attr["value"].tensor) for n in gd.node
            if n.op == "Const" and not n.name.startswith("gradients")}


def is_weight(name):
    last = name.split("/")[-1]
    return last in ("matrix", "bias", "idt") or last.startswith(("matrix_", "bias_", "idt_")) \
        or name.startswith(("descrpt_attr", "fitting_attr", "type_embed_net"))


united = consts(sys.argv[1])
ok = True
for spec in sys.argv[2:]:
    head, path = spec.split("=", 1)
    c = consts(path)
    n, bad = 0, []
    for k, v in c.items():
        if not is_weight(k):
            continue
        top, _, rest = k.partition("/")
        cands = [k, f"{top}_{head}/{rest}"]
        uk = next((x for x in cands if x in united), None)
        if uk is None or v.shape != united[uk].shape or not np.array_equal(v, united[uk]):
            bad.append(k)
        n += 1
    shared = sorted({k.split("/")[0] for k in c if k.startswith("share_")})
    print(f"{head}: {n} weight/attr Consts, {n - len(bad)} identical in {os.path.basename(sys.argv[1])}; "
          f"mismatch/missing: {bad}; shared-layer scopes: {shared}")
    ok &= not bad
sys.exit(0 if ok else 1)
