"""``se_e2_a`` / ``se_e2_r`` / ``se_e3`` descriptor dicts: read and write."""

import numpy as np

from dpkeras.errors import DPKerasError
from dpkeras.io.dp.nets import embedding_net, read_net


SE_KINDS = {"se_e2_a": "se_e2_a", "se_a": "se_e2_a", "se_e2_r": "se_e2_r", "se_r": "se_e2_r",
             "se_e3": "se_e3"}
SUPPORTED = "se_e2_a, se_e2_r, se_e3, dpa1/se_atten, hybrid of se_e2_a/se_e2_r/se_e3"


def read_se(d, path, ntypes):
    """``(config, weights)`` of an ``se_e2_a``/``se_e2_r``/``se_e3`` descriptor dict."""
    kind = SE_KINDS[d["type"]]
    if d.get("env_protection", 0.0):
        raise DPKerasError(f"{path}: descriptor.env_protection is not supported yet")
    radial, three_body = kind == "se_e2_r", kind == "se_e3"
    ncol = 1 if radial else 4
    sel = [int(s) for s in d["sel"]]
    nnei = sum(sel)
    emb = d["embeddings"]
    embeddings = {}
    for idx, net in enumerate(emb["networks"]):
        if net is None:
            continue
        key = (idx,) if emb["ndim"] == 1 else (idx % ntypes, idx // ntypes)
        if three_body and key[0] > key[1]:
            continue   # placeholder: se_e3 has nets for neighbor-type pairs a <= b only
        embeddings[key] = read_net(net, path, "embedding")
    excl = {tuple(sorted(p)) for p in d.get("exclude_types", [])}
    if emb["ndim"] == 2 and not three_body:
        embeddings = {k: v for k, v in embeddings.items() if tuple(sorted(k)) not in excl}
    config = {
        "type": kind, "sel": sel, "rcut": float(d["rcut"]),
        "rcut_smth": float(d["rcut_smth"]), "neuron": list(d["neuron"]),
        "resnet_dt": bool(d["resnet_dt"]),
        "exclude_types": [list(p) for p in d.get("exclude_types", [])],
        "set_davg_zero": bool(d.get("set_davg_zero", False)),
        "activation_function": d.get("activation_function", "tanh"),
        "trainable": bool(d.get("trainable", True)),
    }
    if not three_body:
        config["type_one_side"] = bool(d["type_one_side"])
    if not radial and not three_body:
        config["axis_neuron"] = int(d["axis_neuron"])
    weights = {
        "davg": np.asarray(d["@variables"]["davg"], np.float64).reshape(ntypes, nnei, ncol),
        "dstd": np.asarray(d["@variables"]["dstd"], np.float64).reshape(ntypes, nnei, ncol),
        "embeddings": embeddings,
    }
    return config, weights


def se_dict(d, w, ntypes, tmap):
    """The DeePMD-kit dict of an ``se_e2_a``/``se_e2_r``/``se_e3`` descriptor ``d`` with weights
    ``w`` (``davg``, ``dstd``, ``embeddings``)."""
    three_body = d.descriptor_type == "se_e3"
    nd = 1 if d.type_one_side and not three_body else 2
    networks = [None] * (ntypes ** nd)
    for key, net in w["embeddings"].items():
        idx = key[0] if nd == 1 else key[0] + ntypes * key[1]
        networks[idx] = embedding_net(net, d.neuron, d.activation_function, d.resnet_dt)
    if nd == 2:  # DeePMD-kit expects full-shape nets for excluded/unused pairs, zeroed
        for idx in range(ntypes ** 2):
            if networks[idx] is None:
                ref = next(iter(w["embeddings"].values()))
                zero = {"w": [np.zeros_like(a) for a in ref["w"]],
                        "b": [np.zeros_like(a) for a in ref["b"]],
                        "idt": [None if a is None else np.zeros_like(a) for a in ref["idt"]]}
                networks[idx] = embedding_net(zero, d.neuron, d.activation_function,
                                               d.resnet_dt)
    descriptor = {
        "@class": "Descriptor", "@version": 2,
        "type": {"se_e2_a": "se_e2_a", "se_e2_r": "se_r", "se_e3": "se_e3"}[d.descriptor_type],
        "rcut": d.rcut, "rcut_smth": d.rcut_smth, "sel": d.sel, "neuron": d.neuron,
        "resnet_dt": d.resnet_dt, "trainable": d.trainable,
        "type_one_side": d.type_one_side, "exclude_types": [list(p) for p in d.exclude_types],
        "env_protection": 0.0, "set_davg_zero": d.set_davg_zero,
        "activation_function": d.activation_function, "precision": "float64",
        "embeddings": {"@class": "NetworkCollection", "@version": 1, "ndim": nd,
                       "ntypes": ntypes, "network_type": "embedding_network",
                       "networks": networks},
        "env_mat": {"rcut": d.rcut, "rcut_smth": d.rcut_smth, "protection": 0.0,
                    "use_exp_switch": False},
        "@variables": {"davg": w["davg"], "dstd": w["dstd"]},
        "type_map": tmap, "spin": None,
    }
    if d.descriptor_type == "se_e2_a":
        descriptor["axis_neuron"] = d.axis_neuron
    if three_body:   # DeePMD-kit's se_e3 takes neither key
        del descriptor["type_one_side"], descriptor["spin"]
    return descriptor
